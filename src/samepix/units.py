"""Quantities written for people (``12.3 MB``), shared by every module that talks to one."""

from __future__ import annotations

__all__ = ["human_bytes"]


def human_bytes(n: int | None) -> str:
    """``n`` bytes in decimal units: ``512 B``, ``12.3 kB``, ``4.0 MB``; ``-`` for None."""
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"

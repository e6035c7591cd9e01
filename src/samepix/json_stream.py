"""JSON written piece by piece: the same text as :func:`samepix.terminal.json_text` of the whole
object, without building it, so an array of millions (a sync's items) is never one string."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TextIO

from .terminal import json_text

__all__ = ["LazyArray", "write_json"]


class LazyArray:
    """An array whose elements are made as they are written (``iterable`` is iterated once)."""

    def __init__(self, iterable: Iterable[Any]) -> None:
        self.iterable = iterable


def write_json(obj: Any, out: TextIO) -> None:
    """Write ``json_text(obj)`` to ``out``, where each :class:`LazyArray` in ``obj`` (a value of
    a dict, at any depth of dicts) is written one element at a time.

    The text is the same, byte for byte: ``json.dumps``' default separators (``", "`` and
    ``": "``), and :func:`json_text`'s escapes, which apply to one character at a time.
    """
    if isinstance(obj, dict):
        out.write("{")
        for n, (key, value) in enumerate(obj.items()):
            out.write(f"{', ' if n else ''}{json_text(key)}: ")
            write_json(value, out)
        out.write("}")
    elif isinstance(obj, LazyArray):
        out.write("[")
        for n, element in enumerate(obj.iterable):
            if n:
                out.write(", ")
            out.write(json_text(element))
        out.write("]")
    else:
        out.write(json_text(obj))

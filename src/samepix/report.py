"""Showing a comparison to a person: text lines and a difference heatmap."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .heatmap import write_heatmap
from .terminal import escape, shorten
from .units import human_bytes

if TYPE_CHECKING:
    from .compare import Comparison
    from .decode import ImageInfo
    from .index import IndexSummary
    from .results import DuplicateCopy, DuplicateGroup, FindResult
    from .sync import SyncItem, SyncSummary

__all__ = [
    "duplicate_totals",
    "format_comparison",
    "format_duplicates",
    "format_find",
    "format_index_summary",
    "format_info",
    "format_sync",
    "format_sync_item",
    "human_bytes",
    "sync_lines",
    "write_heatmap",
]


def format_info(info: ImageInfo) -> str:
    extra = []
    if info.orientation != 1:
        extra.append(f"EXIF orientation {info.orientation}")
    if info.frames > 1:
        extra.append(f"{info.frames} frames")
    if info.icc_profile:
        extra.append(f"profile {info.icc_profile}")
    if info.has_alpha:
        extra.append("transparent")
    tail = f" ({escape(', '.join(extra))})" if extra else ""
    fmt = info.format or "array"
    return f"{fmt} {info.width}×{info.height} {info.mode} {human_bytes(info.bytes)}{tail}"


def format_comparison(result: Comparison) -> str:
    """The verdict, its reasons, the key metrics and both images, as a few lines of text."""
    m = result.metrics
    lines = [f"{result.verdict.value}: {escape(result.a.source)}  vs  {escape(result.b.source)}"]
    lines += [f"  - {escape(reason)}" for reason in result.reasons]
    numbers = []
    if m.ssim is not None and result.rung == "metrics":
        numbers.append(f"SSIM {m.ssim:.4f}")
        if m.ssim_channels and len(m.ssim_channels) > 1:
            numbers.append(f"min channel {m.ssim_min_channel:.4f}")
        if m.worst_region_ssim is not None:
            numbers.append(f"worst region {m.worst_region_ssim:.3f}")
    if m.ms_ssim is not None:
        numbers.append(f"MS-SSIM {m.ms_ssim:.4f}")
    if m.psnr is not None and result.rung == "metrics":
        numbers.append(f"PSNR {m.psnr:.2f} dB")
    if m.nrmse is not None and result.rung == "metrics":
        numbers.append(f"NRMSE {m.nrmse:.4f}")
    if m.colour_shift is not None:
        numbers.append(f"colour ΔE {m.colour_shift:.2f}")
    if m.hash_distances:
        numbers.append(
            "hash distances " + " ".join(f"{k} {v}" for k, v in sorted(m.hash_distances.items()))
        )
    if numbers:
        lines.append("  " + "; ".join(numbers))
    lines.append(f"  a: {format_info(result.a)}")
    lines.append(f"  b: {format_info(result.b)}")
    if result.reused:
        lines.append(
            f"  unchanged since the last check: stored result reused "
            f"(downloaded {human_bytes(result.transferred)})"
        )
    elif result.transferred:
        lines.append(f"  downloaded {human_bytes(result.transferred)}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Folder commands: index summary, find, dupes


def format_index_summary(summary: IndexSummary) -> str:
    """``indexed DIR: N images (added a, updated u, moved m, removed r, unchanged k)`` and, below,
    one line per unreadable file with its reason."""
    s = summary
    lines = [
        f"indexed {escape(s.root)}: {s.total:,} image{'s' if s.total != 1 else ''} "
        f"(added {s.added:,}, updated {s.updated:,}, moved {s.moved:,}, removed {s.removed:,}, "
        f"unchanged {s.unchanged:,}; {s.decoded:,} decoded in {s.elapsed_s:.1f} s)"
    ]
    if s.skipped_links:
        lines.append(
            f"skipped {s.skipped_links:,} symbolic link{'s' if s.skipped_links != 1 else ''} "
            "leading out of the folder (--follow-links follows them)"
        )
    if s.unreadable:
        lines.append(f"unreadable: {len(s.unreadable):,}")
        lines += [f"  {escape(u.path)}: {escape(u.reason)}" for u in s.unreadable]
    return "\n".join(lines)


def format_find(result: FindResult) -> str:
    """Each matching file with its verdict and reasons; or ``not found`` with what was looked at."""
    lines: list[str] = []
    for m in result.matches:
        lines.append(f"{m.comparison.verdict.value}: {escape(m.path)}")
        lines += [f"  - {escape(reason)}" for reason in m.comparison.reasons]
    if not result.matches:
        lines.append(
            f"not found: {escape(result.source)} (index of {result.index_size:,}; "
            f"{result.candidates} candidate{'s' if result.candidates != 1 else ''}, "
            f"{result.compared} compared)"
        )
        for m in result.similar:
            lines.append(f"  similar, not the same: {escape(m.path)}")
            lines += [f"    - {escape(reason)}" for reason in m.comparison.reasons]
    return "\n".join(lines)


def format_duplicates(groups: list[DuplicateGroup]) -> str:
    """One block per group: the best copy, then each other copy with its verdict and reasons."""
    if not groups:
        return "no duplicates"
    lines: list[str] = []
    for number, group in enumerate(groups, 1):
        best = group.best
        lines.append(f"group {number}: {len(group.copies)} copies")
        lines.append(f"  best: {escape(best.path)}  ({_copy_facts(best)})")
        for copy in group.others:
            verdict = copy.comparison.verdict.value if copy.comparison else "?"
            lines.append(f"  {verdict}: {escape(copy.path)}  ({_copy_facts(copy)})")
            if copy.comparison is not None:
                lines.append(f"    - {escape('; '.join(copy.comparison.reasons))}")
    totals = duplicate_totals(groups)
    total = totals["extra_copies"]
    lines.append(
        f"{len(groups)} group{'s' if len(groups) != 1 else ''}, {total} extra cop"
        f"{'ies' if total != 1 else 'y'} in {totals['files']} files; removing all but the "
        f"best copy of each group would free {human_bytes(totals['bytes_freed'])}"
    )
    return "\n".join(lines)


def duplicate_totals(groups: list[DuplicateGroup]) -> dict[str, int]:
    """``groups``; ``files`` in them; ``extra_copies`` (all but each best copy); ``bytes_freed``
    by removing those extra copies (their file sizes)."""
    return {
        "groups": len(groups),
        "files": sum(len(g.copies) for g in groups),
        "extra_copies": sum(len(g.copies) - 1 for g in groups),
        "bytes_freed": sum(c.size for g in groups for c in g.others),
    }


def _copy_facts(copy: DuplicateCopy) -> str:
    fmt = copy.format or "?"
    if copy.jpeg_quality is not None:
        fmt += f" q≈{copy.jpeg_quality}"
    elif copy.lossless:
        fmt += " lossless"
    return f"{copy.width}×{copy.height} {fmt} {human_bytes(copy.size)}"


# ---------------------------------------------------------------------------------------------
# sync


def format_sync_item(item: SyncItem) -> str:
    """``downloaded: URL (line N)`` and, indented, the reason (URL and reason escaped: they
    come from the list and from servers)."""
    where = f" (line {item.line})" if item.line else ""
    return f"{item.decision}: {escape(shorten(item.url))}{where}\n  {escape(item.reason)}"


def format_sync(summary: SyncSummary, *, verbose: bool = False) -> str:
    """Every failure (every URL with ``verbose``) with its reason, then the totals."""
    return "\n".join(sync_lines(summary, verbose=verbose))


def sync_lines(summary: SyncSummary, *, verbose: bool = False) -> Iterator[str]:
    """:func:`format_sync`'s text a few lines at a time, made as they are read (a summary of
    millions of URLs is never one string)."""
    s = summary
    for item in s.items if verbose else s.failures:
        yield format_sync_item(item)
    if verbose:
        for r in s.repeated:
            yield f"repeated: line {r.line} is line {r.first_line}: {escape(r.url)}"
    head = "dry run, nothing written: " if s.dry_run else ""
    yield (
        f"{head}synced {s.urls:,} URL{'s' if s.urls != 1 else ''} "
        f"into {escape(s.root)} "
        f"in {s.elapsed_s:.1f} s: downloaded {s.downloaded:,}, replaced {s.replaced:,}, "
        f"skipped {s.skipped_unchanged:,} unchanged, {s.skipped_bytes:,} same bytes, "
        f"{s.skipped_same_picture:,} same picture; failed {s.failed:,}; "
        f"{human_bytes(s.bytes_downloaded)} downloaded"
        + (f"; {len(s.repeated)} repeated line(s) skipped" if s.repeated else "")
    )

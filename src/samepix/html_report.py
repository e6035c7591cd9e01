"""The HTML report: one static file to look at what ``dupes``, ``find``, ``sync`` and ``compare``
found, offline from ``file://`` (no server, no CDN, no outside request).

What it holds. Every picture as a small embedded thumbnail (JPEG, longest side
:data:`THUMB_SIDE` px, a ``data:`` URI), so the file stays whole when moved or mailed and opens
without the folder; and a relative link from the report to the full-size file (a URL for remote
pictures), so a click shows the original while it is where it was. Full-size pictures are never
embedded: a folder's report would weigh as much as the folder.

Per group or pair: the pictures side by side with format, size, bytes and quality, the best copy
marked, the verdict and its reasons and metrics; and a viewer with four ways to see a difference —
a heatmap overlay (where the structural similarity is low; computed from the two thumbnails, or
from the full comparison's SSIM map for ``compare``), a difference blend, a swipe and an
onion skin. Totals at the top.

Large results stay usable: the items are JSON in the page, drawn one page (:data:`PAGE_SIZE`
items) at a time, and a thumbnail is decoded only when it scrolls into view. Keyboard: ``j``/``k``
next/previous item, ``n``/``p`` next/previous page, ``1``–``5`` the viewer's mode.

Safety: file names and URLs are untrusted. The page's own text is escaped with
:func:`html.escape`; the data is JSON with ``<``, ``>`` and ``&`` escaped, and the script puts it
on the page only through ``textContent`` and attributes; links are relative paths (``./``,
percent-encoded) or ``http(s)`` URLs, nothing else.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import os
import shlex
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from .units import human_bytes

if TYPE_CHECKING:
    import numpy as np

    from .compare import Comparison, PreparedImage
    from .decode import ImageInfo
    from .results import DuplicateCopy, DuplicateGroup, FindResult, Match
    from .sync import SyncItem, SyncSummary

__all__ = [
    "PAGE_SIZE",
    "THUMB_SIDE",
    "Item",
    "Picture",
    "compare_report",
    "dupes_report",
    "find_report",
    "render",
    "render_chunks",
    "sync_report",
    "write_report",
]

#: Longest side of an embedded thumbnail: sharp enough to judge a difference at a glance (about
#: 10 kB as a JPEG). Reports of many pictures use smaller ones (:func:`thumb_side`) so that the
#: file stays a size a browser opens at once.
THUMB_SIDE = 256


def thumb_side(pictures: int) -> int:
    """The thumbnail side for a report of ``pictures`` pictures: 256 px up to 2,000, 160 px up
    to 10,000, 96 px beyond (about 10, 5 and 2.5 kB each)."""
    return THUMB_SIDE if pictures <= 2000 else 160 if pictures <= 10_000 else 96


#: Items drawn at once.
PAGE_SIZE = 50
#: Longest side of a heatmap overlay (scaled up to the thumbnail by the browser).
HEATMAP_SIDE = 64


# ---------------------------------------------------------------------------------------------
# The model: what the page shows


@dataclass
class Picture:
    label: str  # the path or URL, as shown
    href: str | None  # relative link or http(s) URL to the full-size picture
    thumb: str | None  # data: URI, None when it cannot be shown
    facts: str  # "JPEG 320×240 q≈90 · 12.3 kB"
    best: bool = False
    note: str = ""  # why no thumbnail, or the role ("query", "local copy")


@dataclass
class PairView:
    """How picture ``other`` of an item compares with its picture 0."""

    other: int
    verdict: str
    reasons: list[str]
    metrics: list[tuple[str, str]]
    heatmap: str | None = None  # data: URI of a transparent PNG, red where SSIM is low
    not_same: str | None = None  # the command that records the pair as not the same


@dataclass
class Item:
    title: str
    verdict: str
    pictures: list[Picture]
    pairs: list[PairView] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tag: str = ""  # what the filter buttons select on (a sync decision, a verdict)


@dataclass
class Report:
    title: str
    kind: str
    totals: list[tuple[str, str]]
    # A list, or an iterable that makes the items as the page is written (a sync's: one per
    # URL, read from disk): iterated once per rendering.
    items: Iterable[Item]
    filters: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Thumbnails and heatmaps


def _fit(width: int, height: int, side: int = THUMB_SIDE) -> tuple[int, int]:
    scale = min(1.0, side / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _thumb_from_file(path: Path, side: int = THUMB_SIDE) -> np.ndarray:
    """RGB uint8 thumbnail of a file: JPEG DCT scaling (draft), EXIF orientation applied."""
    import numpy as np
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.draft("RGB", _fit(im.width, im.height, side * 2))
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            backdrop = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
            im = Image.alpha_composite(backdrop, rgba)
        im = im.convert("RGB")
        im.thumbnail((side, side), Image.Resampling.LANCZOS)
        return np.asarray(im)


def _thumb_from_pixels(pixels: np.ndarray) -> np.ndarray:
    import numpy as np
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(pixels)).convert("RGB")
    im.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    return np.asarray(im)


def _data_uri(array: np.ndarray, fmt: str) -> str:
    from PIL import Image

    buf = io.BytesIO()
    if fmt == "JPEG":
        Image.fromarray(array).save(buf, format="JPEG", quality=80, optimize=True)
        mime = "image/jpeg"
    else:
        Image.fromarray(array).save(buf, format="PNG", optimize=True)
        mime = "image/png"
    return f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _heatmap(loss: np.ndarray, size: tuple[int, int]) -> str:
    """A transparent PNG for a picture shown at ``size``: red, as opaque as the SSIM loss (0.5
    and more: full). Drawn at most :data:`HEATMAP_SIDE` px and in 8 opacity steps (the browser
    scales it up smoothly): a heatmap is blurry by nature, and the full-size, 256-step one was
    35 kB a pair, two thirds of a 2,000-file report."""
    import cv2
    import numpy as np

    small = _fit(size[0], size[1], HEATMAP_SIDE)
    weight = np.clip(loss.astype(np.float32) / 0.5, 0.0, 1.0)
    weight = cv2.resize(weight, small, interpolation=cv2.INTER_AREA)
    rgba = np.zeros((small[1], small[0], 4), np.uint8)
    rgba[..., 0] = 230
    rgba[..., 1] = 20
    rgba[..., 2] = 20
    rgba[..., 3] = (np.round(weight * 7) * 32).clip(0, 230).astype(np.uint8)
    return _data_uri(rgba, "PNG")


def _thumb_heatmap(a: np.ndarray, b: np.ndarray) -> str | None:
    """Heatmap of where thumbnail ``b`` differs from ``a`` (resized to ``a``'s size)."""
    import cv2
    import numpy as np

    from .decode import luma
    from .metrics import SSIM_BORDER, ssim

    h, w = a.shape[:2]
    if min(h, w) < 16:
        return None
    bb = cv2.resize(b, (w, h), interpolation=cv2.INTER_AREA) if b.shape[:2] != (h, w) else b
    result = ssim(luma(a), luma(bb), return_map=True)
    assert result.map is not None
    loss = np.zeros((h, w), np.float32)
    m = np.clip(1.0 - result.map, 0.0, 1.0)
    loss[SSIM_BORDER : SSIM_BORDER + m.shape[0], SSIM_BORDER : SSIM_BORDER + m.shape[1]] = m
    return _heatmap(loss, (w, h))


def _map_heatmap(comparison: Comparison, size: tuple[int, int]) -> str | None:
    """Heatmap from a full comparison's SSIM map (``compare(..., keep_map=True)``)."""
    import numpy as np

    from .metrics import SSIM_BORDER

    ssim_map = comparison.ssim_map
    compared = comparison.metrics.compared_size
    if ssim_map is None or compared is None:
        return None
    w, h = compared
    loss = np.zeros((h, w), np.float32)
    m = np.clip(1.0 - ssim_map, 0.0, 1.0)
    loss[SSIM_BORDER : SSIM_BORDER + m.shape[0], SSIM_BORDER : SSIM_BORDER + m.shape[1]] = m
    return _heatmap(loss, size)


class _Thumbs:
    """Thumbnails of files, made on a thread pool (decoding and resizing release the GIL)."""

    def __init__(
        self, paths: Iterable[Path], workers: int | None = None, side: int | None = None
    ) -> None:
        unique = list(dict.fromkeys(paths))
        self.side = thumb_side(len(unique)) if side is None else side
        n = workers or min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=n) as pool:
            made = list(pool.map(self._make, unique))
        self.arrays: dict[Path, np.ndarray | str] = dict(zip(unique, made, strict=True))
        self.uris: dict[Path, str] = {}

    def _make(self, path: Path) -> np.ndarray | str:
        try:
            return _thumb_from_file(path, self.side)
        except Exception as exc:  # shown as the picture's note, never fatal to the report
            return f"cannot be shown: {type(exc).__name__}"

    def array(self, path: Path) -> np.ndarray | None:
        found = self.arrays.get(path)
        return None if isinstance(found, str) or found is None else found

    def uri(self, path: Path) -> str | None:
        if path not in self.uris:
            arr = self.array(path)
            if arr is None:
                return None
            self.uris[path] = _data_uri(arr, "JPEG")
        return self.uris[path]

    def note(self, path: Path) -> str:
        found = self.arrays.get(path)
        return found if isinstance(found, str) else ""


# ---------------------------------------------------------------------------------------------
# Text helpers


def _href(target: str | os.PathLike[str], base: Path) -> str | None:
    """A link from the report's folder ``base`` to a file (a path, or a string naming one) or an
    http(s) URL; None for any other URL (never ``javascript:`` or ``data:``). A file's link is
    relative, starts with ``./`` and is percent-encoded, so no name can read as a scheme."""
    text = os.fspath(target)
    if not isinstance(target, os.PathLike) and not os.path.exists(text):
        try:
            scheme = urlsplit(text).scheme.lower()
        except ValueError:  # a malformed URL (a sync list's line "http://[x"): no link
            return None
        if scheme in ("http", "https"):
            return text
        if scheme and len(scheme) > 1:  # a URL of another kind, never a link
            return None
    rel = os.path.relpath(os.path.abspath(text), base.resolve())
    return "./" + quote(Path(rel).as_posix(), safe="/")


def _format_facts(fmt: str | None, width: int, height: int, size: int | None, quality: str) -> str:
    parts = [fmt or "?", f"{width}×{height}"]
    if quality:
        parts.append(quality)
    parts.append(human_bytes(size))
    return " · ".join(parts)


def _quality(lossless: bool | None, jpeg_quality: int | None) -> str:
    if jpeg_quality is not None:
        return f"JPEG quality ≈{jpeg_quality}"
    if lossless:
        return "lossless"
    if lossless is False:
        return "lossy"
    return ""


def _info_facts(info: ImageInfo) -> str:
    return _format_facts(
        info.format,
        info.width,
        info.height,
        info.bytes,
        _quality(info.lossless, info.jpeg_quality),
    )


def _metrics(comparison: Comparison) -> list[tuple[str, str]]:
    m = comparison.metrics
    out: list[tuple[str, str]] = [("rung", comparison.rung)]
    if comparison.relation:
        out.append(("relation", str(comparison.relation)))
    if m.ssim is not None:
        out.append(("SSIM", f"{m.ssim:.4f}"))
    if m.ms_ssim is not None:
        out.append(("MS-SSIM", f"{m.ms_ssim:.4f}"))
    if m.worst_region_ssim is not None:
        out.append(("worst region SSIM", f"{m.worst_region_ssim:.3f}"))
    if m.psnr is not None:
        out.append(("PSNR", "∞" if m.psnr == float("inf") else f"{m.psnr:.2f} dB"))
    if m.colour_shift is not None:
        out.append(("colour ΔE", f"{m.colour_shift:.2f}"))
    for name, dist in sorted(m.hash_distances.items()):
        out.append((f"{name} distance", str(dist)))
    return out


# ---------------------------------------------------------------------------------------------
# Builders, one per command


def dupes_report(
    groups: Sequence[DuplicateGroup],
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """The report of ``samepix dupes``: one item per group, best copy first."""
    base = Path(out).absolute().parent
    thumbs = _Thumbs(c.path for g in groups for c in g.copies)
    items: list[Item] = []
    extra_bytes = 0
    for number, group in enumerate(groups, 1):
        pictures = [
            _copy_picture(c, base, thumbs, best=(k == 0)) for k, c in enumerate(group.copies)
        ]
        pairs: list[PairView] = []
        best_arr = thumbs.array(group.best.path)
        for k, copy in enumerate(group.others, 1):
            extra_bytes += copy.size
            pairs.append(_pair_view(k, copy.comparison, best_arr, thumbs.array(copy.path)))
            pairs[-1].not_same = _not_same_command(root, group.best.path, copy.path)
        verdicts = {p.verdict for p in pairs}
        verdict = "identical" if verdicts == {"identical"} else "same"
        items.append(
            Item(
                f"group {number}: {len(group.copies)} copies",
                verdict,
                pictures,
                pairs,
                tag=verdict,
            )
        )
        if progress is not None:
            progress(number, len(groups))
    files = sum(len(g.copies) for g in groups)
    totals = [
        ("folder", os.fspath(root)),
        ("groups", f"{len(groups):,}"),
        ("files in groups", f"{files:,}"),
        ("extra copies", f"{files - len(groups):,}"),
        ("bytes to free", human_bytes(extra_bytes)),
    ]
    return Report(f"samepix dupes {os.fspath(root)}", "dupes", totals, items, ["identical", "same"])


def _not_same_command(root: str | os.PathLike[str], *pair: str | os.PathLike[str]) -> str:
    """The command that records ``pair`` as not the same, with absolute paths (it is copied and
    run from anywhere), quoted for a POSIX shell."""
    args = [os.path.abspath(root), "--not-same", *(os.path.abspath(p) for p in pair)]
    return "samepix dupes " + " ".join(shlex.quote(a) for a in args)


def _copy_picture(copy: DuplicateCopy, base: Path, thumbs: _Thumbs, *, best: bool) -> Picture:
    facts = _format_facts(
        copy.format, copy.width, copy.height, copy.size, _quality(copy.lossless, copy.jpeg_quality)
    )
    return Picture(
        os.fspath(copy.path),
        _href(copy.path, base),
        thumbs.uri(copy.path),
        facts,
        best=best,
        note=thumbs.note(copy.path),
    )


def _pair_view(
    other: int, comparison: Comparison | None, a: np.ndarray | None, b: np.ndarray | None
) -> PairView:
    if comparison is None:
        return PairView(other, "?", ["not compared (unreadable now)"], [])
    heat = None
    if comparison.verdict.value != "identical" and a is not None and b is not None:
        heat = _thumb_heatmap(a, b)
    return PairView(
        other, comparison.verdict.value, list(comparison.reasons), _metrics(comparison), heat
    )


def find_report(
    result: FindResult,
    query: PreparedImage,
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
) -> Report:
    """The report of ``samepix find``: the query beside each file found (same, then similar)."""
    base = Path(out).absolute().parent
    matches: list[Match] = [*result.matches, *result.similar]
    thumbs = _Thumbs(m.path for m in matches)
    try:
        q_arr: np.ndarray | None = _thumb_from_pixels(query.decoded.pixels)
    except Exception:
        q_arr = None
    q_pic = Picture(
        query.name,
        _href(query.name, base),
        None if q_arr is None else _data_uri(q_arr, "JPEG"),
        _info_facts(query.info),
        note="the picture looked for",
    )
    items: list[Item] = []
    for m in matches:
        pic = Picture(
            os.fspath(m.path),
            _href(m.path, base),
            thumbs.uri(m.path),
            _info_facts(m.comparison.b),
            note=thumbs.note(m.path),
        )
        view = _pair_view(1, m.comparison, q_arr, thumbs.array(m.path))
        if query.sha256 is not None and Path(query.name).exists():
            view.not_same = _not_same_command(root, query.name, m.path)
        verdict = m.comparison.verdict.value
        items.append(Item(f"{verdict}: {m.path}", verdict, [q_pic, pic], [view], tag=verdict))
    totals = [
        ("looked for", result.source),
        ("in", os.fspath(root)),
        ("found", "yes" if result.found else "no"),
        ("matches", f"{len(result.matches):,}"),
        ("similar, not the same", f"{len(result.similar):,}"),
        ("candidates", f"{result.candidates:,} of {result.index_size:,} indexed"),
        ("compared", f"{result.compared:,}"),
    ]
    if not items:
        items.append(Item("not found", "different", [q_pic], notes=["no file shows this picture"]))
    return Report(
        f"samepix find {result.source}", "find", totals, items, ["identical", "same", "similar"]
    )


def sync_report(summary: SyncSummary, out: str | os.PathLike[str]) -> Report:
    """The report of ``samepix sync``: per URL, what was decided and why, with the local copy
    that stands for it (the file saved, or the one that made it a skip).

    The items are made as the page is written, a batch of URLs at a time (their thumbnails on
    a thread pool): a sync of millions of URLs, whose items are read from disk
    (:class:`samepix.sync_items.Spooled`), is never held in memory whole.
    """
    s = summary
    totals = [
        ("folder", os.fspath(s.root)),
        ("URLs", f"{len(s.items):,}"),
        ("downloaded", f"{s.downloaded:,}"),
        ("replaced", f"{s.replaced:,}"),
        ("skipped: unchanged", f"{s.skipped_unchanged:,}"),
        ("skipped: same bytes", f"{s.skipped_bytes:,}"),
        ("skipped: same picture", f"{s.skipped_same_picture:,}"),
        ("failed", f"{s.failed:,}"),
        ("bytes downloaded", human_bytes(s.bytes_downloaded)),
    ]
    if s.dry_run:
        totals.insert(0, ("dry run", "nothing was written"))
    from .sync_items import Spooled

    if isinstance(s.items, Spooled):  # counted as they were spooled
        decisions = s.items.decisions()
    else:
        decisions = sorted({i.decision for i in s.items})
    items = _SyncItems(s, Path(out).absolute().parent)
    return Report(f"samepix sync into {s.root}", "sync", totals, items, decisions)


class _SyncItems:
    """A sync report's items, made anew each time they are iterated, :data:`_BATCH` URLs at
    a time; the thumbnails of the last :data:`_RECENT` files are kept (URLs that stand for
    one file share its thumbnail)."""

    _BATCH = 64
    _RECENT = 1024

    def __init__(self, summary: SyncSummary, base: Path) -> None:
        self.summary = summary
        self.base = base

    def __iter__(self) -> Iterator[Item]:
        from collections import OrderedDict

        from .sync_items import Spooled

        items = self.summary.items
        paths: Iterable[Path | str]
        if isinstance(items, Spooled):  # each path once, sorted on disk
            paths = items.distinct_paths()
        else:
            paths = dict.fromkeys(i.path for i in items if i.path is not None)
        side = thumb_side(sum(1 for p in paths if Path(p).is_file()))
        recent: OrderedDict[Path, str | None] = OrderedDict()
        for batch in _batched(items, self._BATCH):
            wanted = {
                i.path: None
                for i in batch
                if i.path is not None and i.path not in recent and i.path.is_file()
            }
            made = _Thumbs(wanted, side=side)
            for path in wanted:
                recent[path] = made.uri(path)
                if len(recent) > self._RECENT:
                    recent.popitem(last=False)
            for item in batch:
                yield self._item(item, recent.get(item.path) if item.path is not None else None)

    def _item(self, item: SyncItem, thumb: str | None) -> Item:
        pictures = [Picture(item.url, _href(item.url, self.base), None, "remote", note="the URL")]
        if item.path is not None:
            role = "saved as" if item.decision in ("downloaded", "replaced") else "local copy"
            pictures.append(
                Picture(
                    os.fspath(item.path),
                    _href(item.path, self.base),
                    thumb,
                    human_bytes(item.path.stat().st_size) if item.path.is_file() else "not on disk",
                    note=role if item.path.is_file() else f"{role} (not on disk: a dry run?)",
                )
            )
        notes = [item.reason]
        if item.transferred:
            notes.append(f"received {human_bytes(item.transferred)}")
        return Item(
            f"{item.decision}: {item.url}",
            item.verdict or item.decision,
            pictures,
            notes=notes,
            tag=item.decision,
        )


def _batched(items: Iterable[SyncItem], size: int) -> Iterator[list[SyncItem]]:
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch


def compare_report(
    result: Comparison, a: PreparedImage, b: PreparedImage, out: str | os.PathLike[str]
) -> Report:
    """The report of ``samepix compare``: both pictures, the verdict and the full SSIM map."""
    base = Path(out).absolute().parent
    arrays: list[np.ndarray | None] = []
    for image in (a, b):
        try:
            arrays.append(_thumb_from_pixels(image.decoded.pixels))
        except Exception:
            arrays.append(None)
    pictures = [
        Picture(
            image.name,
            _href(image.name, base),
            None if arr is None else _data_uri(arr, "JPEG"),
            _info_facts(info),
        )
        for image, arr, info in zip((a, b), arrays, (result.a, result.b), strict=True)
    ]
    view = _pair_view(1, result, arrays[0], arrays[1])
    if arrays[0] is not None and result.ssim_map is not None:
        h, w = arrays[0].shape[:2]
        view.heatmap = _map_heatmap(result, (w, h)) or view.heatmap
    verdict = result.verdict.value
    totals = [("verdict", verdict), ("a", a.name), ("b", b.name)]
    item = Item(f"{verdict}: {a.name} vs {b.name}", verdict, pictures, [view], tag=verdict)
    return Report(f"samepix compare {a.name} {b.name}", "compare", totals, [item])


# ---------------------------------------------------------------------------------------------
# The page


def _json_for_script(data: Any) -> str:
    """JSON that cannot end the <script> element nor open a comment inside it."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def render(report: Report) -> str:
    """The whole page as one string."""
    return "".join(render_chunks(report))


def render_chunks(report: Report) -> Iterator[str]:
    """The page a piece at a time (:func:`render`'s text): an item's JSON as the item is made,
    and the table of thumbnails, kept in a temporary file, at the end."""
    from .html_template import PAGE

    head, tail = PAGE.split("%DATA%")
    totals = "".join(
        f"<div><dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd></div>" for k, v in report.totals
    )
    yield head.replace("%TITLE%", html.escape(report.title)).replace("%TOTALS%", totals)
    # The data: {"kind", "pageSize", "filters", "items", "thumbs"}, as one json.dumps of the
    # whole dict would write it.
    yield (
        '{"kind":' + _json_for_script(report.kind)
        + ',"pageSize":' + _json_for_script(PAGE_SIZE)
        + ',"filters":' + _json_for_script(report.filters)
        + ',"items":['
    )  # fmt: skip
    with _ThumbTable() as table:
        for n, it in enumerate(report.items):
            data = {
                "title": it.title,
                "verdict": it.verdict,
                "tag": it.tag,
                "notes": it.notes,
                "pictures": [
                    {
                        "label": p.label,
                        "href": p.href,
                        "thumb": table.ref(p.thumb),
                        "facts": p.facts,
                        "best": p.best,
                        "note": p.note,
                    }
                    for p in it.pictures
                ],
                "pairs": [
                    {
                        "other": v.other,
                        "verdict": v.verdict,
                        "reasons": v.reasons,
                        "metrics": v.metrics,
                        "heatmap": table.ref(v.heatmap),
                        "notSame": v.not_same,
                    }
                    for v in it.pairs
                ],
            }
            yield ("," if n else "") + _json_for_script(data)
        yield '],"thumbs":['
        yield from table.chunks()
    yield "]}"
    yield tail


class _ThumbTable:
    """Each distinct picture (a ``data:`` URI) once, numbered in order of first use: byte copies
    share a thumbnail. Only a digest per picture is kept in memory; the URIs wait in a
    temporary file until the page's end."""

    def __init__(self) -> None:
        import tempfile

        self.numbers: dict[bytes, int] = {}
        self.file = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed in __exit__)

    def __enter__(self) -> _ThumbTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()

    def ref(self, uri: str | None) -> int | None:
        if uri is None:
            return None
        import hashlib

        key = hashlib.blake2b(uri.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        number = self.numbers.get(key)
        if number is None:
            number = self.numbers[key] = len(self.numbers)
            self.file.write(("," if number else "") + _json_for_script(uri))
        return number

    def chunks(self) -> Iterator[str]:
        self.file.seek(0)
        while chunk := self.file.read(1 << 20):
            yield chunk


def write_report(report: Report, path: str | os.PathLike[str]) -> None:
    """Write the page atomically (a temporary file renamed into place)."""
    from .atomic import atomic_writer

    with atomic_writer(path) as handle:
        for chunk in render_chunks(report):
            handle.write(chunk.encode("utf-8"))

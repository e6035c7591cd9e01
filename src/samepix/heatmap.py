"""A picture of where two images differ, and of what that means for the verdict.

The colours are relative to the verdict's own thresholds, not to an absolute SSIM scale: a
re-encode loses structure everywhere (a JPEG q30 copy's SSIM map is low all over its textured
areas), and the verdict allows that; what it does not allow is one region losing much more
than the rest (``Policy.max_local_change``, see :mod:`samepix.regions`). So each pixel is
coloured by the structure loss of the region around it (a window of ``Policy.region_fraction`` of
the shorter side, as the local-change test uses) beyond what the picture's overall loss
explains (``LOCAL_SPREAD`` × the mean loss):

- no tint: no more loss than a change of the whole picture (a re-encode, a resize) explains;
- yellow to orange: more loss than elsewhere, but less than the verdict's local-change limit;
- red: at or beyond that limit, where the verdict would see an edit.

The loss is the verdict's own: SSIM's contrast-structure term, texture-weighted
(:class:`samepix.regions.StructureMap`), averaged over each region. The legend below the
picture says what each colour means, with the numbers of this pair.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import SourceError, UsageError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from .compare import Comparison, PreparedImage
    from .policy import Policy

__all__ = ["HEATMAP_FORMATS", "heatmap_format", "write_heatmap"]

HEATMAP_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".gif": "GIF",
}
"""The file formats a heatmap can be written in, by file-name extension."""

_YELLOW = np.array([255.0, 220.0, 0.0], np.float32)
_ORANGE = np.array([255.0, 140.0, 0.0], np.float32)
_RED = np.array([235.0, 20.0, 20.0], np.float32)
_LEGEND_ROW = 16  # pixels per legend line (Pillow's default bitmap font is 11 px high)


def heatmap_format(path: str | os.PathLike[str]) -> str:
    """The Pillow format named by ``path``'s extension; :class:`UsageError` for an unknown one."""
    suffix = Path(path).suffix.lower()
    try:
        return HEATMAP_FORMATS[suffix]
    except KeyError:
        known = ", ".join(sorted({ext for ext in HEATMAP_FORMATS if ext != ".jpeg"}))
        what = f"extension {suffix!r}" if suffix else "no extension"
        raise UsageError(f"--diff {path}: {what} names no image format (use {known})") from None


def write_heatmap(
    result: Comparison,
    base: PreparedImage,
    path: str | os.PathLike[str],
    *,
    policy: Policy | None = None,
) -> None:
    """Write a picture of where the images differ over a grey ``base``, with a legend below.

    ``result`` must come from ``compare(..., keep_map=True)`` with ``policy`` (default: the
    default policy). The format follows the extension (``.png``, ``.jpg``, ``.webp``, …). The
    worst region is outlined in cyan. Images that were not compared pixel by pixel (identical,
    another aspect ratio) give the grey picture alone: nothing to show.

    Raises
    ------
    UsageError
        The extension names no image format.
    SourceError
        The file cannot be written (a folder, no permission, a full disk); nothing partial is
        left.
    """
    import cv2

    from .align import resize_area
    from .atomic import atomic_writer
    from .decode import luma
    from .policy import DEFAULT_POLICY

    fmt = heatmap_format(path)
    policy = policy or DEFAULT_POLICY
    size = result.metrics.compared_size or (base.info.width, base.info.height)
    grey = luma(resize_area(np.asarray(base.pixels), size)).astype(np.float32)
    canvas = np.repeat((grey * 0.6 + 40)[:, :, None], 3, axis=2)
    ssim_map = result.ssim_map
    scale: tuple[float, float] | None = None
    found = _excess_loss(result, grey.shape, policy)
    if found is not None:
        excess, scale = found
        limit = max(policy.max_local_change, 1e-6)
        # 0 → no tint; up to the limit: yellow → orange, faint to strong; at the limit: red.
        level = np.clip(excess / limit, 0.0, 1.0)[:, :, None]
        over = (excess >= limit)[:, :, None]
        tint = np.where(over, _RED, _YELLOW + (_ORANGE - _YELLOW) * level)
        alpha = np.where(over, 0.85, 0.7 * level).astype(np.float32)
        canvas = canvas * (1.0 - alpha) + tint * alpha
    out = np.clip(canvas, 0, 255).astype(np.uint8)
    region = result.metrics.worst_region
    if region is not None and ssim_map is not None:
        x, y, w, h = region
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), (0, 255, 255), 2)
    picture = _with_legend(out, result, policy, scale)
    if fmt in ("JPEG", "BMP") and picture.mode != "RGB":
        picture = picture.convert("RGB")
    try:
        with atomic_writer(path) as handle:
            picture.save(handle, format=fmt)
    except IsADirectoryError:
        raise SourceError(f"{path}: is a folder; give --diff a file name") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot write the heatmap ({exc.strerror or exc})") from exc


def _excess_loss(
    result: Comparison, shape: tuple[int, ...], policy: Policy
) -> tuple[np.ndarray, tuple[float, float]] | None:
    """Per compared pixel: the structure the surrounding region lost beyond ``LOCAL_SPREAD`` ×
    the picture's loss — the local-change test's formula (:func:`samepix.regions.local_change`)
    at every position instead of on its half-overlapping grid; and (that allowance, the
    picture's loss). Falls back to the plain SSIM map when the structure map is missing."""
    import cv2

    from .metrics import SSIM_BORDER
    from .regions import LOCAL_SPREAD, _window_side

    height, width = shape[:2]
    structure = result.structure_map
    if structure is not None and structure.cs.size:
        cs, weight = structure.cs, structure.weight
        side = _window_side(cs.shape[0], cs.shape[1], policy.region_fraction)
        num = cv2.blur(cs * weight, (side, side), borderType=cv2.BORDER_REFLECT)
        den = cv2.blur(weight, (side, side), borderType=cv2.BORDER_REFLECT)
        regional = 1.0 - num / np.maximum(den, 1e-12)
        loss = 1.0 - float((cs * weight).sum(dtype=np.float64) / weight.sum(dtype=np.float64))
        border = SSIM_BORDER
    elif result.ssim_map is not None and result.ssim_map.size:
        plain = np.clip(1.0 - result.ssim_map.astype(np.float32), 0.0, 1.0)
        side = max(3, round(min(plain.shape) * policy.region_fraction))
        regional = cv2.blur(plain, (side, side), borderType=cv2.BORDER_REFLECT)
        loss = float(plain.mean(dtype=np.float64))
        border = SSIM_BORDER
    else:
        return None
    allowance = LOCAL_SPREAD * loss
    excess = np.maximum(regional - allowance, 0.0).astype(np.float32)
    # Map pixels sit `border` in from the edge of the (possibly reduced) image they came from.
    padded = cv2.copyMakeBorder(excess, border, border, border, border, cv2.BORDER_REPLICATE)
    full = cv2.resize(padded, (width, height), interpolation=cv2.INTER_LINEAR)
    return full, (allowance, loss)


def _with_legend(
    out: np.ndarray,
    result: Comparison,
    policy: Policy,
    scale: tuple[float, float] | None,
) -> PILImage:
    """The picture with a legend below it: a colour scale and what each colour means."""
    from PIL import Image, ImageDraw, ImageFont

    from .regions import LOCAL_SPREAD

    height, width = out.shape[:2]
    font = ImageFont.load_default()
    m = result.metrics
    lines: list[tuple[np.ndarray | None, str]] = []
    head = f"verdict: {result.verdict.value}"
    if m.ssim is not None:
        head += f"; SSIM {m.ssim:.3f}"
    if m.local_change is not None:
        head += f"; local change {m.local_change:.2f} (limit {policy.max_local_change})"
    lines.append((None, head))
    if scale is None:
        lines.append((None, "not compared pixel by pixel: nothing to colour"))
    else:
        allowance, mean_loss = scale
        lines += [
            (
                None,
                f"tint: a region's structure loss beyond {allowance:.2f} "
                f"({LOCAL_SPREAD:g} x the mean loss {mean_loss:.3f})",
            ),
            (_YELLOW, "yellow..orange: more loss than elsewhere, within 'same'"),
            (_RED, f"red: beyond +{policy.max_local_change} (an edit to the verdict)"),
            (np.array([0.0, 255.0, 255.0], np.float32), "outline: worst region"),
        ]
    texts = [text for _, text in lines]
    text_width = max(int(font.getlength(text)) for text in texts) + 30
    total_width = max(width, text_width)
    legend_height = _LEGEND_ROW * len(lines) + 6
    sheet = Image.new("RGB", (total_width, height + legend_height), (255, 255, 255))
    sheet.paste(Image.fromarray(out), (0, 0))
    draw = ImageDraw.Draw(sheet)
    y = height + 4
    for colour, text in lines:
        x = 4
        if colour is not None:
            swatch = tuple(int(v) for v in colour)
            draw.rectangle((x, y + 2, x + 14, y + 12), fill=swatch, outline=(0, 0, 0))
            x += 20
        draw.text((x, y + 1), text, fill=(0, 0, 0), font=font)
        y += _LEGEND_ROW
    if scale is not None:  # the colour scale itself, under the "yellow..orange" swatch
        bar_y = height + 4 + 2 * _LEGEND_ROW + 2
        ramp = np.linspace(0.0, 1.0, 15, dtype=np.float32)[:, None]
        colours = (_YELLOW + (_ORANGE - _YELLOW) * ramp).astype(np.uint8)
        for i, colour in enumerate(colours):
            draw.line((4 + i, bar_y, 4 + i, bar_y + 10), fill=tuple(int(v) for v in colour))
    return sheet

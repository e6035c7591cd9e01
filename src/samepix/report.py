"""Showing a comparison to a person: text lines and a difference heatmap."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .compare import Comparison, PreparedImage
    from .decode import ImageInfo

__all__ = ["format_comparison", "format_info", "human_bytes", "write_heatmap"]


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


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
    tail = f" ({', '.join(extra)})" if extra else ""
    fmt = info.format or "array"
    return f"{fmt} {info.width}×{info.height} {info.mode} {human_bytes(info.bytes)}{tail}"


def format_comparison(result: Comparison) -> str:
    """The verdict, its reasons, the key metrics and both images, as a few lines of text."""
    m = result.metrics
    lines = [f"{result.verdict.value}: {result.a.source}  vs  {result.b.source}"]
    lines += [f"  - {reason}" for reason in result.reasons]
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
    if result.transferred:
        lines.append(f"  downloaded {human_bytes(result.transferred)}")
    return "\n".join(lines)


def write_heatmap(result: Comparison, base: PreparedImage, path: str | os.PathLike[str]) -> None:
    """Write a PNG of where the images differ: red where SSIM is low, over a grey ``base``.

    ``result`` must come from ``compare(..., keep_map=True)``. The worst region is outlined.
    Images that were not compared pixel by pixel (identical, other aspect ratio) give a plain
    grey picture with no red: nothing to show.
    """
    import cv2
    from PIL import Image

    from .align import resize_area
    from .atomic import atomic_writer
    from .compare import _luma

    size = result.metrics.compared_size or (base.info.width, base.info.height)
    grey = _luma(resize_area(np.asarray(base.pixels), size)).astype(np.float32)
    canvas = np.repeat((grey * 0.6 + 40)[:, :, None], 3, axis=2)
    ssim_map = result.ssim_map
    if ssim_map is not None:
        from .metrics import SSIM_BORDER

        loss = np.clip(1.0 - ssim_map, 0.0, 1.0)
        full = np.zeros(grey.shape, np.float32)
        full[
            SSIM_BORDER : SSIM_BORDER + loss.shape[0], SSIM_BORDER : SSIM_BORDER + loss.shape[1]
        ] = loss
        # Scale so the loss a JPEG leaves (~0.1) stays faint and a real change (~0.5+) is vivid.
        weight = np.clip(full / 0.5, 0.0, 1.0)[:, :, None]
        red = np.array([255.0, 30.0, 30.0], np.float32)
        canvas = canvas * (1.0 - weight) + red * weight
    out = np.clip(canvas, 0, 255).astype(np.uint8)
    region = result.metrics.worst_region
    if region is not None and ssim_map is not None:
        x, y, w, h = region
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), (255, 255, 0), 2)
    with atomic_writer(path) as handle:
        Image.fromarray(out).save(handle, format="PNG")

"""Accuracy: does samepix call the same picture ``same`` and anything else not, on real photos?

    python benchmarks/accuracy.py                  # measure (cached), report with the defaults
    python benchmarks/accuracy.py --quick          # 8 Kodak images: a smoke test in ~1 minute
    python benchmarks/accuracy.py --policy min_worst_region=0.5 --policy region_fraction=0.0625
    python benchmarks/accuracy.py --distributions  # per-transform metric distributions
    python benchmarks/accuracy.py --montage docs/worst-cases.png --markdown out.md

Labelled pairs are built from real photographs: the 24 Kodak images and 24 ~1 MP photos of
``../shared/data`` (skipped, saying so, when absent) and a few photographs shipped in
scikit-image's wheel. Each photograph is the "copy on disk" (a PNG) and each transform makes
the "image at the URL":

- positives (the same picture): JPEG q95…q10, WebP lossy and lossless, PNG, 4:2:0 vs 4:4:4
  chroma, resizes 0.25×–2× with six filters, EXIF-orientation-rotated copies, stripped
  metadata, palette and RGBA copies, small brightness/gamma/contrast changes, sharpening, a
  1-px crop or border, and combinations (resize then JPEG, JPEG of a JPEG, ...);
- negatives (another picture): other photographs resized to the same size (every pair within
  Kodak, within the photos, within scikit-image's, and a sample across), a stereo pair, crops
  of 10 % and more, mirror images and rotations in the pixels, local edits (a pasted patch, a
  blurred face-size region, an inpainted object, text, a watermark; also followed by JPEG),
  strong colour changes, greyscale copies.

"Target" positives are the ones the policy must keep at ≥ 99 % recall (JPEG down to q20,
resizes down to 0.25×, everything else in the positive list); JPEG q15/q10 are reported but
outside the target.

Every pair is measured once with ``samepix.compare`` in its exhaustive mode (every relation
measured, SSIM maps kept, the worst region taken at several window sizes) and the numbers are
cached in ``benchmarks/out/accuracy-cache.jsonl``; judging under another Policy is then pure
(``samepix.verdict.decide_all`` on the stored Evidence) and takes a second.

Baselines, on the same decoded pixels (EXIF orientation applied for them too, so they lose
nothing to decoding): pHash distance ≤ 10 (imagededup's default, computed with imagehash on the
fully decoded image), and the classic recipe — resize the larger image to the smaller's size
with Pillow's LANCZOS whatever the aspect ratios, then take the lowest band's SSIM (scikit-
image's reference setting) or NRMSE — with the threshold that gives that metric its best F1
on this very set (an optimistic choice in the baselines' favour).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import math
import multiprocessing
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from _common import ROOT, machine, shared_data, table, usable_cpus

CACHE = ROOT / "benchmarks" / "out" / "accuracy-cache.jsonl"
# --max-side N: measure each pair as ``dupes`` confirms it (compare(max_side=N)); its own cache.
MAX_SIDE: int | None = None
# Bump when the pairs or the measurements change: cached records of another version are ignored.
VERSION = "8"  # 8: hashes from a 128 px grey image (decode.HASH_MIN_SIDE)
FRACTIONS = (0.0625, 0.09375, 0.125, 0.1875, 0.25)  # worst-region window sides measured
PHASH_BASELINE = 10  # imagededup's default Hamming threshold for pHash

Pixels = np.ndarray
Make = Callable[[Pixels, np.random.Generator], tuple[bytes, bytes]]


# ---------------------------------------------------------------------------------------------
# Encoders and pixel operations


def encode(x: Pixels | Image.Image, fmt: str, **options: Any) -> bytes:
    im = x if isinstance(x, Image.Image) else Image.fromarray(x)
    out = io.BytesIO()
    im.save(out, format=fmt, **options)
    return out.getvalue()


def png(x: Pixels) -> bytes:
    # zlib level 1: the pixels are the same at any level, and level 6 took half the run.
    return encode(x, "PNG", compress_level=1)


def jpeg(x: Pixels, q: int, **options: Any) -> bytes:
    return encode(x, "JPEG", quality=q, **options)


def webp(x: Pixels, q: int | None = None) -> bytes:
    if q is None:
        return encode(x, "WEBP", lossless=True)
    return encode(x, "WEBP", quality=q)


def decode_rgb(data: bytes, *, upright: bool = False) -> Pixels:
    """Decoded pixels as stored (as a naive re-encoder sees them), or turned by EXIF."""
    from PIL import ImageOps

    with Image.open(io.BytesIO(data)) as im:
        shown = ImageOps.exif_transpose(im) if upright else im
        return np.asarray(shown.convert("RGB"))


FILTERS = {
    "lanczos": Image.Resampling.LANCZOS,
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "box": Image.Resampling.BOX,
    "nearest": Image.Resampling.NEAREST,
}


def resize(x: Pixels, scale: float, flt: str = "lanczos") -> Pixels:
    h, w = x.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if flt == "area":
        import cv2

        return np.asarray(cv2.resize(x, size, interpolation=cv2.INTER_AREA))
    return np.asarray(Image.fromarray(x).resize(size, FILTERS[flt]))


def resize_to(x: Pixels, size: tuple[int, int]) -> Pixels:
    return np.asarray(Image.fromarray(x).resize(size, Image.Resampling.LANCZOS))


def tone(x: Pixels, fn: Callable[[np.ndarray], np.ndarray]) -> Pixels:
    y = fn(x.astype(np.float64) / 255.0)
    return np.clip(np.round(y * 255.0), 0, 255).astype(np.uint8)


def enhance(x: Pixels, kind: str, factor: float) -> Pixels:
    im = Image.fromarray(x)
    cls = {"brightness": ImageEnhance.Brightness, "contrast": ImageEnhance.Contrast}
    cls["colour"] = ImageEnhance.Color
    return np.asarray(cls[kind](im).enhance(factor))


def grey(x: Pixels) -> Pixels:
    return np.asarray(Image.fromarray(x).convert("L"))


def hue_rotate(x: Pixels, degrees: int) -> Pixels:
    import cv2

    hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV_FULL)
    hsv[:, :, 0] = (hsv[:, :, 0].astype(np.int32) + round(degrees * 256 / 360)) % 256
    return np.asarray(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL))


def sepia(x: Pixels) -> Pixels:
    m = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    return np.clip(x.astype(np.float64) @ m.T, 0, 255).astype(np.uint8)


def with_exif(x: Pixels, orientation: int, q: int = 90) -> bytes:
    """A JPEG whose stored pixels, turned as EXIF ``orientation`` says, show ``x``."""
    undo = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,  # the viewer turns it 90° clockwise back
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(Image.fromarray(x).transpose(undo), "JPEG", quality=q, exif=exif.tobytes())


def strip_jpeg_metadata(data: bytes) -> bytes:
    """The same JPEG without APP1-APP15 and COM segments: same pixels, no metadata."""
    out, i = bytearray(data[:2]), 2
    while i < len(data):
        if data[i] != 0xFF:
            raise ValueError("not a marker")
        marker = data[i + 1]
        if marker == 0xDA:  # start of scan: the rest is image data
            out += data[i:]
            break
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if not (0xE1 <= marker <= 0xEF or marker == 0xFE):
            out += data[i : i + 2 + length]
        i += 2 + length
    return bytes(out)


def jpeg_with_metadata(x: Pixels) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Samepix Camera Co."  # Make
    exif[0x0110] = "Model 1"  # Model
    exif[0x0132] = "2024:05:01 12:00:00"  # DateTime
    exif[0x010E] = "a holiday photo"  # ImageDescription
    return jpeg(x, 90, exif=exif.tobytes(), comment=b"saved by the accuracy benchmark")


def png_with_text(x: Pixels) -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "a holiday photo")
    info.add_text("Software", "samepix accuracy benchmark")
    return encode(x, "PNG", pnginfo=info, compress_level=9)


# --- local edits -----------------------------------------------------------------------------


def _textured_spot(x: Pixels, side: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left of a ``side``-square with much detail (where a face or a plate would be)."""
    import cv2

    g = grey(x).astype(np.float32)
    mean = cv2.blur(g, (side, side))
    var = cv2.blur(g * g, (side, side)) - mean * mean
    h, w = g.shape
    half = side // 2
    inner = var[half : h - side + half, half : w - side + half]
    # Among the 10 % most detailed places, one at random (not always the same corner).
    flat = inner.ravel()
    top = np.argsort(flat)[-max(1, flat.size // 10) :]
    y, x0 = np.unravel_index(int(rng.choice(top)), inner.shape)
    return int(x0), int(y)


def paste_patch(x: Pixels, rng: np.random.Generator, frac: float) -> Pixels:
    """Copy a square from another part of the picture over a detailed spot."""
    h, w = x.shape[:2]
    side = max(8, round(min(h, w) * frac))
    tx, ty = _textured_spot(x, side, rng)
    target = x[ty : ty + side, tx : tx + side].astype(np.float64)
    best, source = -1.0, (0, 0)
    for _ in range(40):  # the source that differs most from what it covers: a visible edit
        sx, sy = int(rng.integers(0, w - side)), int(rng.integers(0, h - side))
        if abs(sx - tx) < side and abs(sy - ty) < side:
            continue
        d = float(np.mean((x[sy : sy + side, sx : sx + side] - target) ** 2))
        if d > best:
            best, source = d, (sx, sy)
    out = x.copy()
    sx, sy = source
    out[ty : ty + side, tx : tx + side] = x[sy : sy + side, sx : sx + side]
    return out


def blur_region(x: Pixels, rng: np.random.Generator, frac: float) -> Pixels:
    """Blur an elliptical face-size region (as one blurs a face or a licence plate)."""
    import cv2

    h, w = x.shape[:2]
    side = max(8, round(min(h, w) * frac))
    tx, ty = _textured_spot(x, side, rng)
    blurred = cv2.GaussianBlur(x, (0, 0), sigmaX=max(2.0, side / 10))
    mask = np.zeros((h, w), np.uint8)
    centre = (tx + side // 2, ty + side // 2)
    cv2.ellipse(mask, centre, (side * 2 // 5, side // 2), 0, 0, 360, 255, -1)
    out = x.copy()
    out[mask > 0] = blurred[mask > 0]
    return out


def inpaint_region(x: Pixels, rng: np.random.Generator, frac: float) -> Pixels:
    """Remove an object: inpaint a square over a detailed spot."""
    import cv2

    h, w = x.shape[:2]
    side = max(8, round(min(h, w) * frac))
    tx, ty = _textured_spot(x, side, rng)
    mask = np.zeros((h, w), np.uint8)
    mask[ty : ty + side, tx : tx + side] = 255
    return np.asarray(cv2.inpaint(x, mask, 5, cv2.INPAINT_TELEA))


def add_text(x: Pixels, rng: np.random.Generator, frac: float, text: str, opacity: float) -> Pixels:
    """Write ``text`` with its cap height ``frac`` of the shorter side; opacity < 1: watermark."""
    import cv2

    h, w = x.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    height = max(6.0, min(h, w) * frac)
    scale = height / cv2.getTextSize("H", font, 1.0, 1)[0][1]
    thick = max(1, round(scale * 2))
    (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
    while tw > 0.9 * w:  # keep it inside the picture
        scale *= 0.9
        thick = max(1, round(scale * 2))
        (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
    if opacity < 1.0:  # a watermark across the middle
        org = ((w - tw) // 2, (h + th) // 2)
    else:  # a caption near a corner
        org = (int(rng.integers(5, max(6, w - tw - 5))), int(h - th // 2 - rng.integers(5, 20)))
    layer = x.copy()
    cv2.putText(layer, text, org, font, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(layer, text, org, font, scale, (255, 255, 255), thick, cv2.LINE_AA)
    if opacity >= 1.0:
        return layer
    return np.clip(x * (1 - opacity) + layer * opacity, 0, 255).astype(np.uint8)


def crop(x: Pixels, keep_w: float, keep_h: float, where: str = "centre") -> Pixels:
    h, w = x.shape[:2]
    cw, ch = round(w * keep_w), round(h * keep_h)
    if where == "centre":
        x0, y0 = (w - cw) // 2, (h - ch) // 2
    else:  # top-left corner
        x0, y0 = 0, 0
    return np.ascontiguousarray(x[y0 : y0 + ch, x0 : x0 + cw])


def border(x: Pixels, value: int) -> Pixels:
    pad = ((1, 1), (1, 1)) + (((0, 0),) if x.ndim == 3 else ())
    return np.pad(x, pad, constant_values=value)


# ---------------------------------------------------------------------------------------------
# The labelled transforms


@dataclass(frozen=True)
class Transform:
    name: str
    family: str
    positive: bool
    make: Make
    target: bool = True  # positives that must stay at ≥ 99 % recall
    colour_only: bool = False  # meaningless on a grey photograph


_original: list[tuple[Pixels, bytes]] = []  # the last photograph and its PNG


def original_png(x: Pixels) -> bytes:
    """The photograph as a PNG, encoded once for all of its copies."""
    if not _original or _original[0][0] is not x:
        _original[:] = [(x, png(x))]
    return _original[0][1]


def _orig(make_b: Callable[[Pixels, np.random.Generator], bytes]) -> Make:
    """a = the photograph as a PNG; b = ``make_b``."""
    return lambda x, rng: (original_png(x), make_b(x, rng))


def _transforms() -> list[Transform]:
    t: list[Transform] = []

    def pos(name: str, family: str, make: Make, **kw: Any) -> None:
        t.append(Transform(name, family, True, make, **kw))

    def neg(name: str, family: str, make: Make, **kw: Any) -> None:
        t.append(Transform(name, family, False, make, **kw))

    # --- positives -------------------------------------------------------------------------
    for q in (95, 90, 80, 70, 50, 40, 30, 20, 15, 10):
        pos(f"jpeg-q{q}", "JPEG", _orig(lambda x, r, q=q: jpeg(x, q)), target=q >= 20)
    pos(
        "jpeg-q90 4:4:4 vs 4:2:0",
        "JPEG",
        lambda x, r: (jpeg(x, 90, subsampling=0), jpeg(x, 90, subsampling=2)),
    )
    pos("jpeg-q75 4:4:4", "JPEG", _orig(lambda x, r: jpeg(x, 75, subsampling=0)))
    pos(
        "jpeg-q85 of jpeg-q95",
        "JPEG",
        lambda x, r: (jpeg(x, 95), jpeg(decode_rgb(jpeg(x, 95)), 85)),
    )
    pos(
        "jpeg-q60 of jpeg-q85",
        "JPEG",
        lambda x, r: (jpeg(x, 85), jpeg(decode_rgb(jpeg(x, 85)), 60)),
    )
    for q in (90, 75, 50, 25):
        pos(f"webp-q{q}", "WebP", _orig(lambda x, r, q=q: webp(x, q)))
    pos("webp-lossless", "WebP", _orig(lambda x, r: webp(x)))
    pos("png-recompressed+text", "PNG / metadata", _orig(lambda x, r: png_with_text(x)))
    pos(
        "jpeg metadata stripped",
        "PNG / metadata",
        lambda x, r: (jpeg_with_metadata(x), strip_jpeg_metadata(jpeg_with_metadata(x))),
    )
    pos(
        "jpeg with vs without EXIF, re-encoded",
        "PNG / metadata",
        lambda x, r: (jpeg_with_metadata(x), jpeg(x, 88)),
    )
    scales = {
        0.25: ("lanczos", "bicubic", "bilinear", "box", "area", "nearest"),
        0.33: ("lanczos", "bilinear"),
        0.5: ("lanczos", "bicubic", "bilinear", "box", "area", "nearest"),
        0.75: ("lanczos", "bilinear", "nearest"),
        1.5: ("bicubic", "lanczos"),
        2.0: ("lanczos", "bicubic", "bilinear", "nearest"),
    }
    for scale, filters in scales.items():
        for flt in filters:
            pos(
                f"resize {scale:g}× {flt}",
                "resize",
                _orig(lambda x, r, s=scale, f=flt: png(resize(x, s, f))),
            )
    for o in (3, 6, 8, 2, 5):
        pos(f"exif orientation {o}", "EXIF orientation", _orig(lambda x, r, o=o: with_exif(x, o)))
    pos(
        "palette 256 dithered png",
        "palette / alpha",
        _orig(lambda x, r: encode(Image.fromarray(x).quantize(256), "PNG")),
    )
    pos(
        "palette 256 gif",
        "palette / alpha",
        _orig(
            lambda x, r: encode(
                Image.fromarray(x).convert("P", palette=Image.Palette.ADAPTIVE, colors=256), "GIF"
            )
        ),
    )
    pos(
        "rgba opaque png",
        "palette / alpha",
        _orig(lambda x, r: png(np.dstack([x, np.full(x.shape[:2], 255, np.uint8)]))),
        colour_only=True,
    )
    pos(
        "rgba opaque webp",
        "palette / alpha",
        _orig(lambda x, r: webp(np.dstack([x, np.full(x.shape[:2], 255, np.uint8)]), 90)),
        colour_only=True,
    )
    pos("brightness +5%", "tone", _orig(lambda x, r: png(enhance(x, "brightness", 1.05))))
    pos("brightness -5%", "tone", _orig(lambda x, r: png(enhance(x, "brightness", 0.95))))
    pos("brightness +10%", "tone", _orig(lambda x, r: png(enhance(x, "brightness", 1.10))))
    pos("brightness -10%", "tone", _orig(lambda x, r: png(enhance(x, "brightness", 0.90))))
    pos("gamma 0.9", "tone", _orig(lambda x, r: png(tone(x, lambda v: v**0.9))))
    pos("gamma 1.1", "tone", _orig(lambda x, r: png(tone(x, lambda v: v**1.1))))
    pos("contrast +10%", "tone", _orig(lambda x, r: png(enhance(x, "contrast", 1.10))))
    pos("contrast -10%", "tone", _orig(lambda x, r: png(enhance(x, "contrast", 0.90))))
    pos(
        "saturation +10%",
        "tone",
        _orig(lambda x, r: png(enhance(x, "colour", 1.10))),
        colour_only=True,
    )
    pos(
        "levels 8..247 stretched",
        "tone",
        _orig(lambda x, r: png(tone(x, lambda v: (v - 8 / 255) / (239 / 255)))),
    )
    pos(
        "unsharp mask",
        "sharpen",
        _orig(
            lambda x, r: png(
                np.asarray(Image.fromarray(x).filter(ImageFilter.UnsharpMask(2, 100, 3)))
            )
        ),
    )
    pos(
        "sharpen filter",
        "sharpen",
        _orig(lambda x, r: png(np.asarray(Image.fromarray(x).filter(ImageFilter.SHARPEN)))),
    )
    pos(
        "crop 1 px right",
        "1-px crop / border",
        _orig(lambda x, r: png(np.ascontiguousarray(x[:, :-1]))),
    )
    pos(
        "crop 1 px all sides",
        "1-px crop / border",
        _orig(lambda x, r: png(np.ascontiguousarray(x[1:-1, 1:-1]))),
    )
    pos("border 1 px black", "1-px crop / border", _orig(lambda x, r: png(border(x, 0))))
    pos(
        "border 1 px white + jpeg-q90",
        "1-px crop / border",
        _orig(lambda x, r: jpeg(border(x, 255), 90)),
    )
    pos("resize 0.5× + jpeg-q75", "combination", _orig(lambda x, r: jpeg(resize(x, 0.5), 75)))
    pos("resize 0.25× + jpeg-q50", "combination", _orig(lambda x, r: jpeg(resize(x, 0.25), 50)))
    pos(
        "resize 0.25× bilinear + jpeg-q20",
        "combination",
        _orig(lambda x, r: jpeg(resize(x, 0.25, "bilinear"), 20)),
    )
    pos("resize 0.5× + webp-q50", "combination", _orig(lambda x, r: webp(resize(x, 0.5), 50)))
    pos(
        "resize 2× + jpeg-q90",
        "combination",
        _orig(lambda x, r: jpeg(resize(x, 2.0, "bicubic"), 90)),
    )
    pos(
        "jpeg-q90 → resize 0.5× → jpeg-q80",
        "combination",
        lambda x, r: (jpeg(x, 90), jpeg(resize(decode_rgb(jpeg(x, 90)), 0.5), 80)),
    )
    pos(
        "brightness +5% + jpeg-q85",
        "combination",
        _orig(lambda x, r: jpeg(enhance(x, "brightness", 1.05), 85)),
    )
    pos(
        "exif 6 + resize 0.5× + jpeg-q80",
        "combination",
        _orig(lambda x, r: with_exif(resize(x, 0.5), 6, 80)),
    )
    pos(
        "palette 256 + jpeg-q80",
        "combination",
        _orig(lambda x, r: jpeg(np.asarray(Image.fromarray(x).quantize(256).convert("RGB")), 80)),
    )
    pos(
        "sharpen + resize 0.5× + jpeg-q70",
        "combination",
        _orig(
            lambda x, r: jpeg(
                resize(np.asarray(Image.fromarray(x).filter(ImageFilter.SHARPEN)), 0.5), 70
            )
        ),
    )

    # --- negatives -------------------------------------------------------------------------
    for keep, where in ((0.9, "centre"), (0.8, "corner"), (0.7, "centre"), (0.5, "corner")):
        neg(
            f"crop to {keep:.0%} {where}",
            "crop",
            _orig(lambda x, r, k=keep, wh=where: png(crop(x, k, k, wh))),
        )
    neg("crop 10% off one side", "crop", _orig(lambda x, r: png(crop(x, 0.9, 1.0, "corner"))))
    neg("crop to 80% + jpeg-q85", "crop", _orig(lambda x, r: jpeg(crop(x, 0.8, 0.8), 85)))
    neg(
        "crop to 90% enlarged to full size",
        "crop",
        _orig(lambda x, r: png(resize_to(crop(x, 0.9, 0.9), (x.shape[1], x.shape[0])))),
    )
    neg(
        "crop to 70% + resize 0.5×",
        "crop",
        _orig(lambda x, r: jpeg(resize(crop(x, 0.7, 0.7), 0.5), 85)),
    )
    neg(
        "mirror left-right",
        "mirror / rotation",
        _orig(lambda x, r: png(np.ascontiguousarray(x[:, ::-1]))),
    )
    neg(
        "mirror top-bottom",
        "mirror / rotation",
        _orig(lambda x, r: png(np.ascontiguousarray(x[::-1]))),
    )
    neg(
        "mirror left-right + jpeg-q80",
        "mirror / rotation",
        _orig(lambda x, r: jpeg(np.ascontiguousarray(x[:, ::-1]), 80)),
    )
    neg(
        "rotate 90° in pixels",
        "mirror / rotation",
        _orig(lambda x, r: png(np.ascontiguousarray(np.rot90(x)))),
    )
    neg(
        "rotate 180° in pixels",
        "mirror / rotation",
        _orig(lambda x, r: png(np.ascontiguousarray(x[::-1, ::-1]))),
    )
    neg(
        "rotate 270° + jpeg-q80",
        "mirror / rotation",
        _orig(lambda x, r: jpeg(np.ascontiguousarray(np.rot90(x, -1)), 80)),
    )
    edits: dict[str, Callable[[Pixels, np.random.Generator], Pixels]] = {
        "pasted patch 12%": lambda x, r: paste_patch(x, r, 0.12),
        "pasted patch 7%": lambda x, r: paste_patch(x, r, 0.07),
        "blurred face-size region 15%": lambda x, r: blur_region(x, r, 0.15),
        "blurred face-size region 10%": lambda x, r: blur_region(x, r, 0.10),
        "inpainted object 10%": lambda x, r: inpaint_region(x, r, 0.10),
        "caption text": lambda x, r: add_text(x, r, 0.045, "Summer 2024 - our trip", 1.0),
        "small text": lambda x, r: add_text(x, r, 0.025, "(c) J. Doe", 1.0),
        "watermark 35%": lambda x, r: add_text(x, r, 0.10, "SAMPLE", 0.35),
    }
    for name, edit in edits.items():
        neg(name, "local edit", _orig(lambda x, r, e=edit: png(e(x, r))))
    for name in (
        "pasted patch 12%",
        "blurred face-size region 15%",
        "inpainted object 10%",
        "caption text",
        "watermark 35%",
    ):
        neg(
            f"{name} + jpeg-q80", "local edit", _orig(lambda x, r, e=edits[name]: jpeg(e(x, r), 80))
        )
    neg(
        "blurred face-size region 15% + resize 0.5× + jpeg-q75",
        "local edit",
        _orig(lambda x, r: jpeg(resize(blur_region(x, r, 0.15), 0.5), 75)),
    )
    neg("hue +60°", "colour", _orig(lambda x, r: png(hue_rotate(x, 60))), colour_only=True)
    neg("hue +180°", "colour", _orig(lambda x, r: png(hue_rotate(x, 180))), colour_only=True)
    neg(
        "red and blue swapped",
        "colour",
        _orig(lambda x, r: png(np.ascontiguousarray(x[:, :, ::-1]))),
        colour_only=True,
    )
    neg("inverted", "colour", _orig(lambda x, r: png(255 - x)))
    neg("sepia", "colour", _orig(lambda x, r: png(sepia(x))), colour_only=True)
    neg(
        "warm tint (+40 red, -40 blue)",
        "colour",
        _orig(lambda x, r: png(np.clip(x + np.array([40, 0, -40]), 0, 255).astype(np.uint8))),
        colour_only=True,
    )
    neg("greyscale png", "greyscale", _orig(lambda x, r: png(grey(x))), colour_only=True)
    neg("greyscale jpeg-q90", "greyscale", _orig(lambda x, r: jpeg(grey(x), 90)), colour_only=True)
    neg(
        "greyscale stored as RGB jpeg-q90",
        "greyscale",
        _orig(lambda x, r: jpeg(np.dstack([grey(x)] * 3), 90)),
        colour_only=True,
    )
    return t


TRANSFORMS = _transforms()
DIFFERENT = "different photographs (resized to one size)"
STEREO = "stereo pair (same scene, other viewpoint)"


# ---------------------------------------------------------------------------------------------
# Photographs


def photographs(quick: bool) -> tuple[list[tuple[str, str]], str]:
    """(id, collection) of every photograph, and a note on what was used or skipped."""
    data = shared_data()
    out: list[tuple[str, str]] = []
    notes = []
    if data is None:
        notes.append("../shared/data absent: Kodak and photos/ skipped")
    else:
        kodak = sorted((data / "kodak").glob("*.png"))
        photos = sorted((data / "photos").glob("*.png"))
        if quick:
            kodak, photos = kodak[:8], []
        out += [(str(p), "kodak") for p in kodak]
        out += [(str(p), "photos") for p in photos]
        notes.append(f"{len(kodak)} Kodak, {len(photos)} photos from {data}")
    try:
        import skimage.data  # noqa: F401

        names = (
            []
            if quick
            else ["astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "camera"]
        )
        out += [(f"skimage:{n}", "skimage") for n in names]
        if names:
            notes.append(f"{len(names)} from scikit-image ({', '.join(names)})")
    except ImportError:
        notes.append("scikit-image absent: its photographs skipped")
    return out, "; ".join(notes)


def read_photo(ident: str) -> Pixels:
    if ident.startswith("skimage:"):
        import skimage.data

        x = np.asarray(getattr(skimage.data, ident.split(":", 1)[1])())
        return x if x.ndim == 2 else np.ascontiguousarray(x[:, :, :3])
    with Image.open(ident) as im:
        return np.asarray(im.convert("RGB"))


def short(ident: str) -> str:
    return ident.split(":", 1)[1] if ident.startswith("skimage:") else Path(ident).stem


def stereo_pair() -> tuple[Pixels, Pixels] | None:
    try:
        import skimage.data

        left, right, _ = skimage.data.stereo_motorcycle()
        return np.asarray(left), np.asarray(right)
    except Exception:
        return None


# ---------------------------------------------------------------------------------------------
# Measuring one pair (in a worker process)


def _seed(*parts: str) -> np.random.Generator:
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _pin_worker(counter: Any) -> None:
    """One core per worker process: samepix's threads then stay on it (no oversubscription)."""
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    try:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[index % len(cpus)]})
    except (AttributeError, OSError):
        pass
    import cv2

    cv2.setNumThreads(1)


def measure(a: Any, b: Any) -> dict[str, Any]:
    """Everything any policy or baseline needs about one pair."""
    import imagehash

    from samepix import load
    from samepix import metrics as m
    from samepix.compare import _compare
    from samepix.limits import DEFAULT_LIMITS
    from samepix.policy import DEFAULT_POLICY
    from samepix.regions import local_windows, worst_region
    from samepix.relations import orientation_scores

    start = time.perf_counter()
    pa, pb = load(a, lazy=True), load(b, lazy=True)
    result, found = _compare(
        pa,
        pb,
        policy=DEFAULT_POLICY,
        limits=DEFAULT_LIMITS,
        keep_map=True,
        exhaustive=True,
        max_side=MAX_SIDE,
    )
    seconds = time.perf_counter() - start
    record: dict[str, Any] = {"rung": result.rung, "seconds": seconds}
    if found is not None:
        record["evidence"] = _evidence_dict(found.evidence)

        def regions(ssim_map: np.ndarray | None) -> dict[str, float]:
            if ssim_map is None:
                return {}
            return {str(f): worst_region(ssim_map, f)[0] for f in FRACTIONS}

        def local(structure: Any) -> dict[str, list[float]]:
            if structure is None:
                return {}
            return {str(f): list(local_windows(structure, f)[:2]) for f in FRACTIONS}

        record["regions"] = regions(found.primary.ssim_map)
        record["relation_regions"] = [
            regions(found.measured[id(rel)].ssim_map) for rel in found.evidence.relations
        ]
        record["local"] = local(found.primary.structure)
        record["relation_local"] = [
            local(found.measured[id(rel)].structure) for rel in found.evidence.relations
        ]
    # Baselines, on samepix's normalised pixels (EXIF applied, alpha dropped).
    xa, xb = np.asarray(pa.pixels), np.asarray(pb.pixels)
    if xa.ndim != xb.ndim:
        xa, xb = (np.dstack([v] * 3) if v.ndim == 2 else v for v in (xa, xb))
    record["orientation_scores"] = orientation_scores(xa, xb) if result.rung == "metrics" else None
    record["phash"] = int(
        imagehash.phash(Image.fromarray(xa)) - imagehash.phash(Image.fromarray(xb))
    )
    # The classic recipe: LANCZOS the larger to the smaller's size, whatever the aspect ratios.
    if xa.shape[0] * xa.shape[1] >= xb.shape[0] * xb.shape[1]:
        xa = resize_to(xa, (xb.shape[1], xb.shape[0])) if xa.shape != xb.shape else xa
    else:
        xb = resize_to(xb, (xa.shape[1], xa.shape[0]))
    planes = 1 if xa.ndim == 2 else xa.shape[2]
    if min(xa.shape[:2]) >= m.SSIM_WINDOW:
        record["ssim_band"] = min(m.ssim_channels(xa, xb)) if planes > 1 else m.ssim(xa, xb).mean
    else:
        record["ssim_band"] = None
    record["nrmse_band"] = (
        min(m.nrmse(xa[..., i], xb[..., i]) for i in range(planes))
        if planes > 1
        else m.nrmse(xa, xb)
    )
    record["sizes"] = [pa.info.width, pa.info.height, pb.info.width, pb.info.height]
    return record


def _evidence_dict(ev: Any) -> dict[str, Any]:
    d = dataclasses.asdict(ev)
    d["hash_distances"] = dict(ev.hash_distances)
    return d


def work_photo(ident: str) -> list[dict[str, Any]]:
    """Every transform of one photograph."""
    from samepix import load

    x = read_photo(ident)
    colour = x.ndim == 3
    out = []
    prepared: dict[bytes, Any] = {}  # the original, decoded and hashed once for all its copies
    for t in transforms_for(ident):
        if t.colour_only and not colour:
            continue
        rng = _seed(ident, t.name)
        a, b = t.make(x, rng)
        digest = hashlib.sha256(a).digest()
        if digest not in prepared:
            prepared[digest] = load(a)
        rec = measure(prepared[digest], load(b))
        rec.update(source=short(ident), transform=t.name, family=t.family)
        rec.update(positive=t.positive, target=t.positive and t.target)
        out.append(rec)
    return out


def work_different(pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Other photographs, the second resized (LANCZOS) to the first's size whatever its shape."""
    out = []
    cache: dict[str, Pixels] = {}

    def get(ident: str) -> Pixels:
        if ident not in cache:
            v = read_photo(ident)
            cache[ident] = np.dstack([v] * 3) if v.ndim == 2 else v
        return cache[ident]

    for ia, ib in pairs:
        xa, xb = get(ia), get(ib)
        xb = resize_to(xb, (xa.shape[1], xa.shape[0]))
        rec = measure(xa, xb)
        rec.update(source=f"{short(ia)} vs {short(ib)}", transform=DIFFERENT, family="other photo")
        rec.update(positive=False, target=False)
        out.append(rec)
    return out


def work_stereo(_: object) -> list[dict[str, Any]]:
    pair = stereo_pair()
    if pair is None:
        return []
    rec = measure(pair[0], pair[1])
    rec.update(
        source="motorcycle", transform=STEREO, family="other photo", positive=False, target=False
    )
    return [rec]


def different_pairs(photos: list[tuple[str, str]], quick: bool) -> list[tuple[str, str]]:
    """Every pair within each collection, and a seeded sample across collections."""
    by: dict[str, list[str]] = defaultdict(list)
    for ident, coll in photos:
        by[coll].append(ident)
    pairs = [(a, b) for ids in by.values() for i, a in enumerate(ids) for b in ids[i + 1 :]]
    cross = [
        (a, b)
        for ca, cb in (("kodak", "photos"), ("kodak", "skimage"), ("photos", "skimage"))
        for a in by.get(ca, [])
        for b in by.get(cb, [])
    ]
    rng = np.random.default_rng(5)
    if cross:
        picks = rng.choice(len(cross), size=min(len(cross), 40 if quick else 200), replace=False)
        pairs += [cross[int(i)] for i in sorted(picks)]
    return pairs


# ---------------------------------------------------------------------------------------------
# The cache and the run


def load_cache() -> dict[str, dict[str, Any]]:
    records: dict[str, dict[str, Any]] = {}
    if CACHE.exists():
        with CACHE.open() as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by an interrupted run
                if rec.get("version") == VERSION:
                    records[rec["key"]] = rec
    return records


def key(rec: dict[str, Any]) -> str:
    return f"{rec['transform']}|{rec['source']}"


def run(quick: bool, jobs: int) -> tuple[list[dict[str, Any]], str]:
    photos, note = photographs(quick)
    records = load_cache()
    tasks: list[tuple[Callable[[Any], list[dict[str, Any]]], Any]] = []
    for ident, _ in photos:
        if any(k not in records for k in _keys_for(ident)):
            tasks.append((work_photo, ident))
    todo = [
        p
        for p in different_pairs(photos, quick)
        if f"{DIFFERENT}|{short(p[0])} vs {short(p[1])}" not in records
    ]
    chunk = 12
    tasks += [(work_different, todo[i : i + chunk]) for i in range(0, len(todo), chunk)]
    if not quick and not any(k.startswith(STEREO) for k in records):
        tasks.append((work_stereo, None))
    if tasks:
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        counter = multiprocessing.Value("i", 0)
        done = 0
        with (
            multiprocessing.get_context("fork").Pool(jobs, _pin_worker, (counter,)) as pool,
            CACHE.open("a") as out,
        ):
            for batch in pool.imap_unordered(_call, tasks):
                for rec in batch:
                    rec["version"] = VERSION
                    rec["key"] = key(rec)
                    records[rec["key"]] = rec
                    out.write(json.dumps(rec) + "\n")
                out.flush()
                done += 1
                elapsed = time.perf_counter() - start
                print(f"  {done}/{len(tasks)} tasks, {elapsed:.0f} s", file=sys.stderr, flush=True)
    wanted = _wanted_keys(photos, quick)
    return [records[k] for k in sorted(wanted) if k in records], note


def with_cap(
    records: list[dict[str, Any]], max_side: int, quick: bool, jobs: int, policy: Any
) -> tuple[list[dict[str, Any]], str]:
    """The records as ``compare(max_side=...)`` decides (``dupes``): each pair of one size
    larger than the cap is measured at the cap (its own cache) and that measurement stands when
    ``settled_at_cap``; every other pair keeps its full-size record. Also a line saying how many
    were settled at the cap and how many verdicts differ from full size's."""
    global MAX_SIDE, CACHE
    from samepix.compare import settled_at_cap

    full_cache = CACHE
    MAX_SIDE, CACHE = max_side, CACHE.with_name(f"accuracy-cache-side{max_side}.jsonl")
    try:
        at_cap = {key(r): r for r in run(quick, jobs)[0]}
    finally:
        MAX_SIDE, CACHE = None, full_cache
    out: list[dict[str, Any]] = []
    settled = differ = shrunk = 0
    for rec in records:
        small = at_cap.get(key(rec))
        wa, ha, wb, hb = rec.get("sizes") or (0, 0, 0, 0)
        if (
            small is not None
            and small["rung"] == "metrics"
            and (wa, ha) == (wb, hb)
            and (max(wa, ha) > max_side)
        ):
            shrunk += 1
            ev = rebuild(
                small["evidence"], small.get("regions", {}), small.get("local", {}),
                policy.region_fraction,
            )  # fmt: skip
            if settled_at_cap(dataclasses.replace(ev, relations=()), policy):
                settled += 1
                differ += verdict_of(small, policy) != verdict_of(rec, policy)
                rec = small
        out.append(rec)
    line = (
        f"Measured as `dupes` confirms (`--max-side {max_side}`): {shrunk} pairs of one size "
        f"over {max_side} px measured at the cap, {settled} settled there (the rest measured "
        f"at full size); {differ} of them with another verdict than at full size.\n"
    )
    return out, line


GREY_PHOTOS = {"skimage:camera"}
FULL = False  # --all: every transform on every photograph (about twice as long)


def transforms_for(ident: str) -> list[Transform]:
    """The transforms run on one photograph.

    The ~1 MP photos of ``photos/`` cost 2.5 times a Kodak image, so by default each runs
    every other transform (odd-numbered photos the odd ones): every transform still sees 12
    of them, and the whole run stays within ~10 minutes on 2 cores.
    """
    chosen = [t for t in TRANSFORMS if not (t.colour_only and ident in GREY_PHOTOS)]
    if FULL or Path(ident).parent.name != "photos":
        return chosen
    parity = int(Path(ident).stem) % 2 if Path(ident).stem.isdigit() else 0
    return [t for t in chosen if TRANSFORMS.index(t) % 2 == parity]


def _keys_for(ident: str) -> list[str]:
    return [f"{t.name}|{short(ident)}" for t in transforms_for(ident)]


def _wanted_keys(photos: list[tuple[str, str]], quick: bool) -> set[str]:
    keys = {k for ident, _ in photos for k in _keys_for(ident)}
    keys |= {f"{DIFFERENT}|{short(a)} vs {short(b)}" for a, b in different_pairs(photos, quick)}
    if not quick:
        keys.add(f"{STEREO}|motorcycle")
    return keys


def _call(task: tuple[Callable[[Any], list[dict[str, Any]]], Any]) -> list[dict[str, Any]]:
    fn, arg = task
    return fn(arg)


# ---------------------------------------------------------------------------------------------
# Judging: samepix under a policy, and the baselines


def rebuild(
    d: dict[str, Any],
    regions: dict[str, float],
    local: dict[str, list[float]],
    fraction: float,
    rel_regions: Sequence[dict[str, float]] = (),
    rel_local: Sequence[dict[str, list[float]]] = (),
) -> Any:
    """An Evidence from its cached dict, with both local tests at window ``fraction``."""
    from samepix.regions import LOCAL_SPREAD
    from samepix.verdict import Evidence, Relation

    rels = []
    for i, r in enumerate(d.get("relations", [])):
        sub = rel_regions[i] if i < len(rel_regions) else {}
        sub_local = rel_local[i] if i < len(rel_local) else {}
        rels.append(
            Relation(
                r["kind"],
                r["detail"],
                rebuild(r["evidence"], sub, sub_local, fraction),
                r["area"],
                r.get("cut", 0.0),
            )
        )
    fields = {k: v for k, v in d.items() if k != "relations"}
    key = str(fraction)
    if (regions and key not in regions) or (local and key not in local):
        raise SystemExit(f"region_fraction {fraction} was not measured; measured: {FRACTIONS}")
    if regions:
        fields["worst_region_ssim"] = regions[key]
    if local:
        overall, worst = local[key]
        fields["local_change"] = max(0.0, (1.0 - worst) - LOCAL_SPREAD * (1.0 - overall))
    return Evidence(**fields, relations=tuple(rels))


def verdict_of(rec: dict[str, Any], policy: Any) -> str:
    from samepix.verdict import decide_all

    if rec["rung"] != "metrics":
        return "identical"
    ev = rebuild(
        rec["evidence"],
        rec.get("regions", {}),
        rec.get("local", {}),
        policy.region_fraction,
        rec.get("relation_regions", []),
        rec.get("relation_local", []),
    )
    return str(decide_all(ev, policy).verdict)


def best_f1(values: list[tuple[float | None, bool]], higher_is_same: bool = True) -> float:
    """The threshold with the best F1 on (value, is-positive) pairs."""
    cands = sorted({v for v, _ in values if v is not None})
    best, best_t = -1.0, 0.0
    npos = sum(1 for _, p in values if p)
    for t in cands:
        tp = sum(
            1 for v, p in values if p and v is not None and (v >= t if higher_is_same else v <= t)
        )
        fp = sum(
            1
            for v, p in values
            if not p and v is not None and (v >= t if higher_is_same else v <= t)
        )
        f1 = 2 * tp / (npos + tp + fp) if npos + tp + fp else 0.0
        if f1 > best:
            best, best_t = f1, t
    return best_t


@dataclass
class Method:
    name: str
    says_same: Callable[[dict[str, Any]], bool]
    how: str


def methods(records: list[dict[str, Any]], policy: Any) -> list[Method]:
    verdicts = {r["key"]: verdict_of(r, policy) for r in records}
    t_ssim = best_f1([(r["ssim_band"], r["positive"]) for r in records])
    t_nrmse = best_f1([(r["nrmse_band"], r["positive"]) for r in records])
    return [
        Method(
            "samepix",
            lambda r: verdicts[r["key"]] in ("identical", "same"),
            "verdict identical or same",
        ),
        Method(
            f"pHash ≤ {PHASH_BASELINE}",
            lambda r: r["phash"] <= PHASH_BASELINE,
            "imagededup's default threshold",
        ),
        Method(
            f"SSIM ≥ {t_ssim:.3f}",
            lambda r: r["ssim_band"] is not None and r["ssim_band"] >= t_ssim,
            "lowest band, LANCZOS to one size; best-F1 threshold on this set",
        ),
        Method(
            f"NRMSE ≥ {t_nrmse:.3f}",
            lambda r: r["nrmse_band"] >= t_nrmse,
            "lowest band, LANCZOS to one size; best-F1 threshold on this set",
        ),
    ]


def pct(n: int, d: int) -> str:
    return f"{100.0 * n / d:.1f}%" if d else "—"


def report(records: list[dict[str, Any]], policy: Any, note: str) -> str:
    out: list[str] = []
    ms = methods(records, policy)
    pos = [r for r in records if r["positive"]]
    target = [r for r in pos if r["target"]]
    neg = [r for r in records if not r["positive"]]
    other = [r for r in neg if r["family"] == "other photo"]
    out.append(
        f"Pairs: {len(records)} ({len(pos)} same picture, {len(target)} of them in the target set; "
        f"{len(neg)} not, {len(other)} of them other photographs). {note}."
    )
    out.append(f"Machine: {machine()}.\n")
    rows = []
    for m in ms:
        tp = sum(m.says_same(r) for r in pos)
        fp = sum(m.says_same(r) for r in neg)
        rows.append(
            [
                m.name,
                f"{tp / (tp + fp):.4f}" if tp + fp else "—",
                f"{tp / len(pos):.4f}" if pos else "—",
                f"{sum(m.says_same(r) for r in target) / len(target):.4f}" if target else "—",
                f"{fp} / {len(neg)}",
                f"{sum(m.says_same(r) for r in other)} / {len(other)}",
                m.how,
            ]
        )
    out.append(
        table(
            [
                "method",
                "precision",
                "recall (all)",
                "recall (target)",
                "false same (all negatives)",
                "false same (other photos)",
                "how",
            ],
            rows,
        )
    )
    out.append("")
    # Per transform.
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by[r["transform"]].append(r)
    order = [t.name for t in TRANSFORMS] + [DIFFERENT, STEREO]
    header = ["transform", "family", "n", "label", "samepix verdicts"] + [m.name for m in ms]
    rows = []
    for name in order:
        rs = by.get(name)
        if not rs:
            continue
        label = rs[0]["positive"]
        counts = Counter(verdict_of(r, policy) for r in rs)
        verdicts = ", ".join(
            f"{v} {counts[v]}" for v in ("identical", "same", "similar", "different") if counts[v]
        )
        cells = []
        for m in ms:
            k = sum(m.says_same(r) for r in rs)
            cells.append(pct(k, len(rs)) if label else (f"**{k}**" if k else "0"))
        tag = "same" + ("" if rs[0]["target"] else " (below target)") if label else "not same"
        rows.append([name, rs[0]["family"], len(rs), tag, verdicts, *cells])
    out.append(
        "Per transform: for same-picture transforms the recall (share called same or identical);"
        " for the others the number of pairs wrongly called same.\n"
    )
    out.append(table(header, rows))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Distributions (docs/verdicts.md)


def _change(pair: list[float] | None, spread: float) -> float | None:
    return None if pair is None else max(0.0, (1 - pair[1]) - spread * (1 - pair[0]))


def _metric_fns(fraction: float | None) -> dict[str, Callable[[dict[str, Any]], float | None]]:
    from samepix.regions import LOCAL_SPREAD

    fns: dict[str, Callable[[dict[str, Any]], float | None]] = {
        "SSIM": lambda r: r["evidence"]["ssim"],
        "worst channel SSIM": lambda r: r["evidence"]["ssim_min_channel"],
        "PSNR dB": lambda r: r["evidence"]["psnr"],
        "colour ΔE (chroma)": lambda r: r["evidence"]["colour_shift"],
        "pHash distance": lambda r: r["evidence"]["hash_distances"].get("phash"),
    }
    for f in FRACTIONS if fraction is None else (fraction,):
        fns[f"worst region SSIM @{f:g}"] = lambda r, f=f: r.get("regions", {}).get(str(f))
        fns[f"local change @{f:g}"] = lambda r, f=f: _change(
            r.get("local", {}).get(str(f)), LOCAL_SPREAD
        )
    return fns


def distributions(records: list[dict[str, Any]], fraction: float | None, by_family: bool) -> str:
    """min / percentiles / max of each measure, per transform or per family and label.

    Pairs as they stand (aligned, at least 11 px); a pair a relation decided (a trim, a crop,
    a mirror) counts here with its values as it stands.
    """

    def q(vals: list[float], p: float) -> str:
        return f"{float(np.percentile(vals, p)):.3f}"

    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        ev = r.get("evidence")
        if r["rung"] == "metrics" and ev and ev["aligned"] and ev["ssim"] is not None:
            name = r["transform"]
            if by_family:
                label = "target copy" if r["target"] else ("copy" if r["positive"] else "not")
                name = f"{r['family']} ({label})"
            groups[name].append(r)
    if by_family:
        order = sorted(groups, key=lambda n: ("(not)" in n, n))
    else:
        order = [t.name for t in TRANSFORMS if t.name in groups] + [
            n for n in (DIFFERENT, STEREO) if n in groups
        ]
    out = []
    for metric, fn in _metric_fns(fraction).items():
        rows = []
        for name in order:
            vals = [v for v in (fn(r) for r in groups[name]) if v is not None and math.isfinite(v)]
            if vals:
                spread = [q(vals, p) for p in (1, 5, 50, 95, 99)]
                rows.append([name, len(vals), f"{min(vals):.3f}", *spread, f"{max(vals):.3f}"])
        out.append(f"### {metric}\n")
        out.append(table(["pairs", "n", "min", "p1", "p5", "median", "p95", "p99", "max"], rows))
        out.append("")
    return "\n".join(out)


def window_sizes(records: list[dict[str, Any]]) -> str:
    """For each window size and spread: the local-change threshold just above every target
    copy and at their 99.9th percentile, and the share of local edits each would catch."""
    rows = []
    target = [r for r in records if r["target"] and r.get("local")]
    edits = [r for r in records if r["family"] == "local edit" and r.get("local")]

    def best(r: dict[str, Any], f: float, k: float) -> float:
        # A target copy passes through its trim relation when it has one (1-px crops).
        pairs = [r["local"][str(f)]]
        for rel, loc in zip(r["evidence"]["relations"], r.get("relation_local", []), strict=False):
            if rel["kind"] == "crop" and rel.get("cut", 0.0) <= 0.01 and loc:
                pairs.append(loc[str(f)])
        return min(_change(p, k) or 0.0 for p in pairs)

    for f in FRACTIONS:
        for k in (2.0, 3.0, 4.0, 6.0):
            tv = np.array([best(r, f, k) for r in target])
            ev = np.array([_change(r["local"][str(f)], k) or 0.0 for r in edits])
            top, p999 = float(tv.max()), float(np.percentile(tv, 99.9))
            rows.append(
                [
                    f"{f:g}",
                    f"{k:g}",
                    f"{top:.3f}",
                    f"{float(np.mean(ev > top)):.1%}",
                    f"{p999:.3f}",
                    f"{float(np.mean(ev > p999)):.1%}",
                ]
            )
    header = [
        "window (× shorter side)",
        "spread k",
        "target copies' max",
        "edits above it",
        "target copies' 99.9th %ile",
        "edits above it",
    ]
    return table(header, rows)


# ---------------------------------------------------------------------------------------------
# Calibration: each test's threshold against the copies it must pass and the pairs it must stop


def _effective(r: dict[str, Any], policy: Any) -> Any | None:
    """The evidence that decided a pair: the pair as it stands, or the trim that made it same."""
    from samepix.verdict import decide_all

    if r["rung"] != "metrics":
        return None
    ev = rebuild(
        r["evidence"],
        r.get("regions", {}),
        r.get("local", {}),
        policy.region_fraction,
        r.get("relation_regions", []),
        r.get("relation_local", []),
    )
    decision = decide_all(ev, policy)
    if decision.relation is not None:
        return decision.relation.evidence
    return ev


def calibration(records: list[dict[str, Any]], policy: Any) -> str:
    """Per test: the target copies' worst value and the margin to the threshold, and how the
    negatives that test exists for fall on the other side."""
    evs = [(r, _effective(r, policy)) for r in records]
    evs = [(r, e) for r, e in evs if e is not None and e.aligned and e.ssim is not None]
    target = [(r, e) for r, e in evs if r["target"]]
    other = [(r, e) for r, e in evs if r["family"] == "other photo"]
    edits = [(r, e) for r, e in evs if r["family"] == "local edit"]
    colour = [(r, e) for r, e in evs if r["family"] == "colour"]

    def vals(group: list[tuple[dict[str, Any], Any]], attr: str) -> list[float]:
        out = [getattr(e, attr) for _, e in group]
        return [float(v) for v in out if v is not None and math.isfinite(v)]

    def worst(group: list[tuple[dict[str, Any], Any]], attr: str, low: bool) -> str:
        pick = [(getattr(e, attr), r) for r, e in group if getattr(e, attr) is not None]
        if not pick:
            return "—"
        v, r = min(pick, key=lambda p: p[0]) if low else max(pick, key=lambda p: p[0])
        return f"{v:.3f} ({r['transform']}, {r['source']})"

    rows = []
    tests = [
        ("SSIM", "ssim", policy.min_ssim, True, other, "other photographs"),
        ("PSNR dB", "psnr", policy.min_psnr, True, other, "other photographs"),
        (
            "worst channel SSIM",
            "ssim_min_channel",
            policy.min_ssim_channel,
            True,
            other,
            "other photographs",
        ),
        (
            "worst region SSIM",
            "worst_region_ssim",
            policy.min_worst_region,
            True,
            edits,
            "local edits",
        ),
        ("local change", "local_change", policy.max_local_change, False, edits, "local edits"),
        (
            "colour ΔE",
            "colour_shift",
            policy.max_colour_shift,
            False,
            colour,
            "strong colour changes",
        ),
    ]
    for name, attr, thr, higher, negs, neg_name in tests:
        tv = vals(target, attr)
        nv = vals(negs, attr)
        if not tv:
            continue
        t_edge = min(tv) if higher else max(tv)
        p01 = float(np.percentile(tv, 0.1 if higher else 99.9))
        caught = sum((v < thr) if higher else (v > thr) for v in nv)
        n_edge = max(nv) if higher and nv else (min(nv) if nv else float("nan"))
        rows.append(
            [
                name,
                f"{'≥' if higher else '≤'} {thr:g}",
                worst(target, attr, low=higher),
                f"{p01:.3f}",
                f"{(t_edge - thr) if higher else (thr - t_edge):+.3f}",
                neg_name,
                f"{n_edge:.3f}",
                f"{caught}/{len(nv)}",
            ]
        )
    header = [
        "test",
        "threshold",
        "target copies: worst (which)",
        "target 0.1 %ile",
        "margin",
        "negatives it is for",
        "their best",
        "caught by this test",
    ]
    return table(header, rows)


# ---------------------------------------------------------------------------------------------
# The classic answer's table, re-made on a real photograph


def classic_table() -> str:
    from samepix import metrics as m

    # Not `from samepix import compare`: once the submodule samepix.compare is imported
    # (measure() does), that name on the package is the module, not the function.
    from samepix.compare import compare

    data = shared_data()
    if data is not None and (data / "kodak" / "kodim23.png").exists():
        x, name = read_photo(str(data / "kodak" / "kodim23.png")), "kodim23 (Kodak)"
    else:
        x, name = read_photo("skimage:astronaut"), "astronaut (scikit-image)"
    rows = []
    copies = {
        "JPEG quality 50": jpeg(x, 50),
        "JPEG quality 1": jpeg(x, 1),
        "lightened (brightness +30%)": png(enhance(x, "brightness", 1.3)),
    }
    for label, data_b in copies.items():
        y = decode_rgb(data_b)
        ssim = min(m.ssim_channels(x, y))
        nrmse = min(m.nrmse(x[..., i], y[..., i]) for i in range(3))
        r = compare(png(x), data_b)
        rows.append(
            [
                label,
                f"{ssim:.3f}",
                f"{nrmse:.3f}",
                f"{r.metrics.ssim:.3f}",
                str(r.verdict),
                "; ".join(r.reasons[-3:]),
            ]
        )
    return f"Original: {name} as PNG.\n\n" + table(
        [
            "copy",
            "SSIM (lowest band)",
            "NRMSE (lowest band)",
            "samepix luma SSIM",
            "samepix verdict",
            "why",
        ],
        rows,
    )


# ---------------------------------------------------------------------------------------------
# Worst cases, as a picture


def montage(records: list[dict[str, Any]], policy: Any, path: Path) -> list[str]:
    """A PNG of the hardest pairs: a | b | where they differ. Returns the captions."""
    import cv2

    # Not `from samepix import compare`: once the submodule samepix.compare is imported (as
    # above), that name is the module, not the function.
    from samepix.compare import compare

    said = {r["key"]: verdict_of(r, policy) for r in records}
    match = {k: v in ("identical", "same") for k, v in said.items()}
    false_same = [r for r in records if match[r["key"]] and not r["positive"]]
    missed = [r for r in records if r["target"] and not match[r["key"]]]
    picks: list[tuple[str, dict[str, Any]]] = []
    for why, group in (("wrongly same", false_same), ("missed target copy", missed)):
        seen: set[str] = set()
        for r in group:  # one per transform, two at most
            if r["transform"] not in seen and len(seen) < 2:
                seen.add(r["transform"])
                picks.append((why, r))

    def effective(r: dict[str, Any], attr: str) -> float:
        e = _effective(r, policy)
        v = None if e is None else getattr(e, attr)
        return float("nan") if v is None else float(v)

    metric = [r for r in records if r["rung"] == "metrics" and r["evidence"]["ssim"] is not None]
    others = [r for r in metric if r["family"] == "other photo"]
    caught = [r for r in metric if r["family"] == "local edit" and not match[r["key"]]]
    kept = [r for r in metric if r["target"] and match[r["key"]]]
    if others:
        best = max(others, key=lambda r: r["evidence"]["ssim"])
        picks.append(("other photograph with the highest SSIM", best))
    if caught:
        closest = min(caught, key=lambda r: effective(r, "local_change"))
        picks.append(("caught edit with the lowest local change", closest))
    if kept:
        hardest = max(kept, key=lambda r: effective(r, "local_change"))
        picks.append(("kept copy with the highest local change", hardest))
    cell = 180
    rows_img, captions = [], []
    photos = {short(i): i for i, _ in photographs(False)[0]}
    for why, r in picks[:7]:
        pair = _rebuild_pair(r, photos)
        if pair is None:
            continue
        a, b = pair
        res = compare(a, b, policy=policy, keep_map=True)
        xa, xb = decode_rgb(a, upright=True), decode_rgb(b, upright=True)
        cells = [_fit(xa, cell), _fit(xb, cell)]
        if res.ssim_map is not None:  # where SSIM is lost: black none, bright ≥ 0.5
            heat = np.clip((1.0 - res.ssim_map) * 255 * 2, 0, 255).astype(np.uint8)
            cells.append(_fit(cv2.applyColorMap(heat, cv2.COLORMAP_INFERNO)[:, :, ::-1], cell))
        else:
            cells.append(np.full((cell, cell, 3), 40, np.uint8))
        row = np.hstack(cells)
        cv2.putText(
            row, str(len(rows_img) + 1), (4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3
        )
        cv2.putText(
            row, str(len(rows_img) + 1), (4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255,) * 3, 1
        )
        rows_img.append(row)
        ssim = res.metrics.ssim if res.metrics.ssim is not None else float("nan")
        change = res.metrics.local_change
        change = float("nan") if change is None else change
        captions.append(
            f"row {len(rows_img)}: {why}: {r['transform']} on {r['source']} → {res.verdict} "
            f"(SSIM {ssim:.3f}, local change {change:.2f}): {'; '.join(res.reasons[-2:])}"
        )
    if not rows_img:
        return []
    sheet = np.vstack(
        [np.vstack([row, np.full((4, row.shape[1], 3), 255, np.uint8)]) for row in rows_img]
    )
    im = Image.fromarray(sheet).quantize(256, dither=Image.Dither.FLOYDSTEINBERG)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, optimize=True)
    return captions


def _fit(x: Pixels, side: int) -> Pixels:
    if x.ndim == 2:
        x = np.dstack([x] * 3)
    h, w = x.shape[:2]
    s = side / max(h, w)
    y = np.asarray(
        Image.fromarray(x).resize(
            (max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.LANCZOS
        )
    )
    out = np.full((side, side, 3), 255, np.uint8)
    oy, ox = (side - y.shape[0]) // 2, (side - y.shape[1]) // 2
    out[oy : oy + y.shape[0], ox : ox + y.shape[1]] = y
    return out


def _rebuild_pair(r: dict[str, Any], photos: dict[str, str]) -> tuple[bytes, bytes] | None:
    if r["transform"] == DIFFERENT:
        sa, sb = r["source"].split(" vs ")
        xa, xb = read_photo(photos[sa]), read_photo(photos[sb])
        xa, xb = (np.dstack([v] * 3) if v.ndim == 2 else v for v in (xa, xb))
        return png(xa), png(resize_to(xb, (xa.shape[1], xa.shape[0])))
    if r["transform"] == STEREO:
        pair = stereo_pair()
        return None if pair is None else (png(pair[0]), png(pair[1]))
    t = next((t for t in TRANSFORMS if t.name == r["transform"]), None)
    if t is None or r["source"] not in photos:
        return None
    ident = photos[r["source"]]
    return t.make(read_photo(ident), _seed(ident, t.name))


# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 Kodak images, fewer pairs")
    parser.add_argument("--all", action="store_true", help="every transform on every photo")
    parser.add_argument("--jobs", type=int, default=usable_cpus(), help="worker processes")
    parser.add_argument("--policy", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument(
        "--distributions", action="store_true", help="metric distributions per family"
    )
    parser.add_argument(
        "--distributions-full",
        action="store_true",
        help="per transform, at every measured window size",
    )
    parser.add_argument("--calibrate", action="store_true", help="print each test's margins")
    parser.add_argument("--montage", type=Path, help="write a PNG of the hardest pairs")
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    parser.add_argument("--no-classic", action="store_true", help="skip the classic-answer table")
    parser.add_argument(
        "--max-side",
        type=int,
        metavar="N",
        help="measure as dupes confirms: each pair at most N px on the longer side (own cache)",
    )
    args = parser.parse_args(argv)

    from samepix.policy import DEFAULT_POLICY

    global FULL
    FULL = args.all
    changes: dict[str, Any] = {}
    for item in args.policy:
        name, _, text = item.partition("=")
        default = getattr(DEFAULT_POLICY, name)
        changes[name] = (
            (text.lower() in ("1", "true", "yes"))
            if isinstance(default, bool)
            else type(default)(text)
        )
    policy = DEFAULT_POLICY.with_(**changes)

    start = time.perf_counter()
    records, note = run(args.quick, args.jobs)
    capped = ""
    if args.max_side is not None:
        records, capped = with_cap(records, args.max_side, args.quick, args.jobs, policy)
    parts = [
        f"# Accuracy ({time.strftime('%Y-%m-%d')})\n",
        f"Policy: {policy.as_dict()}\n",
        capped,
        report(records, policy, note),
    ]
    if args.calibrate:
        parts += ["\n## Calibration: each test against its target copies and its negatives\n"]
        parts += [calibration(records, policy)]
    if args.distributions:
        parts += [
            f"\n## Distributions per family (windows {policy.region_fraction:g})\n",
            distributions(records, policy.region_fraction, by_family=True),
            "\n## Window size and spread of the local-change test\n",
            window_sizes(records),
        ]
    if args.distributions_full:
        parts += ["\n## Distributions per transform\n", distributions(records, None, False)]
    if not args.no_classic:
        parts += ["\n## The classic answer's table on a real photograph\n", classic_table()]
    if args.montage:
        captions = montage(records, policy, args.montage)
        parts += [f"\n## Hardest pairs ({args.montage})\n", "\n".join(f"- {c}" for c in captions)]
    text = "\n".join(parts)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    print(f"\n({time.perf_counter() - start:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()

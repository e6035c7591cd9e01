"""Bytes (or a PIL image, or an array) → normalised pixels, the one pipeline every image takes.

Normalisation, so that two copies of one picture become comparable arrays:

* the EXIF orientation is applied (width and height are as a viewer shows them);
* every Pillow mode becomes 8-bit grey (H×W) or 8-bit RGB (H×W×3): palettes are expanded,
  1-bit is scaled to 0/255, 16/32-bit integer images are scaled from 0–65535, float images are
  taken on Pillow's 0–255 scale and clipped, CMYK/YCbCr/LAB become RGB;
* an embedded ICC profile other than sRGB is converted to sRGB (littlecms, via ImageCms);
* alpha is kept apart, as an H×W array, and only when some pixel is not fully opaque, so a fully
  opaque RGBA image equals its RGB copy;
* animated images: the first frame, with the frame count recorded.

JPEG without a foreign ICC profile is decoded by libjpeg-turbo straight into numpy (simplejpeg),
about 2.5× faster than Pillow followed by ``np.asarray`` (which copies). A still WebP without a
foreign ICC profile is decoded by libwebp straight into numpy (through OpenCV): Pillow reads every
WebP through libwebp's animation decoder, which holds two RGBA canvases of its own, so a large
still peaks at about 7 bytes a pixel this way (a lossless one; lossy less) against about 22
through Pillow (same pixels, tested).
Everything else is decoded by Pillow.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from .boundary import foreign_calls, quiet_stderr
from .errors import DecodeError
from .formats import SNIFF_BYTES, HeifExtraMissing, describe_non_image, open_image, sniff_format
from .formats import exif_orientation as _orientation
from .limits import BASE_MEMORY, DEFAULT_LIMITS, Limits, MemoryFacts, decode_memory
from .sources import Blob

if TYPE_CHECKING:
    from PIL import Image as PILImage

log = logging.getLogger("samepix")

__all__ = [
    "HASH_MIN_SIDE",
    "Decoded",
    "ImageInfo",
    "decode_array",
    "decode_blob",
    "decode_pil",
    "draft_grey",
    "grey_pil",
    "luma",
    "memory_facts",
    "read_info",
]


@dataclass(frozen=True)
class ImageInfo:
    """What an image is, independent of its pixels (reported for both sides of a comparison)."""

    source: str
    format: str | None  # Pillow's format name; None for arrays and PIL images made in memory
    width: int  # after EXIF orientation
    height: int
    mode: str  # the mode it was stored in ("P", "RGBA", "I;16", ...)
    bytes: int | None  # encoded size
    frames: int = 1
    orientation: int = 1  # EXIF orientation that was applied (1 = none)
    icc_profile: str | None = None  # description of a non-sRGB profile converted to sRGB
    has_alpha: bool = False  # some pixel is not fully opaque
    metadata: frozenset[str] = field(default_factory=frozenset)  # exif, icc, xmp, comment, ...
    lossless: bool | None = None  # None when unknown (WebP may be either)
    jpeg_quality: int | None = None  # estimated from the quantisation tables

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True, eq=False)
class Decoded:
    """Normalised pixels: ``pixels`` is H×W (grey) or H×W×3 (RGB) uint8 sRGB, read-only."""

    info: ImageInfo
    pixels: np.ndarray
    alpha: np.ndarray | None = None  # H×W uint8, only when some pixel is not opaque
    sha256: str | None = None  # of the encoded bytes, when there were any

    @property
    def is_grey(self) -> bool:
        return self.pixels.ndim == 2


# ---------------------------------------------------------------------------------------------
# Entry points


def decode_blob(blob: Blob, *, limits: Limits = DEFAULT_LIMITS) -> Decoded:
    """Decode and normalise encoded image bytes.

    Raises
    ------
    DecodeError
        Empty, not an image (HTML, text, ...), truncated or corrupt data.
    LimitExceeded
        More than ``limits.max_pixels`` pixels, judged from the header before decoding.
    """
    data = blob.data
    head = data[:SNIFF_BYTES]
    fmt = sniff_format(head)
    if fmt is None:
        raise DecodeError(f"{blob.name}: {describe_non_image(head)}")
    return _decode(data, blob.name, hashlib.sha256(data).hexdigest(), limits)


def _decode(data: bytes, name: str, digest: str | None, limits: Limits) -> Decoded:
    """Open, check the budget, decode: straight into numpy where a format allows it, else Pillow.

    The image is opened here and nowhere up the stack, so that the WebP path can drop Pillow's
    reader before decoding: it holds libwebp's animation decoder, whose canvases take up to 8
    bytes a pixel from the moment the file is opened.
    """
    im = _open(data, name, limits)
    _check_decode_memory(im, name, limits, data)
    if im.format == "JPEG" and _jpeg_fast_path_ok(im):
        fast = _decode_jpeg_fast(im, data, name, digest)
        if fast is not None:
            return fast
    elif im.format == "PNG" and _png_fast_path_ok(im):
        fast = _decode_png_fast(im, data, name, digest)
        if fast is not None:
            return fast
    elif _webp_fast_path_ok(im):
        with foreign_calls(name, "WEBP"):
            header = _WebpHeader(im.size, im.mode, _orientation(im), _metadata(im))
        del im
        fast = _decode_webp_fast(header, data, name, digest)
        if fast is not None:
            return fast
        # libwebp refused it. Pillow words the error, but reads through libwebp's animation
        # decoder, which allocates its canvases first: only within the budget.
        w, h = header.size
        alpha = header.mode == "RGBA"
        needed = decode_memory(w, h, header.mode, "WEBP", has_alpha=alpha, encoded=len(data))
        if needed > limits.max_memory:
            raise DecodeError(f"{name}: WebP data that libwebp cannot decode (corrupt?)")
        im = _open(data, name, limits)
    return decode_pil(im, name=name, data=data, sha256=digest)


def read_info(blob: Blob, *, limits: Limits = DEFAULT_LIMITS) -> ImageInfo:
    """What the header says (format, oriented size, mode, frames, metadata), decoding no pixels.

    ``has_alpha`` here means the mode has an alpha channel (whether any pixel is transparent
    needs the pixels).
    """
    head = blob.data[:SNIFF_BYTES]
    if sniff_format(head) is None:
        raise DecodeError(f"{blob.name}: {describe_non_image(head)}")
    im = _open(blob.data, blob.name, limits)
    with foreign_calls(blob.name, im.format):
        # A PNG's eXIf chunk after its pixel data is read by decoding (only when the file holds
        # one at all: formats.exif_orientation); a failure there is the decode's to report.
        orientation = _orientation(im)
        frames = _count_frames(im)
        icc = im.info.get("icc_profile")
        metadata = _metadata(im)
        has_alpha = im.mode in _ALPHA_MODES or _trns_key(im, blob.data) is not None
        if im.mode == "P" and "transparency" in im.info:
            has_alpha = True
        lossless = _is_lossless(im, blob.data)
    w, h = im.size
    if orientation in (5, 6, 7, 8) and not _pillow_orients(im):
        w, h = h, w
    return ImageInfo(
        source=blob.name,
        format=im.format,
        width=w,
        height=h,
        mode=im.mode,
        bytes=len(blob.data),
        frames=frames,
        orientation=orientation,
        icc_profile=_icc_description(icc) if icc else None,
        has_alpha=has_alpha,
        metadata=metadata,
        lossless=lossless,
        jpeg_quality=_jpeg_quality(im),
    )


def memory_facts(blob: Blob, *, limits: Limits = DEFAULT_LIMITS) -> MemoryFacts:
    """What :func:`samepix.limits.compare_memory` needs to know of ``blob``, from its header."""
    im = _open(blob.data, blob.name, limits)
    w, h = im.size
    alpha = _trns_key(im, blob.data) is not None or "transparency" in im.info
    return MemoryFacts(w, h, im.mode, im.format, alpha, _decodes_direct(im), len(blob.data))


def decode_pil(
    im: PILImage.Image,
    *,
    name: str = "<PIL image>",
    data: bytes | None = None,
    sha256: str | None = None,
) -> Decoded:
    """Normalise a PIL image (first frame, EXIF orientation, mode, ICC profile, alpha).

    The image is decoded strictly (a truncated or corrupt stream is a :class:`DecodeError`,
    never a partial image) and converted strip by strip, so the peak is Pillow's own copy plus
    samepix's arrays (:func:`samepix.limits.decode_memory`).
    """
    with foreign_calls(name, im.format):
        frames = _count_frames(im)
        if frames > 1:
            im.seek(0)
        header_orientation = _header_orientation(im)
        _load_strictly(im, name)
        # What is still to apply: Pillow 13 applies a TIFF's orientation itself while loading
        # (and removes the tag); for every other format the tag is still there.
        orientation = _orientation(im)
        shown_orientation = header_orientation if header_orientation != 1 else orientation
        metadata = _metadata(im)
        stored_mode = im.mode
        icc = im.info.get("icc_profile")
        pixels, alpha_arr, icc_name = _normalise(im, name, icc, data)
        lossless = _is_lossless(im, data)
        quality = _jpeg_quality(im)
    if alpha_arr is not None and alpha_arr.min() == 255:
        alpha_arr = None  # fully opaque: the same picture as without alpha
    pixels, alpha_arr = _orient(pixels, orientation), _orient_opt(alpha_arr, orientation)
    info = ImageInfo(
        source=name,
        format=im.format,
        width=pixels.shape[1],
        height=pixels.shape[0],
        mode=stored_mode,
        bytes=None if data is None else len(data),
        frames=frames,
        orientation=shown_orientation,
        icc_profile=icc_name,
        has_alpha=alpha_arr is not None,
        metadata=metadata,
        lossless=lossless,
        jpeg_quality=quality,
    )
    return Decoded(
        info=info, pixels=_readonly(pixels), alpha=_readonly_opt(alpha_arr), sha256=sha256
    )


def decode_array(array: np.ndarray, *, name: str = "<array>") -> Decoded:
    """Normalise a numpy image: H×W, H×W×1, H×W×3 (RGB) or H×W×4 (RGBA).

    uint8 is taken as is; uint16 is scaled from 0–65535; floats are taken on a 0–1 scale when
    every value is within [0, 1], else on 0–255, and clipped.
    """
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise DecodeError(f"{name}: expected an H×W, H×W×3 or H×W×4 array, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DecodeError(f"{name}: empty array of shape {arr.shape}")
    arr = _array_to_uint8(arr, name)
    alpha = None
    if arr.ndim == 3 and arr.shape[2] == 4:
        alpha = np.ascontiguousarray(arr[:, :, 3])
        arr = np.ascontiguousarray(arr[:, :, :3])
        if alpha.min() == 255:
            alpha = None
    info = ImageInfo(
        source=name,
        format=None,
        width=arr.shape[1],
        height=arr.shape[0],
        mode="L" if arr.ndim == 2 else ("RGBA" if alpha is not None else "RGB"),
        bytes=None,
        has_alpha=alpha is not None,
    )
    return Decoded(info=info, pixels=_readonly(arr), alpha=_readonly_opt(alpha))


#: Hashes and index thumbnails are computed from a grey image whose shorter side is at least this
#: (and under twice this where the source is larger). pHash works on a 32×32 resize, so 128 px
#: still oversamples it 4×; the hashes' LANCZOS resizes, whose cost grows with the input, then
#: cost a fraction of a millisecond. Measured over 96 photos of 3.5–21 MP (JPEG q90 and q75),
#: against imagehash of the full-size decode: pHash and dHash at most 4 bits apart (mean 0.35
#: and 0.55), aHash 3, wHash 6 — against at most 2 at 256 px, which costs 15–25 % more time per
#: indexed file. Over the 3,744 target same-picture pairs of benchmarks/accuracy.py both sizes
#: keep every pair within find's candidate radius (12 bits). Indexes record the recipe
#: (``samepix.index.SCHEMA_VERSION``).
HASH_MIN_SIDE = 128


def draft_grey(
    blob: Blob, *, min_side: int = HASH_MIN_SIDE, limits: Limits = DEFAULT_LIMITS
) -> PILImage.Image:
    """A greyscale PIL image for hashing, decoded as cheaply as the format allows.

    JPEG is decoded with DCT scaling to the smallest of 1/1, 1/2, 1/4 and 1/8 scale whose shorter
    side is still at least ``min_side`` (libjpeg-turbo decodes only the luma plane, and at 1/8
    only the DC coefficient of each block); other formats are decoded fully. Both are then
    reduced by the largest integer box factor that keeps the shorter side at least ``min_side``
    (:func:`grey_pil`), and EXIF orientation is applied. The JPEG path gives the same pixels
    through simplejpeg or through Pillow's ``draft`` (same library, same scaled IDCT).
    """

    fmt = sniff_format(blob.data[:SNIFF_BYTES])
    if fmt is None:
        raise DecodeError(f"{blob.name}: {describe_non_image(blob.data[:SNIFF_BYTES])}")
    im = _open(blob.data, blob.name, limits) if fmt == "JPEG" else None
    if im is None or im.mode not in ("RGB", "L", "YCbCr"):
        del im  # _decode opens it again (and may need Pillow's WebP reader gone)
        return grey_pil(_decode(blob.data, blob.name, None, limits), min_side=min_side)
    with foreign_calls(blob.name, im.format):
        orientation = _header_orientation(im)
        grey = _jpeg_grey_scaled(im, blob.data, min_side)
    grey = _reduce_to(grey, min_side)
    transpose = _pil_transpose(orientation)
    return grey.transpose(transpose) if transpose is not None else grey


def _jpeg_grey_scaled(im: PILImage.Image, data: bytes, min_side: int) -> PILImage.Image:
    """The luma plane of a JPEG at the smallest DCT scale keeping ``min_side`` (unoriented)."""
    from PIL import Image

    w, h = im.size
    factor = next((f for f in (8, 4, 2) if min(w, h) // f >= min_side), 1)
    try:
        import simplejpeg
    except ImportError:  # optional speed-up (~0.5 ms a file less than Pillow's draft)
        simplejpeg = None
    if simplejpeg is not None:
        size = (-(-h // factor), -(-w // factor))
        try:
            pixels = simplejpeg.decode_jpeg(
                data, colorspace="GRAY", min_factor=factor, min_width=size[1], min_height=size[0]
            )
        except (ValueError, TypeError):  # strict about warnings Pillow tolerates (or an old
            pixels = None  # simplejpeg without min_factor): let Pillow decide below
        # Another scale (TurboJPEG also has 3/8, 5/8, ...) would change the hashes: Pillow then.
        if pixels is not None and pixels.shape[:2] == size:
            return Image.fromarray(pixels[:, :, 0])
    # draft() picks the largest power-of-two scale whose size is at least the one asked for.
    im.draft("L", (max(1, w // factor), max(1, h // factor)))
    return im.convert("L")


def _reduce_to(grey: PILImage.Image, min_side: int | None) -> PILImage.Image:
    """Box-reduce by the largest integer factor keeping the shorter side at least ``min_side``."""
    factor = min(grey.size) // min_side if min_side else 1
    return grey.reduce(factor) if factor > 1 else grey


def grey_pil(decoded: Decoded, *, min_side: int | None = HASH_MIN_SIDE) -> PILImage.Image:
    """The grey PIL image hashes are computed from; transparent areas composited over white.

    With ``min_side``, reduced by the largest integer factor (a box filter, as a JPEG draft
    decode does) that keeps the shorter side at least ``min_side``: the hashes' own 8–32 px
    LANCZOS resizes then cost microseconds instead of ~100 ms each at 12 MP.
    """
    from PIL import Image

    pixels, alpha = decoded.pixels, decoded.alpha
    if pixels.ndim == 2 and alpha is None:
        return _reduce_to(Image.fromarray(pixels), min_side)
    # In strips of rows (the same pixels as one whole-image pass: every step is per pixel), so
    # hashing a 200 MP image needs one grey plane more, not three 16-bit copies.
    h, w = pixels.shape[:2]
    grey = np.empty((h, w), np.uint8)
    rows = _strip_rows(w)
    for y0 in range(0, h, rows):
        part = pixels[y0 : y0 + rows]
        if alpha is not None:
            a = alpha[y0 : y0 + rows].astype(np.uint16)
            if part.ndim == 3:
                a = a[:, :, None]
            part = ((part.astype(np.uint16) * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)
        strip = Image.fromarray(np.ascontiguousarray(part))
        grey[y0 : y0 + rows] = np.asarray(strip if strip.mode == "L" else strip.convert("L"))
    return _reduce_to(Image.fromarray(grey), min_side)


def luma(pixels: np.ndarray) -> np.ndarray:
    """BT.601 luma as 8-bit (the weights Pillow's convert('L') uses).

    ``pixels`` is a normalised image (:attr:`Decoded.pixels`, or any H×W or H×W×3 uint8 RGB
    array); a grey H×W array is returned as it is.
    """
    if pixels.ndim == 2:
        return pixels
    import cv2

    out: np.ndarray = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)
    return out


# ---------------------------------------------------------------------------------------------
# Opening, with the pixel limit checked before any pixel is decoded


def _open(data: bytes, name: str, limits: Limits) -> PILImage.Image:
    from PIL import UnidentifiedImageError

    fmt = sniff_format(data[:SNIFF_BYTES])
    if fmt is None:
        raise DecodeError(f"{name}: {describe_non_image(data[:SNIFF_BYTES])}")
    try:
        with foreign_calls(name, fmt):
            im = open_image(data, max_pixels=limits.max_pixels)
            w, h = im.size
    except HeifExtraMissing as exc:
        raise DecodeError(f"{name}: {exc}") from exc
    except DecodeError as exc:
        if isinstance(exc.__cause__, UnidentifiedImageError):
            raise DecodeError(f"{name}: {fmt} data that cannot be read (corrupt header?)") from exc
        raise
    limits.check_pixels(name, w, h)
    if w <= 0 or h <= 0:
        raise DecodeError(f"{name}: image has no pixels ({w}×{h})")
    _check_backed(data, im, name)
    return im


def _check_decode_memory(
    im: PILImage.Image, name: str, limits: Limits, data: bytes | None = None
) -> None:
    w, h = im.size
    alpha = _trns_key(im, data) is not None or "transparency" in im.info
    direct = _decodes_direct(im)
    encoded = 0 if data is None else len(data)
    needed = decode_memory(
        w, h, im.mode, im.format, has_alpha=alpha, direct=direct, encoded=encoded
    )
    limits.check_memory(name, needed)


def _decodes_direct(im: PILImage.Image) -> bool:
    """Whether the image will be decoded straight into numpy (see the module's docstring)."""
    return (im.format == "JPEG" and _jpeg_fast_path_ok(im)) or _webp_fast_path_ok(im)


# The most a DEFLATE stream can expand (RFC 1951: a 258-byte match in one 1-bit code, about 1032:1).
_DEFLATE_MAX_RATIO = 1032


def _check_backed(data: bytes, im: PILImage.Image, name: str) -> None:
    """Refuse a PNG whose image data cannot hold the size its header declares (a few hundred
    bytes declaring 150 MP would otherwise be decoded into zeros before the end is noticed)."""
    if im.format != "PNG" or getattr(im, "n_frames", 1) != 1:
        return
    idat = _png_idat_bytes(data)
    if idat is None:
        return
    w, h = im.size
    bits = {"1": 1, "L": 8, "P": 8, "LA": 16, "RGB": 24, "RGBA": 32, "I;16": 16}.get(im.mode)
    if bits is None:
        return
    if im.mode in ("L", "P") and len(data) > 24 and data[24] < 8:
        bits = data[24]
    raw = h * (1 + (w * bits + 7) // 8)  # one filter byte a row
    if idat * _DEFLATE_MAX_RATIO < raw:
        raise DecodeError(
            f"{name}: truncated PNG file ({idat:,} bytes of image data cannot hold the "
            f"{w}×{h} pixels the header declares)"
        )


def _png_idat_bytes(data: bytes) -> int | None:
    """Total payload of a PNG's IDAT chunks (None when the chunk list cannot be walked)."""
    pos, total = 8, 0
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            total += min(length, len(data) - pos - 8)
        elif kind == b"IEND":
            break
        pos += 12 + length
    return total


def _load_strictly(im: PILImage.Image, name: str) -> None:
    """Decode every pixel, or raise: never keep a partial image."""
    from PIL import ImageFile

    # A host application may have allowed truncated images; a partial image would be compared
    # as if it were the picture, so samepix decodes strictly whatever that setting says.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    if im.format == "TIFF":  # libtiff's handlers print to stderr
        with quiet_stderr(name):
            im.load()
    else:
        im.load()


def _count_frames(im: PILImage.Image) -> int:
    frames = getattr(im, "n_frames", 1)
    return frames if isinstance(frames, int) and frames > 0 else 1


def _pillow_orients(im: PILImage.Image) -> bool:
    """Whether Pillow applies this image's orientation itself (Pillow 13's TIFF reader does,
    while loading, and already reports the turned size from the header)."""
    return im.format == "TIFF" and hasattr(im, "_tile_size")


def _header_orientation(im: PILImage.Image) -> int:
    """The EXIF orientation the header gives, decoding no pixels (a PNG's eXIf chunk after
    its image data is only seen once the image is loaded). Used before a strict load: Pillow's
    getexif() would load the PNG itself and swallow a failure, leaving a partial image."""
    if im.format == "PNG" and "exif" not in im.info:
        return 1  # Pillow's PNG getexif() would decode the whole image to look further
    return _orientation(im)


# ---------------------------------------------------------------------------------------------
# JPEG fast path


def _jpeg_fast_path_ok(im: PILImage.Image) -> bool:
    if im.mode not in ("RGB", "L"):
        return False  # CMYK / YCCK: Pillow handles Adobe inversion and profiles
    icc = im.info.get("icc_profile")
    if icc and im.mode == "RGB" and _icc_description(icc) is not None:
        return False  # a non-sRGB profile to convert
    try:
        import simplejpeg  # noqa: F401
    except ImportError:  # optional speed-up; Pillow does the same job
        return False
    return True


def _decode_jpeg_fast(
    im: PILImage.Image, data: bytes, name: str, digest: str | None
) -> Decoded | None:
    """libjpeg-turbo straight into numpy; None when simplejpeg refuses the data (it is strict
    about what libjpeg only warns about, e.g. junk before a marker): Pillow decides then."""
    import simplejpeg

    grey = im.mode == "L"
    try:
        pixels = simplejpeg.decode_jpeg(data, colorspace="GRAY" if grey else "RGB")
    except ValueError:
        return None
    if grey and pixels.ndim == 3:
        pixels = pixels[:, :, 0]
    with foreign_calls(name, "JPEG"):
        orientation = _orientation(im)
        metadata = _metadata(im)
        quality = _jpeg_quality(im)
    pixels = _orient(pixels, orientation)
    info = ImageInfo(
        source=name,
        format="JPEG",
        width=pixels.shape[1],
        height=pixels.shape[0],
        mode=im.mode,
        bytes=len(data),
        orientation=orientation,
        metadata=metadata,
        lossless=False,
        jpeg_quality=quality,
    )
    return Decoded(info=info, pixels=_readonly(pixels), sha256=digest)


# ---------------------------------------------------------------------------------------------
# PNG fast path (samepix.png_decode: libspng, for the PNGs whose pixels it decodes as Pillow does)


# Bytes a pixel of libspng's array: grey or RGB, no alpha (an image with alpha would come as one
# RGBA array split into two more, over the memory budget of Pillow's path).
_OUT_BPP_PNG = {"L": 1, "RGB": 3}


def _png_fast_path_ok(im: PILImage.Image) -> bool:
    if im.mode not in _OUT_BPP_PNG or "transparency" in im.info:
        return False  # alpha, palettes, 16-bit, colour keys: Pillow's conversions
    icc = im.info.get("icc_profile")
    # A grey image's profile is not applied (as on the Pillow path); a colour one must be sRGB.
    return not (icc and im.mode == "RGB" and _icc_description(icc) is not None)


def _decode_png_fast(
    im: PILImage.Image, data: bytes, name: str, digest: str | None
) -> Decoded | None:
    """libspng straight into numpy; None when the PNG is not one it decodes as Pillow does."""
    from .png_decode import png_pixels

    # Only within the memory checked for Pillow's path (its model, limits.decode_memory):
    # libspng's array and its copy of the file's bytes.
    w, h = im.size
    fast = w * h * (_OUT_BPP_PNG[im.mode] + 1) + len(data)  # and the hashes' grey plane
    if fast > decode_memory(w, h, im.mode, "PNG", direct=False) - BASE_MEMORY:
        return None  # bytes bigger than the pixels (huge metadata chunks): Pillow's path
    with foreign_calls(name, "PNG"):
        arrays = png_pixels(data)
        if arrays is None:
            return None
        orientation = _orientation(im)  # an eXIf chunk here comes before the image data
        metadata = _metadata(im)
    pixels, alpha = arrays
    if alpha is not None and alpha.min() == 255:
        alpha = None  # fully opaque: the same picture as without alpha
    pixels, alpha = _orient(pixels, orientation), _orient_opt(alpha, orientation)
    info = ImageInfo(
        source=name,
        format="PNG",
        width=pixels.shape[1],
        height=pixels.shape[0],
        mode=im.mode,
        bytes=len(data),
        orientation=orientation,
        has_alpha=alpha is not None,
        metadata=metadata,
        lossless=True,
    )
    return Decoded(info=info, pixels=_readonly(pixels), alpha=_readonly_opt(alpha), sha256=digest)


# ---------------------------------------------------------------------------------------------
# WebP fast path


def _webp_fast_path_ok(im: PILImage.Image) -> bool:
    if im.format != "WEBP" or im.mode not in ("RGB", "RGBA") or getattr(im, "n_frames", 1) != 1:
        return False  # animations: Pillow composes the first frame
    icc = im.info.get("icc_profile")
    return not (icc and _icc_description(icc) is not None)  # a non-sRGB profile to convert


@dataclass(frozen=True)
class _WebpHeader:
    """What the WebP path needs from Pillow's reader, so that the reader can be dropped."""

    size: tuple[int, int]
    mode: str
    orientation: int
    metadata: frozenset[str]


def _decode_webp_fast(
    header: _WebpHeader, data: bytes, name: str, digest: str | None
) -> Decoded | None:
    """libwebp (OpenCV's build) straight into numpy; None when it refuses the data or gives a
    size other than the header's: Pillow decides then, and words the error."""
    import cv2

    flags = cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION  # orientation is applied below
    try:
        with quiet_stderr(name):  # OpenCV logs why it refused on stderr ("[ERROR:0@...] ...")
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)  # refused: None
    except cv2.error:  # its own size checks (a side over 2**20) raise instead
        return None
    if bgr is None or bgr.ndim != 3 or bgr.shape[:2] != (header.size[1], header.size[0]):
        return None
    alpha: np.ndarray | None = None
    if bgr.shape[2] == 4:
        alpha = np.ascontiguousarray(bgr[:, :, 3])
        pixels = cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB)
        del bgr
        if alpha.min() == 255:
            alpha = None  # fully opaque: the same picture as without alpha
    else:
        pixels = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=bgr)  # in place: no second copy
    pixels, alpha = _orient(pixels, header.orientation), _orient_opt(alpha, header.orientation)
    info = ImageInfo(
        source=name,
        format="WEBP",
        width=pixels.shape[1],
        height=pixels.shape[0],
        mode=header.mode,
        bytes=len(data),
        orientation=header.orientation,
        has_alpha=alpha is not None,
        metadata=header.metadata,
        lossless=_webp_is_lossless(data),
    )
    return Decoded(info=info, pixels=_readonly(pixels), alpha=_readonly_opt(alpha), sha256=digest)


# ---------------------------------------------------------------------------------------------
# Modes, alpha, colour profiles


#: Pixels converted at a time: strips of rows this large keep the conversion's temporaries (16-bit
#: and float arithmetic, Pillow's mode conversions, ICC transforms) to a few MB at any size.
_STRIP_PIXELS = 1 << 20

_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "La", "RGBa"})
# Modes whose pixels become one grey plane.
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
# Modes Pillow's PNG/TIFF readers give a single tRNS colour for (the key, not an alpha plane).
_KEYED_MODES = frozenset({"1", "L", "I", "I;16", "I;16L", "I;16B", "I;16N", "RGB"})


def _strip_rows(width: int) -> int:
    return max(1, _STRIP_PIXELS // max(1, width))


def _normalise(
    im: PILImage.Image, name: str, icc: bytes | None, data: bytes | None
) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """A loaded PIL image → (H×W or H×W×3 uint8 sRGB, H×W alpha or None, ICC description).

    Plain L and RGB are taken as they are; everything else strip by strip (see
    ``_STRIP_PIXELS``), writing into arrays allocated once.
    """
    mode = im.mode
    key = _trns_key(im, data)
    icc_name = _icc_description(icc) if icc and mode in ("RGB", "RGBA", "CMYK") else None
    w, h = im.size
    if mode in ("L", "RGB") and key is None and icc_name is None and w * h <= 4 * _STRIP_PIXELS:
        # Small: one copy. Large ones go in strips too: np.asarray goes through tobytes(),
        # which holds the packed bytes twice (a list of chunks, then their join).
        return np.asarray(im), None, None
    grey = mode in _GREY_MODES
    pixels = np.empty((h, w) if grey else (h, w, 3), np.uint8)
    has_alpha = (
        key is not None or mode in _ALPHA_MODES or (mode == "P" and "transparency" in im.info)
    )
    alpha = np.empty((h, w), np.uint8) if has_alpha else None
    rows = _strip_rows(w)
    applied = icc_name
    for y0 in range(0, h, rows):
        y1 = min(h, y0 + rows)
        strip = im.crop((0, y0, w, y1))
        if key is not None:
            assert alpha is not None
            raw = np.asarray(strip)
            match = raw == key if raw.ndim == 2 else np.all(raw == np.asarray(key), axis=2)
            alpha[y0:y1] = np.where(match, 0, 255)
        colour, strip_alpha = _split_alpha(_to_standard_mode(strip))
        if icc and colour.mode in ("RGB", "CMYK"):
            colour, applied = _to_srgb(colour, icc, name)
        if colour.mode == "CMYK":  # no usable profile: Pillow's naive conversion
            colour = colour.convert("RGB")
        pixels[y0:y1] = _as_uint8_array(colour)
        if strip_alpha is not None and alpha is not None:
            alpha[y0:y1] = np.asarray(strip_alpha)
    return pixels, alpha, applied


def _trns_key(im: PILImage.Image, data: bytes | None) -> int | tuple[int, ...] | None:
    """The transparent colour of a keyed (tRNS) image, in the values Pillow decodes to.

    Pillow keeps the key as stored in the file: for 1/2/4-bit grey PNGs that is on the
    bit depth's scale (Pillow's pixels are scaled to 0–255), for 16-bit RGB on 0–65535
    (Pillow's pixels keep the high byte), for 1-bit 0/1 (Pillow's pixels are booleans).
    """
    key = im.info.get("transparency")
    mode = im.mode
    if key is None or mode not in _KEYED_MODES:
        return None
    depth = data[24] if im.format == "PNG" and data is not None and len(data) > 24 else 8
    if mode == "RGB":
        if not (isinstance(key, tuple) and len(key) == 3):
            return None
        return tuple(int(v) >> 8 for v in key) if depth == 16 else tuple(int(v) for v in key)
    if not isinstance(key, int):
        return None
    if mode == "1":
        return int(bool(key))
    if mode == "L" and depth < 8:
        return key * 255 // ((1 << depth) - 1)
    return key


def _to_standard_mode(im: PILImage.Image) -> PILImage.Image:
    """Convert to one of L, LA, RGB, RGBA, CMYK (or I/F kept for our own scaling)."""
    mode = im.mode
    if mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        return im
    if mode == "P":
        return im.convert("RGBA" if "transparency" in im.info else "RGB")
    if mode == "PA":
        return im.convert("RGBA")
    if mode == "1":
        return im.convert("L")
    if mode == "La":
        return im.convert("LA")
    if mode in ("RGBa", "RGBX"):
        return im.convert("RGBA" if mode == "RGBa" else "RGB")
    if mode.startswith("I") or mode == "F":
        return im  # scaled to 8 bits by _as_uint8_array
    try:
        return im.convert("RGB")  # YCbCr, LAB, HSV
    except (ValueError, OSError) as exc:
        raise DecodeError(f"image mode {mode} cannot be converted to RGB") from exc


def _split_alpha(im: PILImage.Image) -> tuple[PILImage.Image, PILImage.Image | None]:
    if im.mode == "RGBA":
        return im.convert("RGB"), im.getchannel("A")
    if im.mode == "LA":
        return im.getchannel("L"), im.getchannel("A")
    return im, None


def _as_uint8_array(im: PILImage.Image) -> np.ndarray:
    if im.mode in ("L", "RGB"):
        return np.asarray(im)
    if im.mode.startswith("I"):
        # 16-bit PNG/TIFF arrive as I;16 (or I): scale 0–65535 to 0–255 rather than clipping,
        # which is what Pillow's convert("L") would do.
        return _array_to_uint8(np.asarray(im), "", integer_max=65535)
    if im.mode == "F":
        return _array_to_uint8(np.asarray(im), "", float_max=255.0)  # Pillow's F is on 0–255
    return np.asarray(im.convert("RGB"))


def _array_to_uint8(
    arr: np.ndarray, name: str, *, integer_max: int | None = None, float_max: float | None = None
) -> np.ndarray:
    """Scale to uint8, strip by strip (16-bit: exact integer rounding, no float64 copies)."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        top = integer_max or (255 if arr.dtype.itemsize == 1 else 65535)
        return _integers_to_uint8(arr, top)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise DecodeError(f"{name}: image contains NaN or infinite values")
        ftop = float_max
        if ftop is None:  # a numpy float image: 0–1 when it fits, else already 0–255
            ftop = 1.0 if arr.min() >= 0.0 and arr.max() <= 1.0 else 255.0
        out = np.empty(arr.shape, np.uint8)
        rows = _strip_rows(int(np.prod(arr.shape[1:])))
        scale = np.float32(255.0 / ftop)
        for y0 in range(0, arr.shape[0], rows):
            part = arr[y0 : y0 + rows].astype(np.float32) * scale
            np.clip(part, 0, 255, out=part)
            out[y0 : y0 + rows] = np.rint(part)
        return out
    raise DecodeError(f"{name}: unsupported array dtype {arr.dtype}")


def _integers_to_uint8(arr: np.ndarray, top: int) -> np.ndarray:
    """round(clip(x, 0, top) × 255 / top) in integer arithmetic, a strip at a time.

    ``(x × 255 + top // 2) // top`` equals rounding the exact quotient (no ties can occur for
    top = 65535 since 255/65535 = 1/257 and 257 is odd; for other tops ties round up).
    """
    out = np.empty(arr.shape, np.uint8)
    rows = _strip_rows(int(np.prod(arr.shape[1:])))
    for y0 in range(0, arr.shape[0], rows):
        part = arr[y0 : y0 + rows]
        wide = np.clip(part, 0, top).astype(np.int64 if top > 2**23 else np.uint32)
        wide *= 255
        wide += top // 2
        wide //= top
        out[y0 : y0 + rows] = wide
    return out


@lru_cache(maxsize=64)
def _icc_description(icc: bytes) -> str | None:
    """Description of an ICC profile; None when it is sRGB, or unreadable (pixels kept as is)."""
    try:
        from PIL import ImageCms

        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = (ImageCms.getProfileDescription(profile) or "").strip()
    except (OSError, ImportError, ValueError):
        return None
    if not description or "srgb" in description.lower().replace(" ", "").replace("-", ""):
        return None
    return description


@lru_cache(maxsize=16)
def _srgb_transform(icc: bytes, in_mode: str) -> Any:
    from PIL import ImageCms

    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    return ImageCms.buildTransform(source, ImageCms.createProfile("sRGB"), in_mode, "RGB")


def _to_srgb(im: PILImage.Image, icc: bytes, name: str) -> tuple[PILImage.Image, str | None]:
    """Convert ``im`` from its embedded profile to sRGB; a profile littlecms cannot use (corrupt,
    or no transform to sRGB) is ignored, as browsers ignore it: the pixels are shown as stored."""
    description = _icc_description(icc)
    if description is None and im.mode == "RGB":
        return im, None
    from PIL import ImageCms

    try:
        converted = ImageCms.applyTransform(im, _srgb_transform(icc, im.mode))
    except (OSError, ValueError, ImageCms.PyCMSError) as exc:
        log.debug("%s: ICC profile ignored (%s)", name, exc)
        if im.mode == "CMYK":
            return im.convert("RGB"), None
        return im, None
    assert converted is not None
    return converted, description or "CMYK profile"


# ---------------------------------------------------------------------------------------------
# Orientation and metadata


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation to an H×W(×C) array (same result as ImageOps.exif_transpose)."""
    if orientation == 2:
        out = arr[:, ::-1]
    elif orientation == 3:
        out = arr[::-1, ::-1]
    elif orientation == 4:
        out = arr[::-1]
    elif orientation == 5:
        out = arr.swapaxes(0, 1)
    elif orientation == 6:
        out = np.rot90(arr, k=-1)
    elif orientation == 7:
        out = arr[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        out = np.rot90(arr, k=1)
    else:
        return arr
    return np.ascontiguousarray(out)


def _orient_opt(arr: np.ndarray | None, orientation: int) -> np.ndarray | None:
    return None if arr is None else _orient(arr, orientation)


@cache
def _pil_transpose(orientation: int) -> Any:
    """The PIL transpose that applies an EXIF orientation, or None for 1 (as stored)."""
    from PIL import Image

    t = Image.Transpose
    return {
        2: t.FLIP_LEFT_RIGHT,
        3: t.ROTATE_180,
        4: t.FLIP_TOP_BOTTOM,
        5: t.TRANSPOSE,
        6: t.ROTATE_270,
        7: t.TRANSVERSE,
        8: t.ROTATE_90,
    }.get(orientation)


def _metadata(im: PILImage.Image) -> frozenset[str]:
    found = set()
    info = im.info
    if info.get("exif"):
        found.add("exif")
    if info.get("icc_profile"):
        found.add("icc")
    if info.get("xmp") or info.get("XML:com.adobe.xmp"):
        found.add("xmp")
    if info.get("comment"):
        found.add("comment")
    if any(k in info for k in ("dpi", "jfif_density", "aspect")):
        found.add("density")
    if im.format == "PNG" and any(k not in _PNG_STRUCTURAL for k in info):
        found.add("text")
    return frozenset(found)


# PNG info keys that describe pixels; any other key is a text chunk (tEXt/iTXt/zTXt).
_PNG_STRUCTURAL = frozenset(
    {"dpi", "gamma", "transparency", "icc_profile", "exif", "aspect", "srgb", "chromaticity"}
    | {"xmp", "XML:com.adobe.xmp"}
)


def _is_lossless(im: PILImage.Image, data: bytes | None) -> bool | None:
    fmt = im.format
    if fmt in ("PNG", "GIF", "BMP", "PPM", "QOI", "ICO"):
        return True
    if fmt == "TIFF":
        return im.info.get("compression") not in ("jpeg", "tiff_jpeg")
    if fmt == "JPEG":
        return False
    if fmt == "WEBP" and data is not None:
        return _webp_is_lossless(data)
    return None


def _webp_is_lossless(data: bytes) -> bool | None:
    """Pillow does not say; the bitstream chunk does: 'VP8L' is lossless, 'VP8 ' lossy."""
    pos = 12  # after "RIFF" size "WEBP"; chunks are fourcc, little-endian size, padded payload
    while pos + 8 <= len(data):
        fourcc = data[pos : pos + 4]
        if fourcc == b"VP8L":
            return True
        if fourcc == b"VP8 ":
            return False
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        pos += 8 + size + (size & 1)
    return None


def _jpeg_quality(im: PILImage.Image) -> int | None:
    """Estimate the JPEG quality (1–100) from the luminance quantisation table, IJG scaling."""
    tables = getattr(im, "quantization", None)
    if im.format != "JPEG" or not tables or 0 not in tables:
        return None
    table = np.asarray(tables[0], dtype=np.float64)
    scale = float(np.mean(table / _IJG_LUMA)) * 100.0
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return int(min(100, max(1, round(quality))))


# The IJG standard luminance table (Annex K of ITU-T T.81), natural order as Pillow reports it.
_IJG_LUMA = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61,
     12, 12, 14, 19, 26, 58, 60, 55,
     14, 13, 16, 24, 40, 57, 69, 56,
     14, 17, 22, 29, 51, 87, 80, 62,
     18, 22, 37, 56, 68, 109, 103, 77,
     24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101,
     72, 92, 95, 98, 112, 100, 103, 99],
    dtype=np.float64,
)  # fmt: skip


def _readonly(arr: np.ndarray) -> np.ndarray:
    if arr.flags.writeable and arr.flags.owndata:
        arr.flags.writeable = False
    elif arr.flags.writeable:
        arr = arr.view()
        arr.flags.writeable = False
    return arr


def _readonly_opt(arr: np.ndarray | None) -> np.ndarray | None:
    return None if arr is None else _readonly(arr)

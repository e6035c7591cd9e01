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
about 2.5× faster than Pillow followed by ``np.asarray`` (which copies); everything else by Pillow.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import DecodeError
from .formats import SNIFF_BYTES, describe_non_image, open_image, sniff_format
from .formats import exif_orientation as _orientation
from .limits import DEFAULT_LIMITS, Limits
from .sources import Blob

if TYPE_CHECKING:
    from PIL import Image as PILImage

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
    im = _open(data, blob.name, limits)
    digest = hashlib.sha256(data).hexdigest()
    try:
        if im.format == "JPEG" and _jpeg_fast_path_ok(im):
            return _decode_jpeg_fast(im, data, blob.name, digest)
        return decode_pil(im, name=blob.name, data=data, sha256=digest)
    except DecodeError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise DecodeError(f"{blob.name}: {_describe_decode_failure(exc, im.format)}") from exc


def read_info(blob: Blob, *, limits: Limits = DEFAULT_LIMITS) -> ImageInfo:
    """What the header says (format, oriented size, mode, frames, metadata), decoding no pixels.

    ``has_alpha`` here means the mode has an alpha channel (whether any pixel is transparent
    needs the pixels).
    """
    head = blob.data[:SNIFF_BYTES]
    if sniff_format(head) is None:
        raise DecodeError(f"{blob.name}: {describe_non_image(head)}")
    im = _open(blob.data, blob.name, limits)
    orientation = _orientation(im)
    w, h = im.size
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    return ImageInfo(
        source=blob.name,
        format=im.format,
        width=w,
        height=h,
        mode=im.mode,
        bytes=len(blob.data),
        frames=int(getattr(im, "n_frames", 1) or 1),
        orientation=orientation,
        icc_profile=_icc_description(im.info["icc_profile"])
        if im.info.get("icc_profile")
        else None,
        has_alpha=im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info,
        metadata=_metadata(im),
        lossless=_is_lossless(im, blob.data),
        jpeg_quality=_jpeg_quality(im),
    )


def decode_pil(
    im: PILImage.Image,
    *,
    name: str = "<PIL image>",
    data: bytes | None = None,
    sha256: str | None = None,
) -> Decoded:
    """Normalise a PIL image (first frame, EXIF orientation, mode, ICC profile, alpha)."""
    frames = int(getattr(im, "n_frames", 1) or 1)
    if frames > 1:
        im.seek(0)
    orientation = _orientation(im)
    metadata = _metadata(im)
    stored_mode = im.mode
    try:
        im.load()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise DecodeError(f"{name}: {_describe_decode_failure(exc, im.format)}") from exc
    icc_name: str | None = None
    icc = im.info.get("icc_profile")
    colour, alpha = _split_alpha(_to_standard_mode(im))
    if icc and colour.mode in ("RGB", "CMYK"):
        colour, icc_name = _to_srgb(colour, icc, name)
    if colour.mode == "CMYK":  # no profile: Pillow's naive conversion is all we have
        colour = colour.convert("RGB")
    pixels = _as_uint8_array(colour)
    alpha_arr = None
    if alpha is not None:
        alpha_arr = np.asarray(alpha)
        if alpha_arr.min() == 255:  # fully opaque: the same picture as without alpha
            alpha_arr = None
    pixels, alpha_arr = _orient(pixels, orientation), _orient_opt(alpha_arr, orientation)
    info = ImageInfo(
        source=name,
        format=im.format,
        width=pixels.shape[1],
        height=pixels.shape[0],
        mode=stored_mode,
        bytes=None if data is None else len(data),
        frames=frames,
        orientation=orientation,
        icc_profile=icc_name,
        has_alpha=alpha_arr is not None,
        metadata=metadata,
        lossless=_is_lossless(im, data),
        jpeg_quality=_jpeg_quality(im),
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

    if sniff_format(blob.data[:SNIFF_BYTES]) is None:
        raise DecodeError(f"{blob.name}: {describe_non_image(blob.data[:SNIFF_BYTES])}")
    im = _open(blob.data, blob.name, limits)
    try:
        orientation = _orientation(im)
        if im.format == "JPEG" and im.mode in ("RGB", "L", "YCbCr"):
            grey = _jpeg_grey_scaled(im, blob.data, min_side)
        else:
            return grey_pil(decode_pil(im, name=blob.name), min_side=min_side)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise DecodeError(f"{blob.name}: {_describe_decode_failure(exc, im.format)}") from exc
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

    pixels = decoded.pixels
    if decoded.alpha is not None:
        a = decoded.alpha.astype(np.uint16)
        if pixels.ndim == 3:
            a = a[:, :, None]
        pixels = ((pixels.astype(np.uint16) * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)
    im = Image.fromarray(pixels)
    grey = im if im.mode == "L" else im.convert("L")
    return _reduce_to(grey, min_side)


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

    try:
        im = open_image(data)
    except UnidentifiedImageError as exc:
        fmt = sniff_format(data[:SNIFF_BYTES])
        raise DecodeError(f"{name}: {fmt} data that cannot be read (corrupt header?)") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise DecodeError(f"{name}: {_describe_decode_failure(exc, None)}") from exc
    w, h = im.size
    limits.check_pixels(name, w, h)
    if w == 0 or h == 0:
        raise DecodeError(f"{name}: image has no pixels ({w}×{h})")
    return im


def _describe_decode_failure(exc: BaseException, fmt: str | None) -> str:
    text = str(exc)
    what = f"{fmt} " if fmt else ""
    if "truncated" in text or "premature end" in text.lower() or isinstance(exc, EOFError):
        return f"truncated {what}file (the data ends early)"
    return f"corrupt {what}data ({text or type(exc).__name__})"


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


def _decode_jpeg_fast(im: PILImage.Image, data: bytes, name: str, digest: str) -> Decoded:
    import simplejpeg

    grey = im.mode == "L"
    try:
        pixels = simplejpeg.decode_jpeg(data, colorspace="GRAY" if grey else "RGB")
    except ValueError as exc:
        raise DecodeError(f"{name}: {_describe_decode_failure(exc, 'JPEG')}") from exc
    if grey and pixels.ndim == 3:
        pixels = pixels[:, :, 0]
    orientation = _orientation(im)
    pixels = _orient(pixels, orientation)
    info = ImageInfo(
        source=name,
        format="JPEG",
        width=pixels.shape[1],
        height=pixels.shape[0],
        mode=im.mode,
        bytes=len(data),
        orientation=orientation,
        metadata=_metadata(im),
        lossless=False,
        jpeg_quality=_jpeg_quality(im),
    )
    return Decoded(info=info, pixels=_readonly(pixels), sha256=digest)


# ---------------------------------------------------------------------------------------------
# Modes, alpha, colour profiles


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
        return _array_to_uint8(np.asarray(im).astype(np.int64, copy=False), "", integer_max=65535)
    if im.mode == "F":
        return _array_to_uint8(np.asarray(im), "", float_max=255.0)  # Pillow's F is on 0–255
    return np.asarray(im.convert("RGB"))


def _array_to_uint8(
    arr: np.ndarray, name: str, *, integer_max: int | None = None, float_max: float | None = None
) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        int_top = integer_max or (255 if arr.dtype.itemsize == 1 else 65535)
        clipped = np.clip(arr, 0, int_top).astype(np.float64)
        scaled: np.ndarray = (clipped * (255.0 / int_top)).round()
        return scaled.astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise DecodeError(f"{name}: image contains NaN or infinite values")
        top = float_max
        if top is None:  # a numpy float image: 0–1 when it fits, else already 0–255
            top = 1.0 if arr.min() >= 0.0 and arr.max() <= 1.0 else 255.0
        out: np.ndarray = np.clip(arr * (255.0 / top), 0, 255).round().astype(np.uint8)
        return out
    raise DecodeError(f"{name}: unsupported array dtype {arr.dtype}")


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
    description = _icc_description(icc)
    if description is None and im.mode == "RGB":
        return im, None
    try:
        from PIL import ImageCms

        converted = ImageCms.applyTransform(im, _srgb_transform(icc, im.mode))
    except (OSError, ValueError, ImportError) as exc:
        if im.mode == "CMYK":
            return im.convert("RGB"), None
        raise DecodeError(f"{name}: embedded ICC profile cannot be applied ({exc})") from exc
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

"""Image formats recognised from their first bytes (magic numbers), never from names or headers.

Used by fetch (an HTML error page served as ``image/jpeg`` is caught before decoding; the pixel
limit is checked from the first bytes of a download; ``probe`` reads only a header) and by decode
(a clear message instead of a decoder traceback).
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = [
    "SNIFF_BYTES",
    "HeaderInfo",
    "describe_non_image",
    "exif_orientation",
    "open_image",
    "read_header",
    "sniff_format",
]

#: How many leading bytes :func:`sniff_format` needs to decide.
SNIFF_BYTES = 32

_ISOBMFF_IMAGE_BRANDS = {
    b"avif": "AVIF",
    b"avis": "AVIF",
    b"heic": "HEIF",
    b"heix": "HEIF",
    b"hevc": "HEIF",
    b"heim": "HEIF",
    b"heis": "HEIF",
    b"mif1": "HEIF",
    b"msf1": "HEIF",
}


def sniff_format(head: bytes) -> str | None:
    """Name the image format of a file from its first bytes, or None if it is no image we know.

    Names are Pillow's format names (``JPEG``, ``PNG``, ``GIF``, ``WEBP``, ``BMP``, ``TIFF``,
    ``ICO``, ``AVIF``, ``HEIF``, ``JPEG2000``, ``PPM``, ``QOI``).
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:2] == b"BM" and len(head) >= 14:
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:4] == b"\x00\x00\x01\x00":
        return "ICO"
    if head[4:8] == b"ftyp":
        return _ISOBMFF_IMAGE_BRANDS.get(head[8:12])
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or head.startswith(b"\xff\x4f\xff\x51"):
        return "JPEG2000"
    if head[:2] in (b"P1", b"P2", b"P3", b"P4", b"P5", b"P6") and head[2:3].isspace():
        return "PPM"
    if head[:4] == b"qoif":
        return "QOI"
    return None


def describe_non_image(head: bytes) -> str:
    """Say what bytes that are not an image look like, for an error message."""
    if not head:
        return "empty (0 bytes)"
    text = head.lstrip()[:64].lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "an HTML page, not an image"
    if text.startswith(b"<?xml") or text.startswith(b"<svg"):
        return "XML/SVG text, not a raster image"
    if text.startswith((b"{", b"[")):
        return "JSON text, not an image"
    if head.startswith(b"%PDF"):
        return "a PDF document, not an image"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive, not an image"
    if all(32 <= c < 127 or c in (9, 10, 13) for c in head[:SNIFF_BYTES]):
        return f"text, not an image (starts with {head[:20]!r})"
    return f"not a known image format (starts with {head[:8].hex(' ')})"


# ---------------------------------------------------------------------------------------------
# Headers: the size of an image from its first bytes


@dataclass(frozen=True)
class HeaderInfo:
    """What the first bytes of an image say: format, stored size and EXIF orientation."""

    format: str
    width: int  # as stored, before EXIF orientation
    height: int
    orientation: int = 1

    @property
    def oriented_size(self) -> tuple[int, int]:
        """(width, height) as a viewer shows the image (EXIF orientation applied)."""
        if self.orientation in (5, 6, 7, 8):
            return self.height, self.width
        return self.width, self.height


_limit_lock = threading.Lock()
_heif_registered = False


def open_image(data: bytes, *, max_pixels: int | None = None) -> PILImage.Image:
    """``PIL.Image.open`` on bytes; nothing is decoded yet.

    Callers check samepix's own pixel limit (:meth:`Limits.check_pixels`) from the size in the
    header. Pillow has its own, lower one (89 MP, an error at twice that), global, and checked
    again while decoding (TIFF tiles, GIF frames): it is raised, once, just enough that
    nothing within ``max_pixels`` trips it (Pillow then only warns, which samepix logs).
    HEIF/HEIC is read through ``pillow-heif`` (the ``heif`` extra), registered on first use.
    """
    from PIL import Image

    from .boundary import route_library_warnings

    route_library_warnings()
    if max_pixels is not None:
        _pillow_limit_at_least(max_pixels)
    if sniff_format(data[:SNIFF_BYTES]) == "HEIF":
        _register_heif()
    try:
        return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        # Over twice Pillow's limit: open it anyway (only the header is read); the caller
        # decides with samepix's own limit, which it knows and Pillow does not.
        with _limit_lock:
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                return Image.open(io.BytesIO(data))
            finally:
                Image.MAX_IMAGE_PIXELS = saved


def _pillow_limit_at_least(max_pixels: int) -> None:
    from PIL import Image

    with _limit_lock:
        current = Image.MAX_IMAGE_PIXELS
        if current is not None and 2 * current < max_pixels:
            Image.MAX_IMAGE_PIXELS = -(-max_pixels // 2)


class HeifExtraMissing(ImportError):
    """HEIF/HEIC data, and pillow-heif is not installed."""


def _register_heif() -> None:
    global _heif_registered
    if _heif_registered:
        return
    try:
        from pillow_heif import register_heif_opener
    except ImportError as exc:
        raise HeifExtraMissing("HEIC needs the heif extra: pip install samepix[heif]") from exc
    register_heif_opener()
    _heif_registered = True


def exif_orientation(im: PILImage.Image) -> int:
    """The EXIF orientation tag (1–8) of an opened image; 1 when absent or unreadable."""
    if im.format == "PNG" and not _png_may_hold_orientation(im):
        return 1
    try:
        value = im.getexif().get(0x0112, 1)
    except (OSError, ValueError, SyntaxError, TypeError, KeyError, EOFError):
        return 1  # unreadable EXIF: show the pixels as stored
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


# Where a PNG can hold an orientation Pillow reads: an eXIf chunk, or XMP in an iTXt chunk.
_PNG_ORIENTATION_MARKERS = (b"eXIf", b"XML:com.adobe.xmp")


def _png_may_hold_orientation(im: PILImage.Image) -> bool:
    """False when the PNG's bytes contain no eXIf chunk and no XMP packet at all.

    Pillow's ``getexif()`` on a PNG decodes the whole image to reach chunks after the pixel
    data; the index would then decode every PNG twice (once for its header, once for its
    hashes). Chunk types and iTXt keywords are stored uncompressed, so when neither name occurs
    anywhere in the file there is nothing to read, and the answer is Pillow's own (1).
    """
    if "exif" in im.info or "XML:com.adobe.xmp" in im.info or "xmp" in im.info:
        return True  # already read, no decode needed
    fp = getattr(im, "fp", None)
    if not isinstance(fp, io.BytesIO):
        return True  # not our bytes: let Pillow look
    data = fp.getvalue()  # the bytes open_image wrapped (no copy)
    return any(marker in data for marker in _PNG_ORIENTATION_MARKERS)


def read_header(head: bytes) -> HeaderInfo | None:
    """Format and size from the first bytes of an image, or None when more bytes are needed
    (or the bytes are no image Pillow can open).

    Pillow reads the header (for JPEG every segment up to the start of scan, so a big EXIF
    block needs that many bytes); WebP is parsed here because Pillow's WebP reader needs the
    whole file.
    """
    fmt = sniff_format(head[:SNIFF_BYTES])
    if fmt is None:
        return None
    if fmt == "WEBP":
        return _webp_header(head)
    try:
        im = open_image(head)
    except Exception:  # partial data fails in many ways (struct, EOF, syntax); all mean "more"
        return None
    width, height = im.size
    return HeaderInfo(im.format or fmt, width, height, exif_orientation(im))


def _webp_header(head: bytes) -> HeaderInfo | None:
    # RIFF container: the first chunk after "WEBP" is VP8 (lossy), VP8L (lossless) or VP8X.
    if len(head) < 30:
        return None
    chunk = head[12:16]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(head[24:27], "little")
        height = 1 + int.from_bytes(head[27:30], "little")
    elif chunk == b"VP8L" and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        width, height = 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    elif chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        width = int.from_bytes(head[26:28], "little") & 0x3FFF
        height = int.from_bytes(head[28:30], "little") & 0x3FFF
    else:
        return None
    return HeaderInfo("WEBP", width, height)

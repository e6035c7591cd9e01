"""Image formats recognised from their first bytes (magic numbers), never from names or headers.

Used by fetch (an HTML error page served as ``image/jpeg`` is caught before decoding) and by
decode (a clear message instead of a decoder traceback).
"""

from __future__ import annotations

__all__ = ["SNIFF_BYTES", "describe_non_image", "sniff_format"]

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

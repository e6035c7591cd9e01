"""PNG pixels through libspng (``pyspng``): about 40 % less CPU than Pillow's PNG decoder.

Measured on the 0.7 MP PNGs of ``bench_dupes.py``'s folder: 10.1 ms of CPU a file against
17–18.6 ms for Pillow's decode into numpy. PNG is the format both ``index`` and ``dupes`` spend
the most decoding time on there.

Only PNGs whose pixels mean the same through both decoders take this path: 8-bit grey,
grey + alpha, RGB or RGBA; one frame (no APNG); no transparent colour key (``tRNS``); nothing
after the image data but the end (Pillow reads such chunks — text, EXIF — while decoding, and
they are part of what samepix reports). Everything else is Pillow's, and so is every PNG that
libspng refuses: Pillow words the error. (:mod:`samepix.decode` sends only grey and RGB PNGs
here, whose bytes fit the memory budget of Pillow's path: with alpha, libspng's RGBA array and
the two planes split from it would not.)

libspng as ``pyspng`` drives it checks no chunk CRC and, as measured, decodes an IDAT stream
with a corrupted byte without an error (rows of garbage, where Pillow reports "broken data
stream"). So the CRC of every IDAT chunk is checked here first (zlib's CRC-32, ~0.5 ms a
file): a PNG whose image data is not what its encoder wrote is left to Pillow, which judges it
by the stream as before.

``pyspng`` keeps the GIL while it decodes (Pillow releases it): samepix decodes in worker
processes (and Dask workers of one thread each), where that costs nothing.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["png_pixels"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IHDR = b"\x00\x00\x00\x0dIHDR"
_COLOUR_TYPES = {0: 1, 2: 3, 4: 2, 6: 4}  # grey, RGB, grey + alpha, RGBA: channels
# More chunks than this (a stream cut into tiny IDATs) is walked by Pillow, in C.
_MAX_CHUNKS = 4096


def png_pixels(data: bytes) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(H×W grey or H×W×3 RGB uint8, H×W alpha or None) of a plain 8-bit PNG, as Pillow would
    decode them; None for any other PNG, for a damaged one, or without ``pyspng``."""
    channels = _plain_png_channels(data)
    if channels is None:
        return None
    try:
        import pyspng
    except ImportError:  # optional speed-up: Pillow decodes the same pixels
        return None
    # libspng has no grey + alpha output: that one comes as RGBA, its grey repeated.
    wanted = 4 if channels == 2 else channels
    try:
        arr = pyspng.load(data, "RGBA" if channels == 2 else None)
    except (RuntimeError, ValueError):
        return None
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    if arr.dtype != np.uint8 or arr.shape[2] != wanted:
        return None
    if channels in (1, 3):
        return (arr[:, :, 0] if channels == 1 else arr), None
    colour = np.ascontiguousarray(arr[:, :, 0] if channels == 2 else arr[:, :, :3])
    return colour, np.ascontiguousarray(arr[:, :, 3])


def _plain_png_channels(data: bytes) -> int | None:
    """The channel count of a PNG this path decodes, after walking its chunks (see the module's
    docstring); None when it is not one."""
    if len(data) < 33 or data[:8] != _SIGNATURE or data[8:16] != _IHDR:
        return None
    depth, colour_type = data[24], data[25]
    channels = _COLOUR_TYPES.get(colour_type)
    if depth != 8 or channels is None:
        return None
    view = memoryview(data)
    pos, seen_image = 8, False
    for _ in range(_MAX_CHUNKS):
        if pos + 12 > len(data):
            return None  # cut short: Pillow reports it
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        end = pos + 8 + length
        if end + 4 > len(data):
            return None
        if kind == b"IEND":
            return channels if seen_image else None
        if kind in (b"tRNS", b"acTL"):
            return None
        if kind == b"IDAT":
            stored = int.from_bytes(data[end : end + 4], "big")
            if zlib.crc32(view[pos + 4 : end]) != stored:
                return None
            seen_image = True
        elif seen_image:
            return None  # a chunk after the image data: Pillow reads it while decoding
        pos = end + 4
    return None

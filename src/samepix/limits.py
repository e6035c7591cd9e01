"""Safety limits applied to every source: bytes read, pixels decoded, memory, time spent waiting.

The memory budget is checked before any pixel is decoded, from what the header says (size,
mode, bit depth, frames, format): :func:`decode_memory` and :func:`compare_memory` estimate the
peak a decode and a comparison need (a model measured on this code, see docs/hardening.md), and
:meth:`Limits.check_memory` refuses with one line when it is over ``max_memory``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .errors import LimitExceeded, UsageError

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "MemoryFacts",
    "compare_memory",
    "decode_memory",
    "parse_size",
]


@dataclass(frozen=True)
class Limits:
    """Bounds that protect against decompression bombs and endless or stalled downloads.

    Parameters
    ----------
    max_pixels
        Largest width × height decoded (checked from the header, before decoding). 200 MP is
        above any camera sensor sold today and well below what exhausts memory here.
    max_bytes
        Largest encoded file read or downloaded; a body longer than this is cut off.
    connect_timeout, read_timeout
        Seconds to wait for a connection, and between two chunks of a response.
    total_timeout
        Seconds a whole download may take, however steadily the server trickles.
    max_redirects
        Redirects followed before giving up.
    max_memory
        Largest estimated peak memory (bytes) of one decode or one comparison, judged from the
        headers before decoding. 2 GiB keeps a 2-core 8 GiB laptop safe with both cores busy;
        every image within ``max_pixels`` decodes under it (docs/hardening.md).
    """

    max_pixels: int = 200_000_000
    max_bytes: int = 256 * 1024 * 1024
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 120.0
    max_redirects: int = 5
    max_memory: int = 2 * 1024**3

    def __post_init__(self) -> None:
        for name in ("max_pixels", "max_bytes", "max_memory"):
            if getattr(self, name) <= 0:
                raise UsageError(f"limit {name} must be positive, got {getattr(self, name)}")
        for name in ("connect_timeout", "read_timeout", "total_timeout"):
            if getattr(self, name) <= 0:
                raise UsageError(
                    f"limit {name} must be positive seconds, got {getattr(self, name)}"
                )
        if self.max_redirects < 0:
            raise UsageError(f"limit max_redirects must be >= 0, got {self.max_redirects}")

    def check_pixels(self, name: str, width: int, height: int) -> None:
        """Raise :class:`LimitExceeded` when a ``width`` × ``height`` image is over the limit."""
        if width * height > self.max_pixels:
            raise LimitExceeded(
                f"{name}: {width}×{height} = {width * height:,} pixels exceeds the limit of "
                f"{self.max_pixels:,} (a decompression bomb?); raise it with --max-pixels"
            )

    def check_memory(self, name: str, needed: int, what: str = "decoding") -> None:
        """Raise :class:`LimitExceeded` when ``needed`` bytes are over ``max_memory``."""
        if needed > self.max_memory:
            raise LimitExceeded(
                f"{name}: {what} would need about {_human(needed)} of memory, over the limit of "
                f"{_human(self.max_memory)}; raise it with --max-memory"
            )


DEFAULT_LIMITS = Limits()


# ---------------------------------------------------------------------------------------------
# The memory model: bytes per pixel of each stage, measured (benchmarks/bench_limits.py)

#: Memory samepix and its libraries hold whatever the image (interpreter, numpy, OpenCV, Pillow).
BASE_MEMORY = 160 * 1024**2

# Bytes per pixel of Pillow's own storage for a mode: 8-bit single band 1, 16-bit 2, everything
# else (RGB included, and two-band modes) 4.
_PIL_BPP = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "F"} | {"I;16", "I;16L", "I;16B", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "La", "RGBa"})


def _out_bpp(mode: str, has_alpha: bool) -> int:
    """Bytes per pixel of samepix's normalised pixels: grey 1 or RGB 3, and alpha 1."""
    grey = mode in _GREY_MODES
    return (1 if grey else 3) + (1 if has_alpha or mode in _ALPHA_MODES else 0)


class MemoryFacts(NamedTuple):
    """What the memory model needs to know of one image, read from its header
    (:func:`samepix.decode.memory_facts`)."""

    width: int
    height: int
    mode: str
    format: str | None
    has_alpha: bool = False
    direct: bool = False  # decoded straight into numpy (see decode_memory)
    encoded: int = 0  # bytes of the file, held in memory while it is decoded and compared


def decode_memory(
    width: int,
    height: int,
    mode: str,
    fmt: str | None,
    *,
    has_alpha: bool = False,
    direct: bool | None = None,
    encoded: int = 0,
) -> int:
    """Estimated peak bytes to decode and normalise one image, and hash it; ``encoded`` is the
    size of the file, which is in memory throughout.

    ``direct``: the decoder writes straight into numpy (simplejpeg for JPEG in RGB or grey,
    OpenCV's libwebp for a still WebP; see :mod:`samepix.decode`); when None, judged from the
    format and mode alone. Otherwise Pillow holds the decoded image (``_PIL_BPP``) while samepix
    converts it strip by strip into its own arrays (``_out_bpp``). Hashing then needs one more
    grey plane.
    """
    pixels = width * height
    out = _out_bpp(mode, has_alpha)
    if direct is None:
        direct = fmt == "JPEG" and mode in ("L", "RGB")
    if direct:
        decode = out + 1  # the decoder's array (converted in place), and the hashes' grey plane
        if fmt == "WEBP":
            # libwebp's own buffers while it decodes (a lossless frame is held whole as ARGB):
            # measured 7.0 bytes a pixel in all for a 196 MP lossless RGB still, 5.7 for a
            # 100 MP lossy one (bench_limits.py); with alpha, the BGRA array split in two.
            decode += 4
    else:
        decode = _PIL_BPP.get(mode, 4) + out + 1  # and the hashes' grey plane
        if fmt == "WEBP":
            # libwebp's animation decoder (Pillow reads every WebP through it): its current and
            # previous RGBA canvases, the frame copied out as bytes, and Pillow's RGBA image
            # before it becomes RGB (measured: 17 bytes a pixel in all, 123 MP canvas).
            decode += 14
    return BASE_MEMORY + pixels * decode + encoded


def compare_memory(a: MemoryFacts, b: MemoryFacts) -> int:
    """Estimated peak bytes of comparing two images, each described from its header.

    Both normalised images are held while the larger one's decode runs; the metrics then work on
    the smaller size (the larger is resized to it): luma planes, premultiplied copies, the
    structure map and OpenCV's temporaries, about 16 bytes a pixel (24 with alpha), measured.
    Both files' bytes are held throughout.
    """
    outs = [f.width * f.height * _out_bpp(f.mode, f.has_alpha) for f in (a, b)]
    decodes = [
        decode_memory(f.width, f.height, f.mode, f.format, has_alpha=f.has_alpha, direct=f.direct)
        - BASE_MEMORY
        for f in (a, b)
    ]
    holding = max(decodes[0] + outs[1], decodes[1] + outs[0])
    pixels = [f.width * f.height for f in (a, b)]
    small = min(pixels)
    large = 0 if pixels[0] >= pixels[1] else 1
    alpha = [f.mode in _ALPHA_MODES or f.has_alpha for f in (a, b)]
    if alpha[large] and pixels[large] != small:
        # Resizing the larger with its alpha (samepix.align.resize_with_alpha): alpha as float32
        # weights and one weighted plane, while its hashes' grey plane may still be held:
        # measured 8.3 (50 MP PNG) and 9.0 (200 MP TIFF) bytes a pixel of the larger.
        holding = max(holding, outs[0] + outs[1] + 10 * pixels[large])
    metrics = small * (24 if any(alpha) else 16)
    return BASE_MEMORY + holding + metrics + a.encoded + b.encoded


def parse_size(text: str, what: str = "size") -> int:
    """``2G``, ``512M``, ``1.5GiB``, ``100000000`` → bytes (binary multiples)."""
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    cleaned = text.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = cleaned, ""
    if cleaned and cleaned[-1] in units:
        number, unit = cleaned[:-1], cleaned[-1]
    try:
        value = float(number)
    except ValueError as exc:
        raise UsageError(f"{what}: {text!r} is not a size (e.g. 2G, 512M, 1500000000)") from exc
    if value <= 0:
        raise UsageError(f"{what} must be positive, got {text!r}")
    return int(value * units[unit])


def _human(n: int) -> str:
    if n >= 1024**3:
        return f"{n / 1024**3:.1f} GiB"
    return f"{n / 1024**2:.0f} MiB"

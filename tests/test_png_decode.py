"""The PNG fast path (libspng) gives exactly what Pillow's path gives, or steps aside.

Each PNG is decoded twice through :func:`samepix.decode.decode_blob`: as it is, and with the fast
path turned off; pixels, alpha and every field of the image's description must be equal, and
the fast path must have been taken exactly for the plain 8-bit PNGs.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageCms, PngImagePlugin

import samepix.png_decode
from samepix.decode import Decoded, decode_blob
from samepix.errors import DecodeError
from samepix.sources import Blob

from .conftest import shared_file
from .helpers import encode

pytest.importorskip("pyspng")


def _photo() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[::2, ::2])  # 256×256 RGB


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _with_text_after_image(png: bytes) -> bytes:
    end = png.rindex(b"IEND") - 4
    return png[:end] + _chunk(b"tEXt", b"Comment\x00after the pixels") + png[end:]


def _idat_crc_flipped(png: bytes) -> bytes:
    at = png.index(b"IDAT") - 4
    length = struct.unpack(">I", png[at : at + 4])[0]
    crc = at + 8 + length
    return png[:crc] + bytes([png[crc] ^ 0xFF]) + png[crc + 1 :]


def _rgba(p: np.ndarray) -> np.ndarray:
    alpha = np.tile(np.linspace(0, 255, p.shape[1]).astype(np.uint8), (p.shape[0], 1))
    return np.dstack([p, alpha])


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _text_info() -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "before the pixels")
    return info


def _srgb_profile() -> bytes:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return profile.tobytes()  # type: ignore[no-any-return]


def _big_text() -> PngImagePlugin.PngInfo:
    """A text chunk far bigger than the pixels: libspng's copy of the bytes would pass the
    memory budget of Pillow's path."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "x" * 100_000)
    return info


FAST: list[tuple[str, Callable[[np.ndarray], bytes]]] = [
    ("rgb", lambda p: encode(p, "PNG")),
    ("grey", lambda p: encode(Image.fromarray(p).convert("L"), "PNG")),
    ("text-before-pixels", lambda p: encode(p, "PNG", pnginfo=_text_info())),
    ("exif-orientation-6", lambda p: encode(p, "PNG", exif=_exif(6))),
    ("srgb-profile", lambda p: encode(p, "PNG", icc_profile=_srgb_profile())),
    ("fast-compression", lambda p: encode(p, "PNG", compress_level=1)),
]

PILLOW: list[tuple[str, Callable[[np.ndarray], bytes]]] = [
    ("palette", lambda p: encode(Image.fromarray(p).quantize(64), "PNG")),
    ("grey-alpha", lambda p: encode(Image.fromarray(_rgba(p)).convert("LA"), "PNG")),
    ("rgba", lambda p: encode(_rgba(p), "PNG")),
    ("rgba-opaque", lambda p: encode(np.dstack([p, np.full(p.shape[:2], 255, np.uint8)]), "PNG")),
    ("huge-metadata", lambda p: encode(p[:8, :8], "PNG", pnginfo=_big_text())),
    ("16-bit-grey", lambda p: encode(Image.fromarray(p[..., 0].astype(np.uint16) * 257), "PNG")),
    ("colour-key", lambda p: encode(p, "PNG", transparency=(0, 0, 0))),
    ("text-after-pixels", lambda p: _with_text_after_image(encode(p, "PNG"))),
    ("idat-crc-flipped", lambda p: _idat_crc_flipped(encode(p, "PNG"))),
    (
        "animated",
        lambda p: encode(
            Image.fromarray(p), "PNG", save_all=True, append_images=[Image.fromarray(p[::-1])]
        ),
    ),
]


def _decode_both(
    data: bytes, monkeypatch: pytest.MonkeyPatch
) -> tuple[Decoded, Decoded, list[bool]]:
    taken: list[bool] = []
    real = samepix.png_decode.png_pixels

    def spy(png: bytes) -> tuple[np.ndarray, np.ndarray | None] | None:
        out = real(png)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(samepix.png_decode, "png_pixels", spy)
    fast = decode_blob(Blob(data=data, name="x.png"))
    monkeypatch.setattr(samepix.png_decode, "png_pixels", lambda png: None)
    pillow = decode_blob(Blob(data=data, name="x.png"))
    return fast, pillow, taken


def _assert_same(fast: Decoded, pillow: Decoded) -> None:
    assert fast.info == pillow.info
    assert fast.pixels.dtype == pillow.pixels.dtype == np.uint8
    np.testing.assert_array_equal(fast.pixels, pillow.pixels)
    assert (fast.alpha is None) == (pillow.alpha is None)
    if fast.alpha is not None:
        np.testing.assert_array_equal(fast.alpha, pillow.alpha)
    assert not fast.pixels.flags.writeable


@pytest.mark.parametrize(("case", "make"), FAST, ids=[c for c, _ in FAST])
def test_a_plain_png_takes_the_fast_path_and_decodes_as_pillow(
    case: str, make: Callable[[np.ndarray], bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, pillow, taken = _decode_both(make(_photo()), monkeypatch)
    assert taken == [True]
    _assert_same(fast, pillow)


@pytest.mark.parametrize(("case", "make"), PILLOW, ids=[c for c, _ in PILLOW])
def test_any_other_png_is_left_to_pillow(
    case: str, make: Callable[[np.ndarray], bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, pillow, taken = _decode_both(make(_photo()), monkeypatch)
    assert True not in taken
    _assert_same(fast, pillow)


def test_a_corrupt_image_stream_is_an_error_not_garbage() -> None:
    """libspng alone decodes a PNG whose IDAT has a flipped byte into rows of garbage; the CRC
    check sends it to Pillow, which reports the broken stream."""
    png = encode(_photo(), "PNG")
    at = png.index(b"IDAT") + 4 + 200
    damaged = png[:at] + bytes([png[at] ^ 0x55]) + png[at + 1 :]
    assert samepix.png_decode.png_pixels(damaged) is None
    with pytest.raises(DecodeError, match=r"x\.png: corrupt PNG data"):
        decode_blob(Blob(data=damaged, name="x.png"))


def test_the_hostile_corrupt_png_is_still_refused() -> None:
    path = shared_file("hostile", "hopper_idat_corrupt.png")
    with pytest.raises(DecodeError, match="corrupt PNG data"):
        decode_blob(Blob(data=path.read_bytes(), name=path.name))


def test_a_png_cut_short_is_left_to_pillow_and_refused() -> None:
    png = encode(_photo(), "PNG")
    cut = png[: len(png) // 2]
    assert samepix.png_decode.png_pixels(cut) is None
    with pytest.raises(DecodeError, match="truncated PNG"):
        decode_blob(Blob(data=cut, name="x.png"))

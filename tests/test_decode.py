"""decode: every mode and format normalised; orientation, ICC, alpha, animation; bad data."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from samepix.decode import decode_array, decode_blob, decode_pil, draft_grey, read_info
from samepix.errors import DecodeError, LimitExceeded
from samepix.limits import Limits
from samepix.sources import Blob

from .helpers import encode, rgb_icc_profile


def blob(data: bytes, name: str = "test-image") -> Blob:
    return Blob(data=data, name=name)


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(base).resize((96, 64), Image.BICUBIC))


# --- lossless formats give back exactly the pixels ----------------------------------------


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("PNG", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {"lossless": True}), ("PPM", {})],
    ids=["png", "bmp", "tiff", "webp-lossless", "ppm"],
)
def test_lossless_formats_round_trip(rgb: np.ndarray, fmt: str, options: dict) -> None:
    decoded = decode_blob(blob(encode(rgb, fmt, **options)))
    assert decoded.info.format == (fmt if fmt != "PPM" else "PPM")
    assert decoded.pixels.shape == rgb.shape
    assert np.array_equal(decoded.pixels, rgb)
    assert decoded.info.lossless is True
    assert not decoded.pixels.flags.writeable


def test_jpeg_fast_path_matches_pillow(rgb: np.ndarray) -> None:
    data = encode(rgb, "JPEG", quality=85)
    decoded = decode_blob(blob(data))
    assert np.array_equal(decoded.pixels, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    assert decoded.info.jpeg_quality == 85
    assert decoded.info.lossless is False


def test_webp_lossy_is_reported(rgb: np.ndarray) -> None:
    decoded = decode_blob(blob(encode(rgb, "WEBP", quality=70)))
    assert decoded.info.format == "WEBP"
    assert decoded.info.lossless is False


@pytest.mark.parametrize(
    ("mode", "options"),
    [
        ("RGB", {"quality": 70}),
        ("RGB", {"lossless": True}),
        ("RGBA", {"quality": 70}),
        ("RGBA", {"lossless": True}),
    ],
    ids=["lossy", "lossless", "lossy-alpha", "lossless-alpha"],
)
def test_still_webp_decoded_straight_into_numpy_gives_pillows_pixels(
    rgb: np.ndarray, mode: str, options: dict
) -> None:
    # A still WebP is decoded by libwebp through OpenCV (3–4 bytes a pixel, not Pillow's ~22):
    # it must give exactly the pixels and alpha Pillow gives.
    picture = Image.fromarray(rgb)
    if mode == "RGBA":
        picture = picture.convert("RGBA")
        picture.putalpha(
            Image.fromarray((np.arange(96)[None, :] * 2 + np.zeros((64, 1))).astype(np.uint8))
        )
    data = encode(np.asarray(picture), "WEBP", **options)
    fast = decode_blob(blob(data))
    via_pillow = decode_pil(Image.open(io.BytesIO(data)), name="test-image", data=data)
    assert np.array_equal(fast.pixels, via_pillow.pixels)
    assert (fast.alpha is None) == (via_pillow.alpha is None) == (mode == "RGB")
    if mode == "RGBA":
        assert np.array_equal(fast.alpha, via_pillow.alpha)
    assert fast.info == via_pillow.info


def test_webp_that_libwebp_refuses_is_a_decode_error(rgb: np.ndarray) -> None:
    data = encode(rgb, "WEBP", lossless=True)
    with pytest.raises(DecodeError, match="test-image"):
        decode_blob(blob(data[: len(data) // 2]))


def test_grey_jpeg_stays_grey(rgb: np.ndarray) -> None:
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    decoded = decode_blob(blob(encode(grey, "JPEG", quality=90)))
    assert decoded.is_grey and decoded.pixels.shape == grey.shape


# --- every Pillow mode --------------------------------------------------------------------


def test_mode_1_scales_to_0_255() -> None:
    im = Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).convert("1")
    decoded = decode_pil(im)
    assert decoded.info.mode == "1"
    assert decoded.pixels.tolist() == [[0, 255], [255, 0]]


def test_palette_without_transparency_becomes_rgb(rgb: np.ndarray) -> None:
    pal = Image.fromarray(rgb).quantize(64)
    decoded = decode_blob(blob(encode(pal, "PNG")))
    assert decoded.info.mode == "P" and decoded.alpha is None
    assert np.array_equal(decoded.pixels, np.asarray(pal.convert("RGB")))


def test_palette_with_transparency_keeps_alpha(rgb: np.ndarray) -> None:
    pal = Image.fromarray(rgb).quantize(16)
    index = np.asarray(pal)[0, 0]
    decoded = decode_blob(blob(encode(pal, "PNG", transparency=int(index))))
    assert decoded.alpha is not None and decoded.info.has_alpha
    assert decoded.alpha[0, 0] == 0


def test_opaque_rgba_equals_rgb(rgb: np.ndarray) -> None:
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    decoded = decode_blob(blob(encode(rgba, "PNG")))
    assert decoded.alpha is None and not decoded.info.has_alpha
    assert np.array_equal(decoded.pixels, rgb)


def test_translucent_rgba_and_la(rgb: np.ndarray) -> None:
    alpha = np.tile(np.linspace(0, 255, rgb.shape[1]).astype(np.uint8), (rgb.shape[0], 1))
    decoded = decode_blob(blob(encode(np.dstack([rgb, alpha]), "PNG")))
    assert decoded.alpha is not None and np.array_equal(decoded.alpha, alpha)
    grey = rgb[:, :, 0]
    la = Image.fromarray(np.dstack([grey, alpha]), "LA")
    decoded_la = decode_blob(blob(encode(la, "PNG")))
    assert decoded_la.is_grey and np.array_equal(decoded_la.alpha, alpha)


def test_cmyk_jpeg_becomes_rgb(rgb: np.ndarray) -> None:
    cmyk = Image.fromarray(rgb).convert("CMYK")
    decoded = decode_blob(blob(encode(cmyk, "JPEG", quality=95)))
    assert decoded.info.mode == "CMYK"
    assert decoded.pixels.shape == rgb.shape
    # Pillow's naive CMYK round trip is lossy but close.
    assert np.abs(decoded.pixels.astype(int) - rgb).mean() < 6


def test_16_bit_png_scales_instead_of_clipping() -> None:
    values = np.array([[0, 257, 32896], [65535, 1000, 50000]], np.uint16)
    decoded = decode_blob(blob(encode(Image.fromarray(values), "PNG")))
    assert decoded.info.mode.startswith("I")
    assert decoded.pixels.tolist() == [[0, 1, 128], [255, 4, 195]]


def test_float_mode_uses_0_255_scale() -> None:
    values = np.array([[-5.0, 0.4], [128.6, 300.0]], np.float32)
    decoded = decode_pil(Image.fromarray(values, "F"))
    assert decoded.pixels.tolist() == [[0, 0], [129, 255]]


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.array([[0.0, 0.5], [1.0, 0.25]]), [[0, 128], [255, 64]]),
        (np.array([[0, 65535], [257, 0]], np.uint16), [[0, 255], [1, 0]]),
        (np.array([[True, False]]), [[255, 0]]),
    ],
    ids=["float-0-1", "uint16", "bool"],
)
def test_decode_array_scales(array: np.ndarray, expected: list) -> None:
    assert decode_array(array).pixels.tolist() == expected


def test_decode_array_rejects_bad_shapes() -> None:
    with pytest.raises(DecodeError, match="shape"):
        decode_array(np.zeros((4, 4, 2), np.uint8), name="weird")
    with pytest.raises(DecodeError, match="NaN"):
        decode_array(np.array([[np.nan, 1.0]]))


# --- orientation, profiles, animation, metadata ---------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9), ids=lambda o: f"exif{o}")
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_orientation_matches_exif_transpose(
    rgb: np.ndarray, orientation: int, fmt: str
) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    options: dict = {"exif": exif.tobytes()}
    if fmt == "WEBP":
        options["lossless"] = True
    data = encode(rgb, fmt, **options)
    decoded = decode_blob(blob(data))
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    assert decoded.info.orientation == orientation
    assert np.array_equal(decoded.pixels, expected)
    info = read_info(blob(data))
    assert (info.width, info.height) == (decoded.info.width, decoded.info.height)


def test_png_exif_orientation_is_still_found(rgb: np.ndarray) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(rgb, "PNG", exif=exif.tobytes())
    assert read_info(blob(data)).orientation == 6
    decoded = decode_blob(blob(data))
    assert decoded.info.orientation == 6
    assert decoded.pixels.shape[:2] == (rgb.shape[1], rgb.shape[0])


def test_png_without_exif_is_not_decoded_to_look_for_it(rgb: np.ndarray) -> None:
    from samepix.formats import exif_orientation, open_image

    im = open_image(encode(rgb, "PNG"))
    assert exif_orientation(im) == 1
    assert im.tile  # still only the header (load() empties it): the index decodes a PNG once


def test_icc_profile_is_converted_to_srgb(rgb: np.ndarray) -> None:
    icc = rgb_icc_profile("Adobe RGB (1998) test")
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    data = encode(rgb, "PNG", icc_profile=icc)
    decoded = decode_blob(blob(data))
    expected = ImageCms.profileToProfile(
        Image.fromarray(rgb), profile, ImageCms.createProfile("sRGB"), outputMode="RGB"
    )
    assert decoded.info.icc_profile == "Adobe RGB (1998) test"
    assert not np.array_equal(decoded.pixels, rgb)  # a wider gamut: colours change
    assert np.array_equal(decoded.pixels, np.asarray(expected))
    assert "icc" in decoded.info.metadata


def test_srgb_profile_is_left_alone(rgb: np.ndarray) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for fmt in ("PNG", "JPEG"):
        data = encode(rgb, fmt, icc_profile=srgb)
        decoded = decode_blob(blob(data))
        assert decoded.info.icc_profile is None
        plain = decode_blob(blob(encode(rgb, fmt)))
        assert np.array_equal(decoded.pixels, plain.pixels)


def test_animated_gif_first_frame_and_count(rgb: np.ndarray) -> None:
    frames = [Image.fromarray(np.roll(rgb, 10 * i, axis=1)).quantize(64) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    decoded = decode_blob(blob(out.getvalue()))
    assert decoded.info.frames == 3
    assert np.array_equal(decoded.pixels, np.asarray(frames[0].convert("RGB")))


def test_metadata_is_listed(rgb: np.ndarray) -> None:
    exif = Image.Exif()
    exif[0x010E] = "a description"
    decoded = decode_blob(blob(encode(rgb, "JPEG", exif=exif.tobytes(), comment=b"hi")))
    assert {"exif", "comment"} <= decoded.info.metadata


# --- bad data ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"<!DOCTYPE html><html><body>404</body></html>", "HTML page"),
        (b'{"error": "nope"}', "JSON"),
        (b"just some text\n", "text"),
        (b"\x00\x01\x02\x03garbage", "not a known image format"),
    ],
    ids=["empty", "html", "json", "text", "binary"],
)
def test_not_an_image(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message) as info:
        decode_blob(blob(data, "http://host/x.jpg"))
    assert "http://host/x.jpg" in str(info.value)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files(rgb: np.ndarray, fmt: str) -> None:
    data = encode(rgb, fmt)
    with pytest.raises(DecodeError, match=r"truncated|corrupt") as info:
        decode_blob(blob(data[: len(data) // 2], "cut." + fmt.lower()))
    assert "cut." in str(info.value)


def _png_header_only(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def png_chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    # A valid header and an almost empty IDAT: opening it costs nothing, decoding would be huge.
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + png_chunk(b"IEND", b"")
    )


def test_decompression_bomb_refused_from_header() -> None:
    with pytest.raises(LimitExceeded, match="100000×100000"):
        decode_blob(blob(_png_header_only(100_000, 100_000), "bomb.png"))


def test_pixel_limit_is_configurable(rgb: np.ndarray) -> None:
    data = encode(rgb, "PNG")
    with pytest.raises(LimitExceeded, match="limit of 1,000"):
        decode_blob(blob(data), limits=Limits(max_pixels=1000))
    # Above Pillow's own global limit but within ours: opened (header only here).
    big = _png_header_only(15_000, 13_000)  # 195 MP > Pillow's 179 MP, < our 200 MP
    with pytest.raises(DecodeError):  # no pixel data: fails at decode, not at the limit
        decode_blob(blob(big))


# --- hashing input --------------------------------------------------------------------------


def test_draft_grey_is_small_and_oriented(rgb: np.ndarray) -> None:
    big = np.asarray(Image.fromarray(rgb).resize((2400, 1600)))
    exif = Image.Exif()
    exif[0x0112] = 6
    grey = draft_grey(blob(encode(big, "JPEG", quality=90, exif=exif.tobytes())))
    assert grey.mode == "L"
    assert grey.size == (200, 300)  # 1/8 scale keeps the short side >= 128; rotated by the tag


def test_draft_grey_same_pixels_with_and_without_simplejpeg(
    rgb: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    # simplejpeg is the fast path, Pillow's draft the fallback: one library, one scaled IDCT, the
    # same pixels (odd sizes, every DCT scale, grey and colour, progressive, 4:4:4 and 4:2:0).
    import sys

    cases = []
    for size, mode, options in [
        ((1001, 667), "RGB", {"subsampling": 2}),
        ((1001, 667), "RGB", {"subsampling": 0, "progressive": True}),
        ((130, 2000), "L", {}),
        ((257, 300), "RGB", {"subsampling": 1}),
        ((300, 140), "RGB", {}),
    ]:
        im = Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC).convert(mode)
        cases.append(blob(encode(im, "JPEG", quality=85, **options)))
    import simplejpeg

    calls = []
    decode_jpeg = simplejpeg.decode_jpeg
    monkeypatch.setattr(
        simplejpeg, "decode_jpeg", lambda *a, **k: calls.append(1) or decode_jpeg(*a, **k)
    )
    sides = (16, 64, 128, 256)
    fast = [np.asarray(draft_grey(b, min_side=m)) for b in cases for m in sides]
    assert len(calls) == len(fast)  # every one through simplejpeg
    monkeypatch.setitem(sys.modules, "simplejpeg", None)  # import fails: Pillow's draft
    slow = [np.asarray(draft_grey(b, min_side=m)) for b in cases for m in sides]
    assert len(calls) == len(fast)
    assert [a.shape for a in fast] == [a.shape for a in slow]
    assert all(np.array_equal(a, b) for a, b in zip(fast, slow, strict=True))
    # 1001×667: 1/8 then a box reduction by 5 (partial boxes kept); 1/8; 1/4; 1/2.
    assert [a.shape for a in fast[:4]] == [(17, 26), (84, 126), (167, 251), (334, 501)]


def test_hash_input_is_reduced_but_hashes_barely_move(kodak_dir) -> None:
    from samepix.decode import grey_pil
    from samepix.hashes import hash_image

    with Image.open(kodak_dir / "kodim05.png") as im:
        big = im.convert("RGB").resize((2304, 1536), Image.BICUBIC)
    decoded = decode_pil(big)
    reduced = grey_pil(decoded)
    assert reduced.size == (192, 128)  # factor 12 keeps the short side >= 128
    # Measured over 96 photos of 3.5–21 MP (decode.HASH_MIN_SIDE): pHash and dHash ≤ 4 bits from
    # the full-size hashes, aHash ≤ 3, wHash ≤ 6.
    distances = hash_image(grey_pil(decoded, min_side=None)).distances(hash_image(reduced))
    assert distances["phash"] <= 4 and max(distances.values()) <= 6


# ---------------------------------------------------------------------------------------------
# Orientation applied exactly once, in every format that carries it (issue 9)

_UNDO = {  # the transpose whose result, oriented by tag o, is the picture itself
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def _oriented_file(picture: Image.Image, orientation: int, fmt: str) -> bytes:
    undo = _UNDO[orientation]
    stored = picture if undo is None else picture.transpose(undo)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    if fmt == "TIFF":
        stored.save(buf, "TIFF", tiffinfo={0x0112: orientation}, compression="tiff_deflate")
    elif fmt == "JPEG":
        stored.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    elif fmt == "WEBP":
        stored.save(buf, "WEBP", lossless=True, exif=exif.tobytes())
    else:
        stored.save(buf, fmt, exif=exif.tobytes())
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_is_applied_once(fmt: str, orientation: int) -> None:
    h, w = 24, 40  # not square, and no symmetry: any wrong turn or flip shows
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.dstack([x * 6, y * 10, (x * y) % 256]).astype(np.uint8)
    picture = Image.fromarray(rgb)
    blob = Blob(_oriented_file(picture, orientation, fmt), f"o{orientation}.{fmt.lower()}")
    decoded = decode_blob(blob)
    info = read_info(blob)
    assert decoded.pixels.shape[:2] == (h, w)
    assert (info.width, info.height) == (w, h)
    assert decoded.info.orientation == orientation
    tolerance = 10 if fmt == "JPEG" else 0  # 4:2:0 chroma of a colourful gradient
    diff = np.abs(decoded.pixels.astype(int) - rgb).mean()
    assert diff <= tolerance, diff
    grey = np.asarray(draft_grey(blob, min_side=24))  # the hashing decode turns it the same way
    assert grey.shape == (h, w)


# ---------------------------------------------------------------------------------------------
# tRNS (one transparent colour) kept as alpha in every mode that has it


def _png_with_trns(mode: str) -> tuple[bytes, np.ndarray]:
    """A PNG in ``mode`` whose left half is the transparent colour; expected alpha."""
    h, w = 8, 16
    expected = np.full((h, w), 255, np.uint8)
    expected[:, : w // 2] = 0
    if mode == "RGB":
        arr = np.full((h, w, 3), (10, 200, 30), np.uint8)
        arr[:, : w // 2] = (1, 2, 3)
        im, key = Image.fromarray(arr), (1, 2, 3)
    elif mode == "L":
        arr = np.full((h, w), 200, np.uint8)
        arr[:, : w // 2] = 7
        im, key = Image.fromarray(arr), 7
    elif mode == "1":
        arr = np.ones((h, w), bool)
        arr[:, : w // 2] = False
        im, key = Image.fromarray(arr), 0
    else:  # I;16
        arr = np.full((h, w), 40000, np.uint16)
        arr[:, : w // 2] = 1234
        im, key = Image.fromarray(arr), 1234
    buf = io.BytesIO()
    im.save(buf, "PNG", transparency=key)
    return buf.getvalue(), expected


@pytest.mark.parametrize("mode", ["RGB", "L", "1", "I;16"])
def test_trns_transparency_is_kept_for_every_mode(mode: str) -> None:
    data, expected = _png_with_trns(mode)
    blob = Blob(data, f"trns-{mode}.png")
    decoded = decode_blob(blob)
    assert read_info(blob).has_alpha
    assert decoded.alpha is not None, "tRNS dropped"
    assert np.array_equal(decoded.alpha, expected)


def test_two_bit_grey_trns_key_is_scaled_like_the_pixels() -> None:
    # A 2-bit grey PNG written by hand: Pillow scales pixels to 0–255 but keeps the key at 0–3.
    h, w = 2, 8
    rows = b"".join(b"\x00" + bytes([0b00011011, 0b00011011]) for _ in range(h))  # 0,1,2,3,...
    ihdr = struct.pack(">IIBBBBB", w, h, 2, 0, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"tRNS", struct.pack(">H", 2))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    decoded = decode_blob(Blob(data, "grey2.png"))
    assert decoded.alpha is not None
    assert decoded.alpha[0].tolist() == [255, 255, 0, 255] * 2


# ---------------------------------------------------------------------------------------------
# Strict decoding, 16-bit in strips


def test_truncated_png_is_an_error_not_a_partial_image() -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(rgb, "PNG")
    for cut in (len(data) - 30, len(data) // 2):
        with pytest.raises(DecodeError, match=r"truncated|corrupt"):
            decode_blob(Blob(data[:cut], "cut.png"))


def test_load_truncated_images_set_by_a_host_is_not_obeyed() -> None:
    from PIL import ImageFile

    rgb = np.random.default_rng(4).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(rgb, "PNG")
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with pytest.raises(DecodeError):
            decode_blob(Blob(data[: len(data) // 2], "cut.png"))
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False


def test_sixteen_bit_scaling_is_exact_rounding() -> None:
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    decoded = decode_pil(Image.fromarray(values))
    assert np.array_equal(decoded.pixels, np.round(values / 257.0).astype(np.uint8))


def test_png_whose_data_cannot_hold_its_size_is_refused_from_the_header() -> None:
    small = encode(np.zeros((4, 4), np.uint8), "PNG")
    # The same stream with a header declaring 12000×12000 pixels.
    ihdr = struct.pack(">II", 12000, 12000) + small[24:29]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    data = small[:16] + ihdr + crc + small[33:]
    with pytest.raises(DecodeError, match="truncated PNG"):
        decode_blob(Blob(data, "liar.png"))


def test_heic_without_the_extra_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    import samepix.formats as formats

    monkeypatch.setattr(formats, "_heif_registered", False)
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # as if not installed
    data = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    with pytest.raises(
        DecodeError, match=r"HEIC needs the heif extra: pip install samepix\[heif\]"
    ):
        decode_blob(Blob(data, "photo.heic"))

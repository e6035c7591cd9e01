"""compare: the ladder and the verdict on real photographs and copies made from them."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

import samepix
from samepix import Policy, Verdict, compare, load

from .conftest import SHARED_DATA
from .helpers import encode, load_rgb


def _photos() -> list[tuple[str, np.ndarray]]:
    """A few real photographs: Kodak images when ../shared/data is there, else scikit-image's."""
    kodak = SHARED_DATA / "kodak"
    if kodak.exists():
        return [
            (name, load_rgb(kodak / f"{name}.png")) for name in ("kodim05", "kodim14", "kodim23")
        ]
    from skimage import data

    return [("astronaut", data.astronaut()), ("coffee", data.coffee()), ("chelsea", data.chelsea())]


PHOTOS = _photos()
PHOTO_IDS = [name for name, _ in PHOTOS]


def _resize(pixels: np.ndarray, scale: float, resample: int = Image.LANCZOS) -> np.ndarray:
    h, w = pixels.shape[:2]
    return np.asarray(
        Image.fromarray(pixels).resize((round(w * scale), round(h * scale)), resample)
    )


def _exif_rotated(pixels: np.ndarray) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 8  # stored turned clockwise; the viewer turns it back
    return encode(
        np.ascontiguousarray(np.rot90(pixels, k=-1)), "JPEG", quality=90, exif=exif.tobytes()
    )


# Copies that show the same picture: (id, make bytes from the original pixels)
SAME_PICTURE: list[tuple[str, Callable[[np.ndarray], bytes]]] = [
    ("jpeg-q95", lambda p: encode(p, "JPEG", quality=95)),
    ("jpeg-q75", lambda p: encode(p, "JPEG", quality=75)),
    ("jpeg-q40", lambda p: encode(p, "JPEG", quality=40)),
    ("jpeg-q20", lambda p: encode(p, "JPEG", quality=20)),
    ("webp-q80", lambda p: encode(p, "WEBP", quality=80)),
    ("resize-half-jpeg-q75", lambda p: encode(_resize(p, 0.5), "JPEG", quality=75)),
    ("resize-half-bilinear-png", lambda p: encode(_resize(p, 0.5, Image.BILINEAR), "PNG")),
    ("exif-rotated-jpeg", _exif_rotated),
    ("palette-256", lambda p: encode(Image.fromarray(p).quantize(256), "PNG")),
    ("brighter-5pct", lambda p: encode(np.clip(p * 1.05, 0, 255).astype(np.uint8), "PNG")),
]

IDENTICAL_PICTURE: list[tuple[str, Callable[[np.ndarray], bytes]]] = [
    ("webp-lossless", lambda p: encode(p, "WEBP", lossless=True)),
    (
        "opaque-rgba-png",
        lambda p: encode(np.dstack([p, np.full(p.shape[:2], 255, np.uint8)]), "PNG"),
    ),
    ("bmp", lambda p: encode(p, "BMP")),
    ("tiff", lambda p: encode(p, "TIFF")),
]


def _paste_patch(p: np.ndarray) -> np.ndarray:
    out = p.copy()
    h, w = out.shape[:2]
    ph, pw = h // 5, w // 5
    out[h // 3 : h // 3 + ph, w // 2 : w // 2 + pw] = p[:ph, :pw]  # another part of the picture
    return out


def _crop20(p: np.ndarray) -> np.ndarray:
    h, w = p.shape[:2]
    return np.ascontiguousarray(p[: int(h * 0.8), : int(w * 0.8)])


NOT_SAME_PICTURE: list[tuple[str, Callable[[np.ndarray], bytes]]] = [
    ("crop-20pct", lambda p: encode(_crop20(p), "PNG")),
    ("pasted-patch", lambda p: encode(_paste_patch(p), "JPEG", quality=92)),
    ("horizontal-flip", lambda p: encode(np.ascontiguousarray(p[:, ::-1]), "PNG")),
    ("rotated-90", lambda p: encode(np.ascontiguousarray(np.rot90(p)), "PNG")),
]


@pytest.mark.parametrize(("photo", "pixels"), PHOTOS, ids=PHOTO_IDS)
@pytest.mark.parametrize(("case", "make"), SAME_PICTURE, ids=[c for c, _ in SAME_PICTURE])
def test_same_picture(photo: str, pixels: np.ndarray, case: str, make: Callable) -> None:
    result = compare(encode(pixels, "PNG"), make(pixels))
    assert result.verdict is Verdict.SAME, (case, result.reasons)
    assert result.is_match


@pytest.mark.parametrize(("photo", "pixels"), PHOTOS, ids=PHOTO_IDS)
@pytest.mark.parametrize(("case", "make"), IDENTICAL_PICTURE, ids=[c for c, _ in IDENTICAL_PICTURE])
def test_identical_pixels(photo: str, pixels: np.ndarray, case: str, make: Callable) -> None:
    result = compare(encode(pixels, "PNG"), make(pixels))
    assert result.verdict is Verdict.IDENTICAL and result.rung == "pixels", result.reasons
    assert result.reasons[0] == "same pixels, different file"


@pytest.mark.parametrize(("photo", "pixels"), PHOTOS, ids=PHOTO_IDS)
@pytest.mark.parametrize(("case", "make"), NOT_SAME_PICTURE, ids=[c for c, _ in NOT_SAME_PICTURE])
def test_not_same_picture(photo: str, pixels: np.ndarray, case: str, make: Callable) -> None:
    result = compare(encode(pixels, "PNG"), make(pixels))
    assert result.verdict in (Verdict.SIMILAR, Verdict.DIFFERENT), (case, result.reasons)
    assert not result.is_match


def test_different_photographs_are_different() -> None:
    for (name_a, a), (name_b, b) in zip(PHOTOS, PHOTOS[1:] + PHOTOS[:1], strict=True):
        result = compare(a, b)
        assert result.verdict is Verdict.DIFFERENT, (name_a, name_b, result.reasons)


def test_pasted_patch_is_found_by_the_worst_region() -> None:
    pixels = PHOTOS[0][1]
    result = compare(pixels, _paste_patch(pixels))
    assert any("worst region" in r for r in result.reasons)
    x, y, w, h = result.metrics.worst_region
    height, width = pixels.shape[:2]
    # The worst tile overlaps the pasted rectangle.
    assert x < width // 2 + width // 5 and x + w > width // 2
    assert y < height // 3 + height // 5 and y + h > height // 3


def test_identical_bytes_stop_at_the_first_rung(tmp_path: Path) -> None:
    data = encode(PHOTOS[0][1], "JPEG", quality=80)
    (tmp_path / "a.jpg").write_bytes(data)
    result = compare(tmp_path / "a.jpg", data)
    assert result.verdict is Verdict.IDENTICAL and result.rung == "bytes"
    assert (result.a.width, result.a.height) == (PHOTOS[0][1].shape[1], PHOTOS[0][1].shape[0])


def test_metadata_only_difference_is_identical_pixels() -> None:
    pixels = PHOTOS[0][1]
    exif = Image.Exif()
    exif[0x010E] = "holiday"
    result = compare(encode(pixels, "PNG", exif=exif.tobytes()), encode(pixels, "PNG"))
    assert result.verdict is Verdict.IDENTICAL
    assert any("metadata differs" in r for r in result.reasons)


def test_alpha_only_difference_is_not_identical() -> None:
    pixels = PHOTOS[0][1]
    opaque = np.full(pixels.shape[:2], 255, np.uint8)
    holed = opaque.copy()
    holed[50:150, 50:150] = 0
    result = compare(np.dstack([pixels, opaque]), np.dstack([pixels, holed]))
    assert result.verdict is not Verdict.IDENTICAL
    assert result.metrics.ssim_channels is not None and len(result.metrics.ssim_channels) == 4


def test_colour_under_transparent_pixels_does_not_matter() -> None:
    pixels = PHOTOS[0][1]
    alpha = np.full(pixels.shape[:2], 255, np.uint8)
    alpha[:100] = 0
    other = pixels.copy()
    other[:100] = 0  # different hidden colour
    result = compare(np.dstack([pixels, alpha]), np.dstack([other, alpha]))
    assert result.verdict is Verdict.IDENTICAL


def test_greyscale_copy_is_a_policy_choice() -> None:
    pixels = PHOTOS[0][1]
    grey = encode(Image.fromarray(pixels).convert("L"), "PNG")
    default = compare(encode(pixels, "PNG"), grey)
    assert default.verdict is Verdict.SIMILAR
    assert any("greyscale" in r for r in default.reasons)
    lenient = compare(encode(pixels, "PNG"), grey, policy=Policy(greyscale_is_same=True))
    assert lenient.verdict is Verdict.SAME


# --- what counts as the same picture: explicit policy switches ---------------------------------


def _mirror(p: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(p[:, ::-1])


def _turn(p: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(p))


def _crop_each_side(p: np.ndarray, keep: float) -> np.ndarray:
    h, w = p.shape[:2]
    dy, dx = round(h * (1 - keep) / 2), round(w * (1 - keep) / 2)
    return np.ascontiguousarray(p[dy : h - dy, dx : w - dx])


# (id, make the copy, relation found, the switch that makes it "same")
SWITCHED: list[tuple[str, Callable[[np.ndarray], bytes], str, dict[str, object]]] = [
    ("mirror-png", lambda p: encode(_mirror(p), "PNG"), "mirror", {"flip_is_same": True}),
    (
        "mirror-jpeg-q75",
        lambda p: encode(_mirror(p), "JPEG", quality=75),
        "mirror",
        {"flip_is_same": True},
    ),
    ("rotated-90-png", lambda p: encode(_turn(p), "PNG"), "rotation", {"rotation_is_same": True}),
    (
        "rotated-180-jpeg-q85",
        lambda p: encode(np.ascontiguousarray(p[::-1, ::-1]), "JPEG", quality=85),
        "rotation",
        {"rotation_is_same": True},
    ),
    (
        "crop-80pct-centre",
        lambda p: encode(_crop_each_side(p, 0.8), "PNG"),
        "crop",
        {"crop_is_same": True},
    ),
    (
        "crop-80pct-half-size-jpeg",
        lambda p: encode(_resize(_crop_each_side(p, 0.8), 0.5), "JPEG", quality=85),
        "crop",
        {"crop_is_same": True},
    ),
]


@pytest.mark.parametrize(("photo", "pixels"), PHOTOS, ids=PHOTO_IDS)
@pytest.mark.parametrize(
    ("case", "make", "relation", "switch"), SWITCHED, ids=[c[0] for c in SWITCHED]
)
def test_relations_are_similar_by_default_and_same_with_their_switch(
    photo: str,
    pixels: np.ndarray,
    case: str,
    make: Callable[[np.ndarray], bytes],
    relation: str,
    switch: dict[str, object],
) -> None:
    original, copy = encode(pixels, "PNG"), make(pixels)
    default = compare(original, copy)
    assert default.verdict is Verdict.SIMILAR, (case, default.reasons)
    assert default.relation == relation, default.reasons
    name = next(iter(switch))
    assert any(f"policy {name} is off" in r for r in default.reasons), default.reasons
    switched = compare(original, copy, policy=Policy().with_(**switch))
    assert switched.verdict is Verdict.SAME, (case, switched.reasons)
    assert switched.relation == relation
    assert any(f"policy {name} is on" in r for r in switched.reasons), switched.reasons


def test_a_small_crop_stays_similar_under_crop_is_same() -> None:
    pixels = PHOTOS[0][1]
    h, w = pixels.shape[:2]
    small = np.ascontiguousarray(pixels[h // 4 : h // 4 + h // 3, w // 4 : w // 4 + w // 3])
    policy = Policy(crop_is_same=True)  # min_crop_area 0.5 by default; this crop shows 11 %
    result = compare(encode(pixels, "PNG"), encode(small, "PNG"), policy=policy)
    assert result.verdict is Verdict.SIMILAR and result.relation == "crop", result.reasons
    assert any("min_crop_area" in r for r in result.reasons)


@pytest.mark.parametrize(
    ("case", "make"),
    [
        ("crop-1px-right", lambda p: np.ascontiguousarray(p[:, :-1])),
        ("crop-1px-all-sides", lambda p: np.ascontiguousarray(p[1:-1, 1:-1])),
        ("border-1px-black", lambda p: np.pad(p, ((1, 1), (1, 1), (0, 0)))),
    ],
    ids=["crop-1px-right", "crop-1px-all-sides", "border-1px-black"],
)
def test_a_trimmed_edge_or_a_thin_border_is_the_same_picture(
    case: str, make: Callable[[np.ndarray], np.ndarray]
) -> None:
    pixels = PHOTOS[0][1]
    result = compare(encode(pixels, "PNG"), encode(make(pixels), "PNG"))
    assert result.verdict is Verdict.SAME, (case, result.reasons)


def test_relations_can_be_switched_off() -> None:
    pixels = PHOTOS[0][1]
    mirrored = encode(_mirror(pixels), "PNG")
    result = compare(encode(pixels, "PNG"), mirrored, policy=Policy(find_relations=False))
    assert result.relation is None
    assert not result.is_match
    assert result.evidence is not None and result.evidence.relations == ()


def test_evidence_can_be_judged_again_under_another_policy() -> None:
    from samepix.verdict import decide

    pixels = PHOTOS[0][1]
    original, mirrored = encode(pixels, "PNG"), encode(_mirror(pixels), "JPEG", quality=90)
    default = compare(original, mirrored)
    lenient = Policy(flip_is_same=True)
    assert default.evidence is not None
    verdict, reasons = decide(default.evidence, lenient)
    assert verdict is compare(original, mirrored, policy=lenient).verdict is Verdict.SAME
    assert "b is a mirror image of a (left-right)" in reasons


@pytest.mark.parametrize(
    ("setting", "value"),
    [("min_crop_area", 0.0), ("min_crop_area", 1.5), ("max_trim", -0.1), ("max_trim", 1.0)],
    ids=["min-crop-area-zero", "min-crop-area-above-one", "max-trim-negative", "max-trim-one"],
)
def test_policy_rejects_impossible_switch_settings(setting: str, value: float) -> None:
    from samepix import UsageError

    with pytest.raises(UsageError, match=setting):
        Policy().with_(**{setting: value})


def test_local_change_sees_an_edit_but_not_an_even_loss() -> None:
    pixels = PHOTOS[0][1]
    original = encode(pixels, "PNG")
    edited = compare(original, encode(_paste_patch(pixels), "PNG"))
    jpeg_q20 = compare(original, encode(pixels, "JPEG", quality=20))
    policy = Policy()
    assert edited.metrics.local_change is not None and jpeg_q20.metrics.local_change is not None
    assert edited.metrics.local_change > policy.max_local_change > jpeg_q20.metrics.local_change
    assert any("local change" in r for r in edited.reasons)
    x, y, w, h = edited.metrics.local_change_region or (0, 0, 0, 0)
    height, width = pixels.shape[:2]
    assert x < width // 2 + width // 5 and x + w > width // 2  # over the pasted rectangle
    assert y < height // 3 + height // 5 and y + h > height // 3


def test_structure_map_ignores_brightness_and_contrast() -> None:
    from samepix.regions import local_change, structure_map

    grey = np.asarray(Image.fromarray(PHOTOS[0][1]).convert("L")).astype(np.float64)
    toned = np.clip((grey - 128) * 0.9 + 140, 0, 255).astype(np.uint8)  # flatter and brighter
    structure = structure_map(grey.astype(np.uint8), toned)
    assert float(np.median(structure.cs)) > 0.99
    assert local_change(structure, Policy().region_fraction)[0] < 0.05


def test_worst_region_windows_overlap_so_an_edit_on_a_tile_edge_is_not_diluted() -> None:
    from samepix.regions import worst_region

    ssim_map = np.ones((400, 600), np.float32)
    # A 50×50 edit centred on the corner where four 50-px grid tiles meet.
    ssim_map[175:225, 275:325] = 0.0
    value, (x, y, w, h) = worst_region(ssim_map, 50 / 400)
    # A disjoint 50-px grid sees at most a quarter of the edit in any tile (mean 0.75); the
    # half-overlapping windows contain it whole.
    assert value < 0.1
    assert x - 5 <= 275 and y - 5 <= 175 and x - 5 + w >= 325 and y - 5 + h >= 225


def test_webp_of_a_grey_picture_is_the_grey_picture() -> None:
    # WebP is always YUV 4:2:0: a grey picture comes back with channels a level apart.
    grey = np.asarray(Image.fromarray(PHOTOS[0][1]).convert("L"))
    result = compare(encode(grey, "PNG"), encode(grey, "WEBP", quality=75))
    assert result.verdict is Verdict.SAME, result.reasons
    assert not any("greyscale" in r for r in result.reasons)


def test_greyscale_saved_as_rgb_jpeg_is_still_a_greyscale_copy() -> None:
    pixels = PHOTOS[0][1]
    grey_rgb = np.dstack([np.asarray(Image.fromarray(pixels).convert("L"))] * 3)
    result = compare(encode(pixels, "PNG"), encode(grey_rgb, "JPEG", quality=90))
    assert result.verdict is Verdict.SIMILAR
    assert any("greyscale" in r for r in result.reasons)


def test_a_crop_enlarged_back_to_full_size_is_a_crop_even_when_it_passes_as_it_stands() -> None:
    # A 10 % crop of a smooth picture, enlarged back, scores SSIM ~0.7 against the original as
    # it stands; found as a crop it scores ~0.99, and the crop is the better account.
    skimage_data = pytest.importorskip("skimage.data")
    rocket = np.asarray(skimage_data.rocket())
    h, w = rocket.shape[:2]
    zoom = _resize(_crop_each_side(rocket, 0.9), 1.0)
    zoom = np.asarray(Image.fromarray(zoom).resize((w, h), Image.LANCZOS))
    result = compare(encode(rocket, "PNG"), encode(zoom, "PNG"))
    assert result.verdict is Verdict.SIMILAR and result.relation == "crop", result.reasons


def test_grey_stored_as_rgb_equals_grey() -> None:
    grey = np.asarray(Image.fromarray(PHOTOS[0][1]).convert("L"))
    result = compare(encode(grey, "PNG"), encode(np.dstack([grey] * 3), "PNG"))
    assert result.verdict is Verdict.IDENTICAL


def test_tiny_images_fall_back_to_nrmse() -> None:
    tiny = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
    result = compare(tiny, np.clip(tiny.astype(int) + 2, 0, 255).astype(np.uint8))
    assert result.metrics.ssim is None and result.metrics.nrmse is not None
    assert result.verdict is Verdict.SAME
    assert any("too small for SSIM" in r for r in result.reasons)


def test_ms_ssim_skipped_on_small_images() -> None:
    small = PHOTOS[0][1][:100, :150]
    result = compare(small, encode(small, "JPEG", quality=80))
    assert result.metrics.ms_ssim is None and result.metrics.ssim is not None


def test_resize_is_reported() -> None:
    pixels = PHOTOS[0][1]
    result = compare(encode(pixels, "PNG"), encode(_resize(pixels, 0.5), "JPEG", quality=85))
    h, w = pixels.shape[:2]
    assert any(f"resized {w}×{h} → {round(w / 2)}×{round(h / 2)}" in r for r in result.reasons)
    assert result.metrics.compared_size == (round(w / 2), round(h / 2))


def test_strong_recolouring_is_not_same() -> None:
    pixels = PHOTOS[0][1]
    swapped = np.ascontiguousarray(pixels[:, :, ::-1])  # R and B exchanged
    result = compare(pixels, swapped)
    assert not result.is_match


def test_prepared_images_are_reused() -> None:
    a = load(encode(PHOTOS[0][1], "PNG"))
    b = load(encode(PHOTOS[0][1], "JPEG", quality=70))
    first, second = compare(a, b), compare(a, b)
    assert first == second
    assert a.hashes is a.hashes  # computed once


def test_to_dict_is_json_ready() -> None:
    import json

    result = compare(PHOTOS[0][1], encode(PHOTOS[0][1], "JPEG", quality=60))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["verdict"] == "same" and data["match"] is True
    for key in ("ssim", "ssim_min_channel", "ms_ssim", "nrmse", "psnr", "worst_region_ssim"):
        assert isinstance(data["metrics"][key], float), key
    assert set(data["metrics"]["hash_distances"]) == {"ahash", "dhash", "phash", "whash"}
    assert data["a"]["width"] == PHOTOS[0][1].shape[1]


def test_public_api_is_curated() -> None:
    assert "compare" in samepix.__all__ and "Policy" in samepix.__all__
    with pytest.raises(AttributeError):
        samepix.not_a_thing  # noqa: B018


# --- properties -------------------------------------------------------------------------------

images = hnp.arrays(
    np.uint8,
    st.tuples(st.integers(12, 40), st.integers(12, 40), st.just(3)),
    elements=st.integers(0, 255),
)


@settings(max_examples=25, deadline=None)
@given(images)
def test_compare_with_itself_is_identical(pixels: np.ndarray) -> None:
    result = compare(pixels, pixels.copy())
    assert result.verdict is Verdict.IDENTICAL


@settings(max_examples=25, deadline=None)
@given(images, st.integers(0, 2**32 - 1))
def test_metrics_are_symmetric(pixels: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    noisy = np.clip(pixels + rng.normal(0, 8, pixels.shape), 0, 255).astype(np.uint8)
    ab, ba = compare(pixels, noisy), compare(noisy, pixels)
    assert ab.verdict == ba.verdict
    for key in ("ssim", "ssim_min_channel", "nrmse", "psnr", "worst_region_ssim"):
        x, y = getattr(ab.metrics, key), getattr(ba.metrics, key)
        assert x == pytest.approx(y, abs=1e-6), key
    assert ab.metrics.hash_distances == ba.metrics.hash_distances


def test_png_and_webp_round_trip_in_memory() -> None:
    pixels = PHOTOS[1][1]
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="WEBP", lossless=True)
    assert compare(pixels, buf.getvalue()).verdict is Verdict.IDENTICAL


def test_compare_function_is_not_shadowed_by_its_module() -> None:
    import subprocess
    import sys

    # Accessing samepix.load (or Library) imports the samepix.compare module first.
    code = "import samepix; samepix.load; import samepix.library; print(callable(samepix.compare))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


# ---------------------------------------------------------------------------------------------
# Transparent graphics: an icon and its resize (issue 9)


def _icon(kind: int, size: int = 128, under: tuple[int, int, int] = (0, 0, 0)) -> Image.Image:
    """A drawn icon on a transparent background (4× supersampled edges, so they are soft)."""
    from PIL import ImageDraw

    s = size * 4
    big = Image.new("RGBA", (s, s), (*under, 0))
    draw = ImageDraw.Draw(big)
    if kind == 0:
        draw.ellipse((s * 0.1, s * 0.1, s * 0.9, s * 0.9), fill=(220, 40, 40, 255))
        draw.rectangle((s * 0.35, s * 0.3, s * 0.65, s * 0.7), fill=(255, 255, 255, 255))
    else:
        draw.polygon([(s * 0.5, s * 0.05), (s * 0.95, s * 0.9), (s * 0.05, s * 0.9)], (40, 90, 220))
        draw.ellipse((s * 0.4, s * 0.45, s * 0.6, s * 0.65), fill=(255, 220, 0, 255))
    return big.resize((size, size), Image.Resampling.BOX)


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "resample",
    [Image.Resampling.LANCZOS, Image.Resampling.BILINEAR, Image.Resampling.BOX],
    ids=["lanczos", "bilinear", "box"],
)
def test_transparent_icon_and_its_resize_are_same(resample: Image.Resampling) -> None:
    icon = _icon(0)
    result = compare(_png(icon), _png(icon.resize((64, 64), resample)))
    assert result.verdict is Verdict.SAME, result.reasons
    # Premultiplied resize: the edges are neither darkened nor brightened.
    assert result.metrics.psnr is not None and result.metrics.psnr > 30


def test_colour_under_transparent_pixels_does_not_count() -> None:
    white_under = _icon(0, under=(255, 255, 255))
    arr = np.asarray(white_under).copy()
    arr[arr[:, :, 3] == 0, :3] = (0, 255, 0)  # another invisible colour
    result = compare(_png(white_under), _png(Image.fromarray(arr)))
    assert result.verdict is Verdict.IDENTICAL
    resized = compare(_png(Image.fromarray(arr)), _png(white_under.resize((64, 64))))
    assert resized.verdict is Verdict.SAME, resized.reasons


@pytest.mark.parametrize("size", [128, 64])
def test_different_icons_on_transparent_backgrounds_stay_not_same(size: int) -> None:
    result = compare(_png(_icon(0)), _png(_icon(1).resize((size, size))))
    assert not result.is_match, result.reasons


@pytest.mark.parametrize(
    ("shape", "size"),
    [((480, 640, 3), (333, 251)), ((1001, 997, 3), (64, 63)), ((300, 400), (123, 77))],
    ids=["rgb-odd-scale", "rgb-small", "grey"],
)
def test_resize_with_alpha_plane_by_plane_gives_the_whole_array_result(
    shape: tuple[int, ...], size: tuple[int, int]
) -> None:
    # resize_with_alpha weighs one plane at a time (to bound its memory); it must give exactly
    # what weighing every plane at once gives.
    import cv2

    from samepix.align import resize_with_alpha

    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, shape, dtype=np.uint8)
    alpha = rng.integers(0, 256, shape[:2], dtype=np.uint8)
    alpha[:50] = 0
    weight = alpha.astype(np.float32)
    weighted = arr.astype(np.float32) * (weight[:, :, None] if arr.ndim == 3 else weight)
    colour = cv2.resize(weighted, size, interpolation=cv2.INTER_AREA)
    coverage = cv2.resize(weight, size, interpolation=cv2.INTER_AREA)
    shown = np.maximum(coverage, np.float32(1e-6))
    colour = colour / (shown[:, :, None] if colour.ndim == 3 else shown)
    expected = np.clip(np.rint(colour), 0, 255).astype(np.uint8)
    expected_alpha = np.clip(np.rint(coverage), 0, 255).astype(np.uint8)
    expected[expected_alpha == 0] = 0
    out, out_alpha = resize_with_alpha(arr, alpha, size)
    assert np.array_equal(out, expected)
    assert np.array_equal(out_alpha, expected_alpha)


# ---------------------------------------------------------------------------------------------
# max_side: the size dupes confirms at


@pytest.mark.parametrize(
    ("half", "fact", "capped_size"),
    [(False, None, (320, 213)), (True, "resized 768×512 → 384×256 (a)", (384, 256))],
    ids=["one-size-shrunk-alike", "two-sizes-at-the-smaller"],
)
def test_max_side_shrinks_a_pair_of_one_size_and_keeps_the_facts_of_the_files(
    half: bool, fact: str | None, capped_size: tuple[int, int]
) -> None:
    """A pair of one size is measured shrunk to max_side; a resized copy is measured at its own
    size, as without max_side (shrinking it again would resample it twice: a 561 px copy of a
    1,024 px picture, both taken to 512, read as a local edit)."""
    name, x = _photos()[0]
    x = np.ascontiguousarray(x[:512, :768])
    copy = (
        encode(Image.fromarray(x).resize((384, 256), Image.Resampling.LANCZOS), "PNG")
        if half
        else encode(x, "JPEG", quality=80)
    )
    full = compare(encode(x, "PNG"), copy)
    capped = compare(encode(x, "PNG"), copy, max_side=320)
    assert capped.verdict == full.verdict == Verdict.SAME, name
    assert capped.metrics.compared_size == capped_size
    assert full.metrics.compared_size == ((384, 256) if half else (768, 512))
    # What the reasons say of the two files is the same; the numbers move, and a pair shrunk
    # says the size they are of.
    facts = [r for r in full.reasons if "SSIM" not in r and "PSNR" not in r]
    shrunk = [] if half else ["measured at 320×213"]
    assert [r for r in capped.reasons if "SSIM" not in r and "PSNR" not in r] == facts + shrunk
    assert (fact in facts) if fact else not any("resized" in r for r in facts)
    if half:
        assert capped.to_dict() == full.to_dict()
    else:
        assert capped.metrics.ssim is not None and full.metrics.ssim is not None
        assert abs(capped.metrics.ssim - full.metrics.ssim) < 0.05


def test_max_side_leaves_a_pair_smaller_than_it_as_it_is() -> None:
    x = _photos()[0][1][:200, :300]
    a, b = encode(x, "PNG"), encode(x, "JPEG", quality=70)
    assert compare(a, b, max_side=512).to_dict() == compare(a, b).to_dict()


def test_max_side_measures_at_full_size_a_pair_the_cap_cannot_settle() -> None:
    """A small caption: shrunk to 256 px it passes every test for ``same`` (its local change
    drops below the policy's), so the capped measurement must not settle it; measured again at
    full size, it is ``similar`` (an edit), as without max_side."""
    from dataclasses import replace

    from PIL import ImageDraw

    from samepix.compare import _compare, settled_at_cap
    from samepix.limits import DEFAULT_LIMITS
    from samepix.policy import DEFAULT_POLICY
    from samepix.verdict import decide_all

    x = _photos()[0][1]
    im = Image.fromarray(x)
    ImageDraw.Draw(im).text((x.shape[1] * 2 // 3, x.shape[0] * 3 // 4), "samepix 2026",
                            fill=(255, 255, 255), font_size=14)  # fmt: skip
    a, b = encode(x, "PNG"), encode(np.asarray(im), "PNG")
    _, found = _compare(
        a, b, policy=DEFAULT_POLICY, limits=DEFAULT_LIMITS, keep_map=False, exhaustive=True,
        max_side=256,
    )  # fmt: skip
    assert found is not None
    at_cap = replace(found.primary.evidence, relations=())
    assert decide_all(at_cap, DEFAULT_POLICY).verdict == Verdict.SAME  # the cap alone misses it
    assert not settled_at_cap(at_cap, DEFAULT_POLICY)
    capped, full = compare(a, b, max_side=256), compare(a, b)
    assert capped.verdict == full.verdict == Verdict.SIMILAR
    assert capped.metrics.compared_size == full.metrics.compared_size == (x.shape[1], x.shape[0])


def _hue_rotated(p: np.ndarray) -> np.ndarray:
    hsv = np.asarray(Image.fromarray(p).convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + 85) % 256  # a third of the way round
    return np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"))


@pytest.mark.parametrize(
    ("case", "make_b"),
    [
        ("another photograph", lambda p, other: other),
        ("hue rotated", lambda p, other: _hue_rotated(p)),
    ],
    ids=["another-photograph", "hue-rotated"],
)
def test_max_side_settles_a_pair_that_clearly_fails_at_the_cap(
    case: str, make_b: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> None:
    """A pair that fails SSIM or the colour test by a wide margin at the cap fails at full size
    too: it is decided at the cap (``compared_size`` says so), with full size's verdict."""
    x = PHOTOS[0][1]
    other = np.asarray(Image.fromarray(PHOTOS[1][1]).resize((x.shape[1], x.shape[0])))
    a, b = encode(x, "PNG"), encode(make_b(x, other), "PNG")
    capped, full = compare(a, b, max_side=256), compare(a, b)
    assert capped.verdict == full.verdict != Verdict.SAME
    assert capped.metrics.compared_size is not None
    assert max(capped.metrics.compared_size) == 256
    assert full.metrics.compared_size == (x.shape[1], x.shape[0])


def test_a_failure_by_local_change_alone_is_never_settled_at_the_cap() -> None:
    """An edit that reads clearly at the cap can hide in full size's JPEG noise (a watermark:
    local change 0.49 at 512 px, under 0.35 at full size): only full size decides it."""
    from dataclasses import replace

    from samepix.compare import _compare, settled_at_cap
    from samepix.limits import DEFAULT_LIMITS
    from samepix.policy import DEFAULT_POLICY

    x = PHOTOS[0][1]
    a, b = encode(x, "PNG"), encode(x, "JPEG", quality=90)
    _, found = _compare(
        a, b, policy=DEFAULT_POLICY, limits=DEFAULT_LIMITS, keep_map=False, exhaustive=True,
        max_side=256,
    )  # fmt: skip
    assert found is not None
    passing = replace(found.primary.evidence, relations=())
    assert settled_at_cap(passing, DEFAULT_POLICY)  # as it is: the same picture by wide margins
    edited = replace(passing, local_change=0.9)  # fails, but on local change alone
    assert not settled_at_cap(edited, DEFAULT_POLICY)
    recoloured = replace(passing, colour_shift=DEFAULT_POLICY.max_colour_shift + 5.0)
    assert settled_at_cap(recoloured, DEFAULT_POLICY)

"""Every file of ../shared/data/hostile gives a result or one samepix error, in bounded memory.

Each file reproduces a class of input that once broke samepix (its README says which): a foreign
exception, a silent wrong result, a refused-but-decodable file, a memory blow-up, chatter on
stderr. Through the API each gives a :class:`~samepix.errors.SamepixError` or a result, with the
verdict expected where one is known; through the CLI, a verdict or exit status 2 with one
``error:`` line and nothing else on stderr.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samepix import compare, load
from samepix.decode import draft_grey, read_info
from samepix.errors import DecodeError, LimitExceeded, SamepixError
from samepix.sources import read_source

from .conftest import shared_file
from .helpers import ROOT


def hostile(name: str) -> Path:
    return shared_file("hostile", name)


# What each file must give: "result" (decodes), or the words its one-line error must contain.
EXPECTED: dict[str, tuple[str, ...] | str] = {
    "hopper.png": "result",
    "hopper_idat_corrupt.png": ("hopper_idat_corrupt.png", "corrupt"),
    "g4_orientation_1.tif": "result",
    "g4_orientation_6.tif": "result",
    "rgb_trns.png": "result",
    "rgb_trns_as_rgba.png": "result",
    "extreme_64x1.png": "result",
    "extreme_64x1_b.png": "result",
    "junk_jpeg_header.jpg": "result",
    "jpeg_ff00_header.jpg": "result",
    "gif_frames_indexerror.gif": ("gif_frames_indexerror.gif",),
    "gif_struct_error.gif": ("gif_struct_error.gif",),
    "jpeg_bad_icc.jpg": "result",  # an unusable profile is ignored, as browsers ignore it
    "tiff_missing_dimensions.tif": ("tiff_missing_dimensions.tif",),
    "tiff_ifdrational.tif": ("tiff_ifdrational.tif",),
    "tiff_unknown_mode.tif": ("tiff_unknown_mode.tif",),
    "tiff_libtiff_stderr.tif": ("tiff_libtiff_stderr.tif", "corrupt"),
    "png16_truncated_150MP.png": ("png16_truncated_150MP.png", "truncated"),
    "webp_tiny_file_huge_canvas.webp": ("webp_tiny_file_huge_canvas.webp",),
    "small_100x100.png": "result",
}
# Valid but big (196–200 MP): decoded in the memory test below, in a subprocess of their own.
BIG = ("legal_14000x14000_16bit.png", "tiff_14142x14142_grey_deflate.tif")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_api_gives_a_result_or_a_samepix_error(name: str) -> None:
    path = hostile(name)
    expected = EXPECTED[name]
    if expected == "result":
        prepared = load(path)
        assert prepared.pixels.size > 0
        assert len(prepared.hashes.distances(prepared.hashes)) > 0
        info = read_info(read_source(path))
        assert (info.width, info.height) == (prepared.info.width, prepared.info.height)
        return
    with pytest.raises(SamepixError) as caught:
        load(path)
    message = str(caught.value)
    assert "\n" not in message
    for needle in expected:
        assert needle in message, (needle, message)
    # The hashing decode and the header read fail with samepix errors too, or succeed.
    blob = read_source(path)
    for call in (draft_grey, read_info):
        with contextlib.suppress(SamepixError):
            call(blob)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cli_gives_a_verdict_or_one_error_line(name: str) -> None:
    path = hostile(name)
    proc = _cli("compare", str(path), str(hostile("small_100x100.png")))
    _assert_clean(proc, EXPECTED[name])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "samepix", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def _assert_clean(proc: subprocess.CompletedProcess[str], expected: tuple[str, ...] | str) -> None:
    if expected == "result":
        assert proc.returncode in (0, 1), (proc.returncode, proc.stderr)
        assert proc.stderr == "", proc.stderr
        return
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "internal error" not in lines[0]
    for needle in expected:
        assert needle in lines[0], (needle, lines[0])


# ---------------------------------------------------------------------------------------------
# The verdicts known for the pairs


@pytest.mark.parametrize(
    ("a", "b", "verdicts"),
    [
        pytest.param(
            "g4_orientation_1.tif", "g4_orientation_6.tif", ("identical", "same"), id="tiff-orient"
        ),
        pytest.param("rgb_trns.png", "rgb_trns_as_rgba.png", ("identical",), id="trns-vs-rgba"),
        pytest.param("extreme_64x1.png", "extreme_64x1_b.png", None, id="64x1-pair"),
        pytest.param("hopper.png", "small_100x100.png", ("similar", "different"), id="unrelated"),
    ],
)
def test_pair_verdicts(a: str, b: str, verdicts: tuple[str, ...] | None) -> None:
    result = compare(hostile(a), hostile(b))
    if verdicts is not None:
        assert result.verdict.value in verdicts, (result.verdict, result.reasons)
    proc = _cli("compare", str(hostile(a)), str(hostile(b)))
    assert proc.returncode in (0, 1) and proc.stderr == "", proc.stderr


@pytest.mark.parametrize("name", ["junk_jpeg_header.jpg", "jpeg_ff00_header.jpg"])
def test_jpeg_libjpeg_only_warns_about_decodes_as_pillow_does(name: str) -> None:
    path = hostile(name)
    with Image.open(path) as im:
        expected = np.asarray(im.convert("RGB"))
    got = load(path).pixels
    assert got.shape == expected.shape
    assert np.array_equal(got, expected)


def test_trns_alpha_is_kept() -> None:
    decoded = load(hostile("rgb_trns.png")).decoded
    assert decoded.alpha is not None and decoded.info.has_alpha
    rgba = load(hostile("rgb_trns_as_rgba.png")).decoded
    assert decoded.alpha is not None and rgba.alpha is not None
    assert np.array_equal(decoded.alpha, rgba.alpha)


# ---------------------------------------------------------------------------------------------
# Bounded time and memory


# A small launcher: the measured command's ru_maxrss then counts only its own pages (Linux keeps
# the parent's high-water mark across fork/vfork + exec, so a big parent would be counted).
PEAK_LAUNCHER = (
    "import os, sys; pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ); "
    "_, status, usage = os.wait4(pid, 0); "
    "open(sys.argv[1], 'w').write(f'{usage.ru_maxrss * 1024} {os.waitstatus_to_exitcode(status)}')"
)


def _peak_rss_of(args: list[str], timeout: float = 600) -> tuple[int, str, int]:
    """Run the CLI in a child; (exit status, stderr, that child's own peak RSS in bytes)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    with tempfile.NamedTemporaryFile("r") as report:
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                PEAK_LAUNCHER,
                report.name,
                sys.executable,
                "-m",
                "samepix",
                *args,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=True,
        )
        peak, code = (int(x) for x in report.read().split())
    return code, proc.stderr, peak


@pytest.mark.parametrize(
    "name",
    ["png16_truncated_150MP.png", "webp_tiny_file_huge_canvas.webp"],
)
def test_files_declaring_more_than_their_bytes_hold_fail_early(name: str) -> None:
    code, stderr, peak = _peak_rss_of(
        ["compare", str(hostile(name)), str(hostile("small_100x100.png"))]
    )
    assert code == 2, stderr
    assert len(stderr.splitlines()) == 1 and stderr.startswith("error: "), stderr
    assert peak < 400 * 2**20, f"peak RSS {peak / 2**20:.0f} MiB"


@pytest.mark.slow
@pytest.mark.parametrize("name", BIG)
def test_largest_legal_inputs_stay_under_the_memory_budget(name: str) -> None:
    code, stderr, peak = _peak_rss_of(
        ["compare", str(hostile(name)), str(hostile("small_100x100.png"))]
    )
    assert code in (0, 1), stderr
    assert stderr == "", stderr
    assert peak < 2 * 2**30, f"peak RSS {peak / 2**30:.2f} GiB over the 2 GiB default budget"


@pytest.mark.slow
def test_a_100_megapixel_still_webp_is_compared_within_the_budget(tmp_path: Path) -> None:
    # Pillow reads WebP through libwebp's animation decoder (~22 bytes a pixel with samepix's
    # arrays: 2.2 GiB here, so it used to be refused); decoded straight into numpy it fits.
    side = 10_000
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    pixels = np.empty((side, side, 3), np.uint8)
    for c in range(3):
        pixels[:, :, c] = (ramp[:, None] * (c + 1) + ramp[None, :] * (3 - c)) / 6
    big = tmp_path / "big.webp"
    Image.fromarray(pixels).save(big, quality=50, method=0)
    del pixels
    code, stderr, peak = _peak_rss_of(["compare", str(big), str(hostile("small_100x100.png"))])
    assert code == 1, stderr
    assert stderr == "", stderr
    assert peak < 1 * 2**30, f"peak RSS {peak / 2**30:.2f} GiB"


def test_memory_budget_refuses_early_with_a_clear_message() -> None:
    code, stderr, peak = _peak_rss_of(
        [
            "compare",
            str(hostile("legal_14000x14000_16bit.png")),
            str(hostile("small_100x100.png")),
            "--max-memory",
            "256M",
        ]
    )
    assert code == 2, stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert "--max-memory" in stderr and "legal_14000x14000_16bit.png" in stderr
    assert peak < 300 * 2**20


def test_api_memory_budget_is_a_limit_exceeded() -> None:
    from samepix.limits import Limits

    with pytest.raises(LimitExceeded, match="memory"):
        load(hostile("legal_14000x14000_16bit.png"), limits=Limits(max_memory=256 * 2**20))


def test_decode_errors_are_decode_errors() -> None:
    with pytest.raises(DecodeError):
        load(hostile("hopper_idat_corrupt.png"))


# ---------------------------------------------------------------------------------------------
# --debug shows what the decoders said, before or after the command name


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_works_before_or_after_the_command(where: str) -> None:
    files = [str(hostile("tiff_libtiff_stderr.tif")), str(hostile("small_100x100.png"))]
    args = ["--debug", "compare", *files] if where == "before" else ["compare", *files, "--debug"]
    proc = _cli(*args)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr  # --debug shows the cause
    assert "debug: " in proc.stderr and "Using code not yet in table" in proc.stderr


def test_max_memory_value_is_checked() -> None:
    proc = _cli("compare", "a.png", "b.png", "--max-memory", "lots")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: --max-memory: 'lots' is not a size (e.g. 2G, 512M, 1500000000)"
    )


def _tiff_with_samples_per_pixel(tmp_path: Path, samples: int) -> Path:
    """A small RGB TIFF whose SamplesPerPixel tag says ``samples``."""
    import io
    import struct

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, "TIFF")
    data = bytearray(buf.getvalue())
    ifd = struct.unpack("<I", data[4:8])[0]
    for i in range(struct.unpack("<H", data[ifd : ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack("<H", data[entry : entry + 2])[0] == 277:  # SamplesPerPixel
            data[entry + 8 : entry + 10] = struct.pack("<H", samples)
    path = tmp_path / "samples.tif"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("command", ["compare", "probe"])
def test_pillow_log_records_do_not_reach_stderr(tmp_path: Path, command: str) -> None:
    # Found by fuzzing: Pillow's TIFF reader logs "More samples per pixel than can be decoded"
    # with logging.error; with no logging configured, Python's last-resort handler printed it
    # to stderr beside samepix's error line.
    tiff = _tiff_with_samples_per_pixel(tmp_path, 32259)
    extra = [str(hostile("small_100x100.png"))] if command == "compare" else []
    proc = _cli(command, str(tiff), *extra)
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("error: "), proc.stderr
    debug = _cli("--debug", command, str(tiff), *extra)
    assert "More samples per pixel" in debug.stderr  # --debug shows what Pillow said


def test_pillow_log_records_do_not_reach_stderr_through_the_api(tmp_path: Path) -> None:
    tiff = _tiff_with_samples_per_pixel(tmp_path, 32259)
    code = (
        f"import samepix\ntry:\n    samepix.load({str(tiff)!r})\n"
        "except samepix.DecodeError:\n    pass\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert proc.stderr == ""


def _one_frame_animation_with_damaged_data(tmp_path: Path) -> Path:
    """A WebP animation (VP8X + ANIM) holding one frame, its frame data damaged."""
    import io
    import struct

    picture = Image.new("RGB", (64, 48))
    picture.putdata(
        [(x * 4 % 256, y * 5 % 256, (x ^ y) % 256) for y in range(48) for x in range(64)]
    )
    buf = io.BytesIO()
    picture.save(buf, "WEBP", save_all=True, append_images=[picture.rotate(180)], lossless=True)
    data = buf.getvalue()
    chunks, pos = [], 12
    while pos < len(data):
        size = struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        chunks.append(data[pos : pos + 8 + size + (size & 1)])
        pos += 8 + size + (size & 1)
    frames = [c for c in chunks if c[:4] == b"ANMF"]
    body = b"WEBP" + b"".join(c for c in chunks if c[:4] != b"ANMF") + frames[0]
    damaged = bytearray(b"RIFF" + struct.pack("<I", len(body)) + body)
    damaged[-40:-10] = b"\xa5" * 30
    path = tmp_path / "one-frame.webp"
    path.write_bytes(bytes(damaged))
    return path


def test_opencv_log_lines_do_not_reach_stderr(tmp_path: Path) -> None:
    # Found by fuzzing: OpenCV's WebP reader logs "[ERROR:0@0.085] ... Failed to decode animated
    # WebP frame" on stderr when it refuses a one-frame animation (samepix then asks Pillow).
    webp = _one_frame_animation_with_damaged_data(tmp_path)
    proc = _cli("compare", str(webp), str(hostile("small_100x100.png")))
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert "corrupt" in proc.stderr


@pytest.mark.slow
def test_a_compare_resizing_an_image_with_alpha_stays_under_its_estimate(tmp_path: Path) -> None:
    # As found: resizing the larger image with its alpha made float32 copies of every plane at
    # once (28 bytes a pixel), which the estimate did not count: a 50 MP RGBA PNG against a
    # small JPEG peaked at 1.58 GiB with 0.59 GiB estimated, so the budget could be overrun.
    from samepix.decode import memory_facts
    from samepix.limits import compare_memory

    w, h = 7000, 3500
    x = np.linspace(0, 255, w, dtype=np.float32)
    y = np.linspace(0, 255, h, dtype=np.float32)
    rgba = np.empty((h, w, 4), np.uint8)
    rgba[:, :, 0] = x[None, :]
    rgba[:, :, 1] = y[:, None]
    rgba[:, :, 2] = 128
    rgba[:, :, 3] = (x[None, :] / 2 + 100).astype(np.uint8)
    big, small = tmp_path / "big.png", tmp_path / "small.jpg"
    Image.fromarray(rgba).save(big, compress_level=1)
    Image.fromarray(rgba).convert("RGB").resize((700, 350)).save(small, quality=90)
    del rgba
    estimate = compare_memory(
        memory_facts(read_source(str(big))), memory_facts(read_source(str(small)))
    )
    code, stderr, peak = _peak_rss_of(["compare", str(big), str(small)])
    assert code in (0, 1), stderr
    assert peak <= estimate, f"peak {peak / 2**20:.0f} MiB over the estimate {estimate / 2**20:.0f}"

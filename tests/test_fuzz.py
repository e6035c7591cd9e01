"""The fuzz harness (fuzz/fuzz_decode.py): a bounded smoke run, and one regression test for each
class of input it found."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, features

from samepix.decode import decode_blob, draft_grey, read_info
from samepix.errors import DecodeError, SamepixError
from samepix.sources import Blob

from .helpers import ROOT

HARNESS = ROOT / "fuzz" / "fuzz_decode.py"


def test_smoke_run_finds_nothing(tmp_path: Path) -> None:
    # 2,500 mutated inputs (about 20 s on a busy 2-core machine) through read_info, the hashing
    # decode and the full decode, under the watchdog; the long run is documented in
    # docs/hardening.md.
    out = str(tmp_path / "findings")
    proc = subprocess.run(
        [sys.executable, str(HARNESS), "--runs", "2500", "--seed", "2", "--quiet", "--out", out],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    last = proc.stdout.strip().splitlines()[-1]
    assert "executions=2500 foreign=0 crash=0 hang=0 memory=0" in last, proc.stderr[-3000:]
    assert proc.returncode == 0


def test_every_claimed_format_has_a_seed() -> None:
    sys.path.insert(0, str(HARNESS.parent))
    try:
        import fuzz_decode  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(HARNESS.parent))
    names = set(fuzz_decode.seeds())
    expected = {"jpeg-baseline", "jpeg-progressive", "jpeg-cmyk", "png-rgb", "png-palette-trns"}
    expected |= {"png-16bit", "apng", "gif-animated", "webp-lossy", "webp-lossless"}
    expected |= {"webp-animated", "tiff-deflate", "bmp", "ico"}
    if features.check("avif"):
        expected.add("avif")
    assert expected <= names
    for data in fuzz_decode.seeds().values():  # every seed decodes
        decode_blob(Blob(data, "seed"))


# ---------------------------------------------------------------------------------------------
# Regressions: one minimal input per class found


def _avif() -> bytes:
    if not features.check("avif"):
        pytest.skip("this Pillow reads no AVIF")
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 40)).save(buf, "AVIF", quality=60)
    return buf.getvalue()


def test_avif_without_an_image_item_is_a_decode_error() -> None:
    # Found by fuzz/: libavif's "Missing or empty image item" came out as a RuntimeError.
    data = b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00avifmif1" + b"\x00" * 16
    for call in (read_info, draft_grey, decode_blob):
        with pytest.raises(DecodeError, match=r"corrupt AVIF data|cannot be read"):
            call(Blob(data, "x.avif"))


def test_avif_with_damaged_colour_planes_is_a_decode_error() -> None:
    # Found by fuzz/: "Failed to decode frame 0: Decoding of color planes failed" (RuntimeError).
    data = bytearray(_avif())
    for i in range(len(data) - 24, len(data)):  # the coded planes are at the end (mdat)
        data[i] ^= 0x5A
    with pytest.raises(SamepixError):
        decode_blob(Blob(bytes(data), "x.avif"))


def test_watchdog_catches_crash_hang_memory_and_foreign(tmp_path: Path) -> None:
    # --selftest makes inputs 0-3 abort the worker, hang, hog 3 GiB and raise a foreign error.
    out = tmp_path / "findings"
    proc = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            "--runs",
            "6",
            "--selftest",
            "--quiet",
            "--out",
            str(out),
            "--timeout",
            "8",
            "--max-rss",
            "0.4",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 1
    assert "executions=6 foreign=1 crash=1 hang=1 memory=1" in proc.stdout, proc.stderr[-3000:]
    saved = {p.parent.name: p.read_bytes() for p in out.glob("*/*.bin")}
    assert saved == {
        "crash": b"selftest:crash",
        "hang": b"selftest:hang",
        "memory": b"selftest:memory",
        "foreign": b"selftest:foreign",
    }

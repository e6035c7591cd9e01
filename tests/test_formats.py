"""Formats users have, end to end: AVIF (Pillow reads it), HEIC/HEIF through the ``heif`` extra
(pillow-heif, registered on first use), and a clear message when that extra is missing."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from samepix import compare
from samepix.decode import read_info
from samepix.formats import sniff_format
from samepix.sources import Blob

from .helpers import ROOT, one_line_error, run_cli


def _picture() -> Image.Image:
    y, x = np.mgrid[0:96, 0:128]
    return Image.fromarray(np.dstack([x * 2, y * 2, (x + y) % 256]).astype(np.uint8))


def _encoded(fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    _picture().save(buf, fmt, **options)
    return buf.getvalue()


def _png() -> bytes:
    return _encoded("PNG")


def test_avif_end_to_end(tmp_path: Path) -> None:
    if not features.check("avif"):
        pytest.skip("this Pillow was built without AVIF")
    data = _encoded("AVIF", quality=90)
    assert sniff_format(data[:32]) == "AVIF"
    info = read_info(Blob(data, "x.avif"))
    assert (info.format, info.width, info.height) == ("AVIF", 128, 96)
    result = compare(data, _png())
    assert result.verdict.value == "same", result.reasons
    (tmp_path / "x.avif").write_bytes(data)
    (tmp_path / "x.png").write_bytes(_png())
    proc = run_cli("compare", str(tmp_path / "x.avif"), str(tmp_path / "x.png"), text=True)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "AVIF" in proc.stdout


def test_heic_end_to_end_with_the_extra(tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif", reason="the heif extra is not installed")
    pillow_heif.register_heif_opener()  # only to write the test file; samepix registers itself
    data = _encoded("HEIF", quality=90)
    assert sniff_format(data[:32]) == "HEIF"
    (tmp_path / "x.heic").write_bytes(data)
    (tmp_path / "x.png").write_bytes(_png())
    proc = run_cli("compare", str(tmp_path / "x.heic"), str(tmp_path / "x.png"), text=True)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "HEIF" in proc.stdout
    assert compare(data, _png()).verdict.value == "same"


def test_heic_without_the_extra_says_how_to_get_it(tmp_path: Path) -> None:
    # A HEIC file (written by hand: ftyp box, brand heic) and a pillow_heif that cannot import.
    heic = tmp_path / "photo.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    blocker = tmp_path / "blocked"
    blocker.mkdir()
    (blocker / "pillow_heif.py").write_text("raise ImportError('not installed')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(blocker), str(ROOT / "src")])}
    (tmp_path / "other.png").write_bytes(_png())
    proc = run_cli("compare", str(heic), str(tmp_path / "other.png"), env=env, text=True)
    one_line_error(proc, "photo.heic", "HEIC needs the heif extra: pip install samepix[heif]")


def test_heic_orientation_is_applied_once() -> None:
    pillow_heif = pytest.importorskip("pillow_heif", reason="the heif extra is not installed")
    pillow_heif.register_heif_opener()
    from samepix.decode import decode_blob

    picture = _picture()
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    picture.transpose(Image.Transpose.ROTATE_90).save(buf, "HEIF", quality=95, exif=exif.tobytes())
    decoded = decode_blob(Blob(buf.getvalue(), "turned.heic"))
    # libheif turns it (and pillow-heif reports orientation 1): samepix must not turn it again.
    assert decoded.pixels.shape[:2] == (96, 128)
    assert np.abs(decoded.pixels.astype(int) - np.asarray(picture)).mean() < 8

"""``samepix index``, ``find`` and ``dupes`` as a user runs them: real subprocesses, real folders,
a real local server; exit codes, JSON, one-line errors."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .helpers import Response, encode, http_server, one_line_error, run_cli

run = functools.partial(run_cli, text=True)

ROOT = Path(__file__).resolve().parents[1]


def picture(seed: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    from samepix.demo import make_picture

    return make_picture(seed, size)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    root.mkdir()
    for seed in (1, 2, 3):
        (root / f"p{seed}.jpg").write_bytes(encode(picture(seed), "JPEG", quality=90))
    (root / "p1-copy.png").write_bytes(encode(picture(1), "PNG"))
    (root / "broken.jpg").write_bytes(b"GIF? no: plain text")
    return root


def test_index_summary_and_json(folder: Path) -> None:
    proc = run("index", str(folder))
    assert proc.returncode == 0, proc.stderr
    assert "4 images (added 4, updated 0, moved 0, removed 0, unchanged 0" in proc.stdout
    assert "broken.jpg: text, not an image" in proc.stdout
    assert proc.stderr == ""  # no progress line when stderr is not a terminal
    (folder / "p3.jpg").rename(folder / "renamed.jpg")
    data = json.loads(run("index", str(folder), "--json").stdout)
    assert (data["moved"], data["unchanged"], data["decoded"]) == (1, 3, 0)
    assert data["moves"] == [{"from": "p3.jpg", "to": "renamed.jpg"}]
    assert [u["path"] for u in data["unreadable"]] == ["broken.jpg"]


def test_index_progress_when_asked(folder: Path) -> None:
    proc = run("index", str(folder), "--progress", "--workers", "2")
    assert proc.returncode == 0
    assert "decoding 5/5 100%" in proc.stderr  # four images and the broken file


def test_find_same_picture_exit_0(folder: Path, tmp_path: Path) -> None:
    query = tmp_path / "q.webp"
    small = np.asarray(Image.fromarray(picture(2)).resize((160, 120), Image.Resampling.LANCZOS))
    query.write_bytes(encode(small, "WEBP", quality=80))
    proc = run("find", str(query), "--in", str(folder))
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first == f"same: {folder / 'p2.jpg'}"
    assert "resized" in proc.stdout and "SSIM" in proc.stdout


def test_find_different_picture_exit_1(folder: Path, tmp_path: Path) -> None:
    query = tmp_path / "other.png"
    query.write_bytes(encode(picture(50), "PNG"))
    proc = run("find", str(query), "--in", str(folder))
    assert proc.returncode == 1
    assert proc.stdout.startswith("not found: ")


def test_find_url_json(folder: Path) -> None:
    body = encode(picture(1), "JPEG", quality=70)
    with http_server({"/a.jpg": Response(200, body, {"Content-Type": "image/jpeg"})}) as srv:
        proc = run("find", srv.url("/a.jpg"), "--in", str(folder), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["found"] is True
    assert {Path(m["path"]).name for m in data["matches"]} == {"p1.jpg", "p1-copy.png"}
    assert all(m["verdict"] == "same" for m in data["matches"])


def test_find_url_fetch_options(folder: Path) -> None:
    body = encode(picture(1), "JPEG", quality=70)
    calls = {"n": 0}

    def flaky(handler: object) -> Response:
        calls["n"] += 1  # the first try fails with a 503: find retries like compare does
        if calls["n"] == 1:
            return Response(503, b"busy")
        return Response(200, body, {"Content-Type": "image/jpeg"})

    with http_server({"/a.jpg": flaky}) as srv:
        assert run("find", srv.url("/a.jpg"), "--in", str(folder)).returncode == 0
        assert calls["n"] == 2
        refused = run("find", srv.url("/a.jpg"), "--in", str(folder), "--no-private")
        line = one_line_error(refused)
        assert "127.0.0.1" in line and calls["n"] == 2  # refused before connecting


def test_find_no_update_uses_the_index_as_is(folder: Path) -> None:
    assert run("index", str(folder)).returncode == 0
    (folder / "p9.jpg").write_bytes(encode(picture(9), "JPEG"))
    query = str(folder / "p9.jpg")
    assert run("find", query, "--in", str(folder), "--no-update").returncode == 1
    assert run("find", query, "--in", str(folder)).returncode == 0


def test_find_errors_are_one_line(folder: Path, tmp_path: Path) -> None:
    line = one_line_error(run("find", str(tmp_path / "missing.jpg"), "--in", str(folder)))
    assert "missing.jpg" in line
    line = one_line_error(run("find", str(folder / "p1.jpg"), "--in", str(tmp_path / "nope")))
    assert "no such folder" in line
    query = str(folder / "p1.jpg")
    line = one_line_error(run("find", query, "--in", str(folder), "--workers", "0"))
    assert "--workers" in line


def test_corrupted_index_then_rebuild(folder: Path) -> None:
    db = folder / ".samepix" / "index.db"
    db.parent.mkdir()
    db.write_bytes(b"\x00garbage" * 2000)
    line = one_line_error(run("find", str(folder / "p1.jpg"), "--in", str(folder)))
    assert str(db) in line and "samepix index --rebuild" in line
    line = one_line_error(run("index", str(folder)))
    assert str(db) in line
    proc = run("index", "--rebuild", str(folder))
    assert proc.returncode == 0 and "added 4" in proc.stdout
    assert run("find", str(folder / "p1.jpg"), "--in", str(folder)).returncode == 0


def test_db_elsewhere(folder: Path, tmp_path: Path) -> None:
    db = tmp_path / "state" / "pics.db"
    assert run("index", str(folder), "--db", str(db)).returncode == 0
    assert db.is_file() and not (folder / ".samepix").exists()
    proc = run("find", str(folder / "p3.jpg"), "--in", str(folder), "--db", str(db), "--json")
    assert json.loads(proc.stdout)["index_size"] == 4


def test_dupes(folder: Path) -> None:
    proc = run("dupes", str(folder))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "group 1: 2 copies"
    assert lines[1].startswith(f"  best: {folder / 'p1-copy.png'}  (320×240 PNG lossless")
    assert lines[2].startswith(f"  same: {folder / 'p1.jpg'}  (320×240 JPEG q≈90")
    data = json.loads(run("dupes", str(folder), "--json").stdout)
    assert len(data["groups"]) == 1 and data["groups"][0]["best"].endswith("p1-copy.png")


def test_no_dupes_exit_1(folder: Path) -> None:
    (folder / "p1-copy.png").unlink()
    proc = run("dupes", str(folder))
    assert proc.returncode == 1 and proc.stdout.strip() == "no duplicates"


@pytest.mark.parametrize("command", ["index", "find", "dupes"])
def test_help_does_not_import_heavy_modules(command: str) -> None:
    code = (
        "import sys, samepix.cli\n"
        f"try:\n    samepix.cli.main([{command!r}, '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numpy', 'cv2', 'PIL', 'httpx') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert "HEAVY []" in proc.stdout

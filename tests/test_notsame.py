"""``dupes --not-same A B``: the pair is kept in the index and later dupes and find respect it."""

from __future__ import annotations

import functools
import json
import sqlite3
from pathlib import Path

import numpy as np

from .helpers import encode, one_line_error, run_cli

run = functools.partial(run_cli, text=True)


def picture(seed: int) -> np.ndarray:
    from samepix.demo import make_picture

    return make_picture(seed, (320, 240))


def test_not_same_pair_is_kept_apart_by_dupes_and_find(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    (root / "a.png").write_bytes(encode(picture(1), "PNG"))
    (root / "a.jpg").write_bytes(encode(picture(1), "JPEG", quality=90))
    (root / "b.jpg").write_bytes(encode(picture(2), "JPEG", quality=90))
    (root / "b.webp").write_bytes(encode(picture(2), "WEBP", quality=90))
    groups = json.loads(run("dupes", str(root), "--json").stdout)["groups"]
    assert len(groups) == 2

    proc = run("dupes", str(root), "--not-same", str(root / "a.png"), "a.jpg")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("recorded: ")
    rows = (
        sqlite3.connect(root / ".samepix" / "index.db")
        .execute("SELECT a_path, b_path FROM not_same")
        .fetchall()
    )
    assert sorted(rows[0]) == ["a.jpg", "a.png"]

    groups = json.loads(run("dupes", str(root), "--json").stdout)["groups"]
    assert [sorted(Path(c["path"]).name for c in g["copies"]) for g in groups] == [
        ["b.jpg", "b.webp"]
    ]
    # find with a.png as the query: a.png itself (same bytes) is found, a.jpg no longer is
    found = json.loads(run("find", str(root / "a.png"), "--in", str(root), "--json").stdout)
    assert [Path(m["path"]).name for m in found["matches"]] == ["a.png"]
    found = json.loads(run("find", str(root / "b.jpg"), "--in", str(root), "--json").stdout)
    assert sorted(Path(m["path"]).name for m in found["matches"]) == ["b.jpg", "b.webp"]


def test_not_same_errors(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    data = encode(picture(1), "PNG")
    (root / "a.png").write_bytes(data)
    (root / "a2.png").write_bytes(data)
    one_line_error(run("dupes", str(root), "--not-same", "a.png", "a2.png"), "identical bytes")
    one_line_error(run("dupes", str(root), "--not-same", "a.png", "zz.png"), "zz.png")
    one_line_error(run("dupes", str(root), "--not-same", "a.png", str(tmp_path)), "not inside")

"""Issue 10 items 4 and 5: odd names and odd files in a folder, as found (the real
``samepix`` command on a real folder)."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from samepix.index import Index, update_index
from samepix.names import from_db, to_db

from .helpers import Response, encode, http_server, run_cli

LATIN1 = b"caf\xe9.png"  # a name from an old camera or zip file: not UTF-8
BAD_DIR = b"d\xff\xfe"


def _png(seed: int) -> bytes:
    return encode(np.random.default_rng(seed).integers(0, 255, (40, 40, 3), dtype=np.uint8), "PNG")


def _fs(path: Path, name: bytes) -> bytes:
    return os.path.join(os.fsencode(path), name)


@pytest.fixture
def odd_folder(tmp_path: Path) -> Path:
    root = tmp_path / "pics"
    root.mkdir()
    (root / "a.png").write_bytes(_png(1))
    with open(_fs(root, LATIN1), "wb") as handle:
        handle.write(_png(1))  # a copy of a.png under a Latin-1 name
    os.mkdir(_fs(root, BAD_DIR))
    with open(_fs(root, BAD_DIR + b"/x\x1b[2J.png"), "wb") as handle:
        handle.write(_png(2))
    return root


# --- 10.4: names that are not UTF-8 -------------------------------------------------------------


def test_names_round_trip_through_the_database() -> None:
    for name in ("plain.png", "写真.png", b"caf\xe9.png".decode("utf-8", "surrogateescape")):
        assert from_db(to_db(name)) == name
    assert isinstance(to_db(b"\xff".decode("utf-8", "surrogateescape")), bytes)


def test_index_find_dupes_work_with_names_that_are_not_utf8(odd_folder: Path) -> None:
    # As found: "internal error UnicodeEncodeError ... surrogates not allowed" for all four.
    indexed = run_cli("index", str(odd_folder), "--workers", "1", "--json")
    assert indexed.returncode == 0, indexed.stderr
    assert json.loads(indexed.stdout)["total"] == 3

    dupes = run_cli("dupes", str(odd_folder), "--no-update")
    assert dupes.returncode == 0, dupes.stderr
    out = dupes.stdout.decode()
    assert "caf\\xe9.png" in out  # escaped on a terminal, byte for byte

    as_json = run_cli("dupes", str(odd_folder), "--no-update", "--json")
    paths = {c["path"] for g in json.loads(as_json.stdout)["groups"] for c in g["copies"]}
    assert {os.fsencode(p) for p in paths} == {_fs(odd_folder, b"a.png"), _fs(odd_folder, LATIN1)}

    found = run_cli("find", str(odd_folder / "a.png"), "--in", str(odd_folder), "--json")
    assert found.returncode == 0, found.stderr
    matched = {os.fsencode(m["path"]) for m in json.loads(found.stdout)["matches"]}
    assert _fs(odd_folder, LATIN1) in matched

    text = run_cli("find", _fs(odd_folder, BAD_DIR + b"/x\x1b[2J.png"), "--in", str(odd_folder))  # type: ignore[arg-type]
    assert text.returncode == 0, text.stderr
    assert b"\x1b" not in text.stdout and b"d\\xff\\xfe/x\\x1b[2J.png" in text.stdout


def test_index_keeps_the_exact_bytes(odd_folder: Path) -> None:
    with Index(odd_folder) as index:
        update_index(index, workers=1)
        names = {os.fsencode(e.path) for e in index.entries()}
    assert names == {b"a.png", LATIN1, BAD_DIR + b"/x\x1b[2J.png"}


def test_sync_into_a_folder_whose_name_is_not_utf8(tmp_path: Path) -> None:
    folder = _fs(tmp_path, b"dest\xe9")
    os.mkdir(folder)
    with open(os.path.join(folder, LATIN1), "wb") as handle:
        handle.write(_png(3))
    data = _png(4)
    with http_server({"/n.png": Response(200, data, {"Content-Type": "image/png"})}) as server:
        urls = tmp_path / "urls.txt"
        urls.write_text(server.url("/n.png") + "\n")
        log = tmp_path / "log.jsonl"
        proc = run_cli("sync", str(urls), folder, "--workers", "1", "--log", str(log))  # type: ignore[arg-type]
        again = run_cli("sync", str(urls), folder, "--workers", "1")  # type: ignore[arg-type]
    assert proc.returncode == 0, proc.stderr
    with open(os.path.join(folder, b"n.png"), "rb") as handle:
        assert handle.read() == data
    assert b"dest\\xe9" in proc.stdout
    assert again.returncode == 0 and b"skipped 1 unchanged" in again.stdout, again.stdout
    row = json.loads(log.read_text().splitlines()[0])
    assert os.fsencode(row["path"]) == os.path.join(folder, b"n.png")


# --- 10.5: links out of the folder, FIFOs, sockets ----------------------------------------------


def test_a_link_to_root_is_not_followed_by_default(tmp_path: Path) -> None:
    # As found: a link to / made `index` walk the whole machine.
    root = tmp_path / "pics"
    root.mkdir()
    (root / "a.png").write_bytes(_png(1))
    (root / "everything").symlink_to("/")
    (root / "proc").symlink_to("/proc")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "b.png").write_bytes(_png(2))
    (root / "b.png").symlink_to(outside / "b.png")
    (root / "inside").symlink_to(root / "a.png")  # stays in the folder: followed (same file)
    (root / "sub").mkdir()
    (root / "sub" / "up").symlink_to(root)  # a loop, inside the folder
    proc = run_cli("index", str(root), "--workers", "1", timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert "indexed" in out and ": 1 image " in out, out
    assert "skipped 3 symbolic links leading out of the folder (--follow-links" in out, out


def test_follow_links_follows_them_without_looping(tmp_path: Path) -> None:
    root = tmp_path / "pics"
    root.mkdir()
    (root / "a.png").write_bytes(_png(1))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "b.png").write_bytes(_png(2))
    (outside / "back").symlink_to(root)  # a loop through the outside folder
    (root / "out").symlink_to(outside)
    proc = run_cli("index", str(root), "--workers", "1", "--follow-links", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["total"] == 2 and summary["skipped_links"] == 0


def test_fifos_and_sockets_are_listed_never_opened(tmp_path: Path) -> None:
    root = tmp_path / "pics"
    root.mkdir()
    (root / "a.png").write_bytes(_png(1))
    os.mkfifo(root / "pipe.jpg")  # opening it would block for ever
    os.mkfifo(root / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    short = Path(f"/tmp/spx-{os.getpid()}")
    short.mkdir(exist_ok=True)
    try:
        sock.bind(str(short / "s.png"))
        (root / "s.png").symlink_to(short / "s.png")  # leaves the folder: not even looked at
        shutil.copy(root / "a.png", root / "b.png")
        proc = run_cli("index", str(root), "--workers", "1", "--follow-links", timeout=60)
    finally:
        sock.close()
        shutil.rmtree(short)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert "pipe.jpg: skipped: a named pipe (FIFO), not a regular file" in out, out
    assert "pipe: skipped: a named pipe (FIFO)" in out, out
    assert "s.png: skipped: a socket, not a regular file" in out, out


def test_dupes_actions_and_undo_keep_names_that_are_not_utf8(
    odd_folder: Path, tmp_path: Path
) -> None:
    # The same class of fault in the action journal: it was written with json.dumps, which
    # cannot encode such a name ("internal error UnicodeEncodeError").
    moved = tmp_path / "moved"
    act = run_cli("dupes", str(odd_folder), "--move-to", str(moved), "--workers", "1")
    assert act.returncode == 0, act.stderr
    assert os.path.exists(_fs(moved, LATIN1)) and not os.path.exists(_fs(odd_folder, LATIN1))
    assert b"\x1b" not in act.stdout
    undone = run_cli("undo", str(odd_folder))
    assert undone.returncode == 0, undone.stderr
    with open(_fs(odd_folder, LATIN1), "rb") as handle:
        assert handle.read() == _png(1)

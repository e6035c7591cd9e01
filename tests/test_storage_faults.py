"""Issue 10 item 7: a full disk, a file-size limit and a read-only folder are said to be what
they are — never "corrupted" — and a sync stops at the first one (the real ``samepix``
command; a real file-size limit, a real full tmpfs, a real read-only file system)."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from samepix import sqlite_errors

from .helpers import Response, encode, http_server, run_cli

N_URLS = 40


def _png(seed: int) -> bytes:
    return encode(np.random.default_rng(seed).integers(0, 255, (40, 40, 3), dtype=np.uint8), "PNG")


@pytest.fixture(scope="module")
def server() -> Iterator[object]:
    routes = {
        f"/p{i}.png": Response(200, _png(100 + i), {"Content-Type": "image/png"})
        for i in range(N_URLS)
    }
    with http_server(routes) as live:  # type: ignore[arg-type]
        yield live


def _urls(tmp_path: Path, server: object) -> Path:
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(f"{server.url(f'/p{i}.png')}\n" for i in range(N_URLS)))  # type: ignore[attr-defined]
    return urls


def _file_size_limit(limit: int) -> object:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)])
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _assert_stopped_at_once(proc: subprocess.CompletedProcess[bytes], why: str) -> str:
    err = proc.stderr.decode()
    out = proc.stdout.decode()
    assert proc.returncode == 2, (out, err)
    assert "corrupt" not in err + out and "--rebuild" not in err + out, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert why in lines[0] and "the sync stopped there" in lines[0], lines[0]
    assert "failed:" not in out  # not ~N URLs failing one by one
    return lines[0]


def test_file_size_limit_while_sqlite_writes_stops_the_sync(tmp_path: Path, server: object) -> None:
    # As found: "the fetch state file is corrupted (disk I/O error)" for every URL, ~280 times.
    folder = tmp_path / "dir"
    folder.mkdir()
    urls = _urls(tmp_path, server)
    proc = run_cli(
        "sync", str(urls), str(folder), "--workers", "1", preexec_fn=_file_size_limit(100_000)
    )
    _assert_stopped_at_once(proc, "File too large")
    # Nothing was corrupted: the next run (no limit) finishes the job.
    again = run_cli("sync", str(urls), str(folder), "--workers", "1")
    assert again.returncode == 0, again.stderr
    assert len(list(folder.glob("*.png"))) == N_URLS
    assert run_cli("index", str(folder)).returncode == 0


def test_full_disk_stops_the_sync_with_the_write_error(tmp_path: Path, server: object) -> None:
    with _tmpfs(tmp_path / "small", "200k") as folder:
        proc = run_cli("sync", str(_urls(tmp_path, server)), str(folder), "--workers", "1")
        line = _assert_stopped_at_once(proc, "No space left on device")
        assert str(folder) in line
        for part in folder.rglob("*.part"):
            raise AssertionError(f"partial file left: {part}")


@contextlib.contextmanager
def _read_only(folder: Path, tmp_path: Path) -> Iterator[Path]:
    """``folder`` as a read-only place: a read-only mount as root, file modes otherwise."""
    if os.geteuid() != 0:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
        try:
            yield folder
        finally:
            for path in [folder, *folder.rglob("*")]:
                path.chmod(path.stat().st_mode | 0o200)
        return
    with _tmpfs(tmp_path / "ro", "8m") as mount:
        shutil.copytree(folder, mount, dirs_exist_ok=True, copy_function=shutil.copy2)
        os.utime(mount)
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount


def test_read_only_folder_holding_an_index(tmp_path: Path) -> None:
    # As found: called corrupted, and even `find --no-update` could not run.
    source = tmp_path / "pics"
    source.mkdir()
    (source / "a.png").write_bytes(_png(1))
    (source / "copy.png").write_bytes(_png(1))
    (source / "b.png").write_bytes(_png(2))
    assert run_cli("index", str(source), "--workers", "1").returncode == 0
    with _read_only(source, tmp_path) as folder:
        # Indexed in place (inodes as they are there), then made read-only.
        if os.geteuid() == 0:
            subprocess.run(["mount", "-o", "remount,rw", str(folder)], check=True)
            assert run_cli("index", str(folder), "--workers", "1").returncode == 0
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        found = run_cli("find", str(folder / "a.png"), "--in", str(folder), "--no-update")
        assert found.returncode == 0, found.stderr
        assert b"copy.png" in found.stdout
        dupes = run_cli("dupes", str(folder), "--no-update")
        assert dupes.returncode == 0, dupes.stderr
        # Nothing changed: an update writes nothing, so it works too.
        assert run_cli("dupes", str(folder)).returncode == 0
        index = run_cli("index", "--rebuild", str(folder))
    err = index.stderr.decode()
    assert index.returncode == 2 and "corrupt" not in err, err
    assert "--db PATH" in err and ("Read-only file system" in err or "not writable" in err), err


def test_sqlite_errors_are_sorted_by_result_code(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(sqlite3.DatabaseError) as caught:
        sqlite3.connect(path).execute("SELECT * FROM sqlite_master").fetchall()
    assert sqlite_errors.kind(caught.value) == "corrupt"
    full = sqlite3.OperationalError("database or disk is full")
    assert sqlite_errors.kind(full) == "full"

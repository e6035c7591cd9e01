"""Issue 11, "everyday use": what a new user tripped over in the first hour, reproduced as it was
found — the real ``samepix`` command in a subprocess, a real folder, a real local server."""

from __future__ import annotations

import functools
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from .helpers import Resource, encode, http_server, run_cli

run = functools.partial(run_cli, text=True)


def picture(seed: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    from samepix.demo import make_picture

    return make_picture(seed, size)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- 2. file modes --------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask-022", "umask-027"])
def test_written_files_get_the_mode_open_gives(tmp_path: Path, umask: int) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "old.jpg").write_bytes(encode(picture(1), "JPEG", quality=30))
    (folder / "other.jpg").write_bytes(encode(picture(3), "JPEG", quality=30))
    os.chmod(folder / "old.jpg", 0o644)
    os.chmod(folder / "other.jpg", 0o604)
    expected = 0o666 & ~umask
    routes = {
        "/new.jpg": Resource(encode(picture(2), "JPEG", quality=90), "image/jpeg"),
        "/better.jpg": Resource(encode(picture(1), "JPEG", quality=92), "image/jpeg"),
        "/better.png": Resource(encode(picture(3), "PNG"), "image/png"),
    }
    with http_server(routes) as server:
        urls = tmp_path / "urls.txt"
        urls.write_text(
            "\n".join(server.url(p) for p in ("/new.jpg", "/better.jpg", "/better.png"))
        )
        proc = run("sync", str(urls), str(folder), "--replace-better", umask=umask)
    assert proc.returncode == 0, proc.stderr
    assert mode(folder / "new.jpg") == expected  # a synced picture
    assert mode(folder / ".samepix" / "index.db-hashes.npy") == expected  # the index's side file
    assert (folder / ".samepix" / "replaced" / "old.jpg").exists()
    assert mode(folder / "old.jpg") == 0o644  # replaced by a better copy: keeps its mode
    assert not (folder / "other.jpg").exists()  # replaced by a PNG: renamed, mode kept
    assert mode(folder / "other.png") == 0o604
    heat = tmp_path / "heat.png"
    proc = run("compare", str(folder / "old.jpg"), str(folder / "new.jpg"), "--diff", str(heat),
               umask=umask)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert mode(heat) == expected

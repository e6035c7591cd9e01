"""What one more URL costs ``sync`` in the index, however large the folder: counted in SQLite's
virtual-machine steps (``set_progress_handler``), not in time, so the tests are exact on a
loaded machine. Real folders, a real HTTP server, real SQLite files."""

from __future__ import annotations

from pathlib import Path

from samepix import Library

from .helpers import Resource, http_server
from .test_sync import jpeg


def _sync_steps(folder: Path, urls: list[str]) -> int:
    """SQLite steps on the index's connection while ``urls`` are synced into ``folder``."""
    steps = 0

    def step() -> int:
        nonlocal steps
        steps += 1
        return 0

    with Library(folder, workers=1) as lib:
        lib.update()
        lib.index.conn.set_progress_handler(step, 10)
        summary = lib.sync(urls)
        lib.index.conn.set_progress_handler(None, 10)
    assert summary.ok, summary.failures
    return steps


def test_a_url_whose_bytes_the_folder_holds_many_times_costs_the_same_steps(
    tmp_path: Path,
) -> None:
    """A URL serving bytes the folder already holds is skipped by its SHA-256, naming one file
    that holds them. Asking the index for every file holding them made each such URL read all
    the copies: a folder with thousands of copies of one picture made every URL with those
    bytes cost thousands of rows."""
    data = jpeg(7, size=(96, 64))
    per_url: dict[int, float] = {}
    for copies in (40, 800):
        folder = tmp_path / f"copies-{copies}"
        folder.mkdir()
        for k in range(copies):
            (folder / f"copy-{k:05d}.jpg").write_bytes(data)
        site = {f"/u{n}.jpg": Resource(data, "image/jpeg") for n in range(60)}
        with http_server(dict(site)) as server:
            urls = [server.url(f"/u{n}.jpg") for n in range(60)]
            # The update and the run's fixed costs are the same in both runs: the difference
            # is what 30 more URLs cost.
            few = _sync_steps(folder, urls[:10])
            many = _sync_steps(folder, urls[10:50])
        per_url[copies] = (many - few) / 30
    # 20× the copies: the same steps a URL (before: about 20× as many).
    assert per_url[800] < 2 * per_url[40], per_url

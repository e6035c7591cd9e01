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


def test_a_run_costs_the_same_steps_however_many_urls_were_synced_before(
    tmp_path: Path,
) -> None:
    """A run that replaces one file with a better copy (``--replace-better``) re-points the
    records of that file's URLs, and every run first finishes the records an interrupted run
    left; both looked at every record of every URL ever synced into the folder (no index on
    ``path``, none on ``complete``), so each run, and each replaced file, cost more the longer
    the folder had been synced into."""
    import numpy as np
    from PIL import Image

    from .helpers import Response, encode
    from .test_sync import picture

    def version(quality: int) -> bytes:
        pixels = np.asarray(Image.fromarray(picture(5, (320, 240))))
        return encode(pixels, "JPEG", quality=quality)

    steps: dict[int, int] = {}
    for records in (20, 400):
        folder = tmp_path / f"records-{records}"
        folder.mkdir()
        (folder / "p.jpg").write_bytes(version(50))
        other = jpeg(6)
        (folder / "other.jpg").write_bytes(other)
        site: dict[str, Resource | Response] = {
            f"/o{n}.jpg": Resource(other, "image/jpeg") for n in range(records)
        }
        site["/p-best.jpg"] = Response(200, version(95))
        with http_server(site) as server:
            with Library(folder, workers=1) as lib:  # the records: URLs standing for other.jpg
                assert lib.sync([server.url(f"/o{n}.jpg") for n in range(records)]).ok
            count = 0

            def step() -> int:
                nonlocal count
                count += 1
                return 0

            with Library(folder, workers=1) as lib:
                lib.update()
                lib.index.conn.set_progress_handler(step, 10)
                summary = lib.sync([server.url("/p-best.jpg")], replace_better=True)
                lib.index.conn.set_progress_handler(None, 10)
        assert summary.replaced == 1, [i.reason for i in summary.items]
        steps[records] = count
    # 20× the records: the same steps for the run (before: several times as many).
    assert steps[400] < 2 * steps[20], steps

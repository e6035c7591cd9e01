"""``sync`` with an executor (samepix.sync_shards): downloads and the decoding of new bodies run
as shards on worker processes — local ones, and a real ``dask.distributed.LocalCluster`` — while
this process decides and writes. The same decisions and files as a plain sync; a worker killed
mid-shard and a coordinator killed mid-run lose nothing and save nothing twice. Real local HTTP
servers, real SQLite files, real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from samepix import Library, SyncSummary
from samepix.executor import Executor, LocalExecutor

from .helpers import Resource, Response, http_server
from .test_sync import SlowResource, decisions, half, jpeg, pictures_in, png, wait_for

ROOT = Path(__file__).resolve().parents[1]


def _folder(root: Path) -> Path:
    root.mkdir()
    (root / "sunset.png").write_bytes(png(1))
    (root / "harbour.jpg").write_bytes(jpeg(2))
    return root


def _site() -> dict[str, Resource | Response]:
    site: dict[str, Resource | Response] = {
        f"/new{seed}.png": Resource(png(seed), "image/png", etag=f'"n{seed}"')
        for seed in range(10, 16)
    }
    site["/copy.png"] = Resource(png(1), "image/png", etag='"c"')  # sunset.png's bytes
    site["/small.jpg"] = Resource(half(2), "image/jpeg", etag='"s"')  # harbour, re-encoded
    site["/again.png"] = Resource(png(10), "image/png", etag='"a"')  # new10.png, listed later
    site["/text"] = Response(200, b"<html>not a picture</html>", {"Content-Type": "text/html"})
    return site


def _sync(folder: Path, urls: list[str], executor: Executor | None) -> SyncSummary:
    with Library(folder, workers=1, executor=executor) as lib:
        return lib.sync(urls, concurrency=4)


def _same_as_plain(tmp_path: Path, executor: Executor) -> tuple[SyncSummary, SyncSummary]:
    """Sync one list into two copies of a folder, plainly and on ``executor``."""
    plain, sharded = _folder(tmp_path / "plain"), _folder(tmp_path / "sharded")
    with http_server(dict(_site())) as server:
        urls = [server.url(path) for path in _site()] + [server.url("/missing.png")]
        expected = _sync(plain, urls, None)
        got = _sync(sharded, urls, executor)
        again = _sync(sharded, urls, executor)
    assert decisions(got) == decisions(expected)
    assert [i.reason for i in got.items] == [i.reason for i in expected.items]
    assert pictures_in(sharded) == pictures_in(plain)
    assert decisions(expected) == {
        **{f"new{seed}.png": "downloaded" for seed in range(10, 16)},
        "copy.png": "skipped-bytes",
        "small.jpg": "skipped-same-picture",
        "again.png": "skipped-bytes",
        "text": "failed",
        "missing.png": "failed",
    }
    # The second run: every picture answered 304, nothing downloaded.
    assert again.bytes_downloaded == 0
    assert {i.decision for i in again.items} == {"skipped-unchanged", "failed"}
    return expected, got


def test_sync_on_local_worker_processes_decides_as_a_plain_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import samepix.query
    import samepix.variants

    described_here = []
    real = samepix.query._describe_query
    grey_here = []
    real_grey = samepix.variants._query_grey

    def counting(query: Any, limits: Any) -> Any:
        described_here.append(query.name)  # in this process only: workers have their own
        return real(query, limits)

    def counting_grey(query: Any, limits: Any) -> Any:
        grey_here.append(query.name)
        return real_grey(query, limits)

    plain = _folder(tmp_path / "plain")
    with http_server(dict(_site())) as server:
        urls = [server.url(path) for path in _site()]
        _sync(plain, urls, None)
        monkeypatch.setattr(samepix.query, "_describe_query", counting)
        monkeypatch.setattr(samepix.variants, "_query_grey", counting_grey)
        sharded = _folder(tmp_path / "sharded")
        got = _sync(sharded, urls, LocalExecutor(2))
    assert pictures_in(sharded) == pictures_in(plain)
    assert got.downloaded == 6
    # Every new body was decoded and described by a worker, none by the coordinator (the
    # re-encoded copy is described by a worker too; only its confirmation runs here).
    assert described_here == [], described_here
    # Nor were the mirror images, rotations and crops a new picture is searched for made here
    # (they were, from a decode of each new body, before the workers made them).
    assert grey_here == [], grey_here


def test_variants_made_elsewhere_are_the_ones_a_search_would_make(tmp_path: Path) -> None:
    """What a worker ships (samepix.variants.variants_of) equals what the coordinator would
    make, and a query given them decodes nothing for them — also for a picture turned by its
    EXIF orientation, whose size comes from its header until its pixels are decoded."""
    import io

    from PIL import Image

    from samepix.compare import load
    from samepix.query import describe_query
    from samepix.variants import (
        crop_variants,
        query_crop_hashes,
        query_variants,
        use_variants,
        variants_of,
    )

    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: turned 90° clockwise on display
    Image.open(io.BytesIO(jpeg(3, size=(320, 200)))).save(buffer, "JPEG", exif=exif)
    for data in (jpeg(4), buffer.getvalue(), png(5)):
        made = variants_of(load(data, lazy=True), crop_hashes=True)
        decoded = load(data)
        assert decoded.decoded.pixels.size  # pixels first: the sizes come from them here
        assert [(v.name, v.width, v.height, v.hashes, v.thumb) for v in made.turned or ()] == [
            (v.name, v.width, v.height, v.hashes, v.thumb) for v in query_variants(decoded)
        ]
        assert [(v.width, v.height, v.hashes) for v in made.crops or ()] == [
            (v.width, v.height, v.hashes) for v in crop_variants(decoded)
        ]
        assert made.crop_hashes is not None
        assert (made.crop_hashes == query_crop_hashes(decoded)).all()
        given = load(data, lazy=True)
        describe_query(given)
        use_variants(given, made)
        assert query_variants(given) is made.turned
        assert crop_variants(given) is made.crops
        assert "decoded" not in given.__dict__
    turned = variants_of(load(buffer.getvalue(), lazy=True)).turned
    assert turned is not None and (turned[1].width, turned[1].height) == (200, 320)


@pytest.mark.parametrize("kind", ["local-processes", pytest.param("dask", marks=pytest.mark.dask)])
def test_a_sharded_resync_rechecks_on_the_fast_path(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The second sync on an executor is all 304s, asked by the workers' Rechecker (kept-alive
    stdlib connections, samepix.recheck), as a plain sync asks them: a URL changed meanwhile
    is asked twice — the re-check (a 200, left to the fetcher), then the fetcher."""
    from samepix.executor import DaskExecutor

    executor: Executor
    if kind == "dask":
        executor = DaskExecutor(request.getfixturevalue("cluster").scheduler_address)
    else:
        executor = LocalExecutor(2)
    folder = tmp_path / "lib"
    folder.mkdir()
    etag = '"v1"'
    site = {f"/{i}.jpg": Resource(jpeg(40 + i), "image/jpeg", etag=etag) for i in range(12)}
    try:
        with http_server(dict(site)) as server:
            urls = [server.url(path) for path in site]
            assert _sync(folder, urls, executor).downloaded == 12
            server.routes["/5.jpg"] = Resource(jpeg(99), "image/jpeg", etag='"v2"')
            before = len(server.requests)
            again = _sync(folder, urls, executor)
            asked = server.requests[before:]
    finally:
        executor.close()
    assert again.skipped_unchanged == 11 and again.bytes_downloaded == len(jpeg(99))
    item = next(i for i in again.items if i.url.endswith("/5.jpg"))
    assert item.path is not None and item.path.read_bytes() == jpeg(99), item
    changed = [h.get("if-none-match") for path, h in asked if path == "/5.jpg"]
    assert changed == [etag, etag], changed  # without the Rechecker on workers: [etag]
    assert len(asked) == 12 + 1
    assert all(h.get("if-none-match") == etag for _, h in asked)


# ---------------------------------------------------------------------------------------------
# Dask


@pytest.mark.dask
def test_sync_on_dask_decides_as_a_plain_sync(cluster: Any, tmp_path: Path) -> None:
    from samepix.executor import DaskExecutor

    executor = DaskExecutor(cluster.scheduler_address)
    try:
        _same_as_plain(tmp_path, executor)
    finally:
        executor.close()


@pytest.mark.dask
def test_a_dask_worker_killed_mid_shard_saves_nothing_twice(cluster: Any, tmp_path: Path) -> None:
    from samepix.executor import DaskExecutor

    folder = tmp_path / "lib"
    folder.mkdir()
    site = {f"/p{seed}.png": SlowResource(png(seed), f'"e{seed}"', 0.4) for seed in range(30, 42)}
    executor = DaskExecutor(cluster.scheduler_address)
    pids: dict[str, int] = executor.client.run(os.getpid)
    killed = threading.Event()

    def kill_when_busy() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            busy = [w for w, tasks in executor.client.processing().items() if tasks]
            if busy and any(r.statuses for r in site.values()):
                time.sleep(0.2)  # mid-shard: its downloads are streaming in
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.set()
                return
            time.sleep(0.02)

    with http_server(dict(site)) as server:
        killer = threading.Thread(target=kill_when_busy, daemon=True)
        killer.start()
        try:
            summary = _sync(folder, [server.url(p) for p in site], executor)
        finally:
            killer.join()
            executor.close()
    assert killed.is_set()
    # The killed worker's shard ran again elsewhere: its URLs were fetched twice ...
    assert any(len(r.statuses) > 1 for r in site.values()), {p: r.statuses for p, r in site.items()}
    # ... and still each picture was decided and saved once: no "-1" copies, none lost.
    assert decisions(summary) == {p.lstrip("/"): "downloaded" for p in site}
    assert sorted(pictures_in(folder)) == sorted(p.lstrip("/") for p in site)


@pytest.mark.dask
def test_coordinator_killed_mid_sync_on_dask_resumes(cluster: Any, tmp_path: Path) -> None:
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    killed.mkdir()
    reference.mkdir()
    site = {f"/p{seed}.png": SlowResource(png(seed), f'"e{seed}"', 0.3) for seed in range(50, 70)}
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    dask = ("--dask", cluster.scheduler_address)

    def start(folder: Path) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "samepix", "sync", str(urls), str(folder), *dask, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    with http_server(dict(site)) as server:
        urls = tmp_path / "urls.txt"
        urls.write_text("\n".join(server.url(p) for p in site) + "\n")
        proc = start(killed)
        try:
            wait_for(lambda: len(pictures_in(killed)) >= 4, timeout=120)
        finally:
            proc.kill()
            proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        before = pictures_in(killed)
        assert len(before) < len(site), "the sync ended before the kill"
        hits = {path: len(r.statuses) for path, r in site.items()}
        proc = start(killed)
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        resumed = {path: r.statuses[hits[path] :] for path, r in site.items()}
        proc = start(reference)
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err

    assert pictures_in(killed) == pictures_in(reference)
    assert len(pictures_in(killed)) == len(site)
    summary = json.loads(out)
    assert summary["downloaded"] + summary["skipped_unchanged"] == len(site)
    # What the killed run had saved was not downloaded again: asked with validators, 304.
    for name in before:
        assert resumed[f"/{name}"] == [304], (name, site[f"/{name}"].statuses)


@pytest.mark.dask
def test_sync_on_a_local_cluster_killed_leaves_no_process_holding_its_pipes(
    cluster: Any, tmp_path: Path
) -> None:
    """`sync --dask local:2` killed mid-run: the cluster's worker processes end with it, and a
    caller reading samepix's output sees end of file (they do not keep its pipes open)."""
    from .test_executor import _group, _start

    folder = tmp_path / "lib"
    folder.mkdir()
    site = {f"/p{seed}.png": SlowResource(png(seed), f'"e{seed}"', 0.3) for seed in range(80, 96)}
    with http_server(dict(site)) as server:
        urls = tmp_path / "urls.txt"
        urls.write_text("\n".join(server.url(p) for p in site) + "\n")
        proc = _start("sync", str(urls), str(folder), "--dask", "local:2")
        try:
            wait_for(lambda: len(pictures_in(folder)) >= 2, timeout=120)
            assert len(_group(proc.pid)) >= 3  # samepix and its 2 worker processes
        finally:
            os.kill(proc.pid, signal.SIGKILL)
        eof = threading.Event()

        def read_all() -> None:
            assert proc.stdout is not None and proc.stderr is not None
            proc.stdout.read()
            proc.stderr.read()
            eof.set()

        threading.Thread(target=read_all, daemon=True).start()
        proc.wait(timeout=30)
        # Within 3 s (the soak counts what is alive 2 s after a kill).
        assert eof.wait(3), "stdout/stderr still open after samepix ended: a worker holds them"
        deadline = time.monotonic() + 3
        while _group(proc.pid):
            assert time.monotonic() < deadline, f"left behind: {_group(proc.pid)}"
            time.sleep(0.05)

"""``sync`` into a folder on S3: moto's standalone server on 127.0.0.1 talked to by s3fs over
HTTP, the local HTTP test servers for the URLs, real SQLite files, real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from samepix import Library, SyncLocked
from samepix.fetch import Retry
from samepix.storage import ObjectPath, get_versioned, put_if

from . import test_storage
from .helpers import Resource, Response, dies_mid_body, http_server, one_line_error, run_cli
from .test_sync import half, jpeg, png, sync_decisions

pytestmark = pytest.mark.s3
# moto's S3 server and a bucket per test: the fixtures of the storage tests.
s3_env = test_storage.s3_env
bucket = test_storage.bucket
SECRET = test_storage.SECRET

ROOT = Path(__file__).resolve().parents[1]
LOCK = ".samepix/sync.lock"


def objects(fs: Any, name: str) -> dict[str, bytes]:
    """Every object of the bucket (key below the bucket -> bytes), fresh from the store."""
    fs.invalidate_cache()
    return {key.split("/", 1)[1]: fs.cat(key) for key in fs.find(name)}


def pictures(fs: Any, name: str) -> dict[str, bytes]:
    return {k: v for k, v in objects(fs, name).items() if "/.samepix/" not in k}


def lock_body(fs: Any, name: str) -> dict[str, Any]:
    fs.invalidate_cache()
    return dict(json.loads(fs.cat(f"{name}/pics/{LOCK}")))


def test_sync_into_a_bucket_saves_new_pictures_and_skips_copies(
    bucket: tuple[Any, str], tmp_path: Path
) -> None:
    fs, name = bucket
    fs.pipe(f"{name}/pics/old.png", png(1))
    routes: dict[str, Any] = {
        "/a/copy.jpg": Resource(half(1), etag='"c"'),  # the same picture, re-encoded, smaller
        "/same.png": Resource(png(1), etag='"s"'),  # the same bytes
        "/new.jpg": Resource(jpeg(2), etag='"n"'),
        "/new2.jpg": Resource(jpeg(3), etag='"m"'),
    }
    url, db = f"s3://{name}/pics", tmp_path / "bucket.db"
    with http_server(routes) as server:
        urls = [server.url(path) for path in routes]
        first = sync_decisions(url, db, urls)
        assert first == {
            "copy.jpg": "skipped-same-picture",
            "same.png": "skipped-bytes",
            "new.jpg": "downloaded",
            "new2.jpg": "downloaded",
        }
        assert pictures(fs, name) == {
            "pics/old.png": png(1),
            "pics/new.jpg": jpeg(2),
            "pics/new2.jpg": jpeg(3),
        }
        sent = server.body_bytes_sent
        again = sync_decisions(url, db, urls)
        assert set(again.values()) == {"skipped-unchanged"}
        assert server.body_bytes_sent == sent  # all 304: no body sent again
    lock = lock_body(fs, name)
    assert lock["released"] is True and lock["pid"] == os.getpid()
    # The fetch state lives on this machine, beside the bucket's index; nothing else written.
    assert (tmp_path / "bucket.fetch-state.sqlite3").exists()
    assert set(objects(fs, name)) == {
        "pics/old.png",
        "pics/new.jpg",
        "pics/new2.jpg",
        f"pics/{LOCK}",
    }
    with Library(url, db=db, workers=1) as lib:
        update = lib.update()  # the stat kept for a saved object is the listing's
    assert (update.unchanged, update.decoded) == (3, 0)


def test_a_dry_run_writes_nothing_into_the_bucket(bucket: tuple[Any, str], tmp_path: Path) -> None:
    fs, name = bucket
    fs.pipe(f"{name}/pics/old.png", png(1))
    before = objects(fs, name)
    lib = Library(f"s3://{name}/pics", db=tmp_path / "b.db", workers=1)
    with http_server({"/new.jpg": Resource(jpeg(2))}) as server, lib:
        summary = lib.sync([server.url("/new.jpg")], dry_run=True)
    assert [i.decision for i in summary.items] == ["downloaded"]
    assert "would save as new.jpg" in summary.items[0].reason
    assert objects(fs, name) == before  # no object, and no lock either


def test_a_name_taken_meanwhile_is_never_overwritten(
    bucket: tuple[Any, str], tmp_path: Path
) -> None:
    """Another writer puts an object at the name this sync would pick, after this sync's index
    update: the other object stays as it was and the download takes the next free name."""
    fs, name = bucket
    other = png(7)

    def racing(handler: Any) -> Response:
        fs.pipe(f"{name}/pics/photo.jpg", other)  # lands while the URL is being downloaded
        return Response(200, jpeg(2), {"Content-Type": "image/jpeg"})

    with http_server({"/photo.jpg": racing}) as server:
        got = sync_decisions(f"s3://{name}/pics", tmp_path / "b.db", [server.url("/photo.jpg")])
    assert got == {"photo.jpg": "downloaded"}
    assert pictures(fs, name) == {"pics/photo.jpg": other, "pics/photo-1.jpg": jpeg(2)}


def test_the_conditional_write_refuses_a_name_the_existence_check_missed(
    bucket: tuple[Any, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two machines may both see a name free; the PUT itself (If-None-Match: *) is what keeps
    the first one's object. The existence check is made blind here to show that."""
    fs, name = bucket
    fs.pipe(f"{name}/pics/photo.jpg", png(7))
    with Library(f"s3://{name}/pics", db=tmp_path / "b.db", workers=1) as lib:
        lib.update()
    fs.pipe(f"{name}/pics/photo-1.jpg", png(8))  # after the update: the index does not know it
    monkeypatch.setattr(ObjectPath, "exists", lambda self: False)
    lib = Library(f"s3://{name}/pics", db=tmp_path / "b.db", workers=1)
    with http_server({"/photo.jpg": Resource(jpeg(2))}) as server, lib:
        summary = lib.sync([server.url("/photo.jpg")])
    assert "saved as photo-2.jpg" in summary.items[0].reason
    assert pictures(fs, name) == {
        "pics/photo.jpg": png(7),
        "pics/photo-1.jpg": png(8),
        "pics/photo-2.jpg": jpeg(2),
    }


def test_a_server_dying_mid_body_leaves_no_object(bucket: tuple[Any, str], tmp_path: Path) -> None:
    fs, name = bucket
    dies = dies_mid_body(jpeg(4))

    lib = Library(f"s3://{name}/pics", db=tmp_path / "b.db", workers=1)
    with http_server({"/dies.jpg": dies, "/ok.jpg": Resource(jpeg(5))}) as server, lib:
        summary = lib.sync([server.url("/dies.jpg"), server.url("/ok.jpg")], retry=Retry(tries=1))
    assert [i.decision for i in summary.items] == ["failed", "downloaded"]
    assert pictures(fs, name) == {"pics/ok.jpg": jpeg(5)}


def _holder_is(fs: Any, name: str, pid: int) -> bool:
    try:
        body = lock_body(fs, name)
    except FileNotFoundError:
        return False
    return body["pid"] == pid and not body["released"]


def test_a_second_machine_is_refused_while_the_lock_is_held_then_saves_nothing_twice(
    bucket: tuple[Any, str], tmp_path: Path
) -> None:
    """Machine A (a process with its own index) syncs; machine B (another process, another
    index) is refused with one line while A runs; afterwards B recognises what A saved."""
    fs, name = bucket
    release = threading.Event()

    def slow(handler: Any) -> Response:
        release.wait(30)
        return Response(200, jpeg(6), {"Content-Type": "image/jpeg"})

    with http_server({"/slow.jpg": slow, "/b.jpg": Resource(jpeg(6))}) as server:
        urls = tmp_path / "a.txt"
        urls.write_text(server.url("/slow.jpg") + "\n")
        url = f"s3://{name}/pics"
        a = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "samepix",
                "sync",
                str(urls),
                url,
                "--db",
                str(tmp_path / "a.db"),
            ],
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not _holder_is(fs, name, a.pid):
                assert a.poll() is None, a.communicate()
                assert time.monotonic() < deadline, "A never took the lock"
                time.sleep(0.1)
            other = tmp_path / "b.txt"
            other.write_text(server.url("/b.jpg") + "\n")
            refused = run_cli("sync", str(other), url, "--db", str(tmp_path / "b.db"), text=True)
            line = one_line_error(refused, f"another samepix sync is running into {url} (host ")
            assert f"pid {a.pid};" in line and f"(lock: {url}/{LOCK})" in line
            assert SECRET not in refused.stderr + refused.stdout
        finally:
            release.set()
            _, err = a.communicate(timeout=60)
        assert a.returncode == 0, err
        assert pictures(fs, name) == {"pics/slow.jpg": jpeg(6)}
        # B again, A done: the same picture from another URL is recognised by its bytes.
        b = run_cli("sync", str(other), url, "--db", str(tmp_path / "b.db"), "--json", text=True)
    assert b.returncode == 0, b.stderr
    assert [i["decision"] for i in json.loads(b.stdout)["items"]] == ["skipped-bytes"]
    assert pictures(fs, name) == {"pics/slow.jpg": jpeg(6)}


def _foreign_lock(fs: Any, name: str, lease_s: float) -> None:
    body = {"token": "x", "host": "elsewhere", "pid": 1, "boot": "another-boot", "lease_s": lease_s}
    assert put_if(ObjectPath(f"s3://{name}/pics/{LOCK}"), json.dumps(body).encode(), None)


def test_a_live_lock_of_another_machine_refuses_and_a_stale_one_is_taken_over(
    bucket: tuple[Any, str], tmp_path: Path
) -> None:
    fs, name = bucket
    fs.pipe(f"{name}/pics/old.png", png(1))
    url = f"s3://{name}/pics"
    _foreign_lock(fs, name, lease_s=2)  # renewed "now": live for two seconds
    with pytest.raises(SyncLocked, match=r"\(host elsewhere, pid 1; lock renewed [01] s ago"):
        sync_decisions(url, tmp_path / "b.db", [])
    time.sleep(3.2)  # the store's clock (Date minus Last-Modified) now says: stale
    assert sync_decisions(url, tmp_path / "b.db", []) == {}
    lock = lock_body(fs, name)
    assert (lock["host"], lock["released"]) != ("elsewhere", False)
    assert lock["pid"] == os.getpid()


def test_of_two_takers_of_one_stale_lock_only_one_wins(bucket: tuple[Any, str]) -> None:
    """The take-over is a PUT with If-Match on the stale lock's ETag: the second one fails."""
    fs, name = bucket
    _foreign_lock(fs, name, lease_s=1)
    lock = ObjectPath(f"s3://{name}/pics/{LOCK}")
    seen = get_versioned(lock)
    assert seen is not None
    assert put_if(lock, b'{"first": 1}', seen.etag) is not None
    assert put_if(lock, b'{"second": 1}', seen.etag) is None
    assert fs.cat(f"{name}/pics/{LOCK}") == b'{"first": 1}'


def test_coordinator_killed_mid_sync_into_a_bucket_then_rerun(
    bucket: tuple[Any, str], tmp_path: Path
) -> None:
    """SIGKILL while a sync writes into a bucket; the rerun on this machine takes the lock back
    at once (its holder's pid is gone on this boot), and ends with every picture saved once."""
    fs, name = bucket
    gate = threading.Event()

    def held(body: bytes) -> Any:
        def route(handler: Any) -> Response:
            gate.wait(30)
            return Response(200, body, {"Content-Type": "image/jpeg", "ETag": '"h"'})

        return route

    routes: dict[str, Any] = {f"/p{n}.jpg": Resource(jpeg(10 + n), etag=f'"{n}"') for n in range(4)}
    routes["/held.jpg"] = held(jpeg(14))
    routes["/last.jpg"] = Resource(jpeg(15), etag='"l"')
    with http_server(routes) as server:
        urls = tmp_path / "urls.txt"
        urls.write_text("".join(server.url(p) + "\n" for p in routes))
        args = ["sync", str(urls), f"s3://{name}/pics", "--db", str(tmp_path / "b.db")]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        a = subprocess.Popen([sys.executable, "-m", "samepix", *args], env=env)
        try:
            deadline = time.monotonic() + 60
            while len(pictures(fs, name)) < 4:
                assert a.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        finally:
            a.send_signal(signal.SIGKILL)
            a.wait()
        assert lock_body(fs, name)["released"] is False  # left held by the killed process
        gate.set()
        again = run_cli(*args, "--json", "--debug", text=True)
    assert again.returncode == 0, again.stderr
    assert f"took the sync lock over from host {socket.gethostname()}, pid {a.pid} (gone)" in (
        again.stderr
    )
    got = {i["url"].rsplit("/", 1)[-1]: i["decision"] for i in json.loads(again.stdout)["items"]}
    assert {got[f"p{n}.jpg"] for n in range(4)} <= {"skipped-unchanged", "skipped-bytes"}
    assert (got["held.jpg"], got["last.jpg"]) == ("downloaded", "downloaded")
    expected = {f"pics/p{n}.jpg": jpeg(10 + n) for n in range(4)}
    expected |= {"pics/held.jpg": jpeg(14), "pics/last.jpg": jpeg(15)}
    assert pictures(fs, name) == expected  # none lost, none twice (no -1 copy)
    assert lock_body(fs, name)["released"] is True


def test_sync_into_a_bucket_on_a_dask_cluster(
    bucket: tuple[Any, str], cluster: Any, tmp_path: Path
) -> None:
    """Workers download and describe; the coordinator alone writes objects and the index."""
    from samepix.executor import DaskExecutor

    fs, name = bucket
    fs.pipe(f"{name}/pics/old.png", png(1))
    routes = {
        "/copy.jpg": Resource(half(1)),
        **{f"/n{n}.jpg": Resource(jpeg(20 + n)) for n in range(3)},
    }
    executor = DaskExecutor(cluster.scheduler_address)
    try:
        with (
            http_server(routes) as server,
            Library(f"s3://{name}/pics", db=tmp_path / "b.db", workers=1, executor=executor) as lib,
        ):
            summary = lib.sync([server.url(p) for p in routes])
    finally:
        executor.close()
    assert [i.decision for i in summary.items] == ["skipped-same-picture"] + ["downloaded"] * 3
    assert set(pictures(fs, name)) == {"pics/old.png", "pics/n0.jpg", "pics/n1.jpg", "pics/n2.jpg"}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        pytest.param("missing-bucket", "no such bucket (samepix does not create", id="no-bucket"),
        pytest.param("no-credentials", "no credentials for object storage (set", id="no-keys"),
        pytest.param("denied", "access denied", id="denied"),
        pytest.param("dry-run-new-prefix", "no such folder (a dry run creates nothing", id="dry"),
    ],
)
def test_bad_targets_are_one_line_without_secrets(
    bucket: tuple[Any, str], s3_env: dict[str, str], tmp_path: Path, case: str, expected: str
) -> None:
    name = bucket[1]
    urls = tmp_path / "urls.txt"
    urls.write_text("http://127.0.0.1:9/a.jpg\n")
    target, env, extra = f"s3://{name}/pics", {}, []
    if case == "missing-bucket":
        target = "s3://no-such-bucket-here/pics"
    elif case == "no-credentials":
        env = {
            "AWS_ACCESS_KEY_ID": "",
            "AWS_SECRET_ACCESS_KEY": "",
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    elif case == "dry-run-new-prefix":  # the bucket exists, the prefix not yet
        target, extra = f"s3://{name}/not-yet", ["--dry-run"]
    db = tmp_path / "b.db"
    if case == "denied":
        test_storage._moto_auth(s3_env["AWS_ENDPOINT_URL"], 0)
    try:
        proc = run_cli("sync", str(urls), target, "--db", str(db), *extra, env=env, text=True)
    finally:
        if case == "denied":
            test_storage._moto_auth(s3_env["AWS_ENDPOINT_URL"], 1e9)
    line = one_line_error(proc, expected)
    assert line.startswith(f"error: {target}: ")
    assert SECRET not in proc.stderr + proc.stdout
    assert not db.exists()  # refused before any work
    assert objects(bucket[0], name) == {}  # and nothing written into the bucket, not the lock


def test_the_lease_is_renewed_while_the_sync_runs_and_a_lost_lock_stops_it(
    bucket: tuple[Any, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a 2 s lease: a sync held up for longer than its lease still holds the lock (it was
    renewed); once another writer takes the lock over, the sync stops before its next write."""
    from samepix.bucket_lock import LEASE_ENV, BucketLock
    from samepix.errors import SyncError

    fs, name = bucket
    monkeypatch.setenv(LEASE_ENV, "2")
    gate = threading.Event()

    def held(handler: Any) -> Response:
        gate.wait(30)
        return Response(200, jpeg(30), {"Content-Type": "image/jpeg"})

    url, outcome = f"s3://{name}/pics", {}

    def run() -> None:
        try:
            outcome["decisions"] = sync_decisions(url, tmp_path / "a.db", [server.url("/held.jpg")])
        except SyncError as exc:
            outcome["error"] = str(exc)

    with http_server({"/held.jpg": held}) as server:
        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 30
        while not _holder_is(fs, name, os.getpid()):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(2.6)  # longer than the lease: still held, as it was renewed meanwhile
        lock = ObjectPath(f"{url}/{LOCK}")
        with pytest.raises(SyncLocked, match="another samepix sync is running into"):
            BucketLock(ObjectPath(url), lock).acquire()
        _overwrite_lock(lock)  # a machine that (wrongly) judged it stale took it over
        time.sleep(1.2)  # a renewal or two (every 0.5 s) find it gone
        gate.set()
        thread.join(30)
    assert "lost its lock (taken over by host elsewhere, pid 1;" in outcome["error"]
    assert pictures(fs, name) == {}  # nothing written after the lock was lost
    assert lock_body(fs, name)["host"] == "elsewhere"  # the taker keeps it


def _overwrite_lock(lock: ObjectPath) -> None:
    seen = get_versioned(lock)
    assert seen is not None
    body = {"token": "y", "host": "elsewhere", "pid": 1, "boot": "b", "lease_s": 60}
    assert put_if(lock, json.dumps(body).encode(), seen.etag) is not None


def test_wait_takes_the_lock_once_its_holder_releases_it(
    bucket: tuple[Any, str], tmp_path: Path
) -> None:
    """``wait=``/``--wait``: a live lock of another machine is waited for, not refused."""
    fs, name = bucket
    url = f"s3://{name}/pics"
    _foreign_lock(fs, name, lease_s=60)
    lock = ObjectPath(f"{url}/{LOCK}")

    def release_later() -> None:
        time.sleep(1.0)
        seen = get_versioned(lock)
        assert seen is not None
        body = {"token": "x", "host": "elsewhere", "pid": 1, "lease_s": 60, "released": True}
        assert put_if(lock, json.dumps(body).encode(), seen.etag)

    with pytest.raises(SyncLocked):
        sync_decisions(url, tmp_path / "b.db", [], wait=0.5)  # waited half a second, then refused
    releaser = threading.Thread(target=release_later)
    releaser.start()
    started = time.monotonic()
    assert sync_decisions(url, tmp_path / "b.db", [], wait=20) == {}
    releaser.join()
    assert 1.0 <= time.monotonic() - started < 15
    assert lock_body(fs, name)["pid"] == os.getpid()


# ---------------------------------------------------------------------------------------------
# --replace-better: every step conditional on the object judged worse


def _picture_5(fmt: str, quality: int | None, size: tuple[int, int]) -> bytes:
    import numpy as np
    from PIL import Image

    from .helpers import encode
    from .test_index import picture

    pixels = np.asarray(Image.fromarray(picture(5, (640, 480))).resize(size, Image.LANCZOS))
    return encode(pixels, fmt, quality=quality) if quality else encode(pixels, fmt)


@pytest.mark.parametrize(
    ("remote", "new_name"),
    [(("PNG", None, (640, 480)), "p.png"), (("JPEG", 95, (640, 480)), "p.jpg")],
    ids=["another-format", "same-name"],
)
def test_replace_better_into_a_bucket_keeps_the_old_object(
    bucket: tuple[Any, str], tmp_path: Path, remote: tuple[Any, Any, Any], new_name: str
) -> None:
    fs, name = bucket
    old, new = _picture_5("JPEG", 60, (640, 480)), _picture_5(*remote)
    fs.pipe(f"{name}/pics/p.jpg", old)
    url, db = f"s3://{name}/pics", tmp_path / "b.db"
    with http_server({"/p-best": Response(200, new)}) as server:
        assert sync_decisions(url, db, [server.url("/p-best")]) == {
            "p-best": "skipped-same-picture"
        }
        with Library(url, db=db, workers=1) as lib:
            summary = lib.sync([server.url("/p-best")], replace_better=True)
    (item,) = summary.items
    assert item.decision == "replaced", item.reason
    assert (
        str(item.path) == f"{url}/{new_name}" and str(item.kept) == f"{url}/.samepix/replaced/p.jpg"
    )
    assert pictures(fs, name) == {f"pics/{new_name}": new}
    assert objects(fs, name)["pics/.samepix/replaced/p.jpg"] == old
    with Library(url, db=db, workers=1) as lib:
        assert [e.path for e in lib.index.entries()] == [new_name]
        assert not lib.update().changed


@pytest.mark.parametrize(
    ("step", "remote"),
    [
        ("keep", ("JPEG", 95, (640, 480))),
        ("replace", ("JPEG", 95, (640, 480))),
        ("remove", ("PNG", None, (640, 480))),
    ],
    ids=["before-the-copy", "before-the-put", "before-the-delete"],
)
def test_an_object_changed_while_being_replaced_is_never_overwritten_or_removed(
    bucket: tuple[Any, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str,
    remote: tuple[Any, Any, Any],
) -> None:  # fmt: skip
    """Another writer puts other bytes at the object judged worse just before one of the three
    writes of a replacement: the copy kept (made only of the bytes judged), the PUT over it
    (If-Match on the ETag read) and the DELETE of the old name (If-Match) each refuse; the other
    writer's object stays as it wrote it."""
    from samepix.bucket_sync import BucketTarget

    fs, name = bucket
    old, new, other = _picture_5("JPEG", 60, (640, 480)), _picture_5(*remote), png(9)
    fs.pipe(f"{name}/pics/p.jpg", old)
    real = getattr(BucketTarget, step)

    def racing(self: BucketTarget, *args: Any) -> Any:
        fs.pipe(f"{name}/pics/p.jpg", other)  # another writer, at this very moment
        return real(self, *args)

    monkeypatch.setattr(BucketTarget, step, racing)
    url, db = f"s3://{name}/pics", tmp_path / "b.db"
    lib = Library(url, db=db, workers=1)
    with http_server({"/p-best": Response(200, new)}) as server, lib:
        summary = lib.sync([server.url("/p-best")], replace_better=True)
    (item,) = summary.items
    stored = objects(fs, name)
    assert stored["pics/p.jpg"] == other  # never overwritten, never removed
    if step == "remove":  # the better copy was saved under its own name; the old name stays
        assert item.decision == "replaced" and stored["pics/p.png"] == new
    else:
        assert item.decision == "failed"
        assert item.reason == (
            "p.jpg changed while it was being replaced: nothing was overwritten; run the sync "
            "again to decide with its new bytes"
        )
        assert set(pictures(fs, name)) == {"pics/p.jpg"}
    kept = stored.get("pics/.samepix/replaced/p.jpg")
    assert kept == (None if step == "keep" else old)  # only ever the bytes judged worse

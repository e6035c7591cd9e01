"""``sync`` into fsspec's ``memory://`` store through the library: real memory objects, the
local HTTP test servers, real SQLite files. That store lives inside one process, so a whole
object put by an atomic create-if-absent and a lock held in this process give it the
guarantees S3 gets from conditional writes; a ``samepix sync`` command into it is refused
(it would save into a store that ends with the command)."""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from samepix import Library, SyncLocked
from samepix.errors import UsageError
from samepix.fetch import Retry
from samepix.storage import ObjectPath, put_new

from .helpers import Resource, Response, dies_mid_body, http_server, one_line_error, run_cli
from .test_sync import half, jpeg, png, stored, sync_decisions

fsspec = pytest.importorskip("fsspec", reason="samepix[s3] (fsspec) is not installed")


@pytest.fixture
def store() -> Iterator[tuple[Any, str]]:
    """The memory filesystem and a folder of its own in it (the store is one per process)."""
    fs = fsspec.filesystem("memory")
    name = f"/sync-{uuid.uuid4().hex[:8]}"  # its URL: memory:/ + name
    try:
        yield fs, name
    finally:
        for key in [k for k in list(fs.store) if k.startswith(name + "/")]:
            fs.store.pop(key, None)


def test_sync_into_memory_saves_new_pictures_skips_copies_and_is_incremental(
    store: tuple[Any, str], tmp_path: Path
) -> None:
    fs, name = store
    fs.pipe(f"{name}/old.png", png(1))
    routes: dict[str, Any] = {
        "/a/copy.jpg": Resource(half(1), etag='"c"'),  # the same picture, re-encoded, smaller
        "/same.png": Resource(png(1), etag='"s"'),  # the same bytes
        "/new.jpg": Resource(jpeg(2), etag='"n"'),
        "/x/..%2F..%2Fevil%01name.jpg": Resource(jpeg(3), etag='"e"'),  # a hostile name
    }
    url, db = f"memory:/{name}", tmp_path / "memory.db"
    with http_server(routes) as server:
        urls = [server.url(path) for path in routes]
        first = sync_decisions(url, db, urls)
        assert first == {
            "copy.jpg": "skipped-same-picture",
            "same.png": "skipped-bytes",
            "new.jpg": "downloaded",
            "..%2F..%2Fevil%01name.jpg": "downloaded",
        }
        saved = stored(fs, name)
        assert saved.pop("old.png") == png(1) and saved.pop("new.jpg") == jpeg(2)
        # Sanitised: one object right in the folder, no "..", no control character.
        ((evil, body),) = saved.items()
        assert body == jpeg(3) and "/" not in evil and ".." not in evil and "\x01" not in evil
        sent = server.body_bytes_sent
        again = sync_decisions(url, db, urls)
        assert set(again.values()) == {"skipped-unchanged"}
        assert server.body_bytes_sent == sent  # all 304: the validators were kept
    # Only pictures in the store: the lock was held in this process, the state is local.
    assert set(stored(fs, name)) == {"old.png", "new.jpg", evil}
    assert (tmp_path / "memory.fetch-state.sqlite3").exists()
    with Library(url, db=db, workers=1) as lib:
        update = lib.update()  # the stat kept for a saved object is the listing's
    assert (update.unchanged, update.decoded) == (3, 0)


def test_a_name_taken_meanwhile_is_never_overwritten(
    store: tuple[Any, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An object written at the name the sync picks, after its existence check (made blind
    here), stays as it was: the create-if-absent refuses, the next free name is used."""
    fs, name = store
    other = png(7)
    fs.pipe(f"{name}/photo.jpg", png(8))
    with Library(f"memory:/{name}", db=tmp_path / "m.db", workers=1) as lib:
        lib.update()

    def racing(handler: Any) -> Response:
        fs.pipe(f"{name}/photo-1.jpg", other)  # lands while the URL is being downloaded
        return Response(200, jpeg(2), {"Content-Type": "image/jpeg"})

    monkeypatch.setattr(ObjectPath, "exists", lambda self: False)
    with http_server({"/photo.jpg": racing}) as server:
        lib = Library(f"memory:/{name}", db=tmp_path / "m.db", workers=1)
        with lib:
            summary = lib.sync([server.url("/photo.jpg")])
    assert "saved as photo-2.jpg" in summary.items[0].reason
    assert stored(fs, name) == {
        "photo.jpg": png(8),
        "photo-1.jpg": other,
        "photo-2.jpg": jpeg(2),
    }


def test_the_create_is_atomic_between_threads() -> None:
    """Of many threads creating one object at once, exactly one succeeds, and its bytes are
    the object's (``pipe_file(mode="create")`` checks ``exists`` before writing: a race)."""
    target = ObjectPath(f"memory://race-{uuid.uuid4().hex[:8]}/one.bin")
    start = threading.Barrier(16)
    won: list[bytes] = []

    def create(k: int) -> None:
        data = f"writer {k}".encode()
        start.wait()
        if put_new(target, data):
            won.append(data)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often: a check-then-write race shows
    try:
        for _ in range(60):
            threads = [threading.Thread(target=create, args=(k,)) for k in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(won) == 1
            assert bytes(target.fs.cat(target.key)) == won[0]
            target.fs.rm(target.key)
            won.clear()
    finally:
        sys.setswitchinterval(switch)
        target.fs.store.pop(target.fs._strip_protocol(target.key), None)


def test_a_server_dying_mid_body_leaves_no_object(store: tuple[Any, str], tmp_path: Path) -> None:
    fs, name = store
    dies = dies_mid_body(jpeg(4))

    lib = Library(f"memory:/{name}", db=tmp_path / "m.db", workers=1)
    with http_server({"/dies.jpg": dies, "/ok.jpg": Resource(jpeg(5))}) as server, lib:
        summary = lib.sync([server.url("/dies.jpg"), server.url("/ok.jpg")], retry=Retry(tries=1))
    assert [i.decision for i in summary.items] == ["failed", "downloaded"]
    assert stored(fs, name) == {"ok.jpg": jpeg(5)}


def test_a_second_sync_in_this_process_is_refused_while_one_runs_then_waits(
    store: tuple[Any, str], tmp_path: Path
) -> None:
    """Two syncs into one memory:// folder (two threads, two indexes): the second is refused
    with one line while the first holds the folder; with ``wait`` it runs once the first is
    done and recognises the first one's picture by its bytes (saved once)."""
    fs, name = store
    url = f"memory:/{name}"
    release, started = threading.Event(), threading.Event()

    def slow(handler: Any) -> Response:
        started.set()
        release.wait(30)
        return Response(200, jpeg(6), {"Content-Type": "image/jpeg"})

    with http_server({"/slow.jpg": slow, "/b.jpg": Resource(jpeg(6))}) as server:
        first: dict[str, str] = {}
        runner = threading.Thread(
            target=lambda: first.update(
                sync_decisions(url, tmp_path / "a.db", [server.url("/slow.jpg")])
            ),
            name="first-sync",
        )
        runner.start()
        try:
            assert started.wait(30)
            with pytest.raises(SyncLocked) as info:
                sync_decisions(url, tmp_path / "b.db", [server.url("/b.jpg")])
            assert str(info.value) == (
                f"another samepix sync is running into {url} in this process (thread "
                "first-sync); wait for it to finish"
            )
            threading.Timer(0.5, release.set).start()
            second = sync_decisions(url, tmp_path / "b.db", [server.url("/b.jpg")], wait=30)
        finally:
            release.set()
            runner.join(30)
    assert first == {"slow.jpg": "downloaded"}
    assert second == {"b.jpg": "skipped-bytes"}
    assert stored(fs, name) == {"slow.jpg": jpeg(6)}


def test_a_dry_run_writes_nothing_and_a_new_folder_is_made_by_a_real_run(
    store: tuple[Any, str], tmp_path: Path
) -> None:
    fs, name = store
    url = f"memory:/{name}/new"
    with http_server({"/n.jpg": Resource(jpeg(2))}) as server:
        with pytest.raises(Exception, match="no such folder"):
            sync_decisions(url, tmp_path / "d.db", [server.url("/n.jpg")], dry_run=True)
        assert sync_decisions(url, tmp_path / "m.db", [server.url("/n.jpg")]) == {
            "n.jpg": "downloaded"
        }
    assert stored(fs, name) == {"new/n.jpg": jpeg(2)}


def test_replace_better_into_memory_is_refused(store: tuple[Any, str], tmp_path: Path) -> None:
    _, name = store
    with pytest.raises(UsageError, match="--replace-better into memory:// is not supported"):
        sync_decisions(f"memory:/{name}", tmp_path / "m.db", ["http://127.0.0.1:9/a.jpg"],
             replace_better=True)  # fmt: skip


@pytest.mark.parametrize(
    ("scheme", "why"),
    [
        ("gs", "gcsfs's create-if-absent, ifGenerationMatch=0, is experimental in gcsfs and "
         "untested here"),
        ("az", "no create-if-absent samepix has tested"),
    ],
    ids=["gs", "az"],
)  # fmt: skip
def test_stores_without_a_tested_create_if_absent_are_refused(
    scheme: str, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gcsfs and adlfs cannot run here (no emulator): a stand-in filesystem registered for the
    scheme shows the refusal, made before any work."""
    from fsspec.implementations.memory import MemoryFileSystem
    from fsspec.registry import _registry

    stand_in = type("StandIn", (MemoryFileSystem,), {"protocol": scheme})
    monkeypatch.setitem(_registry, scheme, stand_in)  # undone after the test
    with pytest.raises(UsageError) as info:
        sync_decisions(f"{scheme}://bucket/pics", tmp_path / "x.db", ["http://127.0.0.1:9/a.jpg"])
    assert str(info.value) == (
        f"{scheme}://bucket/pics: sync into {scheme}:// is not supported: samepix writes only "
        f"where the store itself refuses to overwrite an object ({why}); sync into s3://, or "
        "into a local folder"
    )
    assert not (tmp_path / "x.db").exists()


def test_the_command_refuses_memory_in_one_line(tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("http://127.0.0.1:9/a.png\n")
    proc = run_cli("sync", str(urls), "memory://somewhere", "--db", str(tmp_path / "m.db"),
                   text=True)  # fmt: skip
    assert proc.returncode == 2
    assert one_line_error(proc) == (
        "error: memory://somewhere: a samepix command cannot sync into memory://: that store "
        "lives inside one Python process and would be gone, with every picture saved, when "
        "the command ends; sync into it from Python (samepix.Library(url).sync(...)), or into "
        "s3:// or a local folder"
    )
    assert not (tmp_path / "m.db").exists()

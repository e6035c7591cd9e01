"""The folder index on real files and real SQLite databases: incremental rules, moves recognised
without decoding, links and loops, unreadable files, crashes and corrupted databases."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samepix.errors import IndexCorrupt, UsageError
from samepix.hashes import HashSet, ImageHash
from samepix.index import (
    THUMB_SIDE,
    Descriptor,
    Index,
    IndexEntry,
    default_db_path,
    update_index,
)
from samepix.limits import Limits

from .helpers import encode

ROOT = Path(__file__).resolve().parents[1]

# Any decode, even of a header, of a real picture fails under this limit: a file that is indexed
# under it was recognised from its bytes' SHA-256 alone.
NO_DECODING = Limits(max_pixels=1)


def picture(seed: int, size: tuple[int, int] = (160, 120)) -> object:
    from samepix.demo import make_picture

    return make_picture(seed, size)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Five small pictures in a folder tree: JPEG and PNG, one in a subfolder."""
    root = tmp_path / "pics"
    (root / "sub").mkdir(parents=True)
    (root / "a.jpg").write_bytes(encode(picture(1), "JPEG", quality=90))
    (root / "b.png").write_bytes(encode(picture(2), "PNG"))
    (root / "c.jpg").write_bytes(encode(picture(3), "JPEG", quality=80))
    (root / "sub" / "d.webp").write_bytes(encode(picture(4), "WEBP", quality=80))
    (root / "sub" / "e.JPG").write_bytes(encode(picture(5), "JPEG", quality=70))
    (root / "notes.txt").write_text("not an image and not named like one: ignored")
    return root


def update(root: Path, **kwargs: object) -> object:
    with Index(root) as index:
        return update_index(index, workers=1, **kwargs)  # type: ignore[arg-type]


def paths(root: Path) -> list[str]:
    with Index(root) as index:
        return [e.path for e in index.entries()]


def test_first_index_adds_every_image(folder: Path) -> None:
    s = update(folder)
    assert (s.added, s.updated, s.moved, s.removed, s.unchanged) == (5, 0, 0, 0, 0)
    assert s.decoded == 5 and s.total == 5 and s.unreadable == ()
    assert paths(folder) == ["a.jpg", "b.png", "c.jpg", "sub/d.webp", "sub/e.JPG"]
    assert default_db_path(folder).is_file()


def test_entry_holds_what_find_needs(folder: Path) -> None:
    update(folder)
    with Index(folder) as index:
        entry = index.get("a.jpg")
    assert entry is not None
    d = entry.descriptor
    assert (d.format, d.width, d.height, d.lossless) == ("JPEG", 160, 120, False)
    assert d.jpeg_quality == 90
    assert len(d.thumb) == THUMB_SIDE * THUMB_SIDE
    import hashlib

    assert d.sha256 == hashlib.sha256((folder / "a.jpg").read_bytes()).hexdigest()
    # The same hashes a query of the same file gets (one pipeline for both).
    from samepix.compare import load

    assert d.hashes == load(folder / "a.jpg", lazy=True).hashes


def test_unchanged_files_are_not_read(folder: Path) -> None:
    update(folder)
    # Rewrite a.jpg's bytes in place, keeping size, inode and mtime: an update that trusts
    # (size, mtime_ns, inode) cannot notice, which shows it did not read the file.
    target = folder / "a.jpg"
    before = target.stat()
    data = bytearray(target.read_bytes())
    data[-3] ^= 0xFF
    with target.open("r+b") as handle:
        handle.write(bytes(data))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    s = update(folder, limits=NO_DECODING)
    assert (s.unchanged, s.decoded, s.added, s.updated) == (5, 0, 0, 0)
    with Index(folder) as index:
        entry = index.get("a.jpg")
    assert entry is not None
    import hashlib

    assert entry.sha256 != hashlib.sha256(bytes(data)).hexdigest()


def test_add_modify_delete_rename(folder: Path) -> None:
    update(folder)
    (folder / "new.png").write_bytes(encode(picture(6), "PNG"))  # added
    (folder / "c.jpg").write_bytes(encode(picture(7), "JPEG", quality=85))  # updated
    (folder / "b.png").unlink()  # removed
    (folder / "sub" / "deeper").mkdir()
    os.rename(folder / "a.jpg", folder / "sub" / "deeper" / "moved.jpg")  # moved
    s = update(folder)
    assert (s.added, s.updated, s.removed, s.moved, s.unchanged) == (1, 1, 1, 1, 2)
    assert s.moves == (("a.jpg", "sub/deeper/moved.jpg"),)
    assert s.decoded == 2 and s.total == 5
    assert paths(folder) == ["c.jpg", "new.png", "sub/d.webp", "sub/deeper/moved.jpg", "sub/e.JPG"]


def test_moved_file_is_not_decoded(folder: Path) -> None:
    update(folder)
    os.rename(folder / "b.png", folder / "renamed.png")
    os.rename(folder / "sub" / "d.webp", folder / "d-moved.webp")
    # Under NO_DECODING any decode would make the file unreadable; a move is recognised anyway.
    s = update(folder, limits=NO_DECODING)
    assert (s.moved, s.decoded, s.added, s.removed) == (2, 0, 0, 0)
    assert s.unreadable == ()
    with Index(folder) as index:
        moved = index.get("renamed.png")
    assert moved is not None and moved.descriptor.width == 160


def test_copy_and_touch_are_not_decoded(folder: Path) -> None:
    update(folder)
    shutil.copyfile(folder / "a.jpg", folder / "a-copy.jpg")
    os.utime(folder / "c.jpg", ns=(time.time_ns(), time.time_ns() + 10**9))
    s = update(folder, limits=NO_DECODING)
    assert (s.added, s.unchanged, s.decoded, s.updated) == (1, 5, 0, 0)
    assert s.unreadable == ()


def test_file_moved_over_another(folder: Path) -> None:
    update(folder)
    os.replace(folder / "a.jpg", folder / "c.jpg")
    s = update(folder, limits=NO_DECODING)
    assert (s.moved, s.removed, s.decoded, s.total) == (1, 0, 0, 4)
    assert "a.jpg" not in paths(folder)


def test_symlink_loops_and_links_are_walked_once(folder: Path) -> None:
    os.symlink("..", folder / "sub" / "loop")  # back to the root
    os.symlink(".", folder / "self")  # to itself
    os.symlink("sub", folder / "alias")  # a second name for a folder
    os.symlink("a.jpg", folder / "z-link.jpg")  # a second name for a file
    os.link(folder / "b.png", folder / "z-hard.png")  # and a hard link
    os.symlink("missing.jpg", folder / "broken.jpg")
    s = update(folder)
    assert s.total == 5
    assert paths(folder) == ["a.jpg", "b.png", "c.jpg", "sub/d.webp", "sub/e.JPG"]
    assert [(u.path, u.reason) for u in s.unreadable] == [("broken.jpg", "broken symbolic link")]


def test_unreadable_files_are_counted_not_fatal(folder: Path) -> None:
    (folder / "page.jpg").write_bytes(b"<!DOCTYPE html><html>Not found</html>")
    (folder / "empty.png").write_bytes(b"")
    (folder / "cut.jpg").write_bytes(encode(picture(8), "JPEG", quality=90)[:600])
    s = update(folder)
    assert s.added == 5
    reasons = {u.path: u.reason for u in s.unreadable}
    assert set(reasons) == {"page.jpg", "empty.png", "cut.jpg"}
    assert "HTML" in reasons["page.jpg"]
    assert "empty" in reasons["empty.png"]
    assert "truncated" in reasons["cut.jpg"] or "corrupt" in reasons["cut.jpg"]
    # Known and unchanged: listed again, not read again.
    again = update(folder, limits=NO_DECODING)
    assert {u.path for u in again.unreadable} == set(reasons) and again.decoded == 0
    # Fixed: indexed; deleted: forgotten.
    (folder / "page.jpg").write_bytes(encode(picture(9), "JPEG"))
    (folder / "empty.png").unlink()
    fixed = update(folder)
    assert fixed.added == 1 and [u.path for u in fixed.unreadable] == ["cut.jpg"]


def test_limit_exceeded_is_unreadable(folder: Path) -> None:
    s = update(folder, limits=Limits(max_bytes=100))
    assert s.total == 0 and len(s.unreadable) == 5
    assert all("limit" in u.reason for u in s.unreadable)


def test_state_folders_are_not_indexed(folder: Path) -> None:
    (folder / ".samepix" / "replaced").mkdir(parents=True)
    (folder / ".samepix" / "replaced" / "old.jpg").write_bytes(encode(picture(1), "JPEG"))
    (folder / "sub" / ".samepix").mkdir()
    (folder / "sub" / ".samepix" / "x.png").write_bytes(encode(picture(2), "PNG"))
    assert update(folder).total == 5


def test_parallel_update_matches_serial(folder: Path, tmp_path: Path) -> None:
    for i in range(20):
        (folder / f"many{i:02d}.png").write_bytes(encode(picture(100 + i, (96, 64)), "PNG"))
    serial_db = tmp_path / "serial.db"
    with Index(folder, serial_db) as index:
        serial = update_index(index, workers=1)
        rows_serial = [e.descriptor for e in index.entries()]
    with Index(folder) as index:
        parallel = update_index(index, workers=2)
        rows_parallel = [e.descriptor for e in index.entries()]
    assert serial.added == parallel.added == 25
    assert rows_serial == rows_parallel


def test_progress_reports(folder: Path) -> None:
    reports: list[object] = []
    update(folder, progress=reports.append)
    stages = [r.stage for r in reports]  # type: ignore[attr-defined]
    assert stages[0] == "scanning" and stages[-1] == "decoding"
    assert reports[-1].done == reports[-1].total == 5  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# Damaged, foreign and locked databases


def test_garbage_database_is_a_clear_error(folder: Path) -> None:
    db = default_db_path(folder)
    db.parent.mkdir()
    db.write_bytes(b"this is not an SQLite database at all" * 100)
    with pytest.raises(IndexCorrupt) as info:
        Index(folder)
    message = str(info.value)
    assert str(db) in message and "samepix index --rebuild" in message


def test_damaged_pages_are_a_clear_error(folder: Path) -> None:
    for i in range(40):
        (folder / f"x{i:02d}.png").write_bytes(encode(picture(200 + i, (96, 64)), "PNG"))
    update(folder)
    db = default_db_path(folder)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = db.stat().st_size
    with db.open("r+b") as handle:  # overwrite everything after the first page with junk
        handle.seek(4096)
        handle.write(bytes(range(256)) * ((size - 4096) // 256 + 1))
    with pytest.raises(IndexCorrupt) as info, Index(folder) as index:
        update_index(index, workers=1)
    assert str(db) in str(info.value) and "--rebuild" in str(info.value)


def test_foreign_database_and_newer_schema(folder: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(IndexCorrupt, match="not a samepix index"):
        Index(folder, other)
    update(folder)
    with sqlite3.connect(default_db_path(folder)) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(IndexCorrupt, match="newer"):
        Index(folder)


def test_older_index_is_described_again_and_keeps_other_tables(folder: Path) -> None:
    # Version 1 hashed a 256 px grey image; its rows must not meet version 2's queries.
    from samepix.index import SCHEMA_VERSION

    update(folder)
    db = default_db_path(folder)
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE files SET phash = 0, dhash = 0")  # as if made another way
        conn.execute("CREATE TABLE sync_urls (url TEXT PRIMARY KEY, path TEXT)")
        conn.execute("INSERT INTO sync_urls VALUES ('http://x/a.jpg', 'a.jpg')")
        conn.execute("PRAGMA user_version = 1")
    with Index(folder) as index:
        assert len(index) == 0  # dropped on opening, in one transaction
    s = update(folder)
    assert (s.added, s.decoded, s.total) == (5, 5, 5)
    with Index(folder) as index:
        assert all(e.hashes.phash.value != 0 for e in index.entries())
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT path FROM sync_urls").fetchall() == [("a.jpg",)]


def test_explicit_db_belongs_to_one_folder(folder: Path, tmp_path: Path) -> None:
    db = tmp_path / "elsewhere.db"
    with Index(folder, db) as index:
        update_index(index, workers=1)
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(UsageError, match="belongs to"):
        Index(other, db)


def test_killed_update_resumes_and_database_stays_sound(tmp_path: Path) -> None:
    import numpy as np

    root = tmp_path / "big"
    root.mkdir()
    bases = [np.asarray(picture(300 + k, (1024, 768))) for k in range(4)]
    count = 64
    for i in range(count):  # distinct pictures (shifted), PNG: decoded in full, so it takes time
        shifted = np.roll(bases[i % 4], 13 * i, axis=1)
        (root / f"p{i:02d}.png").write_bytes(encode(shifted, "PNG", compress_level=1))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "samepix", "index", str(root), "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = default_db_path(root)
    deadline = time.monotonic() + 60
    committed = 0
    while proc.poll() is None and time.monotonic() < deadline:  # kill once some rows landed
        if db.exists():
            with contextlib.suppress(sqlite3.Error), sqlite3.connect(db, timeout=0.1) as conn:
                committed = conn.execute("SELECT count(*) FROM files").fetchone()[0]
        if committed:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kept = conn.execute("SELECT count(*) FROM files").fetchone()[0]
    assert kept >= committed > 0
    with Index(root) as index:
        s = update_index(index, workers=2)
    assert s.total == count and s.unreadable == ()
    assert s.unchanged == kept and s.added == count - kept  # finished files were not redone


# ---------------------------------------------------------------------------------------------
# Rows round-trip


_u64 = st.integers(min_value=0, max_value=(1 << 64) - 1)
_hashes = st.builds(
    lambda a, d, p, w: HashSet(
        ImageHash("ahash", a), ImageHash("dhash", d), ImageHash("phash", p), ImageHash("whash", w)
    ),
    _u64,
    _u64,
    _u64,
    _u64,
)
_entries = st.builds(
    IndexEntry,
    path=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1
    ),
    size=st.integers(0, 1 << 40),
    mtime_ns=st.integers(-(1 << 62), 1 << 62),
    inode=st.integers(0, (1 << 63) - 1),
    descriptor=st.builds(
        Descriptor,
        sha256=st.binary(min_size=32, max_size=32).map(bytes.hex),
        format=st.sampled_from([None, "JPEG", "PNG", "WEBP", "GIF"]),
        width=st.integers(1, 1 << 20),
        height=st.integers(1, 1 << 20),
        mode=st.sampled_from(["RGB", "L", "P", "RGBA", "I;16", "CMYK"]),
        lossless=st.sampled_from([None, True, False]),
        jpeg_quality=st.none() | st.integers(1, 100),
        hashes=_hashes,
        thumb=st.binary(min_size=THUMB_SIDE**2, max_size=THUMB_SIDE**2),
    ),
)


@settings(max_examples=200, deadline=None)
@given(entry=_entries)
def test_entry_row_round_trip(entry: IndexEntry) -> None:
    assert IndexEntry.from_row(entry.to_row()) == entry


@settings(max_examples=50, deadline=None)
@given(entries=st.lists(_entries, min_size=1, max_size=8, unique_by=lambda e: e.path))
def test_entries_round_trip_through_a_real_database(
    entries: list[IndexEntry], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("rt")
    with Index(root) as index, index.transaction() as conn:
        for entry in entries:
            index.put(conn, entry)
    with Index(root) as index:  # reopened: what is on disk, not what a connection cached
        assert sorted(index.entries(), key=lambda e: e.path) == sorted(
            entries, key=lambda e: e.path
        )
        for entry in entries:
            assert index.get(entry.path) == entry
            assert entry in index.by_sha256(entry.sha256)
        table = index.hash_table()
        assert len(table) == len(entries)
        ids, dists = table.candidates(entries[0].hashes, 0)
        assert int(dists[0]) == 0 and entries[0] in index.by_ids(ids.tolist()).values()


def test_search_table_cache_follows_every_write(folder: Path) -> None:
    update(folder)
    db = default_db_path(folder)
    cache = Path(f"{db}-hashes.npy")
    with Index(folder) as index:
        assert len(index.hash_table()) == 5
    assert cache.is_file()
    with Index(folder) as index:  # served from the cache file
        assert len(index.hash_table()) == 5
    # Any writer, even a plain SQLite connection, moves the change counter (triggers).
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM files WHERE path = 'a.jpg'")
    with Index(folder) as index:
        table = index.hash_table()
        assert len(table) == 4
        assert "a.jpg" not in {e.path for e in index.by_ids(table.ids.tolist()).values()}
    cache.write_bytes(b"not a numpy file")
    with Index(folder) as index:
        assert len(index.hash_table()) == 4


def test_search_table_is_read_in_batches_with_progress(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows go straight into preallocated arrays, a batch at a time, reporting as they go;
    the arrays equal the rows and the cached file gives the same table."""
    import samepix.index as index_module
    from samepix.index import Progress

    update(folder)
    monkeypatch.setattr(index_module, "_LOAD_BATCH", 2)  # 5 rows: three batches
    reports: list[Progress] = []
    with Index(folder) as index:
        table = index.hash_table(progress=reports.append)
        rows = index._query("SELECT id, phash, dhash FROM files ORDER BY id")
    assert [(r.done, r.total) for r in reports] == [(2, 5), (4, 5), (5, 5), (5, 5)]
    assert {r.stage for r in reports} == {"loading"}
    assert [tuple(r) for r in rows] == list(
        zip(table.ids.tolist(), table.phash.tolist(), table.dhash.tolist(), strict=True)
    )
    with Index(folder) as index:  # from the cache file now
        cached = index.hash_table()
    assert cached.ids.tolist() == table.ids.tolist()
    assert cached.phash.tolist() == table.phash.tolist()


def test_same_content_ids_and_entry_cache(folder: Path) -> None:
    shutil.copy(folder / "a.jpg", folder / "sub" / "a-copy.jpg")
    shutil.copy(folder / "a.jpg", folder / "z.jpg")
    update(folder)
    with Index(folder) as index:
        table = index.hash_table()
        groups = index.same_content_ids()
        assert len(groups) == 1 and len(groups[0]) == 3
        names = {e.path for e in index.by_ids(groups[0]).values()}
        assert names == {"a.jpg", "sub/a-copy.jpg", "z.jpg"}
        cache = index.entry_cache(table.ids, capacity=2)
        assert len(cache) == len(table) == 7
        everything = {e.path for e in index.entries()}
        got = {cache.get(p).path for p in range(len(cache))}  # type: ignore[union-attr]
        assert got == everything
        assert len(cache._cache) == 2  # least recently used dropped
        with index.transaction() as conn:
            conn.execute("DELETE FROM files WHERE path = 'z.jpg'")
        cache.prefetch(range(len(cache)))
        assert sum(cache.get(p) is None for p in range(len(cache))) == 1

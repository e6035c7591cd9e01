"""update_index streamed: the folder walked one file at a time, in the order of a sorted list
of its paths, compared with the index a batch at a time (no map of every file or row); renames,
swaps and copies recognised by content as before. Real folders, real SQLite files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from samepix.index import Index, _FolderWalk, update_index
from samepix.limits import Limits

from .helpers import encode
from .test_index import picture

NO_DECODING = Limits(max_pixels=1)  # any decode fails: what is recognised was not decoded


def update(root: Path, **kwargs: object) -> object:
    with Index(root) as index:
        return update_index(index, workers=1, **kwargs)  # type: ignore[arg-type]


def test_walk_gives_files_in_path_order_each_file_once(tmp_path: Path) -> None:
    root = tmp_path / "pics"
    # "a-b/" sorts before "a/" ("-" < "/"), "a.b" after "a/": a walk that entered folders by
    # name alone would give a/x.jpg first.
    rels = ["a/x.jpg", "a-b/y.png", "a.b/z.jpg", "a0.jpg", "a/deeper/q.jpg", "Z.jpg", "z.jpg"]
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rel.encode())
    os.link(root / "z.jpg", root / "a-b" / "hard.jpg")  # a second name: the first path wins
    os.symlink(root / "a0.jpg", root / "0-sym.jpg")  # through a link: after every real path
    os.symlink("a", root / "0-alias")  # a linked folder whose files were given already
    (root / "linked").mkdir()
    (root / "linked" / "only.jpg").write_bytes(b"only")
    os.symlink(root / "linked", root / "a" / "via")  # "linked" is a real folder: its path wins
    os.symlink("/usr/share", root / "out")  # leads out: counted, not followed
    walk = _FolderWalk(root, set())
    try:
        got = [rel for rel, _ in walk.files()]
    finally:
        walk.close()
    assert got == [
        "Z.jpg", "a-b/hard.jpg", "a-b/y.png", "a.b/z.jpg", "a/deeper/q.jpg", "a/x.jpg",
        "a0.jpg", "linked/only.jpg",
    ]  # fmt: skip
    assert "z.jpg" not in got  # the hard link "a-b/hard.jpg" sorts first and stands for it
    assert walk.links_out == 1 and walk.problems == {}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "pics"
    (root / "sub").mkdir(parents=True)
    for n, name in enumerate(["a.png", "b.png", "c.png", "d.png", "sub/e.png"], 1):
        (root / name).write_bytes(encode(picture(n), "PNG"))
    return root


def test_swapped_files_and_reused_bytes_are_told_apart(folder: Path) -> None:
    update(folder)
    a, b, c = (folder / n for n in ("a.png", "b.png", "c.png"))
    a_bytes, b_bytes, c_bytes = a.read_bytes(), b.read_bytes(), c.read_bytes()
    a.write_bytes(b_bytes)  # a and b swap bytes: a takes b's description, b is read again
    b.write_bytes(a_bytes)
    c.write_bytes(encode(picture(9), "PNG"))  # c changes, and its old bytes move to n.png:
    (folder / "n.png").write_bytes(c_bytes)  # c's old row must not stand for them
    s = update(folder)
    assert (s.updated, s.added, s.moved, s.removed, s.unchanged) == (3, 1, 0, 0, 2)
    assert s.decoded == 3  # b (its old bytes are a's, rewritten first), c, n
    with Index(folder) as index:
        for name in ("a.png", "b.png", "c.png", "n.png"):
            entry = index.get(name)
            assert entry is not None
            assert (
                entry.sha256
                == __import__("hashlib").sha256((folder / name).read_bytes()).hexdigest()
            ), name


def test_two_gone_copies_and_one_new_name_is_one_move_and_one_removal(folder: Path) -> None:
    shutil.copyfile(folder / "d.png", folder / "d2.png")
    update(folder)
    os.rename(folder / "d.png", folder / "sub" / "moved.png")
    (folder / "d2.png").unlink()
    s = update(folder, limits=NO_DECODING)
    assert (s.moved, s.removed, s.decoded, s.total) == (1, 1, 0, 5)
    assert s.moves == (("d.png", "sub/moved.png"),)  # the first row of those bytes
    assert s.unreadable == ()


def test_a_removal_alone_is_one_removal_and_nothing_is_read(folder: Path) -> None:
    update(folder)
    (folder / "b.png").unlink()
    s = update(folder, limits=NO_DECODING)
    assert (s.removed, s.moved, s.added, s.updated, s.decoded, s.total) == (1, 0, 0, 0, 0, 4)
    assert s.moves == () and s.unreadable == ()


def test_a_first_build_describes_files_as_they_are_walked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first build hands the walk to the describing shards as it goes: the files walked but
    not yet described stay bounded (the read-ahead that tells a small folder, plus a shard),
    not the whole folder (a 10M-file folder's list of files to read was held whole)."""
    import numpy as np

    from samepix import index as index_module

    root = tmp_path / "many"
    root.mkdir()
    read_ahead = getattr(index_module, "_FEW_FILES", 1024)  # how a small folder is told
    count = read_ahead + 700
    rng = np.random.default_rng(3)
    for k in range(count):
        (root / f"{k:05d}.png").write_bytes(encode(rng.integers(0, 255, (8, 8), np.uint8), "PNG"))
    walked = described = 0
    ahead: list[int] = []  # walked but not described, at each shard
    real_files, real_describe = _FolderWalk.files, index_module.describe_shard

    def counting_files(self: _FolderWalk) -> object:
        nonlocal walked
        for item in real_files(self):
            walked += 1
            yield item

    def counting_describe(shard: object) -> object:
        nonlocal described
        ahead.append(walked - described)
        out = real_describe(shard)  # type: ignore[arg-type]
        described += len(out)
        return out

    monkeypatch.setattr(_FolderWalk, "files", counting_files)
    monkeypatch.setattr(index_module, "describe_shard", counting_describe)
    summary = update(root)
    assert summary.added == summary.decoded == count  # type: ignore[attr-defined]
    assert walked == described == count
    assert max(ahead) <= read_ahead + 1 + 8, max(ahead)
    with Index(root) as index:
        assert len(index) == count


def test_writing_one_more_copy_of_bytes_costs_the_same_however_many_there_are(
    tmp_path: Path,
) -> None:
    """A row for bytes already indexed takes the crop hashes those bytes have. Looked up by
    joining every row of that SHA-256 with the crop table, a copy of bytes with no crop hashes
    (an image too small for crops, say) cost a scan of all its earlier copies: thousands of
    copies of one spacer image made writing the index quadratic (600 rows/s measured). Counted
    in SQLite's virtual-machine steps, not in time."""
    import dataclasses

    root = tmp_path / "pics"
    root.mkdir()
    (root / "a.png").write_bytes(encode(picture(1), "PNG"))
    with Index(root) as index:
        update_index(index, workers=1)
        entry = index.get("a.png")
        assert entry is not None
        template = dataclasses.replace(
            entry, descriptor=dataclasses.replace(entry.descriptor, sha256="ab" * 32, crops=b"")
        )
        steps = 0

        def count() -> int:
            nonlocal steps
            steps += 1
            return 0

        cost: dict[int, int] = {}
        for k in range(1, 2001):
            if k in (100, 2000):
                index.conn.set_progress_handler(count, 1)
                steps = 0
            with index.transaction() as conn:
                index.put(conn, dataclasses.replace(template, path=f"copy-{k:05d}.png"))
            if k in (100, 2000):
                index.conn.set_progress_handler(None, 1)
                cost[k] = steps
    assert cost[2000] < 2 * cost[100], cost


@pytest.mark.parametrize(
    "change",
    ["none", "moved", "other-removed"],
    ids=["copies", "copies-and-a-move", "copies-and-a-removal"],
)
def test_an_update_adding_copies_of_one_file_costs_linear_steps(
    tmp_path: Path, change: str
) -> None:
    """Each new file whose bytes the index holds is matched to a row (itself, a moved file, else
    the first copy). Asking for every row holding those bytes made adding k copies of one file
    read k²/2 rows (also when some other file was removed: a move is looked for then); counted
    in SQLite's virtual-machine steps, not in time."""
    data = encode(picture(2), "PNG")
    steps: dict[int, int] = {}
    for copies in (300, 1200):
        root = tmp_path / f"pics-{copies}"
        root.mkdir()
        (root / "a.png").write_bytes(data)
        (root / "other.png").write_bytes(encode(picture(3), "PNG"))
        update(root)
        for k in range(copies):
            (root / f"copy-{k:05d}.png").write_bytes(data)
        if change == "moved":
            (root / "a.png").rename(root / "moved.png")
        elif change == "other-removed":
            (root / "other.png").unlink()
        count = 0

        def step() -> int:
            nonlocal count
            count += 1
            return 0

        with Index(root) as index:
            index.conn.set_progress_handler(step, 100)
            summary = update_index(index, workers=1)
            index.conn.set_progress_handler(None, 100)
            assert summary.added == copies and summary.decoded == 0
            assert summary.moved == (1 if change == "moved" else 0)
            assert summary.removed == (1 if change == "other-removed" else 0)
        steps[copies] = count
    assert steps[1200] < 6 * steps[300], steps  # 4× the copies: 4× the steps, not 16×


def test_an_update_describes_changed_files_as_they_are_walked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update hands the files whose bytes it must describe to the shards as the walk finds
    them (after their SHA-256, which recognises a move, a copy or a touched file): the changed
    files walked but not yet described stay bounded (the lookup batch, the hashing window, the
    read-ahead that tells a small folder, a shard), not all of them (the list of changed files
    was held whole before any was described). Moves, removals, copies and touched files are
    told apart as before; the rows of vanished files go once the walk is over. The bounds are
    made small here so that a few hundred files show it."""
    import hashlib

    import numpy as np

    from samepix import index as index_module

    monkeypatch.setattr(index_module, "_FEW_FILES", 32)
    monkeypatch.setattr(index_module, "_LOOKUP_BATCH", 50)
    monkeypatch.setattr(index_module, "_HASH_AHEAD", 16)
    root = tmp_path / "many"
    root.mkdir()
    rng = np.random.default_rng(5)

    def noise() -> bytes:
        return encode(rng.integers(0, 255, (8, 8), np.uint8), "PNG")

    for k in range(600):
        (root / f"{k:05d}.png").write_bytes(noise())
    update(root)
    rewritten = {f"{k:05d}.png" for k in range(400)}
    for rel in sorted(rewritten):
        (root / rel).write_bytes(noise())  # new bytes: described again
    for k in range(400, 450):  # renamed: recognised by their bytes, not described
        os.rename(root / f"{k:05d}.png", root / f"moved-{k:05d}.png")
    for k in range(450, 470):
        (root / f"{k:05d}.png").unlink()
    shutil.copyfile(root / "00470.png", root / "zcopy.png")  # a copy: not described
    for k in range(480, 500):  # touched: same bytes, a new mtime
        os.utime(root / f"{k:05d}.png", ns=(1, 10**18 + k))

    walked = described = 0
    ahead: list[int] = []  # changed files walked but not described, at each shard
    real_files, real_describe = _FolderWalk.files, index_module.describe_shard

    def counting_files(self: _FolderWalk) -> object:
        nonlocal walked
        for item in real_files(self):
            walked += item[0] in rewritten
            yield item

    def counting_describe(shard: object) -> object:
        nonlocal described
        ahead.append(walked - described)
        out = real_describe(shard)  # type: ignore[arg-type]
        described += sum(item.path in rewritten for item in out)
        return out

    monkeypatch.setattr(_FolderWalk, "files", counting_files)
    monkeypatch.setattr(index_module, "describe_shard", counting_describe)
    s = update(root)
    assert (s.updated, s.moved, s.removed, s.added, s.unchanged, s.decoded, s.total) == (  # type: ignore[attr-defined]
        400, 50, 20, 1, 130, 400, 581,
    )  # fmt: skip
    assert s.moves == tuple(  # type: ignore[attr-defined]
        (f"{k:05d}.png", f"moved-{k:05d}.png") for k in range(400, 450)
    )
    assert walked == described == 400
    assert max(ahead) <= 32 + 1 + 50 + 2 * 16 + 8, max(ahead)
    with Index(root) as index:
        entries = index.entries()
        assert len(entries) == 581
        for entry in entries:
            assert entry.sha256 == hashlib.sha256((root / entry.path).read_bytes()).hexdigest()

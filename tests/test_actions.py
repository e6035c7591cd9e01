"""Acting on duplicates (samepix.actions): each action on a real folder, its journal and undo, the
safety re-checks, and real ``kill -9`` at several points of a run followed by undo."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import signal
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

from samepix.actions import Journal, apply_plan, make_plan, undo
from samepix.library import Library

from .helpers import encode, one_line_error, run_cli

run = functools.partial(run_cli, text=True)


def picture(seed: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    from samepix.demo import make_picture

    return make_picture(seed, size)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every file under ``root`` but .samepix: content hash, mode, mtime."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] == ".samepix" or not path.is_file():
            continue
        st = path.stat()
        out[rel.as_posix()] = (sha(path), st.st_mode & 0o7777, st.st_mtime_ns)
    return out


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three groups: a (PNG best, a JPEG re-encode, a byte copy), b (two byte copies), c (a PNG,
    and a JPEG under ref/); and one unique picture."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    root = tmp_path / "lib"
    (root / "ref").mkdir(parents=True)
    (root / "sub").mkdir()
    png = encode(picture(1), "PNG")
    (root / "a.png").write_bytes(png)
    (root / "sub" / "a-copy.png").write_bytes(png)
    (root / "a.jpg").write_bytes(encode(picture(1), "JPEG", quality=90))
    jpg = encode(picture(2), "JPEG", quality=92)
    (root / "b.jpg").write_bytes(jpg)
    (root / "sub" / "b.jpg").write_bytes(jpg)
    (root / "c.png").write_bytes(encode(picture(3), "PNG"))
    (root / "ref" / "c.jpg").write_bytes(encode(picture(3), "JPEG", quality=95))
    (root / "d.jpg").write_bytes(encode(picture(4), "JPEG", quality=90))
    # Distinct modes and times, to see that they are kept.
    for n, path in enumerate(sorted(p for p in root.rglob("*") if p.is_file())):
        path.chmod(0o640 if n % 2 else 0o604)
        os.utime(path, ns=(1_600_000_000_000_000_000 + n, 1_600_000_000_000_000_000 + n * 1000))
    return root


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"XDG_DATA_HOME": str(tmp_path / "xdg"), **extra}


def groups_of(root: Path) -> list:  # type: ignore[type-arg]
    with Library(root, workers=1) as lib:
        return lib.duplicates()


EXTRA = ["a.jpg", "sub/a-copy.png", "sub/b.jpg", "ref/c.jpg"]  # best copies: a.png, b.jpg, c.png


def test_dry_run_prints_the_plan_and_changes_nothing(folder: Path, tmp_path: Path) -> None:
    before = snapshot(folder)
    proc = run("dupes", str(folder), "--trash", "--dry-run", env=env_for(tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert sorted(line.split()[2] for line in lines[:-1]) == sorted(str(folder / e) for e in EXTRA)
    assert lines[-1].startswith("dry run, nothing changed: trash 4 files")
    assert snapshot(folder) == before
    assert not (tmp_path / "xdg").exists()
    assert not (folder / ".samepix" / "actions.jsonl").exists()


@pytest.mark.parametrize("op", ["move", "trash", "hardlink"])
def test_action_then_undo_restores_the_folder(folder: Path, tmp_path: Path, op: str) -> None:
    before = snapshot(folder)
    dest = tmp_path / "moved"
    flag = ["--move-to", str(dest)] if op == "move" else [f"--{op}"]
    proc = run("dupes", str(folder), *flag, env=env_for(tmp_path))
    after = snapshot(folder)
    acted = ["sub/a-copy.png", "sub/b.jpg"] if op == "hardlink" else EXTRA
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"undo with: samepix undo {folder} " in proc.stdout
    for rel in ("a.png", "b.jpg", "c.png", "d.jpg"):  # the kept copies and the unique picture
        assert after[rel] == before[rel]
    if op == "hardlink":
        for rel, kept in (("sub/a-copy.png", "a.png"), ("sub/b.jpg", "b.jpg")):
            assert os.path.samefile(folder / rel, folder / kept)
        assert after["a.jpg"] == before["a.jpg"]  # not the same bytes: left alone
    else:
        assert not set(acted) & set(after)
    if op == "move":
        moved = snapshot(dest)
        assert moved == {rel: before[rel] for rel in acted}  # bytes, mode and mtime kept
    if op == "trash":
        trash = tmp_path / "xdg" / "Trash"
        info = (trash / "info" / "a-copy.png.trashinfo").read_text()
        assert info.splitlines()[:2] == [
            "[Trash Info]",
            f"Path={quote(str(folder / 'sub/a-copy.png'))}",
        ]
        assert info.splitlines()[2].startswith("DeletionDate=20")
        assert sha(trash / "files" / "a-copy.png") == before["sub/a-copy.png"][0]
    lines = (folder / ".samepix" / "actions.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["state"] for r in records if "state" in r] == ["done"] * len(acted)
    assert sorted(
        Path(r["path"]).relative_to(folder).as_posix() for r in records if "op" in r
    ) == sorted(acted)

    proc = run("undo", str(folder), env=env_for(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1].startswith(f"undid {len(acted)} actions of ")
    assert snapshot(folder) == before
    if op == "trash":
        assert not list((tmp_path / "xdg" / "Trash" / "files").iterdir())
        assert not list((tmp_path / "xdg" / "Trash" / "info").iterdir())
    one_line_error(run("undo", str(folder), env=env_for(tmp_path)), "nothing to undo")


def test_delete_needs_yes_off_a_terminal(folder: Path, tmp_path: Path) -> None:
    before = snapshot(folder)
    one_line_error(run("dupes", str(folder), "--delete", stdin=""), "--yes")
    assert snapshot(folder) == before
    proc = run("dupes", str(folder), "--delete", "--yes")
    assert proc.returncode == 0, proc.stderr
    assert sorted(snapshot(folder)) == ["a.png", "b.jpg", "c.png", "d.jpg"]
    assert "undo with" not in proc.stdout
    proc = run("undo", str(folder))
    assert proc.returncode == 1 and "a deletion cannot be undone" in proc.stdout


def test_keep_in_keeps_every_copy_under_the_reference_folder(folder: Path, tmp_path: Path) -> None:
    dest = tmp_path / "moved"
    proc = run(
        "dupes",
        str(folder),
        "--move-to",
        str(dest),
        "--keep-in",
        str(folder / "ref"),
        "--keep-in",
        str(folder / "sub"),
    )
    assert proc.returncode == 0, proc.stderr
    # c.png is the best copy, but ref/c.jpg is in a reference folder: c.png goes. Under sub/
    # a-copy.png (byte copy of a.png) and b.jpg are kept, so a.png, a.jpg and b.jpg go.
    assert sorted(snapshot(dest)) == ["a.jpg", "a.png", "b.jpg", "c.png"]
    assert sorted(snapshot(folder)) == ["d.jpg", "ref/c.jpg", "sub/a-copy.png", "sub/b.jpg"]


def test_usage_errors_are_one_line(folder: Path, tmp_path: Path) -> None:
    one_line_error(run("dupes", str(folder), "--move-to", str(folder / "x")), "inside")
    one_line_error(
        run("dupes", str(folder), "--trash", "--keep-in", str(tmp_path / "no")), "not a folder"
    )
    one_line_error(run("dupes", str(folder), "--dry-run"), "--dry-run goes with")
    one_line_error(run("undo", str(folder), "nope"), "nope")
    one_line_error(
        run("sync", "-", str(folder), "--keep-in", str(folder), stdin=""), "no --keep-in"
    )


def test_changed_files_and_a_vanished_kept_copy_are_skipped(folder: Path, tmp_path: Path) -> None:
    groups = groups_of(folder)
    # After indexing: a byte copy is edited, and the kept copy of another group is removed.
    (folder / "sub" / "a-copy.png").write_bytes(encode(picture(9), "PNG"))
    (folder / "b.jpg").unlink()
    run_ = apply_plan(make_plan(groups, "move", folder, move_to=tmp_path / "moved"))
    reasons = {o.step.path.relative_to(folder).as_posix(): o.reason for o in run_.skipped}
    assert reasons["sub/a-copy.png"] == "changed or gone since indexing; nothing done"
    assert reasons["sub/b.jpg"].startswith(f"kept copy {folder / 'b.jpg'} is gone or changed")
    assert (folder / "sub" / "b.jpg").exists() and (folder / "sub" / "a-copy.png").exists()
    assert sorted(o.step.path.name for o in run_.done) == ["a.jpg", "c.jpg"]


def test_move_to_another_device_copies_with_mode_and_mtime(folder: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == folder.stat().st_dev:
        pytest.skip("no second file system (/dev/shm) to move across")
    dest = shm / f"samepix-test-{os.getpid()}-{folder.parent.name}"
    before = snapshot(folder)
    try:
        run_ = apply_plan(make_plan(groups_of(folder), "move", folder, move_to=dest))
        assert len(run_.done) == 4
        assert snapshot(dest) == {rel: before[rel] for rel in EXTRA}
        assert not list(dest.rglob("*.samepix-part"))
        undo(folder)
        assert snapshot(folder) == before
    finally:
        import shutil

        shutil.rmtree(dest, ignore_errors=True)


# kill -9 in the middle of a run: at each point the journal and the folder stay consistent, and
# undo brings the folder back.
KILLS = [
    pytest.param("trash", "journaled@1", id="trash-after-first-intent"),
    pytest.param("trash", "trash:info@2", id="trash-info-written-file-not-moved"),
    pytest.param("trash", "acted@3", id="trash-third-done-not-recorded"),
    pytest.param("move", "place:linked@2", id="move-linked-source-still-there"),
    pytest.param("move", "journaled@4", id="move-last-intent"),
    pytest.param("hardlink", "hardlink:linked@1", id="hardlink-temporary-link"),
    pytest.param("hardlink", "acted@2", id="hardlink-done-not-recorded"),
    pytest.param("delete", "journaled@2", id="delete-second-intent"),
]


@pytest.mark.parametrize(("op", "kill_at"), KILLS)
def test_kill_9_mid_run_then_undo(folder: Path, tmp_path: Path, op: str, kill_at: str) -> None:
    run("index", str(folder))  # so the killed run spends its time acting, not indexing
    before = snapshot(folder)
    dest = tmp_path / "moved"
    flag = {"move": ["--move-to", str(dest)], "delete": ["--delete", "--yes"]}.get(op, [f"--{op}"])
    env = env_for(tmp_path, SAMEPIX_TEST_KILL_AT=kill_at)
    proc = run("dupes", str(folder), *flag, env=env)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr

    journal = Journal(folder)
    records = journal.read()
    raw = journal.path.read_text().splitlines()
    assert len(records) == len(raw)  # every line whole
    # Nothing lost: every original content is still in the folder, moved, trashed or deleted
    # on purpose (a deletion recorded in the journal).
    elsewhere = {sha(p) for p in tmp_path.rglob("*") if p.is_file() and folder not in p.parents}
    here = {v[0] for v in snapshot(folder).values()}
    for rel, (digest, _, _) in before.items():
        assert digest in here or digest in elsewhere or op == "delete", rel
    assert here >= {before[k][0] for k in ("a.png", "b.jpg", "c.png", "d.jpg")}
    assert not list(folder.rglob("*.samepix-link"))[1:]  # at most the one being made

    proc = run("undo", str(folder), env=env_for(tmp_path))
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert "recovered interrupted action" in proc.stdout
    intents = {r["id"] for r in journal.read() if "op" in r}
    assert intents == {r["id"] for r in journal.read() if "state" in r}  # each has its outcome
    after = snapshot(folder)
    if op == "delete":
        assert set(after) <= set(before) and all(after[k] == before[k] for k in after)
    else:
        assert after == before
    assert not [
        p for p in folder.rglob(".*") if p.name.endswith((".samepix-part", ".samepix-link"))
    ]
    # and a new run after the kill works, and is undone in turn
    proc = run("dupes", str(folder), *flag, env=env_for(tmp_path))
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    if op != "delete":
        assert run("undo", str(folder), env=env_for(tmp_path)).returncode in (0, 1)
        assert snapshot(folder) == after


def test_a_torn_journal_line_is_ended_and_skipped(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.append({"id": "r.1", "op": "delete"})
    with open(journal.path, "ab") as f:
        f.write(b'{"id": "r.1", "sta')  # killed in the middle of a write
    journal.append({"id": "r.1", "state": "done"})
    assert journal.read() == [{"id": "r.1", "op": "delete"}, {"id": "r.1", "state": "done"}]


@pytest.mark.parametrize(("answer", "deleted"), [("n", False), ("y", True)], ids=["no", "yes"])
def test_delete_asks_on_a_terminal(folder: Path, answer: str, deleted: bool) -> None:
    import pty
    import subprocess
    import sys
    import time

    from .helpers import ROOT

    before = snapshot(folder)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "samepix", "dupes", str(folder), "--delete"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 120
    while b"[y/N]" not in seen and time.monotonic() < deadline:
        seen += os.read(leader, 4096)
    assert b"will delete: " in seen and b"delete 4 file(s) for good? [y/N]" in seen, seen
    os.write(leader, answer.encode() + b"\n")
    assert proc.wait(120) == (0 if deleted else 1)
    with contextlib.suppress(OSError):
        while chunk := os.read(leader, 4096):
            seen += chunk
    os.close(leader)
    after = snapshot(folder)
    if deleted:
        assert sorted(after) == ["a.png", "b.jpg", "c.png", "d.jpg"]
    else:
        assert b"nothing deleted" in seen and after == before


def test_a_file_replaced_by_a_symbolic_link_is_left_alone(folder: Path) -> None:
    groups = groups_of(folder)
    (folder / "sub" / "a-copy.png").unlink()  # since indexing: the copy became a link to a.png
    (folder / "sub" / "a-copy.png").symlink_to(folder / "a.png")
    run_ = apply_plan(make_plan(groups, "trash", folder))
    reasons = {o.step.path.name: o.reason for o in run_.skipped}
    assert reasons == {
        "a-copy.png": "a symbolic link is involved: left alone (act on the file it points to)"
    }
    assert (folder / "sub" / "a-copy.png").is_symlink() and (folder / "a.png").is_file()

"""Acting on duplicates: move, trash, hard-link or delete the extra copies; a journal; undo.

Which copy stays: each group's best copy, or with reference folders (``keep_in``) every copy
under them (the best of those is the one checked against). Files under a reference folder are
never touched.

Never the last copy. Just before each file is touched, the kept copy is read again and must
still hold the SHA-256 the index recorded, and so must the file acted on (either may have changed
since indexing); otherwise that file is skipped with the reason. ``hardlink`` acts only on
copies with the kept copy's very bytes (a link would otherwise change the file's content).

The journal, ``DIR/.samepix/actions.jsonl``, has one line per action written and fsynced
*before* the file is touched (the intent: what, where to, the hashes, mode and mtime), and a line
after it (its outcome). Each action is built from steps that leave a state a later run can read:

- move: ``link(path, dest)`` then ``unlink(path)`` (a copy to a temporary file beside ``dest``,
  fsynced and renamed into place, when ``dest`` is on another device); a file is never overwritten;
- trash: the ``.trashinfo`` is written, then the file renamed into the trash (:mod:`samepix.trash`);
- hardlink: a link to the kept copy under a temporary name, renamed over the file;
- delete: ``unlink``.

A run killed at any moment (``kill -9``) leaves at most one action without its outcome line; the
next action run or ``undo`` looks at the files, finishes the record (``done`` when the action
had completed, else rolls back its partial step and records ``abandoned``), and ``undo`` restores
moves, trash and hard links (not deletions). One run at a time: ``DIR/.samepix/actions.lock``.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import json
import os
import secrets
import shutil
import signal
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SamepixError, UsageError
from .index import STATE_DIR
from .results import DuplicateGroup
from .terminal import json_text
from .units import human_bytes

__all__ = [
    "JOURNAL_NAME",
    "OPS",
    "ActionRun",
    "Outcome",
    "Plan",
    "Step",
    "UndoResult",
    "apply_plan",
    "format_plan",
    "format_run",
    "format_undo",
    "make_plan",
    "recover",
    "undo",
]

#: What can be done with an extra copy.
OPS = ("move", "trash", "hardlink", "delete")
JOURNAL_NAME = "actions.jsonl"
LOCK_NAME = "actions.lock"

_PAST = {"move": "moved", "trash": "trashed", "hardlink": "hard-linked", "delete": "deleted"}

# Test hook: "STEP" or "STEP@N" kills this process (SIGKILL) the Nth time it reaches STEP.
_KILL_ENV = "SAMEPIX_TEST_KILL_AT"
_reached: dict[str, int] = {}


def _checkpoint(step: str) -> None:
    wanted = os.environ.get(_KILL_ENV)
    if not wanted:
        return
    name, _, nth = wanted.partition("@")
    if name != step:
        return
    _reached[step] = _reached.get(step, 0) + 1
    if _reached[step] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


# ---------------------------------------------------------------------------------------------
# The plan


@dataclass(frozen=True)
class Step:
    """One file to act on, and the copy that stays for it."""

    op: str
    path: Path
    sha256: str
    size: int
    kept: Path
    kept_sha256: str


@dataclass(frozen=True)
class Plan:
    op: str
    root: Path
    steps: tuple[Step, ...]
    skipped: tuple[tuple[Path, str], ...]  # (file, why it is left alone)
    move_to: Path | None = None

    @property
    def bytes(self) -> int:
        return sum(s.size for s in self.steps)


def _under(path: Path, folders: Sequence[Path]) -> bool:
    return any(path == f or f in path.parents for f in folders)


def make_plan(
    groups: Iterable[DuplicateGroup],
    op: str,
    root: str | os.PathLike[str],
    *,
    keep_in: Sequence[str | os.PathLike[str]] = (),
    move_to: str | os.PathLike[str] | None = None,
) -> Plan:
    """What ``op`` would do to ``groups`` (found in ``root``): one :class:`Step` per extra copy.

    Raises
    ------
    UsageError
        Unknown ``op``, ``move`` without ``move_to`` or into the folder itself, a reference
        folder that does not exist.
    """
    if op not in OPS:
        raise UsageError(f"unknown action {op!r}; expected one of {', '.join(OPS)}")
    base = Path(root).resolve()
    refs: list[Path] = []
    for ref in keep_in:
        resolved = Path(ref).resolve()
        if not resolved.is_dir():
            raise UsageError(f"--keep-in {ref}: not a folder")
        refs.append(resolved)
    dest = None
    if op == "move":
        if move_to is None:
            raise UsageError("move needs a destination folder")
        dest = Path(move_to).resolve()
        if dest == base or base in dest.parents:
            raise UsageError(
                f"--move-to {move_to}: inside {root}; the moved copies would be indexed as "
                "duplicates again; choose a folder outside it"
            )
    steps: list[Step] = []
    skipped: list[tuple[Path, str]] = []
    for group in groups:
        copies = list(group.copies)  # best first
        real = [c.path.resolve() for c in copies]
        in_ref = [c for c, r in zip(copies, real, strict=True) if refs and _under(r, refs)]
        kept = in_ref[0] if in_ref else copies[0]
        for copy in in_ref[1:]:
            skipped.append((copy.path, "under a reference folder (--keep-in)"))
        for copy in copies:
            if copy is kept or copy in in_ref:
                continue
            if op == "hardlink" and copy.sha256 != kept.sha256:
                skipped.append(
                    (
                        copy.path,
                        f"not the same bytes as {kept.path}: a hard link would change its "
                        "content (use --move-to or --trash for a re-encoded copy)",
                    )
                )
                continue
            steps.append(Step(op, copy.path, copy.sha256, copy.size, kept.path, kept.sha256))
    return Plan(op, Path(root), tuple(steps), tuple(skipped), dest)


# ---------------------------------------------------------------------------------------------
# The journal


class Journal:
    """``DIR/.samepix/actions.jsonl``: append-only JSON lines, each fsynced before it returns."""

    def __init__(self, root: Path) -> None:
        self.path = root / STATE_DIR / JOURNAL_NAME

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # json_text: a file name that is not UTF-8 is written as \udcXX escapes, losslessly.
        line = json_text(record, separators=(",", ":")) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size:  # a line torn by a kill: end it, so it stays one (unreadable) line
                with open(self.path, "rb") as f:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":
                        line = "\n" + line
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[dict[str, Any]]:
        """Every complete, readable line (a line torn by a kill is left out)."""
        try:
            text = self.path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        out: list[dict[str, Any]] = []
        for line in text.split("\n"):
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and isinstance(record.get("id"), str):
                    out.append(record)
        return out


@dataclass
class _Action:
    intent: dict[str, Any]
    state: str | None = None  # None: no outcome line (interrupted)

    @property
    def id(self) -> str:
        return str(self.intent["id"])


def _actions(journal: Journal) -> list[_Action]:
    """The journal's actions in order, each with its latest state."""
    by_id: dict[str, _Action] = {}
    for record in journal.read():
        if "op" in record:
            by_id.setdefault(record["id"], _Action(record))
        elif record["id"] in by_id and "state" in record:
            by_id[record["id"]].state = str(record["state"])
    return list(by_id.values())


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[Journal]:
    import fcntl

    state = root / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    fd = os.open(state / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise SamepixError(
                f"{root}: another samepix action or undo is running on this folder"
            ) from exc
        yield Journal(root)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# Files


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _holds(path: Path, sha: str) -> bool:
    """``path`` is a regular file (not a link) with content ``sha``."""
    try:
        if not path.is_file() or path.is_symlink():
            return False
        return sha256_file(path) == sha
    except OSError:
        return False


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _free_name(target: Path) -> Path:
    if not os.path.lexists(target):
        return target
    for n in range(2, 100_000):
        candidate = target.with_name(f"{target.stem}~{n}{target.suffix}")
        if not os.path.lexists(candidate):
            return candidate
    raise SamepixError(f"{target}: no free name")


def _place(source: Path, target: Path, tmp: Path, *, keep_source: bool) -> None:
    """Put ``source``'s file at ``target`` (never over another file): a hard link, or on another
    device a copy (mode and mtime kept) to ``tmp``, fsynced, renamed into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
        _checkpoint("place:linked")
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK):
            raise
        shutil.copy2(source, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        _checkpoint("place:copied")
        if os.path.lexists(target):
            os.unlink(tmp)
            raise FileExistsError(errno.EEXIST, "file exists", str(target)) from None
        os.rename(tmp, target)
        _checkpoint("place:linked")
    _fsync_dir(target.parent)
    if not keep_source:
        os.unlink(source)
        _fsync_dir(source.parent)


# ---------------------------------------------------------------------------------------------
# Running a plan


@dataclass(frozen=True)
class Outcome:
    step: Step
    id: str
    state: str  # "done" or "skipped"
    reason: str = ""
    dest: Path | None = None  # where a moved or trashed file went


@dataclass
class ActionRun:
    op: str
    run: str
    outcomes: list[Outcome] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)  # interrupted actions finished first

    @property
    def done(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.state == "done"]

    @property
    def skipped(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.state == "skipped"]


def _new_run_id() -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{now}-{secrets.token_hex(2)}"


def _check(step: Step) -> str | None:
    """Why ``step`` must not run now, or None."""
    if step.path.is_symlink() or step.kept.is_symlink():
        return "a symbolic link is involved: left alone (act on the file it points to)"
    if not _holds(step.kept, step.kept_sha256):
        return f"kept copy {step.kept} is gone or changed since indexing; nothing done"
    if not _holds(step.path, step.sha256):
        return "changed or gone since indexing; nothing done"
    with contextlib.suppress(OSError):
        if os.path.samefile(step.path, step.kept) and step.op == "hardlink":
            return f"already a hard link of {step.kept}"
    return None


def apply_plan(plan: Plan) -> ActionRun:
    """Carry out ``plan``, journaled; interrupted actions of an earlier run are finished first."""
    root = plan.root
    with _locked(root) as journal:
        run = ActionRun(plan.op, _new_run_id())
        run.recovered = _recover(journal)
        for n, step in enumerate(plan.steps, 1):
            run.outcomes.append(_apply_step(journal, run.run, n, step, plan))
        return run


def _apply_step(journal: Journal, run: str, n: int, step: Step, plan: Plan) -> Outcome:
    action_id = f"{run}.{n}"
    why = _check(step)
    if why is not None:
        return Outcome(step, action_id, "skipped", why)
    st = step.path.stat()
    intent: dict[str, Any] = {
        "id": action_id,
        "run": run,
        "op": step.op,
        "path": str(step.path.absolute()),
        "sha256": step.sha256,
        "size": st.st_size,
        "mode": st.st_mode & 0o7777,
        "mtime_ns": st.st_mtime_ns,
        "kept": str(step.kept.absolute()),
        "kept_sha256": step.kept_sha256,
        "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    path = step.path.absolute()
    dest: Path | None = None
    try:
        if step.op == "move":
            assert plan.move_to is not None
            rel = step.path.absolute().relative_to(plan.root.absolute())
            dest = _free_name(plan.move_to / rel)
            intent["dest"] = str(dest)
            intent["tmp"] = str(dest.with_name(f".{dest.name}.{action_id}.samepix-part"))
        elif step.op == "trash":
            from . import trash

            slot = trash.choose(path)
            dest = slot.file
            intent["trash"] = {
                "dir": str(slot.trash),
                "name": slot.name,
                "top": None if slot.top is None else str(slot.top),
            }
        elif step.op == "hardlink":
            intent["tmp"] = str(path.with_name(f".{path.name}.{action_id}.samepix-link"))
    except OSError as exc:
        return Outcome(step, action_id, "skipped", f"cannot prepare: {exc.strerror or exc}")

    journal.append(intent)
    _checkpoint("journaled")
    try:
        if step.op == "move":
            assert dest is not None
            _place(path, dest, Path(intent["tmp"]), keep_source=False)
        elif step.op == "trash":
            from . import trash

            slot = _slot(intent)
            trash.write_info(slot, path)
            _checkpoint("trash:info")
            try:
                os.rename(path, slot.file)
            except OSError:
                os.unlink(slot.info)
                raise
            _fsync_dir(path.parent)
            _fsync_dir(slot.file.parent)
        elif step.op == "hardlink":
            tmp = Path(intent["tmp"])
            os.link(step.kept.absolute(), tmp)
            _checkpoint("hardlink:linked")
            os.rename(tmp, path)
            _fsync_dir(path.parent)
        else:
            os.unlink(path)
            _fsync_dir(path.parent)
    except OSError as exc:
        reason = f"failed: {exc.strerror or exc}"
        journal.append({"id": action_id, "state": "abandoned", "reason": reason})
        return Outcome(step, action_id, "skipped", reason)
    _checkpoint("acted")
    journal.append({"id": action_id, "state": "done"})
    return Outcome(step, action_id, "done", dest=dest)


def _slot(intent: dict[str, Any]) -> Any:
    from .trash import TrashSlot

    t = intent["trash"]
    return TrashSlot(Path(t["dir"]), t["name"], None if t["top"] is None else Path(t["top"]))


# ---------------------------------------------------------------------------------------------
# After a kill: finish the record of an interrupted action from what the files show


def recover(root: str | os.PathLike[str]) -> list[str]:
    """Finish the records of interrupted actions (see the module text); their ids."""
    with _locked(Path(root)) as journal:
        return _recover(journal)


def _recover(journal: Journal) -> list[str]:
    finished: list[str] = []
    for action in _actions(journal):
        if action.state is not None:
            continue
        state, reason = _settle(action.intent)
        journal.append({"id": action.id, "state": state, "reason": reason})
        finished.append(action.id)
    return finished


def _settle(intent: dict[str, Any]) -> tuple[str, str]:
    """Whether an interrupted action completed ("done") or not ("abandoned", its partial step
    rolled back)."""
    op = intent["op"]
    path = Path(intent["path"])
    sha = intent["sha256"]
    here = os.path.lexists(path)
    if op == "move":
        dest, tmp = Path(intent["dest"]), Path(intent["tmp"])
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if here:
            if os.path.lexists(dest) and _holds(path, sha) and _holds(dest, sha):
                os.unlink(dest)  # the source is whole: the copy at dest goes
            return "abandoned", "interrupted before the file was moved"
        return "done", "interrupted after the move; recorded"
    if op == "trash":
        slot = _slot(intent)
        if here:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(slot.info)
            return "abandoned", "interrupted before the file was trashed"
        return "done", "interrupted after the file was trashed; recorded"
    if op == "hardlink":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(intent["tmp"])
        try:
            linked = os.path.samefile(path, intent["kept"])
        except OSError:
            linked = False
        if linked:
            return "done", "interrupted after the link; recorded"
        return "abandoned", "interrupted before the file was linked"
    if here:
        return "abandoned", "interrupted before the file was deleted"
    return "done", "interrupted after the file was deleted; recorded"


# ---------------------------------------------------------------------------------------------
# Undo


@dataclass
class UndoResult:
    target: str
    restored: list[tuple[Path, Path]] = field(default_factory=list)  # (path, from where)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)


def undo(root: str | os.PathLike[str], target: str | None = None) -> UndoResult:
    """Undo the actions of run ``target`` (or the one action with that id); by default the
    latest run with something left to undo. Deletions cannot be undone: reported as failed.

    Raises
    ------
    UsageError
        No such run or action, or nothing to undo.
    """
    with _locked(Path(root)) as journal:
        recovered = _recover(journal)
        actions = [a for a in _actions(journal) if a.state == "done"]
        if target is None:
            if not actions and recovered:  # the interrupted run had nothing done to undo
                return UndoResult("", recovered=recovered)
            if not actions:
                raise UsageError(f"{root}: nothing to undo")
            target = str(actions[-1].intent["run"])
        chosen = [a for a in actions if target in (a.id, a.intent["run"])]
        if not chosen:
            known = {a.intent["run"] for a in _actions(journal)} | {a.id for a in _actions(journal)}
            raise UsageError(
                f"{target}: "
                + ("already undone" if target in known else "no such action run or action")
            )
        result = UndoResult(target, recovered=recovered)
        for action in reversed(chosen):
            path = Path(action.intent["path"])
            try:
                source = _undo_one(action.intent)
            except (OSError, _CannotUndo) as exc:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                result.failed.append((path, why))
                continue
            journal.append({"id": action.id, "state": "undone"})
            result.restored.append((path, source))
        return result


class _CannotUndo(Exception):
    pass


def _undo_one(intent: dict[str, Any]) -> Path:
    op = intent["op"]
    path = Path(intent["path"])
    sha = intent["sha256"]
    if op == "delete":
        raise _CannotUndo("deleted: a deletion cannot be undone")
    if op == "hardlink":
        kept = Path(intent["kept"])
        if not _holds(path, sha):
            raise _CannotUndo("changed since the hard link; left as it is")
        tmp = path.with_name(f".{path.name}.{intent['id']}.samepix-undo")
        shutil.copyfile(path, tmp)  # its own inode again, same bytes
        os.chmod(tmp, intent["mode"])
        os.utime(tmp, ns=(intent["mtime_ns"], intent["mtime_ns"]))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.rename(tmp, path)
        _fsync_dir(path.parent)
        return kept
    source = Path(intent["dest"]) if op == "move" else _slot(intent).file
    if os.path.lexists(path):
        raise _CannotUndo(f"another file is at {path} now; {source} left as it is")
    if not _holds(source, sha):
        raise _CannotUndo(f"{source} is gone or changed; nothing restored")
    tmp = path.with_name(f".{path.name}.{intent['id']}.samepix-part")
    _place(source, path, tmp, keep_source=False)
    if op == "trash":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_slot(intent).info)
    return source


# ---------------------------------------------------------------------------------------------
# Text


def format_plan(plan: Plan) -> str:
    """The dry run: what each file would become, then the totals."""
    verb = {
        "move": "would move",
        "trash": "would trash",
        "hardlink": "would hard-link",
        "delete": "would delete",
    }[plan.op]
    lines = [f"{verb}: {s.path}  (keeps {s.kept})" for s in plan.steps]
    lines += [f"left alone: {p}: {why}" for p, why in plan.skipped]
    lines.append(
        f"dry run, nothing changed: {plan.op} {len(plan.steps):,} file"
        f"{'s' if len(plan.steps) != 1 else ''} ({human_bytes(plan.bytes)})"
        + (f" to {plan.move_to}" if plan.move_to else "")
        + (f"; {len(plan.skipped)} left alone" if plan.skipped else "")
    )
    return "\n".join(lines)


def format_run(run: ActionRun, root: str | os.PathLike[str]) -> str:
    lines = [f"recovered interrupted action {i}" for i in run.recovered]
    for o in run.outcomes:
        if o.state == "done":
            where = f" -> {o.dest}" if o.dest is not None else ""
            lines.append(f"{_PAST[run.op]}: {o.step.path}{where}  (kept {o.step.kept})")
        else:
            lines.append(f"skipped: {o.step.path}: {o.reason}")
    done = run.done
    total = sum(o.step.size for o in done)
    lines.append(
        f"{_PAST[run.op]} {len(done):,} file{'s' if len(done) != 1 else ''} "
        f"({human_bytes(total)}); skipped {len(run.skipped):,}"
    )
    if done and run.op != "delete":
        lines.append(f"undo with: samepix undo {root} {run.run}")
    return "\n".join(lines)


def format_undo(result: UndoResult) -> str:
    lines = [f"recovered interrupted action {i}" for i in result.recovered]
    lines += [f"restored: {path}  (from {source})" for path, source in result.restored]
    lines += [f"not restored: {path}: {why}" for path, why in result.failed]
    if not result.target:
        lines.append("nothing else to undo")
        return "\n".join(lines)
    lines.append(
        f"undid {len(result.restored):,} action{'s' if len(result.restored) != 1 else ''} of "
        f"{result.target}"
        + (f"; {len(result.failed)} could not be undone" if result.failed else "")
    )
    return "\n".join(lines)

"""Soak test: ``samepix sync`` killed with SIGKILL at random moments, then run again.

Not part of the test suite (it runs for minutes). Each trial copies a small library of
pictures into a fresh folder, starts ``samepix sync`` on a URL list served from 127.0.0.1 (so the
run indexes the library with worker processes, then downloads, decides and saves), kills it with
SIGKILL — every other trial at a random moment of an uninterrupted run's duration, the others a
random moment (up to 0.5 s) after its indexing worker processes appear — and then:

- counts the **orphans**: processes of the killed sync (its worker processes) still alive 2 s
  after the kill — they hold the folder's lock and the caller's pipes;
- runs the sync again, as a user would, and counts a **stale-lock refusal** when it is refused
  with "another samepix sync is running" although the sync it names is dead;
- compares the folder with the one an uninterrupted run made: the same files with the same
  bytes, no partial (``.part``) file, an index that passes SQLite's integrity check and lists
  every picture, and nothing downloaded twice by the resumed run (every URL the killed run
  had saved is a ``skipped-unchanged`` or a skip, never a second download). Any difference is a
  **divergence**.

Usage (from the repository root)::

    .venv/bin/python benchmarks/soak_sync.py --kills 30 [--seed 1] [--write-docs]

``--write-docs`` writes the result to ``docs/soak.md``. Orphans are killed after being counted,
so one trial cannot spoil the next. Exit status 0 when there were no divergences, no orphans and
no stale-lock refusals, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from samepix.demo import serve_folder  # the demo's quiet server on 127.0.0.1

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    kills: int = 0
    divergences: int = 0
    orphans: int = 0
    stale_lock_refusals: int = 0
    killed_while: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    reference_s: float = 0.0
    elapsed_s: float = 0.0


# ---------------------------------------------------------------------------------------------
# Material: a library folder and pictures served over HTTP


def _picture(rng: np.random.Generator, side: int) -> Image.Image:
    # Smooth shapes, not noise: pictures a perceptual hash can tell apart and a re-encode keeps.
    y, x = np.mgrid[0:side, 0:side] / side
    a, b, c = rng.uniform(1, 6, 3)
    base = np.stack([np.sin(a * x + b * y), np.cos(b * x - c * y), np.sin(c * x * y + a)], axis=-1)
    return Image.fromarray(((base + 1) * 127.5).astype(np.uint8))


def _encode(im: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    im.save(out, format=fmt, **options)  # type: ignore[arg-type]
    return out.getvalue()


def make_material(work: Path, seed: int, library: int, urls: int) -> tuple[Path, Path]:
    """A library folder and a served folder: new pictures, exact copies and re-encodes of
    library pictures (same-bytes and same-picture skips), and repeats."""
    rng = np.random.default_rng(seed)
    lib = work / "library"
    served = work / "served"
    lib.mkdir()
    served.mkdir()
    pictures = [_picture(rng, 192) for _ in range(library)]
    for i, im in enumerate(pictures):
        (lib / f"lib{i:03d}.jpg").write_bytes(_encode(im, "JPEG", quality=90))
    for i in range(urls):
        kind = i % 4
        if kind == 0 and i // 4 < library:  # the same bytes as a library file
            data = (lib / f"lib{i // 4:03d}.jpg").read_bytes()
        elif kind == 1 and i // 4 < library:  # the same picture, re-encoded
            data = _encode(pictures[i // 4], "PNG")
        else:  # a new picture
            data = _encode(_picture(rng, 160), "JPEG", quality=85)
        (served / f"u{i:03d}.{'png' if kind == 1 else 'jpg'}").write_bytes(data)
    return lib, served


# ---------------------------------------------------------------------------------------------
# Processes


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc: parent links)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in (b"Z", b"X")


#: Options added to every sync (``--dask ADDRESS``: the downloads and decoding run as shards there).
_OPTIONS: list[str] = []


def _sync_cmd(urls: Path, folder: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "samepix", "sync", str(urls), str(folder), "--workers", "2",
            "--json", *_OPTIONS, *extra]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONDONTWRITEBYTECODE": "1"}


# ---------------------------------------------------------------------------------------------
# Comparing folders


def _contents(folder: Path) -> dict[str, str]:
    out = {}
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if rel.parts[0] == ".samepix" or not path.is_file():
            continue
        out[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _problems(folder: Path, reference: dict[str, str], resumed: dict[str, object]) -> list[str]:
    problems = []
    got = _contents(folder)
    if got != reference:
        extra = sorted(set(got) - set(reference))
        missing = sorted(set(reference) - set(got))
        changed = sorted(k for k in set(got) & set(reference) if got[k] != reference[k])
        problems.append(f"folder differs: extra {extra}, missing {missing}, changed {changed}")
    parts = [p.name for p in folder.rglob("*.part")]
    if parts:
        problems.append(f"partial files left: {parts}")
    db = folder / ".samepix" / "index.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        indexed = conn.execute("SELECT count(*) FROM files").fetchone()[0]
        incomplete = conn.execute("SELECT count(*) FROM sync_urls WHERE complete = 0").fetchone()[0]
    if check != "ok":
        problems.append(f"index integrity check: {check}")
    images = sum(1 for k in got if k.lower().endswith((".jpg", ".png")))
    if indexed != images:
        problems.append(f"index lists {indexed} files, the folder holds {images}")
    if incomplete:
        problems.append(f"{incomplete} sync records left incomplete")
    if resumed.get("failed"):
        problems.append(f"the resumed run failed {resumed['failed']} URLs")
    return problems


def _saved_by(folder: Path) -> set[str]:
    """URLs whose file a (killed) run had put in place, per the index's sync records."""
    db = folder / ".samepix" / "index.db"
    if not db.exists():
        return set()
    try:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            rows = conn.execute(
                "SELECT url FROM sync_urls WHERE decision = 'downloaded' AND complete = 1"
            ).fetchall()
    except sqlite3.Error:
        return set()
    return {r[0] for r in rows}


# ---------------------------------------------------------------------------------------------
# The soak


def soak(kills: int, seed: int, library: int, urls: int) -> Result:
    rng = random.Random(seed)
    result = Result()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="samepix-soak-") as tmp:
        work = Path(tmp)
        lib, served = make_material(work, seed, library, urls)
        with serve_folder(served) as base:
            url_list = work / "urls.txt"
            names = sorted(p.name for p in served.iterdir())
            # Every URL twice: repeats are part of real lists.
            url_list.write_text("".join(f"{base}/{n}\n" for n in names + names[: urls // 4]))

            reference = work / "reference"
            shutil.copytree(lib, reference)
            t0 = time.monotonic()
            done = subprocess.run(_sync_cmd(url_list, reference), env=_env(), capture_output=True)
            result.reference_s = time.monotonic() - t0
            if done.returncode != 0:
                raise SystemExit(f"the uninterrupted run failed: {done.stderr.decode()}")
            expected = _contents(reference)

            for trial in range(kills):
                folder = work / f"trial{trial:03d}"
                shutil.copytree(lib, folder)
                proc = subprocess.Popen(
                    _sync_cmd(url_list, folder),
                    env=_env(),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                family: set[int] = set()
                launched = time.monotonic()
                if trial % 2:
                    # Every other trial aims at the index build, where worker processes run:
                    # killed a random moment (up to 0.5 s) after they appear.
                    while proc.poll() is None and time.monotonic() - launched < result.reference_s:
                        family |= _descendants(proc.pid)
                        if family:
                            break
                        time.sleep(0.02)
                    deadline = time.monotonic() + rng.uniform(0.0, 0.5)
                else:  # anywhere in an uninterrupted run's duration
                    deadline = launched + rng.uniform(0.05, result.reference_s)
                while time.monotonic() < deadline and proc.poll() is None:
                    family |= _descendants(proc.pid)  # worker processes come and go
                    time.sleep(0.02)
                delay = time.monotonic() - launched
                if proc.poll() is not None:
                    result.notes.append(f"trial {trial}: finished before the kill ({delay:.2f} s)")
                    stage = "after the end"
                else:
                    live = _descendants(proc.pid)
                    family |= live
                    stage = "indexing" if live else "syncing"
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    result.kills += 1
                result.killed_while[stage] = result.killed_while.get(stage, 0) + 1
                time.sleep(2.0)
                orphans = {pid for pid in family if _alive(pid)}
                result.orphans += len(orphans)
                saved_before = _saved_by(folder)

                again = subprocess.run(
                    _sync_cmd(url_list, folder), env=_env(), capture_output=True, timeout=600
                )
                if again.returncode != 0 and b"another samepix sync is running" in again.stderr:
                    result.stale_lock_refusals += 1
                for pid in orphans:  # counted; now out of the way
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                if again.returncode != 0 and b"another samepix sync" in again.stderr:
                    time.sleep(0.5)
                    again = subprocess.run(
                        _sync_cmd(url_list, folder), env=_env(), capture_output=True, timeout=600
                    )
                try:
                    resumed = json.loads(again.stdout)
                except ValueError:
                    resumed = {"failed": -1}
                    result.notes.append(f"trial {trial}: resumed run said {again.stderr[-300:]!r}")
                problems = _problems(folder, expected, resumed)
                twice = [
                    item["url"]
                    for item in resumed.get("items", [])  # type: ignore[attr-defined]
                    if item["url"] in saved_before and item["decision"] == "downloaded"
                ]
                if twice:
                    problems.append(f"downloaded twice: {twice}")
                if problems:
                    result.divergences += 1
                    result.notes.append(f"trial {trial} ({stage}, {delay:.2f} s): {problems}")
                shutil.rmtree(folder, ignore_errors=True)
                print(
                    f"trial {trial + 1}/{kills}: killed at {delay:.2f} s while {stage}; "
                    f"orphans {len(orphans)}; divergences so far {result.divergences}",
                    flush=True,
                )
    result.elapsed_s = time.monotonic() - started
    return result


def report(result: Result, args: argparse.Namespace) -> str:
    load = os.getloadavg()
    lines = [
        "# Soak test: `sync` killed with SIGKILL at random moments",
        "",
        "Made by `benchmarks/soak_sync.py` (see its docstring for what each count means):",
        "",
        "```sh",
        f".venv/bin/python benchmarks/soak_sync.py --kills {args.kills} --seed {args.seed} "
        f"--library {args.library} --urls {args.urls}"
        + (f" --dask {args.dask}" if args.dask else ""),
        "```",
        "",
        f"Last run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"load average {load[0]:.1f} on {os.cpu_count()} CPUs, "
        f"{result.elapsed_s:.0f} s in all; an uninterrupted run took {result.reference_s:.1f} s.",
        "",
        "| measure | count |",
        "| --- | --- |",
        f"| kills (SIGKILL) | {result.kills} |",
        f"| divergences from the uninterrupted run | {result.divergences} |",
        f"| orphan processes left 2 s after a kill | {result.orphans} |",
        f"| stale-lock refusals of the next sync | {result.stale_lock_refusals} |",
        "",
        "Where the kills landed: "
        + ", ".join(f"{stage} {n}" for stage, n in sorted(result.killed_while.items()))
        + ' ("indexing": worker processes were alive at the kill).',
    ]
    if result.notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=30, help="trials (30)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--library", type=int, default=60, help="pictures already in the folder")
    parser.add_argument("--urls", type=int, default=40, help="distinct URLs in the list")
    parser.add_argument("--write-docs", action="store_true", help="write docs/soak.md")
    parser.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="sync with --dask ADDRESS (local:2: a LocalCluster started by each run)",
    )
    args = parser.parse_args()
    if args.dask:
        _OPTIONS.extend(["--dask", args.dask])
    result = soak(args.kills, args.seed, args.library, args.urls)
    text = report(result, args)
    print(text)
    if args.write_docs:
        (ROOT / "docs" / "soak.md").write_text(text)
    clean = not (result.divergences or result.orphans or result.stale_lock_refusals)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())

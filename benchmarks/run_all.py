"""Run every ``benchmarks/bench_*.py`` one after another and print their tables.

    python benchmarks/run_all.py                     # all of them, default sizes
    python benchmarks/run_all.py --only pair,hash    # bench_pair.py and bench_hash.py
    python benchmarks/run_all.py --args "--sizes 0.5,2"   # passed to every bench that takes it
    python benchmarks/run_all.py --out benchmarks/out/results.md

Benchmarks are found by name, so a new ``bench_<name>.py`` joins without editing this file.
Each runs in its own process (they measure time and memory, which other benchmarks' leftovers
would disturb); one that fails is reported and the others still run. Benchmarks never fail
the test suite and make no timed assertions: this prints numbers, nothing more.
The accuracy evaluation (``accuracy.py``) is separate: it takes minutes, not seconds.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def benches(only: set[str] | None) -> list[Path]:
    found = sorted(HERE.glob("bench_*.py"))
    if only:
        found = [p for p in found if p.stem.removeprefix("bench_") in only]
    return found


def takes(path: Path, option: str) -> bool:
    """Whether a benchmark script mentions ``option`` (so a shared --sizes is only passed on)."""
    return option in path.read_text(encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated names: pair,hash,ssim,...")
    parser.add_argument("--args", default="", help="extra arguments for benches that accept them")
    parser.add_argument("--out", type=Path, help="also write everything printed to this file")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    extra = shlex.split(args.args)
    found = benches(only)
    if not found:
        print(f"no benchmarks match {args.only!r} in {HERE}")
        return 0
    chunks: list[str] = [f"# samepix benchmarks, {time.strftime('%Y-%m-%d %H:%M')}\n"]
    failed = []
    for path in found:
        passed = [a for a in extra if not a.startswith("--") or takes(path, a.split("=")[0])]
        cmd = [sys.executable, str(path), *passed]
        print(f"== {path.name} ==", flush=True)
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - start
        text = done.stdout.rstrip()
        if done.returncode != 0:
            failed.append(path.name)
            last = done.stderr.strip().splitlines()[-1:] or ["(no message)"]
            text += f"\n{path.name} failed (exit {done.returncode}): {last[0]}"
        print(text + f"\n({path.name}: {elapsed:.0f} s)\n", flush=True)
        chunks.append(f"## {path.name}\n\n{text}\n")
    if failed:
        print(f"failed: {', '.join(failed)}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(chunks))
    return 0  # benchmarks report; they do not fail a build


if __name__ == "__main__":
    sys.exit(main())

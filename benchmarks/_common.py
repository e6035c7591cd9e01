"""Helpers shared by the benchmark scripts: where the photographs are, the machine, tables.

Each ``bench_*.py`` stays runnable alone (``python benchmarks/bench_pair.py``): Python puts the
script's folder first on ``sys.path``, so ``import _common`` finds this file.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT / "src"))


def shared_data() -> Path | None:
    """``shared/data`` beside the project (or beside the folder of git worktrees it sits in).

    ``SAMEPIX_DATA`` overrides. None when absent: callers skip, saying so.
    """
    env = os.environ.get("SAMEPIX_DATA")
    candidates = [Path(env)] if env else []
    candidates += [ROOT.parent / "shared" / "data", ROOT.parents[1] / "shared" / "data"]
    for path in candidates:
        if (path / "kodak").is_dir() or (path / "photos").is_dir():
            return path
    return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine() -> str:
    """One line naming the machine and the library versions that set the speed."""
    import numpy as np

    parts = [f"{cpu_model()}, {usable_cpus()} usable cores", f"Python {platform.python_version()}"]
    parts.append(f"numpy {np.__version__}")
    try:
        import cv2

        parts.append(f"OpenCV {cv2.__version__}")
    except ImportError:
        pass
    try:
        import PIL

        parts.append(f"Pillow {PIL.__version__}")
    except ImportError:
        pass
    return "; ".join(parts)


def median_ms(fn: Callable[[], object], reps: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``reps`` calls after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def status_kib(field: str) -> int | None:
    """A field of /proc/self/status in KiB (VmRSS, VmHWM), None where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0), so the next peak is this work's."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def report_timed(run: Callable[[], object], reps: int) -> None:
    """Worker side of :func:`measure_in_process`: time ``run`` and print one JSON line.

    One warm-up call (lazy imports, thread pools, buffers), then the median of ``reps`` calls in
    ms, the peak memory above the starting RSS in MiB (None where /proc cannot reset the peak),
    and the last call's value.
    """
    base = status_kib("VmRSS") or 0
    exact = reset_peak()
    value = run()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        value = run()
        times.append((time.perf_counter() - start) * 1e3)
    peak = status_kib("VmHWM") if exact else None
    print(
        json.dumps(
            {
                "ms": statistics.median(times),
                "peak_mib": None if peak is None else max(0, peak - base) / 1024,
                "value": value,
            }
        )
    )


def measure_in_process(script: str, impl: str, a: str, b: str, reps: int) -> dict[str, float]:
    """Run ``script --worker IMPL A B REPS`` in a fresh interpreter (so each tool's imports and
    peak memory are its own) and return what its :func:`report_timed` printed."""
    cmd = [sys.executable, script, "--worker", impl, a, b, str(reps)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{impl} failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def timed_run(command: list[str], env: dict[str, str] | None = None) -> float:
    """Seconds ``command`` takes as a fresh process; stops the benchmark with its stderr if it
    fails."""
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)}: {proc.stderr.strip()}")
    return elapsed


def local_cluster(n: int) -> Any:
    """A dask.distributed LocalCluster of ``n`` single-threaded worker processes on 127.0.0.1."""
    import distributed

    return distributed.LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=50,
    )


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)

"""How long `samepix --help` takes, against the imports it avoids (target: under 0.2 s).

Each measurement is a fresh process (medians of several runs), because start-up time is what a
user waits for on every CLI call. Run: python benchmarks/bench_startup.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

RUNS = 7


def wall(args: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    py = sys.executable
    rows = [
        ("python -c pass (interpreter floor)", wall([py, "-c", "pass"])),
        ("samepix --help", wall([py, "-m", "samepix", "--help"])),
        ("python -c 'import numpy'", wall([py, "-c", "import numpy"])),
        ("python -c 'import cv2'", wall([py, "-c", "import cv2"])),
        ("python -c 'import httpx'", wall([py, "-c", "import httpx"])),
        ("python -c 'import samepix.compare' (everything a compare loads)", wall(
            [py, "-c", "import samepix.compare, samepix.metrics, cv2, PIL.Image"]
        )),
    ]  # fmt: skip
    print(f"## Start-up (median of {RUNS} fresh processes)\n")
    print("| command | ms |")
    print("| --- | ---: |")
    for name, ms in rows:
        print(f"| {name} | {ms:.0f} |")
    help_ms = rows[1][1]
    verdict = "meets" if help_ms < 200 else "MISSES"
    print(f"\n`samepix --help`: {help_ms:.0f} ms, {verdict} the 200 ms target.")


if __name__ == "__main__":
    main()

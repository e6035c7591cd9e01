"""How long a one-shot command takes as a process: ``samepix --help`` (target: under 0.2 s) and
``samepix compare`` of two local 0.5 MP files (target: under 0.25 s), against the imports they
avoid and ImageMagick's ``compare -metric PSNR`` (when installed).

Each measurement is a fresh process (medians of several runs, the commands interleaved),
because start-up time is what a user waits for on every CLI call. Besides wall time, the CPU
time (user + system) of the process is shown: on a shared, loaded machine it moves far less
than wall time. Run: python benchmarks/bench_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, shared_data


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``args``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(args, check=False, capture_output=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def make_pair(folder: Path) -> tuple[str, str] | None:
    """A 0.5 MP pair: ``photos/001.png`` resized to 866×577, as JPEG q95 and q75."""
    data = shared_data()
    if data is None:
        return None
    from PIL import Image

    with Image.open(data / "photos" / "001.png") as im:
        rgb = im.convert("RGB")
    scale = (0.5e6 / (rgb.width * rgb.height)) ** 0.5
    small = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.LANCZOS)
    a, b = folder / "a.jpg", folder / "b.jpg"
    small.save(a, quality=95)
    small.save(b, quality=75)
    return str(a), str(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--baseline-src",
        type=Path,
        metavar="DIR",
        help="another checkout's src folder: its compare is timed too, interleaved",
    )
    args = parser.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        # This checkout, installed or not, with its byte code compiled and kept (in the
        # temporary folder) as an installed copy's is: PYTHONDONTWRITEBYTECODE would have every
        # run compile samepix's modules again (~45 ms).
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env |= {"PYTHONPATH": str(ROOT / "src"), "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pyc")}
        pair = make_pair(Path(tmp))
        rows: list[tuple[str, list[str]]] = [
            ("python -c pass (interpreter floor)", [py, "-c", "pass"]),
            ("samepix --help", [py, "-m", "samepix", "--help"]),
            ("python -c 'import numpy'", [py, "-c", "import numpy"]),
            # What the CLI does before numpy is imported (samepix.cli.main): OpenBLAS starts
            # no thread per core.
            ("OPENBLAS_NUM_THREADS=1 python -c 'import numpy'",
             ["env", "OPENBLAS_NUM_THREADS=1", py, "-c", "import numpy"]),
            ("python -c 'import cv2'", [py, "-c", "import cv2"]),
            ("python -c 'import httpx'", [py, "-c", "import httpx"]),
            ("python -c 'import samepix.compare' (everything a compare loads)",
             [py, "-c", "import samepix.compare, samepix.metrics, cv2, PIL.Image"]),
        ]  # fmt: skip
        if pair is not None:
            rows.append(
                ("samepix compare A B --json (two local 0.5 MP JPEGs)",
                 [py, "-m", "samepix", "compare", *pair, "--json"])
            )  # fmt: skip
            if args.baseline_src is not None:
                # python -c, so PYTHONPATH picks the checkout (-m samepix would too, but the
                # environment below is shared by every row).
                code = (
                    f"import sys; sys.path.insert(0, {str(args.baseline_src.resolve())!r}); "
                    "from samepix.cli import main; raise SystemExit(main())"
                )
                rows.append(
                    (f"baseline ({args.baseline_src}) samepix compare A B --json",
                     [py, "-c", code, "compare", *pair, "--json"])
                )  # fmt: skip
            magick = shutil.which("compare")
            if magick:
                rows.append(
                    ("ImageMagick compare -metric PSNR A B null:",
                     [magick, "-metric", "PSNR", *pair, "null:"])
                )  # fmt: skip
        results: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in rows}
        for _name, cmd in rows:  # one untimed run each: byte code written, files in the cache
            timed(cmd, env)
        for _ in range(args.runs):  # interleaved: a burst of load hits every command alike
            for name, cmd in rows:
                results[name].append(timed(cmd, env))
    print(f"## Start-up (median of {args.runs} fresh processes, interleaved)\n")
    print(f"load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| command | wall ms | CPU ms (user + system) |")
    print("| --- | ---: | ---: |")
    for name, _ in rows:
        wall = statistics.median(w for w, _ in results[name]) * 1000
        cpu = statistics.median(c for _, c in results[name]) * 1000
        print(f"| {name} | {wall:.0f} | {cpu:.0f} |")
    help_ms = statistics.median(w for w, _ in results["samepix --help"]) * 1000
    verdict = "meets" if help_ms < 200 else "MISSES"
    print(f"\n`samepix --help`: {help_ms:.0f} ms, {verdict} the 200 ms target.")
    if pair is None:
        print("compare: skipped, ../shared/data (photos) not found; set SAMEPIX_DATA")
        return
    name = "samepix compare A B --json (two local 0.5 MP JPEGs)"
    ms = statistics.median(w for w, _ in results[name]) * 1000
    verdict = "meets" if ms <= 250 else "MISSES"
    print(f"`samepix compare` of a 0.5 MP pair: {ms:.0f} ms, {verdict} the 250 ms target.")


if __name__ == "__main__":
    main()

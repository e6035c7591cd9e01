"""``samepix index`` + ``samepix dupes`` on a folder of photographs, against the duplicate finders a
user would pick instead: answers (planted copies found, crops and edits wrongly grouped, false
groups) and wall time, side by side in one run.

    python benchmarks/bench_dupes.py                       # 2,000 files, every installed peer
    python benchmarks/bench_dupes.py --files 400 --reps 1  # a quick look
    python benchmarks/bench_dupes.py --profile             # where samepix's dupes spends its time
    python benchmarks/bench_dupes.py --peer-python .venv-peers/bin/python \\
        --fastdup-python .venv-fastdup/bin/python --baseline-src ../main/src

``--baseline-src`` runs another checkout's samepix too and says whether its groups are identical
to this one's (how a speed change shows it kept every verdict). ``--only samepix,czkawka`` runs
a subset.

The folder (built once under ``benchmarks/out/``, from ``../shared/data``'s Kodak images and
photos; skipped, saying so, when they are absent) holds:

- distinct pictures ("originals", ~0.7 MP: 1024×684 mosaics of 4×3 pieces cut at random places
  and scales from the 48 photographs, so no two share their layout), as JPEG q90 or PNG;
- planted copies of some of them, which must be grouped with their original: JPEG re-encodes
  (q50–85), resizes (0.5–0.8×, JPEG or PNG), PNG ↔ JPEG and WebP format changes;
- crops and edits of others, which must NOT be grouped with their original: a crop of 70–85 %
  of the sides (as it is, or scaled back to the original size), a pasted patch or a caption
  over part of the picture, a hue rotation.

Every tool runs as a whole process from a cold start (samepix's index removed first), the runs
interleaved, the median of ``--reps`` reported with the peak RSS of the process tree
(``ru_maxrss`` of the children). Peers, each skipped with the reason when it does not run:

- findimagedupes (Debian ``apt-get install findimagedupes``), default threshold (90 %);
- imagededup's PHash without torch (``pip install --no-deps imagededup`` plus numpy, Pillow,
  scipy, PyWavelets, scikit-learn, tqdm, matplotlib), its default ``max_distance_threshold=10``;
- fastdup (``pip install fastdup``: it pins numpy < 2, so in its own virtual environment,
  ``--fastdup-python``), its default threshold (0.9) and connected components;
- czkawka's Rust engine through the PyPI ``czkawka`` package, similarity 10 (of 0–50).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from _common import ROOT, machine, shared_data, table

OUT = ROOT / "benchmarks" / "out"
FOLDER_VERSION = "1"  # bump when the folder's recipe changes
SIDE = (1024, 684)  # ~0.7 MP
GRID = (4, 3)
COPY_SHARE = 0.375  # of all files: planted copies (must be grouped with their original)
EDIT_SHARE = 0.075  # of all files: crops and edits (must not be)

COPY_KINDS = ("jpeg-reencode", "resize-jpeg", "resize-png", "png", "webp")
EDIT_KINDS = ("crop", "crop-rescaled", "patch", "caption", "hue")


# ---------------------------------------------------------------------------------------------
# The folder


@dataclass(frozen=True)
class Planted:
    name: str  # file name in the folder
    family: int  # the original it derives from
    role: str  # "original", "copy" or "edit"
    kind: str


def _sources(data: Path) -> list[object]:
    import numpy as np
    from PIL import Image

    out = []
    for sub in ("kodak", "photos"):
        for path in sorted((data / sub).glob("*.png")):
            with Image.open(path) as im:
                out.append(np.asarray(im.convert("RGB")))
    return out


def _mosaic(sources: list[object], rng: random.Random) -> object:
    """A picture no other one shares: 4×3 pieces of random photographs at random scales."""
    import numpy as np
    from PIL import Image

    cols, rows = GRID
    tw, th = SIDE[0] // cols, SIDE[1] // rows
    grid = []
    for _ in range(rows):
        row = []
        for _ in range(cols):
            src = sources[rng.randrange(len(sources))]
            assert isinstance(src, np.ndarray)
            h, w = src.shape[:2]
            scale = rng.uniform(0.6, 1.0)
            cw, ch = max(tw, round(tw / scale)), max(th, round(th / scale))
            cw, ch = min(cw, w), min(ch, h)
            x0, y0 = rng.randrange(0, w - cw + 1), rng.randrange(0, h - ch + 1)
            piece = Image.fromarray(src[y0 : y0 + ch, x0 : x0 + cw]).resize(
                (tw, th), Image.Resampling.LANCZOS
            )
            if rng.random() < 0.5:
                piece = piece.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            row.append(np.asarray(piece))
        grid.append(np.concatenate(row, axis=1))
    return np.ascontiguousarray(np.concatenate(grid, axis=0))


def _encode(pixels: object, fmt: str, **options: object) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt, **options)  # type: ignore[arg-type]
    return out.getvalue()


def _resize(pixels: object, scale: float) -> object:
    import numpy as np
    from PIL import Image

    im = Image.fromarray(pixels)  # type: ignore[arg-type]
    size = (round(im.width * scale), round(im.height * scale))
    return np.asarray(im.resize(size, Image.Resampling.LANCZOS))


def _copy(pixels: object, kind: str, rng: random.Random) -> tuple[str, bytes]:
    if kind == "jpeg-reencode":
        return "jpg", _encode(pixels, "JPEG", quality=rng.randint(50, 85))
    if kind == "resize-jpeg":
        return "jpg", _encode(_resize(pixels, rng.uniform(0.5, 0.8)), "JPEG", quality=85)
    if kind == "resize-png":
        return "png", _encode(_resize(pixels, rng.uniform(0.5, 0.8)), "PNG")
    if kind == "png":
        return "png", _encode(pixels, "PNG")
    if kind == "webp":
        return "webp", _encode(pixels, "WEBP", quality=80)
    raise ValueError(kind)


def _edit(pixels: object, kind: str, rng: random.Random, other: object) -> tuple[str, bytes]:
    import numpy as np

    import accuracy  # its edits: a pasted patch, text, a hue rotation, a crop

    assert isinstance(pixels, np.ndarray)
    seed = np.random.default_rng(rng.randrange(1 << 30))
    if kind in ("crop", "crop-rescaled"):
        keep = rng.uniform(0.70, 0.85)
        h, w = pixels.shape[:2]
        cw, ch = round(w * keep), round(h * keep)
        x0, y0 = rng.randrange(0, w - cw + 1), rng.randrange(0, h - ch + 1)
        out = np.ascontiguousarray(pixels[y0 : y0 + ch, x0 : x0 + cw])
        if kind == "crop-rescaled":
            out = _resize(out, w / cw)  # type: ignore[assignment]
        return "jpg", _encode(out, "JPEG", quality=90)
    if kind == "patch":
        return "jpg", _encode(accuracy.paste_patch(pixels, seed, 0.25), "JPEG", quality=90)
    if kind == "caption":
        text = "SAMPLE" if rng.random() < 0.5 else "(c) 2026 someone"
        return "jpg", _encode(accuracy.add_text(pixels, seed, 0.08, text, 1.0), "JPEG", quality=90)
    if kind == "hue":
        return "jpg", _encode(
            accuracy.hue_rotate(pixels, rng.choice((60, 120, 180))), "JPEG", quality=90
        )
    raise ValueError(kind)


def build_folder(data: Path, files: int, folder: Path) -> list[Planted]:
    """Make (or reuse) the folder; returns what was planted in it."""
    manifest = folder.parent / (folder.name + ".json")
    if manifest.exists() and folder.is_dir():
        saved = json.loads(manifest.read_text())
        if saved.get("version") == FOLDER_VERSION:
            return [Planted(**p) for p in saved["files"]]
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    rng = random.Random(13)
    sources = _sources(data)
    copies = round(files * COPY_SHARE)
    edits = round(files * EDIT_SHARE)
    originals = files - copies - edits
    planted: list[Planted] = []
    pictures = []
    for i in range(originals):
        pixels = _mosaic(sources, rng)
        pictures.append(pixels)
        if rng.random() < 0.8:
            name, data_ = f"p{i:05d}.jpg", _encode(pixels, "JPEG", quality=90)
        else:
            name, data_ = f"p{i:05d}.png", _encode(pixels, "PNG")
        (folder / name).write_bytes(data_)
        planted.append(Planted(name, i, "original", "jpeg" if name.endswith("jpg") else "png"))
    # Copies go to the first originals (1–3 each), edits to the last ones: an original with an
    # edit has no copy, so "grouped with its original" is unambiguous.
    family = 0
    made = 0
    while made < copies:
        for _ in range(min(rng.choice((1, 1, 2, 3)), copies - made)):
            kind = COPY_KINDS[made % len(COPY_KINDS)]
            ext, body = _copy(pictures[family], kind, rng)
            name = f"c{made:05d}-{kind}.{ext}"
            (folder / name).write_bytes(body)
            planted.append(Planted(name, family, "copy", kind))
            made += 1
        family += 1
    for k in range(edits):
        target = originals - 1 - k
        kind = EDIT_KINDS[k % len(EDIT_KINDS)]
        ext, body = _edit(pictures[target], kind, rng, pictures[rng.randrange(originals)])
        name = f"e{k:05d}-{kind}.{ext}"
        (folder / name).write_bytes(body)
        planted.append(Planted(name, target, "edit", kind))
    manifest.write_text(
        json.dumps({"version": FOLDER_VERSION, "files": [p.__dict__ for p in planted]})
    )
    return planted


# ---------------------------------------------------------------------------------------------
# Judging a tool's groups


@dataclass(frozen=True)
class Quality:
    copies_found: int
    copies: int
    edits_grouped: int
    edits: int
    false_groups: int
    groups: int


def judge(planted: list[Planted], groups: Iterable[Iterable[str]]) -> Quality:
    """Planted copies grouped with their original; edits grouped with any file of their own
    picture; groups that join files of different pictures."""
    by_name = {p.name: p for p in planted}
    group_of: dict[str, int] = {}
    false_groups = count = 0
    for g, names in enumerate(groups):
        members = [by_name[Path(n).name] for n in names if Path(n).name in by_name]
        if len(members) < 2:
            continue
        count += 1
        for m in members:
            group_of[m.name] = g
        if len({m.family for m in members}) > 1:
            false_groups += 1
    original = {p.family: p.name for p in planted if p.role == "original"}
    family_groups: dict[int, set[int]] = defaultdict(set)
    for p in planted:
        if p.role != "edit" and p.name in group_of:
            family_groups[p.family].add(group_of[p.name])
    copies = [p for p in planted if p.role == "copy"]
    edits = [p for p in planted if p.role == "edit"]
    found = sum(
        1
        for p in copies
        if p.name in group_of and group_of.get(original[p.family]) == group_of[p.name]
    )
    grouped = sum(
        1 for p in edits if p.name in group_of and group_of[p.name] in family_groups[p.family]
    )
    return Quality(found, len(copies), grouped, len(edits), false_groups, count)


# ---------------------------------------------------------------------------------------------
# The tools, each a whole process


@dataclass
class Run:
    seconds: float
    peak_mib: float
    groups: list[list[str]]


def _timed(
    cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[float, float, str]:
    """Run ``cmd``; wall seconds, the peak RSS of this child (MiB), its stdout."""
    # ru_maxrss of RUSAGE_CHILDREN is the largest of all children so far: measure in a fresh
    # intermediate process so each tool's peak is its own.
    probe = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(json.loads(sys.argv[1]), capture_output=True, text=True)\n"
        "dt = time.perf_counter() - t\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "sys.stdout.write(json.dumps({'s': dt, 'mib': peak, 'rc': p.returncode, "
        "'out': p.stdout, 'err': p.stderr[-2000:]}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(cmd)],
        capture_output=True, text=True, cwd=cwd, env=env, check=True,
    )  # fmt: skip
    res = json.loads(done.stdout)
    if res["rc"] != 0:
        raise RuntimeError(f"{cmd[0]} exited {res['rc']}: {res['err'].strip()[-800:]}")
    return res["s"], res["mib"], res["out"]


def run_samepix(folder: Path, src: Path = ROOT / "src") -> Run:
    shutil.rmtree(folder / ".samepix", ignore_errors=True)
    exe = [sys.executable, "-m", "samepix"]
    env = {**os.environ, "PYTHONPATH": str(src)}
    s1, m1, _ = _timed([*exe, "index", str(folder), "--json"], env=env)
    s2, m2, out = _timed([*exe, "dupes", str(folder), "--json"], env=env)
    groups = [[c["path"] for c in g["copies"]] for g in json.loads(out)["groups"]]
    run = Run(s1 + s2, max(m1, m2), groups)
    run.phases = {"index": (s1, m1), "dupes": (s2, m2)}  # type: ignore[attr-defined]
    return run


def run_findimagedupes(folder: Path) -> Run:
    exe = shutil.which("findimagedupes")
    if exe is None:
        raise Skip("findimagedupes not installed (Debian: apt-get install findimagedupes)")
    s, mib, out = _timed([exe, "-R", "--", str(folder)])
    return Run(s, mib, [line.split() for line in out.splitlines() if line.strip()])


# imagededup imports torch for its CNN method even when only hashing is used: its two modules
# that need torch are replaced by empty ones (the hashing code that runs is imagededup's own).
IMAGEDEDUP = """
import json, sys, types
for name, attrs in (
    ("imagededup.utils.models", ("CustomModel",)), ("imagededup.methods.cnn", ("CNN",))
):
    stub = types.ModuleType(name)
    for attr in attrs:
        setattr(stub, attr, None)
    sys.modules[name] = stub
from imagededup.methods import PHash
dupes = PHash(verbose=False).find_duplicates(image_dir=sys.argv[1])
print(json.dumps(dupes))
"""

FASTDUP = """
import json, sys, tempfile
import fastdup
work = tempfile.mkdtemp()
fd = fastdup.create(work_dir=work, input_dir=sys.argv[1])
fd.run(verbose=False, overwrite=True, cc_threshold=0.9)
cc = fd.connected_components()[0]
groups = {}
for _, row in cc.iterrows():
    groups.setdefault(int(row["component_id"]), []).append(str(row["filename"]))
print(json.dumps([g for g in groups.values() if len(g) > 1]))
"""

CZKAWKA = """
import json, sys
from czkawka import ImageSimilarity
finder = ImageSimilarity()
finder.set_directories([sys.argv[1]])
finder.set_similarity(10)
print(json.dumps([[str(p) for p in g] for g in finder.find_similar()]))
"""


class Skip(Exception):
    pass


def _python_peer(python: str, script: str, module: str, folder: Path) -> tuple[float, float, str]:
    probe = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        raise Skip(f"{module} does not import with {python}: {last}")
    return _timed([python, "-c", script, str(folder)])


def _pairs_to_groups(pairs: dict[str, list[str]]) -> list[list[str]]:
    """imagededup answers {file: [its duplicates]}: join them transitively, as a user would."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, others in pairs.items():
        for b in others:
            parent[root(a)] = root(b)
    groups: dict[str, list[str]] = defaultdict(list)
    for x in parent:
        groups[root(x)].append(x)
    return [g for g in groups.values() if len(g) > 1]


def run_imagededup(folder: Path, python: str) -> Run:
    s, mib, out = _python_peer(python, IMAGEDEDUP, "imagededup", folder)
    return Run(s, mib, _pairs_to_groups(json.loads(out.strip().splitlines()[-1])))


def run_fastdup(folder: Path, python: str) -> Run:
    s, mib, out = _python_peer(python, FASTDUP, "fastdup", folder)
    return Run(s, mib, json.loads(out.strip().splitlines()[-1]))


def run_czkawka(folder: Path, python: str) -> Run:
    s, mib, out = _python_peer(python, CZKAWKA, "czkawka", folder)
    return Run(s, mib, json.loads(out.strip().splitlines()[-1]))


# ---------------------------------------------------------------------------------------------


def profile_dupes(folder: Path, top: int) -> None:
    """cProfile of ``Library.duplicates`` on an indexed folder (the index brought up to date
    first, untimed), with one worker: every comparison in this process, where cProfile sees it."""
    import cProfile
    import pstats

    sys.path.insert(0, str(ROOT / "src"))
    from samepix import Library

    with Library(folder) as lib:
        lib.update()
    with Library(folder, workers=1) as lib:
        prof = cProfile.Profile()
        start = time.perf_counter()
        prof.enable()
        groups = lib.duplicates(update=False)
        prof.disable()
        print(f"dupes: {time.perf_counter() - start:.1f} s under cProfile, {len(groups)} groups\n")
    stats = pstats.Stats(prof)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=3, help="interleaved runs of each tool (median)")
    ap.add_argument("--peer-python", default=sys.executable, help="python with imagededup, czkawka")
    ap.add_argument(
        "--fastdup-python", default=None, help="python with fastdup (default: --peer-python)"
    )
    ap.add_argument(
        "--only",
        default=None,
        help="comma-separated tools to run (samepix,findimagedupes,imagededup,fastdup,czkawka)",
    )
    ap.add_argument("--profile", action="store_true", help="cProfile samepix's dupes and stop")
    ap.add_argument(
        "--baseline-src",
        help="another checkout's src folder: its samepix runs too, and its groups are compared",
    )
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args(argv)

    data = shared_data()
    if data is None:
        print("skipped: ../shared/data (kodak, photos) not found; set SAMEPIX_DATA")
        return 0
    folder = OUT / f"dupes-{args.files}"
    t0 = time.perf_counter()
    planted = build_folder(data, args.files, folder)
    print(
        f"folder: {folder} ({len(planted)} files, made or checked in "
        f"{time.perf_counter() - t0:.1f} s)"
    )
    if args.profile:
        profile_dupes(folder, args.top)
        return 0

    fastdup_py = args.fastdup_python or args.peer_python
    tools: dict[str, Callable[[], Run]] = {
        "samepix index + dupes": lambda: run_samepix(folder),
        "samepix baseline": lambda: run_samepix(folder, Path(args.baseline_src)),
        "findimagedupes": lambda: run_findimagedupes(folder),
        "imagededup PHash": lambda: run_imagededup(folder, args.peer_python),
        "fastdup": lambda: run_fastdup(folder, fastdup_py),
        "czkawka": lambda: run_czkawka(folder, args.peer_python),
    }
    if not args.baseline_src:
        del tools["samepix baseline"]
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")}
        tools = {k: v for k, v in tools.items() if k.split()[0] in wanted}
    runs: dict[str, list[Run]] = defaultdict(list)
    skipped: dict[str, str] = {}
    for rep in range(args.reps):
        for name, fn in tools.items():
            if name in skipped:
                continue
            try:
                run = fn()
            except (Skip, RuntimeError) as exc:
                skipped[name] = str(exc)
                print(f"skipped {name}: {exc}", file=sys.stderr)
                continue
            runs[name].append(run)
            print(f"rep {rep + 1}: {name} {run.seconds:.1f} s", file=sys.stderr)

    print(f"\n{machine()}; load average {os.getloadavg()[0]:.1f} at the end\n")
    n_copies = sum(p.role == "copy" for p in planted)
    n_edits = sum(p.role == "edit" for p in planted)
    print(
        f"{len(planted)} files: {len(planted) - n_copies - n_edits} distinct pictures, "
        f"{n_copies} planted copies, {n_edits} crops/edits; median of {args.reps} cold runs\n"
    )
    sp = runs.get("samepix index + dupes")
    baseline = runs.get("samepix baseline")
    if sp and baseline:
        mine = sorted(sorted(g) for g in sp[-1].groups)
        theirs = sorted(sorted(g) for g in baseline[-1].groups)
        same = "identical" if mine == theirs else "DIFFERENT"
        print(f"groups of this checkout and of {args.baseline_src}: {same}\n")
    base = (
        statistics.median(r.seconds for r in runs["samepix index + dupes"])
        if runs.get("samepix index + dupes")
        else None
    )
    rows = []
    for name in tools:
        if name in skipped:
            rows.append((name, f"skipped: {skipped[name]}", "", "", "", "", ""))
            continue
        rs = runs[name]
        secs = statistics.median(r.seconds for r in rs)
        q = judge(planted, rs[-1].groups)
        ratio = "—" if base is None or name == "samepix index + dupes" else f"{base / secs:.2f}"
        rows.append((
            name,
            f"{secs:.1f} ({min(r.seconds for r in rs):.1f}–{max(r.seconds for r in rs):.1f})",
            f"{max(r.peak_mib for r in rs):.0f}", f"{q.copies_found}/{q.copies}",
            f"{q.edits_grouped}/{q.edits}", q.false_groups, ratio,
        ))  # fmt: skip
    print(table(
        ["tool", "wall s: median (range)", "peak MiB", "planted copies found",
         "crops/edits grouped", "false groups", "samepix s / tool s"],
        rows,
    ))  # fmt: skip
    if sp:
        phases = [r.phases for r in sp]  # type: ignore[attr-defined]
        print()
        print(table(["samepix phase", "wall s: median", "peak MiB"], [
            (k, f"{statistics.median(p[k][0] for p in phases):.1f}",
             f"{max(p[k][1] for p in phases):.0f}")
            for k in ("index", "dupes")
        ]))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

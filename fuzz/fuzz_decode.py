"""Mutation fuzzing of samepix's decoders: ``load``'s decode, the hashing decode and ``read_info``.

    python fuzz/fuzz_decode.py --runs 1000000 --out fuzz/findings     # the long run
    python fuzz/fuzz_decode.py --runs 3000 --seed 1                   # a smoke run
    python fuzz/fuzz_decode.py --atheris -- -runs=1000000             # with atheris/libFuzzer

Seeds are made by Pillow at start-up, one per format and flavour samepix claims (JPEG
baseline/progressive/CMYK, PNG RGB/palette+tRNS/16-bit/APNG, GIF animated, WebP lossy/lossless/
animated, TIFF, BMP, ICO, AVIF when Pillow reads it): nothing binary is kept in the repository.

Every input goes through :func:`samepix.decode.decode_blob`, :func:`~samepix.decode.draft_grey`
and :func:`~samepix.decode.read_info`. A :class:`~samepix.errors.SamepixError` is the expected
answer to bad input; anything else is a finding. The inputs run in a worker process watched by
this one (the watchdog): an exception that is not samepix's own, a crash (the worker dies), a
hang (no answer within ``--timeout`` seconds) and a peak over the memory budget (RSS above
``--max-rss``) each save the input under ``--out/<class>/`` and the worker is restarted.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import multiprocessing as mp
import os
import random
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


# ---------------------------------------------------------------------------------------------
# Seeds


def seeds() -> dict[str, bytes]:
    """One small file per format and flavour, written by Pillow now."""
    import numpy as np
    from PIL import Image, features

    h, w = 24, 32
    y, x = np.mgrid[0:h, 0:w]
    rgb = Image.fromarray(np.dstack([x * 8, y * 10, (x ^ y) * 8]).astype(np.uint8))
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray((x * 8).astype(np.uint8)))
    frames = [rgb, rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT), rgb.rotate(180)]

    def save(im: Image.Image, fmt: str, **options: Any) -> bytes:
        buf = io.BytesIO()
        im.save(buf, fmt, **options)
        return buf.getvalue()

    exif = Image.Exif()
    exif[0x0112] = 6
    out = {
        "jpeg-baseline": save(rgb, "JPEG", quality=80, exif=exif.tobytes()),
        "jpeg-progressive": save(rgb, "JPEG", quality=70, progressive=True),
        "jpeg-cmyk": save(rgb.convert("CMYK"), "JPEG", quality=80),
        "png-rgb": save(rgb, "PNG"),
        "png-palette-trns": save(rgb.quantize(16), "PNG", transparency=3),
        "png-16bit": save(Image.fromarray((x * 2000).astype(np.uint16)), "PNG"),
        "png-rgba": save(rgba, "PNG"),
        "apng": save(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=50),
        "gif-animated": save(
            frames[0].quantize(16), "GIF", save_all=True, append_images=frames[1:], duration=50
        ),
        "webp-lossy": save(rgb, "WEBP", quality=70),
        "webp-lossless": save(rgba, "WEBP", lossless=True),
        "webp-animated": save(
            frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=50
        ),
        "tiff-deflate": save(rgb, "TIFF", compression="tiff_deflate", tiffinfo={0x0112: 6}),
        "tiff-raw-16bit": save(Image.fromarray((y * 2000).astype(np.uint16)), "TIFF"),
        "bmp": save(rgb, "BMP"),
        "ico": save(rgba, "ICO", sizes=[(16, 16), (32, 32)]),
    }
    if features.check("avif"):
        out["avif"] = save(rgb, "AVIF", quality=60)
    return out


# ---------------------------------------------------------------------------------------------
# Mutations

_INTERESTING = (0, 1, 0x7F, 0x80, 0xFF)
_BIG = (0xFFFF, 0x7FFF, 0xFFFFFFFF, 0x7FFFFFFF, 0x10000, 40000, 0)


def mutate(data: bytes, rng: random.Random, dictionary: list[bytes]) -> bytes:
    """A few random edits of the kinds that break parsers: bits, bytes, sizes, cuts, splices."""
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 4, 8))):
        if not buf:
            buf = bytearray(rng.choice(dictionary))
        n = len(buf)
        op = rng.randrange(9)
        i = rng.randrange(n)
        if op == 0:
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[i] = rng.choice(_INTERESTING)
        elif op == 2:
            buf[i] = rng.randrange(256)
        elif op == 3 and n > 4:  # a 16- or 32-bit size field, either byte order
            size = rng.choice((2, 4))
            i = rng.randrange(max(1, n - size))
            value = rng.choice(_BIG) & ((1 << (8 * size)) - 1)
            buf[i : i + size] = value.to_bytes(size, rng.choice(("big", "little")))
        elif op == 4 and n > 1:  # truncate
            del buf[rng.randrange(max(1, n // 4), n) :]
        elif op == 5:  # delete a run
            del buf[i : i + rng.randrange(1, 64)]
        elif op == 6:  # duplicate a run
            j = rng.randrange(n)
            buf[j:j] = buf[i : i + rng.randrange(1, 64)]
        elif op == 7:  # splice another seed's bytes in
            other = rng.choice(dictionary)
            k = rng.randrange(len(other))
            buf[i : i + rng.randrange(1, 256)] = other[k : k + rng.randrange(1, 256)]
        else:  # insert random bytes
            buf[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
    return bytes(buf)


# ---------------------------------------------------------------------------------------------
# The target


def target(data: bytes, limits: Any = None) -> str | None:
    """Run the three decoders on ``data`` (under ``limits``, samepix's defaults when None); the
    traceback of a foreign exception, else None."""
    from samepix.decode import decode_blob, draft_grey, read_info
    from samepix.errors import SamepixError
    from samepix.limits import DEFAULT_LIMITS
    from samepix.sources import Blob

    blob = Blob(data=data, name="fuzz")
    calls: tuple[Callable[..., object], ...] = (read_info, draft_grey, decode_blob)
    for call in calls:
        try:
            call(blob, limits=limits or DEFAULT_LIMITS)
        except SamepixError:
            pass
        except Exception:
            return f"{call.__name__}: {traceback.format_exc()}"
    return None


# ---------------------------------------------------------------------------------------------
# Worker and watchdog


_SELFTEST = (b"selftest:crash", b"selftest:hang", b"selftest:memory", b"selftest:foreign")


def _selftest_target(data: bytes, limits: Any = None) -> str | None:
    """What the watchdog must catch, on demand (``--selftest``): each class once."""
    if data == b"selftest:crash":
        os.abort()
    if data == b"selftest:hang":
        time.sleep(3600)
    if data == b"selftest:memory":
        hog = bytearray(3 * 2**30)
        hog[::4096] = b"x" * len(hog[::4096])
        time.sleep(3600)
    if data == b"selftest:foreign":
        return "selftest: a foreign exception"
    return target(data, limits)


def _worker(
    conn: Any,
    current: str,
    seed: int,
    start: int,
    runs: int,
    selftest: bool = False,
    limits: Any = None,
) -> None:
    """Run inputs ``start`` … ``runs`` − 1; each is written to ``current`` before it runs."""
    import logging

    logging.getLogger("samepix").setLevel(logging.CRITICAL)
    corpus = list(seeds().values())
    for i in range(start, runs):
        rng = random.Random(seed * 1_000_003 + i)  # input i is the same in every run
        data = mutate(rng.choice(corpus), rng, corpus)
        if selftest and i < len(_SELFTEST):
            data = _SELFTEST[i]
        with open(current, "wb") as f:
            f.write(data)
        conn.send(("start", i))
        failure = _selftest_target(data, limits) if selftest else target(data, limits)
        conn.send(("done", i, failure, data if failure is not None else b""))
    conn.send(("end", runs))


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _save(out: Path, kind: str, data: bytes, note: str) -> Path:
    digest = hashlib.sha1(data).hexdigest()[:16]
    folder = out / kind
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}.bin"
    path.write_bytes(data)
    (folder / f"{digest}.txt").write_text(note)
    return path


def fuzz(
    runs: int,
    seed: int,
    out: Path,
    timeout: float,
    max_rss: int,
    quiet: bool,
    selftest: bool = False,
    limits: Any = None,
) -> dict[str, int]:
    """Run ``runs`` inputs under the watchdog; counts of each finding class and of executions."""
    counts = {"executions": 0, "foreign": 0, "crash": 0, "hang": 0, "memory": 0}
    current = str(out / ".current-input")
    out.mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("spawn")
    next_input = 0
    started = time.monotonic()
    last_report = started
    while next_input < runs:
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=_worker, args=(child, current, seed, next_input, runs, selftest, limits)
        )
        proc.start()
        child.close()
        running: int | None = None
        since = time.monotonic()
        peak = 0
        while True:
            msg = None
            dead = False
            if parent.poll(0.05):
                try:
                    msg = parent.recv()
                except EOFError:  # the worker is gone: its input is the finding
                    dead = True
            now = time.monotonic()
            if msg is None:
                rss = _rss(proc.pid)
                peak = max(peak, rss)
                if running is not None and rss > max_rss:
                    kind, note = "memory", f"input {running}: RSS {rss / 2**20:.0f} MiB"
                elif running is not None and now - since > timeout:
                    kind, note = "hang", f"input {running}: no answer in {timeout:g} s"
                elif dead or not proc.is_alive():
                    proc.join(5)
                    kind, note = "crash", f"input {running}: worker exit {proc.exitcode}"
                else:
                    continue
                proc.kill()
                proc.join()
                data = Path(current).read_bytes() if running is not None else b""
                saved = _save(out, kind, data, note)
                counts[kind] += 1
                counts["executions"] += 1
                print(f"{kind}: {note} -> {saved}", file=sys.stderr)
                next_input = (running if running is not None else next_input) + 1
                break
            if msg[0] == "start":
                running, since = msg[1], now
            elif msg[0] == "done":
                counts["executions"] += 1
                if msg[2] is not None:
                    saved = _save(out, "foreign", msg[3], msg[2])
                    counts["foreign"] += 1
                    print(f"foreign exception: input {msg[1]} -> {saved}", file=sys.stderr)
                running = None
                next_input = msg[1] + 1
            elif msg[0] == "end":
                next_input = runs
                proc.join()
                break
            if not quiet and now - last_report > 30:
                rate = counts["executions"] / (now - started)
                print(f"{counts} ({rate:.0f}/s)", file=sys.stderr)
                last_report = now
    counts["seconds"] = int(time.monotonic() - started)
    return counts


def run_atheris(argv: list[str], limits: Any = None) -> None:
    """The same target under atheris (libFuzzer: coverage-guided, its own -timeout and
    -rss_limit_mb watchdog, crashing inputs saved as artifacts)."""
    import atheris

    with atheris.instrument_imports():
        import PIL.Image  # noqa: F401

        import samepix.decode  # noqa: F401
    corpus = list(seeds().values())

    def one(data: bytes) -> None:
        failure = target(data, limits)
        if failure is not None:
            raise RuntimeError(failure)

    corpus_dir = Path(argv[0]) if argv and not argv[0].startswith("-") else None
    if corpus_dir is not None:
        corpus_dir.mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(corpus):
            (corpus_dir / f"seed-{i}").write_bytes(data)
    atheris.Setup([sys.argv[0], *argv], one)
    atheris.Fuzz()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="inputs to run (10000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (input i is fixed)")
    parser.add_argument("--out", default=str(ROOT / "fuzz" / "findings"), help="findings folder")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds before a hang")
    parser.add_argument(
        "--max-rss", type=float, default=2.5, help="GiB of RSS that count as over the budget"
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        help="samepix's pixel limit for the decoders (default: samepix's, 200 MP); a lower one "
        "refuses large canvases from their header, as OSS-Fuzz's Pillow fuzzers do, so the time "
        "goes to parsers rather than to decoding legal but large images",
    )
    parser.add_argument(
        "--max-memory", help="samepix's memory budget for the decoders (default: samepix's, 2G)"
    )
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--atheris", action="store_true", help="run under atheris (libFuzzer)")
    parser.add_argument(
        "--selftest", action="store_true", help="inputs 0-3 crash, hang, hog memory, raise"
    )
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="libFuzzer options after --")
    args = parser.parse_args()
    from samepix.limits import DEFAULT_LIMITS, parse_size

    limits = dataclasses.replace(
        DEFAULT_LIMITS,
        max_pixels=args.max_pixels or DEFAULT_LIMITS.max_pixels,
        max_memory=parse_size(args.max_memory) if args.max_memory else DEFAULT_LIMITS.max_memory,
    )
    if args.atheris:
        run_atheris([a for a in args.rest if a != "--"], limits)
        return
    max_rss = int(args.max_rss * 2**30)
    counts = fuzz(
        args.runs,
        args.seed,
        Path(args.out),
        args.timeout,
        max_rss,
        args.quiet,
        args.selftest,
        limits,
    )
    print(" ".join(f"{k}={v}" for k, v in counts.items()))
    sys.exit(1 if any(counts[k] for k in ("foreign", "crash", "hang", "memory")) else 0)


if __name__ == "__main__":
    main()

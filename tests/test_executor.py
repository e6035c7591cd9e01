"""samepix.executor: shard tasks in this process or in local worker processes, and the life of
those processes: they end with the samepix process that started them, however it ends."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from samepix.errors import SamepixError
from samepix.executor import LocalExecutor, close_in_children

ROOT = Path(__file__).resolve().parents[1]
# Pictures in the slow folder: enough that a build is still decoding when it is killed (16
# were, until PNGs like these were decoded by libspng: the build then ended in 0.2 s); each of
# its own shade (distinct bytes: no file is recognised as a copy of another).
COUNT = 64


def square(n: int) -> int:
    return n * n


def die_on_three(n: int) -> int:
    if n == 3:
        os._exit(9)  # a worker process that dies (a decoder crash, the OOM killer)
    return n


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "two-processes"])
def test_map_unordered_returns_every_result_once(workers: int) -> None:
    results = list(LocalExecutor(workers).map_unordered(square, range(40)))
    assert sorted(results) == [n * n for n in range(40)]


def test_shards_are_pulled_from_the_stream_a_window_at_a_time() -> None:
    pulled = 0

    def stream() -> Iterator[int]:
        nonlocal pulled
        for n in range(10_000):
            pulled += 1
            yield n

    results = LocalExecutor(2).map_unordered(square, stream())
    next(results)
    assert pulled <= 4 * 2 + 1  # the window (4 per worker), not the whole stream
    results.close()


def slow_for_small(n: int) -> int:
    time.sleep(0.05 if n < 3 else 0.0)  # the first shards finish last
    return n * n


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "two-processes"])
def test_map_ordered_keeps_the_order_of_the_shards(workers: int) -> None:
    results = list(LocalExecutor(workers).map_ordered(slow_for_small, range(40)))
    assert results == [n * n for n in range(40)]


def test_map_ordered_pulls_a_window_past_the_oldest_shard() -> None:
    pulled = 0

    def stream() -> Iterator[int]:
        nonlocal pulled
        for n in range(10_000):
            pulled += 1
            yield n

    results = LocalExecutor(2).map_ordered(square, stream())
    assert next(results) == 0
    assert pulled <= 4 * 2 + 1  # the window (4 per worker) and the one submitted for it
    results.close()


def test_a_dead_worker_is_one_clear_error() -> None:
    with pytest.raises(SamepixError, match=r"worker process died.*run again to resume"):
        list(LocalExecutor(2).map_unordered(die_on_three, range(8)))


def test_a_forked_child_does_not_keep_a_registered_descriptor(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT)
    close_in_children(fd)
    try:
        pid = os.fork()
        if pid == 0:  # the child: the descriptor must be closed already
            try:
                os.fstat(fd)
            except OSError:
                os._exit(0)
            os._exit(1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        close_in_children(fd, on=False)
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# Killing samepix mid-build (issue 10, item 1): no worker survives it


@pytest.fixture(scope="module")
def slow_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pictures that are small on disk but slow to decode (16 MP each, one shade of grey)."""
    root = tmp_path_factory.mktemp("slow")
    for n in range(COUNT):
        Image.new("L", (4000, 4000), n * 4).save(root / f"big{n:02}.png", compress_level=1)
    return root


def _fresh_copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for item in src.iterdir():
        os.link(item, dst / item.name)
    return dst


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _group(pgid: int) -> list[int]:
    """Processes (zombies excluded) whose process group is ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def _start(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "samepix", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,  # its own process group: every process it starts is findable
    )


def _kill_mid_build(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Wait until its worker processes decode, send ``sig``, and check that nothing is left."""
    deadline = time.monotonic() + 60
    while len(_children(proc.pid)) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no worker processes started"
        time.sleep(0.02)
    time.sleep(0.3)  # mid-decode
    workers = _children(proc.pid)
    os.kill(proc.pid, sig)

    # A caller reading samepix's output sees end of file (no worker holds the pipes).
    eof = threading.Event()

    def read_all() -> None:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.read()
        proc.stderr.read()
        eof.set()

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    proc.wait(timeout=30)
    assert eof.wait(10), "stdout/stderr still open after samepix ended: a worker holds them"
    deadline = time.monotonic() + 10
    while _group(proc.pid):
        assert time.monotonic() < deadline, f"left behind: {_group(proc.pid)} (workers {workers})"
        time.sleep(0.05)
    if sig == signal.SIGTERM:
        assert proc.returncode == 143  # handled: a clean stop, like Ctrl-C


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_index_killed_mid_build_leaves_no_process(
    slow_folder: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    folder = _fresh_copy(slow_folder, tmp_path / "pics")
    proc = _start("index", str(folder), "--workers", "2")
    _kill_mid_build(proc, sig)
    with sqlite3.connect(folder / ".samepix" / "index.db") as conn:
        kept = conn.execute("SELECT count(*) FROM files").fetchone()[0]
    # Resume: the files committed before the kill are not decoded again; the rest are, once.
    again = _start("index", str(folder), "--workers", "2", "--json")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    summary = json.loads(out)
    assert summary["total"] == COUNT
    assert summary["added"] == summary["decoded"] == COUNT - kept


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_sync_killed_while_indexing_leaves_no_stale_lock(
    slow_folder: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    folder = _fresh_copy(slow_folder, tmp_path / "pics")
    urls = tmp_path / "urls.txt"
    urls.write_text("")  # the index build before any download is what is killed
    proc = _start("sync", str(urls), str(folder), "--workers", "2")
    _kill_mid_build(proc, sig)
    # The next sync is not refused by a lock that a dead process (or its workers) holds.
    again = _start("sync", str(urls), str(folder), "--workers", "2")
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err.decode()
    assert b"another samepix sync is running" not in err


def _python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


def test_dask_without_the_extra_says_how_to_install_it(tmp_path: Path) -> None:
    proc = _python(
        "import sys; sys.modules['distributed'] = None\n"  # as if it were not installed
        "from samepix.cli import main\n"
        f"sys.exit(main(['index', {str(tmp_path)!r}, '--dask', 'local:2']))"
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: --dask local:2: Dask is not installed (install it with: "
        "pip install 'samepix[dask]')"
    )


def test_help_imports_neither_dask_nor_fsspec() -> None:
    proc = _python(
        "import sys\n"
        "from samepix.cli import main\n"
        "try:\n    main(['index', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('distributed', 'dask', 'fsspec', 's3fs') if m in sys.modules]\n"
        "print(heavy, file=sys.stderr)"
    )
    assert proc.stderr.strip() == "[]"
    assert "--dask ADDRESS" in proc.stdout

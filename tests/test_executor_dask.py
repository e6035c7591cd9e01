"""The Dask executor on a real ``dask.distributed.LocalCluster`` of worker processes: the same
index as the local executor, a worker killed mid-job survived, and bad addresses refused."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from samepix.executor import DaskExecutor
from samepix.index import Index, update_index

from .helpers import encode, run_cli

distributed = pytest.importorskip("distributed", reason="samepix[dask] is not installed")
pytestmark = pytest.mark.dask

ROOT = Path(__file__).resolve().parents[1]


def _pictures(root: Path, count: int, side: int = 64) -> Path:
    import numpy as np

    root.mkdir()
    rng = np.random.default_rng(7)
    for n in range(count):
        pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        (root / f"p{n:03}.png").write_bytes(encode(pixels, "PNG"))
    (root / "broken.jpg").write_bytes(b"not a picture")
    return root


def _rows(db: Path) -> list[tuple[Any, ...]]:
    with Index(db.parent.parent, db, create=False) as index:
        return [
            (e.path, e.sha256, e.hashes.phash.to_signed64(), e.descriptor.thumb)
            for e in index.entries()
        ]


def test_dask_index_equals_the_local_index(cluster: Any, tmp_path: Path) -> None:
    folder = _pictures(tmp_path / "pics", 40)
    with Index(folder) as index:
        local = update_index(index, workers=2)
    local_rows = _rows(folder / ".samepix" / "index.db")
    (folder / ".samepix" / "index.db").unlink()

    executor = DaskExecutor(cluster.scheduler_address)
    try:
        assert executor.slots == 2
        with Index(folder) as index:
            remote = update_index(index, executor=executor)
    finally:
        executor.close()
    assert remote.added == local.added == 40
    assert [u.path for u in remote.unreadable] == ["broken.jpg"]
    assert _rows(folder / ".samepix" / "index.db") == local_rows


def test_a_worker_killed_mid_job_is_survived(cluster: Any, tmp_path: Path) -> None:
    root = tmp_path / "slow"
    root.mkdir()
    for n in range(12):  # slow to decode, so that the kill lands mid-task
        Image.new("L", (4000, 4000), n * 20).save(root / f"big{n:02}.png", compress_level=1)
    executor = DaskExecutor(cluster.scheduler_address)
    pids: dict[str, int] = executor.client.run(os.getpid)
    victim = sorted(pids.values())[0]
    killed = threading.Event()

    def kill_when_busy() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            processing = executor.client.processing()
            if any(processing.values()):
                time.sleep(0.5)  # mid-task
                os.kill(victim, 9)
                killed.set()
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_when_busy, daemon=True)
    killer.start()
    try:
        with Index(root) as index:
            summary = update_index(index, executor=executor)
    finally:
        killer.join()
        executor.close()
    assert killed.is_set()
    # Everything described once: every file has its row, none twice, none lost.
    assert summary.added == summary.decoded == 12
    assert summary.unreadable == ()
    rows = _rows(root / ".samepix" / "index.db")
    assert sorted(r[0] for r in rows) == [f"big{n:02}.png" for n in range(12)]


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, text=True, timeout=timeout)


def test_cli_index_on_a_local_dask_cluster(tmp_path: Path) -> None:
    folder = _pictures(tmp_path / "pics", 12)
    proc = _cli("index", str(folder), "--dask", "local:2", "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    summary = json.loads(proc.stdout)
    assert (summary["added"], summary["total"]) == (12, 12)


_FORK_SERVER_PROBE = """
import json, os, sys
import psutil
from samepix.executor import DaskExecutor
from samepix.index import Index, update_index

def workers(executor):
    parents = set(executor.client.run(os.getppid).values())
    return {
        "forked": all("forkserver" in " ".join(psutil.Process(p).cmdline()) for p in parents),
        "by_this_process": parents == {os.getpid()},
        "cv2": sorted(set(executor.client.run(lambda: "cv2" in sys.modules).values())),
        "env": sorted(set(executor.client.run(lambda: os.environ.get("SAMEPIX_PROBE")).values())),
    }

out = {}
os.environ["SAMEPIX_PROBE"] = "first"
executor = DaskExecutor("local:2")
out["first"] = workers(executor)
with Index(sys.argv[1]) as index:
    out["indexed"] = update_index(index, executor=executor).added
executor.close()
os.environ["SAMEPIX_PROBE"] = "second"  # a fork server would still give the first value
executor = DaskExecutor("local:2")
out["second"] = workers(executor)
executor.close()
print(json.dumps(out))
"""


def test_a_local_cluster_forks_its_workers_from_a_fork_server(tmp_path: Path) -> None:
    """A process's first `local:N` cluster starts its workers from a fork server (half the
    start of spawning each): never forked from the coordinator, which has threads, but from a
    process that never loaded OpenCV (a fork of a process whose OpenCV pool ran hangs in the
    child); they index. A later cluster in the same process is spawned, so its workers see
    the environment as it is then (a fork server keeps the one it started with)."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork server on this platform")
    root = _pictures(tmp_path / "pics", 6)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", _FORK_SERVER_PROBE, str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["first"] == {"forked": True, "by_this_process": False, "cv2": [False],
                            "env": ["first"]}  # fmt: skip
    assert out["indexed"] == 6
    assert out["second"]["by_this_process"] is True  # spawned, as Dask does by default
    assert out["second"]["env"] == ["second"]


def test_cli_index_on_a_running_scheduler(cluster: Any, tmp_path: Path) -> None:
    folder = _pictures(tmp_path / "pics", 6)
    proc = _cli("index", str(folder), "--dask", cluster.scheduler_address, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["added"] == 6


def test_unreachable_scheduler_is_one_line_before_any_work(tmp_path: Path) -> None:
    folder = _pictures(tmp_path / "pics", 3)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    proc = _cli("index", str(folder), "--dask", address)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: --dask {address}: cannot reach the Dask scheduler")
    assert not (folder / ".samepix").exists()  # nothing was done


@pytest.mark.parametrize("spec", ["local:0", "local:x"], ids=["zero", "not-a-number"])
def test_bad_local_cluster_size(spec: str, tmp_path: Path) -> None:
    proc = _cli("index", str(_pictures(tmp_path / "pics", 1)), "--dask", spec)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip() == f"error: --dask {spec}: expected local:N with N ≥ 1 worker processes"
    )


def test_coordinator_killed_leaves_no_local_cluster_behind(tmp_path: Path) -> None:
    """`--dask local:N` starts worker processes; SIGKILL of samepix must not leave them."""
    import signal

    from .test_executor import _group

    root = tmp_path / "slow"
    root.mkdir()
    for n in range(12):
        Image.new("L", (4000, 4000), n * 20).save(root / f"big{n:02}.png", compress_level=1)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "samepix", "index", str(root), "--dask", "local:2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    db = root / ".samepix" / "index.db"
    deadline = time.monotonic() + 120
    while not (db.exists() and len(_group(proc.pid)) >= 3):  # samepix + 2 workers
        assert proc.poll() is None
        assert time.monotonic() < deadline, "the cluster did not start"
        time.sleep(0.1)
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 60
    while _group(proc.pid):
        assert time.monotonic() < deadline, f"left behind: {_group(proc.pid)}"
        time.sleep(0.2)
    # And the next run finishes the index.
    again = _cli("index", str(root), "--dask", "local:2", "--json", timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["total"] == 12

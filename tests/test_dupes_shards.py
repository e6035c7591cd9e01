"""``dupes`` with an executor (samepix.dupes_shards): candidate pairs compared on worker
processes — local ones, and a real ``dask.distributed.LocalCluster`` — give the very groups,
order and comparisons of a plain run; the coordinator only joins."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from samepix import Library
from samepix.executor import Executor, LocalExecutor

from .test_library import dupes_folder  # a fixture, used by name

__all__ = ["dupes_folder"]


def _groups(
    folder: Path, executor: Executor | None, workers: int = 1
) -> list[list[tuple[str, Any, Any]]]:
    with Library(folder, workers=workers, executor=executor) as library:
        groups = library.duplicates()
    return [
        [
            (
                c.path.relative_to(folder).as_posix(),
                None if c.comparison is None else c.comparison.verdict.value,
                None if c.comparison is None else c.comparison.reasons,
            )
            for c in g.copies
        ]
        for g in groups
    ]


@pytest.mark.parametrize(
    "given", ["workers=2", "LocalExecutor(2)"], ids=["default-executor", "given-executor"]
)
def test_dupes_on_local_worker_processes_groups_as_a_plain_run(
    dupes_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    given: str,
) -> None:
    module = importlib.import_module("samepix.compare")
    here: list[str] = []  # the first file of each comparison made in this process
    real = module.compare

    def counted(a: Any, b: Any, **kw: Any) -> Any:
        here.append(Path(a.name).name)  # in this process only: the workers have their own copy
        return real(a, b, **kw)

    monkeypatch.setattr(module, "compare", counted)
    plain = _groups(dupes_folder, None)
    assert [len(g) for g in plain] == [5, 2]
    alone = len(here)
    here.clear()
    if given == "workers=2":  # no executor given: the local one's worker processes
        assert _groups(dupes_folder, None, workers=2) == plain
    else:
        assert _groups(dupes_folder, LocalExecutor(2)) == plain
    # The candidate pairs were compared by the workers; this process compared at most the
    # report's few (best copy, copy) pairs that joining had not made (one shard: no pool).
    assert len(here) < alone
    assert len(here) <= sum(len(g) - 1 for g in plain)
    assert set(here) <= {"one.png", "two.jpg"}, here  # the best copies


@pytest.mark.dask
def _images_kept() -> int:
    """How many decoded images the process it runs in keeps for dupes' pairs."""
    from samepix import dupes_shards

    return len(dupes_shards._recent._kept)


def test_dupes_on_dask_groups_as_a_plain_run(
    cluster: Any,
    dupes_folder: Path,
    tmp_path: Path,
) -> None:
    import shutil

    from samepix.executor import DaskExecutor

    other = tmp_path / "other"
    shutil.copytree(dupes_folder, other)  # the Dask run builds its own index there
    plain = _groups(dupes_folder, None)
    executor = DaskExecutor(cluster.scheduler_address)
    try:
        assert _groups(other, executor) == plain
        # The workers outlive the job: each dropped the images it decoded for it.
        kept = executor.client.run(_images_kept)
        assert kept and set(kept.values()) == {0}
    finally:
        executor.close()


def test_a_best_copys_pairs_travel_in_one_shard(dupes_folder: Path) -> None:
    """Shards are cut between two best copies' runs of pairs once long enough, never inside a
    run shorter than the cap: the run's best copy is decoded once for all its pairs."""
    from samepix.dupes_shards import _MAX_PAIRS, SHARD_PAIRS, PairShard, ShardFile
    from samepix.limits import DEFAULT_LIMITS
    from samepix.policy import DEFAULT_POLICY

    seen: list[PairShard] = []

    class Recording(LocalExecutor):
        def map_ordered(self, fn: Any, shards: Any) -> Any:
            def kept(stream: Any) -> Any:
                for shard in stream:
                    seen.append(shard)
                    yield PairShard((), (), shard.policy, shard.limits, shard.max_side)

            return super().map_ordered(fn, kept(shards))

    from samepix.dupes_shards import confirm_pairs
    from samepix.hashes import hash_image

    stub_hashes = hash_image(Image.fromarray(np.zeros((8, 8), np.uint8)))
    runs = {0: 5, 1: SHARD_PAIRS + 3, 2: 2, 3: _MAX_PAIRS + 5}  # best copy -> its pairs
    pairs = [(i, 100 * (i + 1) + k) for i, n in runs.items() for k in range(n)]
    list(
        confirm_pairs(
            Recording(1),
            pairs,
            lambda k: ShardFile(dupes_folder / f"{k}.png", "", stub_hashes),
            DEFAULT_POLICY,
            DEFAULT_LIMITS,
            joined=lambda i, j: j == 101,  # already joined: never sent
        )
    )
    cut = [[p for p in shard.pairs] for shard in seen]
    assert [p for shard in cut for p in shard] == [p for p in pairs if p != (0, 101)]
    assert [len(shard) for shard in cut] == [4 + SHARD_PAIRS + 3, 2 + _MAX_PAIRS - 2, 7]
    assert all({k for p in shard.pairs for k in p} == {k for k, _ in shard.files} for shard in seen)


def test_a_file_decoded_for_a_shard_uses_the_index_hashes_only_for_the_indexed_bytes(
    tmp_path: Path,
) -> None:
    import hashlib

    from samepix.dupes_shards import ShardFile, _RecentImages
    from samepix.hashes import hash_image
    from samepix.limits import DEFAULT_LIMITS

    from .helpers import encode

    path = tmp_path / "a.png"
    path.write_bytes(encode(np.tile(np.arange(64, dtype=np.uint8), (48, 1)), "PNG"))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    # Not this picture's hashes: they tell where the image's hashes came from.
    stored = hash_image(Image.fromarray(np.zeros((8, 8), np.uint8)))
    recent = _RecentImages()
    assert recent.get(ShardFile(path, digest, stored), DEFAULT_LIMITS).hashes is stored
    # Bytes other than the indexed ones (the index is stale): hashed from the pixels.
    recent.clear()
    other = recent.get(ShardFile(path, "0" * 64, stored), DEFAULT_LIMITS)
    assert other.hashes != stored
    # The same file and digest again: the image kept, not decoded again.
    again = recent.get(ShardFile(path, "0" * 64, stored), DEFAULT_LIMITS)
    assert again is other


def test_metrics_in_a_worker_process_start_no_helper_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from samepix import metrics

    started: list[str] = []
    real = metrics.threading.Thread

    def counting(*args: Any, **kw: Any) -> Any:
        started.append(kw.get("name", ""))
        return real(*args, **kw)

    monkeypatch.setattr(metrics, "_cpu_count", lambda: 4)
    monkeypatch.setattr(metrics.threading, "Thread", counting)
    a = np.random.default_rng(1).integers(0, 255, (600, 800, 3), dtype=np.uint8)
    with metrics.thread_cap(1):
        metrics.ssim_channels(a, a)
    assert started == []
    metrics.ssim_channels(a, a)
    assert "samepix-ssim" in started


def test_dupes_on_forked_workers_after_opencv_ran_here_does_not_hang(dupes_folder: Path) -> None:
    """A process whose OpenCV thread pool is running (a comparison made here first) forks the
    dupes workers: a worker that then reconfigured OpenCV's threads (cv2.setNumThreads) waited
    forever on the pool threads the fork did not copy; the suite hung there."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import numpy as np, threading
        from samepix import Library, compare
        from samepix.executor import LocalExecutor
        x = np.random.default_rng(1).integers(0, 255, (700, 900, 3), dtype=np.uint8)
        compare(x, x ^ 1)  # OpenCV's pool is running in this process now
        assert threading.active_count() == 1  # so the pool forks its workers
        with Library({str(dupes_folder)!r}, executor=LocalExecutor(2)) as library:
            print(len(library.duplicates()))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"

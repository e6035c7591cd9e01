"""``dupes``' pair confirmation as shards an executor runs.

:meth:`samepix.library.Library.duplicates` confirms each candidate pair with a comparison
(decode both files, the verdict ladder): most of its time. The pairs are cut into shards of
consecutive pairs, in the order the coordinator walks them, and an executor runs the shards: the
local one's worker processes by default (in this process with one worker), or Dask workers that
see the same files (``--dask``). The coordinator takes the comparisons back in order and joins
the groups exactly as it would alone, so the groups are the same whatever runs the shards.

A shard keeps a file's pairs together where it can (pairs come best copy first, so a best copy
and its candidates travel as one shard), and each worker process keeps the images it decoded
recently (:class:`_RecentImages`): a file is decoded about once per worker, not once per pair.
The hashes the index already holds for a file are used instead of hashing its pixels again
(when its bytes are still the indexed ones).

A pair already joined through earlier matches when its shard is cut is not sent. One joined
only while its shard was in flight is compared anyway (and its comparison unused): a window of
shards ahead of the coordinator costs some comparisons the coordinator alone would skip, run in
parallel, for the same result.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import SamepixError

if TYPE_CHECKING:
    from pathlib import Path

    from .compare import Comparison, PreparedImage
    from .executor import Executor
    from .hashes import HashSet
    from .limits import Limits
    from .policy import Policy
    from .storage import ObjectPath

__all__ = ["PairShard", "ShardFile", "compare_shard", "confirm_pairs"]

#: Pairs per shard: a comparison costs a few to tens of milliseconds, so several pairs pay for
#: a task; few, so that the window of shards ahead holds few pairs that earlier matches would
#: join. A best copy's run of pairs may make a shard up to ``_MAX_PAIRS`` long.
SHARD_PAIRS = 8
_MAX_PAIRS = 4 * SHARD_PAIRS


@dataclass(frozen=True)
class ShardFile:
    """A file of a shard's pairs: where it is, and what the index knows of its content."""

    path: Path | ObjectPath
    sha256: str
    hashes: HashSet


@dataclass(frozen=True)
class PairShard:
    """Consecutive candidate pairs (positions ``i, j``) and the files they name."""

    pairs: tuple[tuple[int, int], ...]
    files: tuple[tuple[int, ShardFile], ...]
    policy: Policy
    limits: Limits
    max_side: int | None


def compare_shard(shard: PairShard) -> list[tuple[int, int, Comparison | None]]:
    """Compare each pair of a shard (None where a file cannot be read or decoded); a plain,
    picklable function that a local process or a Dask worker runs. Writes nothing."""
    from . import metrics
    from .compare import compare

    files = dict(shard.files)
    out: list[tuple[int, int, Comparison | None]] = []
    # A worker process is one of several sharing the cores: its SSIM sums use one thread.
    # (OpenCV's own thread count is left alone: in a worker forked from a process whose OpenCV
    # pool was running, cv2.setNumThreads waits forever for pool threads the fork did not copy.)
    with metrics.thread_cap(1 if _in_worker_process() else None):
        for i, j in shard.pairs:
            result: Comparison | None
            try:
                a = _recent.get(files[i], shard.limits)
                b = _recent.get(files[j], shard.limits)
                result = compare(
                    a, b, policy=shard.policy, limits=shard.limits, max_side=shard.max_side
                )
            except SamepixError:
                result = None
            out.append((i, j, result))
    return out


def confirm_pairs(
    executor: Executor,
    pairs: Sequence[tuple[int, int]],
    file_of: Callable[[int], ShardFile],
    policy: Policy,
    limits: Limits,
    joined: Callable[[int, int], bool],
    *,
    max_side: int | None = None,
) -> Iterator[tuple[int, int, Comparison | None]]:
    """The comparison of each of ``pairs`` not ``joined`` yet when its shard is cut, in their
    order, made on ``executor``'s workers (a bounded window of shards ahead of the one the
    caller waits for; ``joined`` is asked as shards are cut, in the caller's thread)."""

    def shard(chunk: list[tuple[int, int]]) -> PairShard:
        named = {k for pair in chunk for k in pair}
        files = tuple((k, file_of(k)) for k in sorted(named))
        return PairShard(tuple(chunk), files, policy, limits, max_side)

    def shards() -> Iterator[PairShard]:
        chunk: list[tuple[int, int]] = []
        for pair in pairs:
            if joined(*pair):
                continue
            # Cut between two best copies' runs of pairs once the shard is long enough.
            if chunk and (
                len(chunk) >= _MAX_PAIRS or (len(chunk) >= SHARD_PAIRS and pair[0] != chunk[-1][0])
            ):
                yield shard(chunk)
                chunk = []
            chunk.append(pair)
        if chunk:
            yield shard(chunk)

    try:
        for results in executor.map_ordered(compare_shard, shards()):
            yield from results
    finally:
        _recent.clear()  # run in this process (one worker): nothing kept past the run
        executor.forget(_forget_recent)  # nor in workers that outlive the run (Dask's)


def _forget_recent() -> None:
    """Drop the images a worker process kept for this run's pairs."""
    _recent.clear()


def _in_worker_process() -> bool:
    """Whether this process was started by another (a local pool's or a Dask nanny's worker)."""
    return multiprocessing.parent_process() is not None


class _RecentImages:
    """Images this process decoded for recent pairs, least recently used dropped beyond
    ``_DECODED_BYTES`` of pixels (two always kept: a pair). Keyed by path and the indexed
    SHA-256, so an index update that saw new bytes never meets an old decode."""

    def __init__(self) -> None:
        self._kept: OrderedDict[tuple[str, str], tuple[PreparedImage, int]] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()  # a Dask worker may run shards in several threads

    def get(self, file: ShardFile, limits: Limits) -> PreparedImage:
        from .compare import load

        key = (str(file.path), file.sha256)
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
                return kept[0]
        image = load(file.path, limits=limits, lazy=True)
        if image.sha256 == file.sha256:  # the indexed bytes: their hashes are the indexed ones
            image.adopt_hashes(file.hashes)
        decoded = image.decoded  # decode errors surface here, to the caller
        size = decoded.pixels.nbytes + (0 if decoded.alpha is None else decoded.alpha.nbytes)
        size += 0 if image.blob is None else len(image.blob.data)
        with self._lock:
            if key not in self._kept:
                self._kept[key] = (image, size)
                self._total += size
            while self._total > _DECODED_BYTES and len(self._kept) > 2:
                _, (_, dropped) = self._kept.popitem(last=False)
                self._total -= dropped
        return image

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._total = 0


# Decoded pixels and file bytes each process keeps (see _RecentImages): ~45 photos of 0.7 MP,
# 2 of 12 MP. Pairs come best copy first, so most reuse is of an image just used.
_DECODED_BYTES = 96 << 20

_recent = _RecentImages()

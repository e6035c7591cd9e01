"""``dupes``' pair confirmation as shards an executor runs.

:meth:`samepix.library.Library.duplicates` confirms each candidate pair with a full comparison
(decode both files, the verdict ladder): most of its time. With an executor (``--dask``, or
``Library(..., executor=...)``) the pairs are cut into shards of consecutive pairs, in the order
the coordinator walks them; a worker — a local process or a Dask worker that sees the same
files — decodes and compares a shard's pairs and sends the comparisons back. The coordinator
takes them in order and joins the groups exactly as it does alone, so the groups are the same.

A pair already joined through earlier matches when its shard is cut is not sent. One joined
only while its shard was in flight is compared anyway (and its comparison unused): a window of
shards ahead of the coordinator costs some comparisons the coordinator alone would skip, run in
parallel, for the same result.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import SamepixError

if TYPE_CHECKING:
    from pathlib import Path

    from .compare import Comparison
    from .executor import Executor
    from .limits import Limits
    from .policy import Policy

__all__ = ["PairShard", "compare_shard", "confirm_pairs"]

#: Pairs per shard: a comparison costs tens of milliseconds, so a few pairs pay for a task;
#: few, so that the window of shards ahead holds few pairs that earlier matches would join.
SHARD_PAIRS = 4


@dataclass(frozen=True)
class PairShard:
    """Consecutive candidate pairs: (i, j, path of i, path of j) each."""

    pairs: tuple[tuple[int, int, Path, Path], ...]
    policy: Policy
    limits: Limits


def compare_shard(shard: PairShard) -> list[tuple[int, int, Comparison | None]]:
    """Compare each pair of a shard (None where a file cannot be read or decoded); a plain,
    picklable function that a local process or a Dask worker runs. Writes nothing."""
    from .compare import PreparedImage, compare, load

    out: list[tuple[int, int, Comparison | None]] = []
    loaded: dict[int, PreparedImage] = {}  # a file in several pairs of the shard: read once

    def image(k: int, path: Path) -> PreparedImage:
        if k not in loaded:
            loaded[k] = load(path, limits=shard.limits, lazy=True)
        return loaded[k]

    for i, j, path_i, path_j in shard.pairs:
        result: Comparison | None
        try:
            result = compare(
                image(i, path_i), image(j, path_j), policy=shard.policy, limits=shard.limits
            )
        except SamepixError:
            result = None
        out.append((i, j, result))
    return out


def confirm_pairs(
    executor: Executor,
    pairs: Sequence[tuple[int, int]],
    path_of: Callable[[int], Path],
    policy: Policy,
    limits: Limits,
    joined: Callable[[int, int], bool],
) -> Iterator[tuple[int, int, Comparison | None]]:
    """The comparison of each of ``pairs`` not ``joined`` yet when its shard is cut, in their
    order, made on ``executor``'s workers (a bounded window of shards ahead of the one the
    caller waits for; ``joined`` is asked as shards are cut, in the caller's thread)."""

    def shards() -> Iterator[PairShard]:
        stream = (pair for pair in pairs if not joined(*pair))
        while chunk := list(itertools.islice(stream, SHARD_PAIRS)):
            yield PairShard(tuple((i, j, path_of(i), path_of(j)) for i, j in chunk), policy, limits)

    for results in executor.map_ordered(compare_shard, shards()):
        yield from results

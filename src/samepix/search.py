"""Candidate search between all entries of an index: the pairs whose pHash or dHash is close.

``dupes`` needs every pair of entries whose pHash *or* dHash is within ``radius`` bits
(``Policy.candidate_hash_distance`` = 12 of 64). Two methods, chosen by their estimated cost:

- **exact**: every pair, blockwise (XOR and hardware popcount in numpy), n²/2 pair checks. Fast
  for small folders (10,000 entries: ~0.5 s) and the reference the other is measured against;
  about an hour at 1,000,000 entries.
- **sampled** (bit-sampling locality-sensitive hashing, Indyk & Motwani 1998): each of ``L``
  tables keys every hash by ``k`` of its 64 bits chosen at random; entries with equal keys (found
  by one sort) are candidates, checked with the exact distance. A pair that differs in ``d`` bits
  agrees on all ``k`` sampled bits with probability C(64-d, k) / C(64, k), whichever bits differ,
  so it is missed by every table with probability (1 - that)^L. ``k`` and ``L`` are chosen so
  that a pair at exactly ``radius`` bits is missed with probability at most ``max_miss`` (1e-4);
  closer pairs are missed far less often (a pair at 0 bits never). Nothing outside the radius is
  ever returned. Measured on 1,000,000 entries in ``benchmarks/bench_search.py``.

Why not a library: faiss's exact ``IndexBinaryFlat`` is a quadratic scan too (measured 2.5–4.3×
cheaper a pair than numpy, so ~15 CPU minutes at 1,000,000), and its multi-index hashing
(``IndexBinaryMultiHash``) is slower than a scan at this radius: 12 of 64 bits is a wide radius,
where exact sub-quadratic indexes degenerate (by pigeonhole, 4 bands of 16 bits must each be
searched at radius 3: ~4% of all pairs become candidates). See ``docs/benchmarks.md``.

Identical hashes are collapsed first, so a folder with thousands of copies of one picture does
not make every table's buckets huge; the pairs between them are still all returned.
"""

from __future__ import annotations

import itertools
import math
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np

__all__ = ["CandidatePairs", "SearchPlan", "close_pairs", "plan_search"]

#: Largest probability that a pair at exactly the radius is missed by the sampled search.
DEFAULT_MAX_MISS = 1e-4

Method = Literal["auto", "exact", "sampled"]
SearchProgress = Callable[[int, int], None]  # (done, total) steps

# Cost model (CPU seconds), measured on this project's 2-vCPU machine with numpy 2.4 by
# benchmarks/bench_search.py: an exact pair check of both hashes; a sampled table, per entry
# (mask, hash, in-place sort, bucket scan) and per random candidate (two gathers and a popcount;
# about 3x dearer once the column no longer fits in the CPU caches).
_EXACT_PAIR_S = 5.5e-9
_TABLE_ENTRY_S = 10.5e-9
_CANDIDATE_S = 25e-9
_CANDIDATE_UNCACHED_S = 70e-9
_CACHED_ENTRIES = 1 << 18
_TABLE_FIXED_S = 50e-6  # numpy call overheads per table
# The exact scan is kept wherever it is cheap (below about 20,000 entries: under a second) or
# not much dearer than the sampled search.
_EXACT_ALWAYS_S = 1.0
_SAMPLED_MARGIN = 0.5
# Exact scan block: at most this many pair checks at a time (16 MB of uint64 a hash).
_EXACT_BLOCK = 1 << 21
_MAX_TABLES = 20_000
# Sampled tables after which the search stops checking whether the exact scan would be cheaper
# (it checks after each of them, from the second).
_PROBE_TABLES = 16


@dataclass(frozen=True)
class SearchPlan:
    """How :func:`close_pairs` will search ``n`` entries, and what it expects that to cost.

    ``bits`` and ``tables`` are per hash (pHash and dHash each get ``tables`` tables);
    ``miss_at_radius`` is the probability that one pair at exactly the radius is missed
    (0 for the exact method).
    """

    method: Literal["exact", "sampled"]
    n: int
    radius: int
    bits: int = 0
    tables: int = 0
    miss_at_radius: float = 0.0
    estimated_s: float = 0.0


@dataclass(frozen=True, eq=False)
class CandidatePairs:
    """Pairs of positions ``first[k] < second[k]`` within the radius, closest first.

    ``distance`` is the smaller of the pHash and dHash distances. Iterating yields ``(i, j)``
    tuples of Python ints, converted a block at a time (no list of a million tuples).
    """

    first: np.ndarray  # int64
    second: np.ndarray  # int64
    distance: np.ndarray  # uint8
    plan: SearchPlan

    def __len__(self) -> int:
        return int(self.first.shape[0])

    def __iter__(self) -> Iterator[tuple[int, int]]:
        step = 65536
        for start in range(0, len(self), step):
            yield from zip(
                self.first[start : start + step].tolist(),
                self.second[start : start + step].tolist(),
                strict=True,
            )


def miss_probability(distance: int, bits: int, tables: int) -> float:
    """Probability that ``tables`` tables of ``bits`` sampled bits all miss a pair ``distance``
    bits apart (of 64)."""
    if distance <= 0:
        return 0.0
    if bits > 64 - distance:
        return 1.0
    hit = math.comb(64 - distance, bits) / math.comb(64, bits)
    return (1.0 - hit) ** tables


def _exact_cpu_s(n: int) -> float:
    return n * (n - 1) / 2 * _EXACT_PAIR_S


def plan_search(
    n: int, radius: int, *, method: Method = "auto", max_miss: float = DEFAULT_MAX_MISS
) -> SearchPlan:
    """The method, bits and tables :func:`close_pairs` uses for ``n`` entries.

    The sampled search's ``bits`` minimise the estimated time: more bits mean fewer random
    candidates per table but more tables for the same ``max_miss``.
    """
    if not 0 <= radius <= 64:
        raise ValueError(f"radius must be within [0, 64], got {radius}")
    if not 0.0 < max_miss < 1.0:
        raise ValueError(f"max_miss must be within (0, 1), got {max_miss}")
    pairs = n * (n - 1) / 2
    exact = SearchPlan("exact", n, radius, estimated_s=_exact_cpu_s(n))
    if method == "exact" or n < 2:
        return exact
    best: SearchPlan | None = None
    for bits in range(8, 64 - radius + 1):
        hit = math.comb(64 - radius, bits) / math.comb(64, bits)
        tables = 1 if hit >= 1.0 else math.ceil(math.log(max_miss) / math.log1p(-hit))
        if tables > _MAX_TABLES:
            continue
        candidate_s = _CANDIDATE_S if n <= _CACHED_ENTRIES else _CANDIDATE_UNCACHED_S
        per_table = _TABLE_FIXED_S + n * _TABLE_ENTRY_S + pairs * 2.0**-bits * candidate_s
        cost = 2 * tables * per_table
        if best is None or cost < best.estimated_s:
            best = SearchPlan(
                "sampled",
                n,
                radius,
                bits=bits,
                tables=tables,
                miss_at_radius=miss_probability(radius, bits, tables),
                estimated_s=cost,
            )
    if best is None:
        if method == "sampled":
            raise ValueError(f"radius {radius} is too wide for the sampled search")
        return exact
    if method == "sampled":
        return best
    if (
        exact.estimated_s <= _EXACT_ALWAYS_S
        or exact.estimated_s * _SAMPLED_MARGIN < best.estimated_s
    ):
        return exact
    return best


def close_pairs(
    phash: np.ndarray,
    dhash: np.ndarray,
    radius: int,
    *,
    method: Method = "auto",
    max_miss: float = DEFAULT_MAX_MISS,
    seed: int = 0,
    workers: int | None = None,
    progress: SearchProgress | None = None,
) -> CandidatePairs:
    """Pairs of positions whose pHash or dHash differ in at most ``radius`` of 64 bits.

    Parameters
    ----------
    phash, dhash : numpy.ndarray
        One 64-bit hash per entry (int64 or uint64, the same length).
    radius : int
        Largest Hamming distance of a pair (0–64).
    method : {"auto", "exact", "sampled"}
        "auto" keeps the exact scan where it takes about a second or less (below ~20,000 entries)
        and picks the sampled search where its estimated cost is well below the exact scan's.
    max_miss : float
        Sampled search: the largest probability that a pair at exactly ``radius`` is missed.
    seed : int
        Seed of the sampled bits: the same inputs give the same pairs.
    workers : int, optional
        Threads of the sampled search (numpy's sort and arithmetic release the GIL); default 2.
    progress : callable, optional
        ``progress(done, total)`` after each block or table.

    Returns
    -------
    CandidatePairs
        Sorted by distance, then first, then second position.
    """
    import numpy as np

    ph = np.ascontiguousarray(phash).view(np.uint64).ravel()
    dh = np.ascontiguousarray(dhash).view(np.uint64).ravel()
    if ph.shape != dh.shape:
        raise ValueError(f"phash and dhash differ in length ({ph.shape[0]} != {dh.shape[0]})")
    n = int(ph.shape[0])
    plan = plan_search(n, radius, method=method, max_miss=max_miss)
    if progress:
        progress(0, 2 * plan.tables if plan.method == "sampled" else n * (n - 1) // 2)
    found = None
    if plan.method == "sampled":
        # "auto" falls back to the exact scan when the sampled one proves dearer here.
        give_up = _exact_cpu_s(n) if method == "auto" else None
        found = _sampled(ph, dh, plan, seed, workers or 2, progress, give_up)
        if found is None:
            plan = SearchPlan("exact", n, radius, estimated_s=_exact_cpu_s(n))
            if progress:
                progress(0, n * (n - 1) // 2)
    first, second = found if found is not None else _exact(ph, dh, radius, progress)
    dist = np.minimum(_popcount(ph[first] ^ ph[second]), _popcount(dh[first] ^ dh[second]))
    order = np.lexsort((second, first, dist))
    return CandidatePairs(first[order], second[order], dist[order].astype(np.uint8), plan)


def _popcount(x: np.ndarray) -> np.ndarray:
    import numpy as np

    if hasattr(np, "bitwise_count"):  # numpy >= 2.0: a hardware popcount
        out: np.ndarray = np.bitwise_count(x)
        return out
    from .hashes import _popcount64_table  # pragma: no cover - numpy 1.x

    return _popcount64_table(x)  # pragma: no cover


def _exact(
    ph: np.ndarray, dh: np.ndarray, radius: int, progress: SearchProgress | None
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair i < j, a block of rows at a time."""
    import numpy as np

    n = int(ph.shape[0])
    empty = np.zeros(0, dtype=np.int64)
    if n < 2:
        return empty, empty
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    start = 0
    while start < n - 1:
        # Rows start..stop-1 against the columns after `start`: about _EXACT_BLOCK checks.
        rows = max(1, _EXACT_BLOCK // (n - start))
        stop = min(n - 1, start + rows)
        cols = slice(start + 1, n)
        dist = np.minimum(
            _popcount(ph[start:stop, None] ^ ph[None, cols]),
            _popcount(dh[start:stop, None] ^ dh[None, cols]),
        )
        r, c = np.nonzero(dist <= radius)
        i = r + start
        j = c + start + 1
        keep = j > i
        found_i.append(i[keep].astype(np.int64))
        found_j.append(j[keep].astype(np.int64))
        start = stop
        if progress:
            # Pairs checked so far, in millions, of the total: rows near the end are cheap.
            done = n * (n - 1) // 2 - (n - start) * (n - start - 1) // 2
            progress(done, n * (n - 1) // 2)
    return np.concatenate(found_i), np.concatenate(found_j)


def _sampled(
    ph: np.ndarray,
    dh: np.ndarray,
    plan: SearchPlan,
    seed: int,
    workers: int,
    progress: SearchProgress | None,
    give_up_s: float | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Bit-sampling LSH over the distinct (pHash, dHash) values, expanded back to positions.

    None when ``give_up_s`` is given and the first tables project more CPU seconds than that.
    """
    import numpy as np

    # Collapse identical hash pairs: `rep[k]` is the k-th distinct value's first position.
    order = np.lexsort((dh, ph))
    sp, sd = ph[order], dh[order]
    new = np.ones(order.shape[0], dtype=bool)
    new[1:] = (sp[1:] != sp[:-1]) | (sd[1:] != sd[:-1])
    group_of_sorted = np.cumsum(new) - 1  # distinct value of each sorted position
    uph, udh = sp[new], sd[new]
    del sp, sd
    m = int(uph.shape[0])
    if m >= 1 << 32:  # an entry's number shares a 64-bit sort key with 32 bits of its key
        raise ValueError(f"{m:,} distinct hashes: the sampled search takes at most 2^32 - 1")

    rng = np.random.default_rng(seed)
    masks = [
        [
            np.uint64(sum(1 << int(b) for b in rng.choice(64, plan.bits, replace=False)))
            for _ in range(plan.tables)
        ]
        for _ in (0, 1)
    ]
    jobs = [(col, t) for t in range(plan.tables) for col in (0, 1)]
    columns = (uph, udh)
    ids = np.arange(m, dtype=np.uint64)
    total = len(jobs)

    def run(job: tuple[int, int]) -> np.ndarray:
        col, t = job
        return _table(columns[col], masks[col][t], ids, plan.radius, m)

    found: list[np.ndarray] = []
    pending = 0
    done = 0
    started = time.process_time()  # all threads' CPU time: comparable under any machine load
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        queue = iter(jobs)
        # A bounded number of tables in flight: finished tables' pairs wait for this thread.
        running = deque(pool.submit(run, job) for job in itertools.islice(queue, 2 * workers))
        while running:
            keys = running.popleft().result()
            nxt = next(queue, None)
            if nxt is not None:
                running.append(pool.submit(run, nxt))
            found.append(keys)
            pending += int(keys.shape[0])
            done += 1
            if pending > 4 * m + 65536:  # close pairs recur in every table: merge now and then
                merged = np.unique(np.concatenate(found))
                found = [merged]
                pending = int(merged.shape[0])
            if progress:
                progress(done, total)
            if give_up_s is not None and 2 <= done <= _PROBE_TABLES:
                # Close pairs are checked again in every table they collide in: with many of
                # them (a folder of bursts and near copies) the tables can cost more than the
                # exact scan. Measured on the first tables, not guessed.
                projected = (time.process_time() - started) / done * total
                if projected > give_up_s:
                    for future in running:
                        future.cancel()
                    return None
    pair_keys = np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.uint64)
    ua = (pair_keys // np.uint64(m)).astype(np.int64)
    ub = (pair_keys % np.uint64(m)).astype(np.int64)
    return _expand(order, group_of_sorted, m, ua, ub)


def _table(column: np.ndarray, mask: np.uint64, ids: np.ndarray, radius: int, m: int) -> np.ndarray:
    """One table: pairs (as a * m + b, a < b) within ``radius`` on ``column`` among the entries
    whose sampled bits agree."""
    import numpy as np

    # The sampled bits, hashed to the top 32 bits (multiply-shift), the entry in the low 32: one
    # in-place sort of one uint64 array groups equal keys. Two different keys rarely share the 32
    # bits (2^-32 a pair): such a pair is one more candidate, checked like the others.
    packed = np.bitwise_and(column, mask)
    np.multiply(packed, np.uint64(0x9E3779B97F4A7C15), out=packed)
    np.bitwise_and(packed, np.uint64(0xFFFFFFFF00000000), out=packed)
    np.bitwise_or(packed, ids, out=packed)
    packed.sort()
    halves = packed.view(np.uint32)  # (entry, key) halves of each element, no copies
    low, high = (0, 1) if sys.byteorder == "little" else (1, 0)
    who, keys = halves[low::2], halves[high::2]
    out: list[np.ndarray] = []
    # Entries of a bucket are adjacent: lag 1, 2, ... pairs each entry with the ones after it,
    # for as long as any bucket is that long (most buckets hold one or two entries).
    active = np.flatnonzero(keys[1:] == keys[:-1])
    lag = 1
    while active.shape[0]:
        a = who[active].astype(np.int64)
        b = who[active + lag].astype(np.int64)
        close = _popcount(column[a] ^ column[b]) <= radius
        if close.any():
            lo = np.minimum(a[close], b[close]).astype(np.uint64)
            hi = np.maximum(a[close], b[close]).astype(np.uint64)
            out.append(lo * np.uint64(m) + hi)
        lag += 1
        active = active[active + lag < keys.shape[0]]
        active = active[keys[active] == keys[active + lag]]
    if not out:
        return np.zeros(0, dtype=np.uint64)
    return np.concatenate(out)


def _expand(
    order: np.ndarray, group_of_sorted: np.ndarray, m: int, ua: np.ndarray, ub: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of distinct values back to pairs of positions, with the pairs inside each value."""
    import numpy as np

    # Positions of each distinct value: order[starts[g] : starts[g] + sizes[g]].
    sizes = np.bincount(group_of_sorted, minlength=m).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    firsts: list[np.ndarray] = []
    seconds: list[np.ndarray] = []
    # Between two values: every position of one with every position of the other.
    if ua.shape[0]:
        single = (sizes[ua] == 1) & (sizes[ub] == 1)
        firsts.append(order[starts[ua[single]]])
        seconds.append(order[starts[ub[single]]])
        for a, b in zip(ua[~single].tolist(), ub[~single].tolist(), strict=True):
            pa = order[starts[a] : starts[a] + sizes[a]]
            pb = order[starts[b] : starts[b] + sizes[b]]
            firsts.append(np.repeat(pa, pb.shape[0]))
            seconds.append(np.tile(pb, pa.shape[0]))
    # Within a value: every pair of its positions.
    pairs_of_two = np.flatnonzero(sizes == 2)
    firsts.append(order[starts[pairs_of_two]])
    seconds.append(order[starts[pairs_of_two] + 1])
    for g in np.flatnonzero(sizes > 2).tolist():
        pos = order[starts[g] : starts[g] + sizes[g]]
        i, j = np.triu_indices(pos.shape[0], k=1)
        firsts.append(pos[i])
        seconds.append(pos[j])
    if not firsts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    f = np.concatenate(firsts).astype(np.int64)
    s = np.concatenate(seconds).astype(np.int64)
    return np.minimum(f, s), np.maximum(f, s)

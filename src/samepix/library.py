"""A folder of images as a library: is this picture already in it, and which copies does it hold?

:class:`Library` ties a folder, its :mod:`~samepix.index` and the :func:`~samepix.compare.compare`
ladder together:

- :meth:`Library.find`: identical bytes are looked up by SHA-256; other candidates are the entries
  whose pHash or dHash is within ``Policy.candidate_hash_distance`` bits of the query (numpy over
  an in-memory array: milliseconds for 1,000,000 entries). A candidate whose aspect ratio differs
  by more than ``Policy.max_aspect_change`` or whose thumbnail differs by more than
  ``Policy.candidate_thumb_distance`` cannot be ``same`` and is not decoded; every other one is
  confirmed with the full comparison, which gives the verdict and its reasons.
- :meth:`Library.duplicates`: the same search between all entries, with confirmed pairs joined
  into groups; each group lists its best copy first (largest resolution, then lossless, then
  higher JPEG quality, then larger file).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import SamepixError
from .index import (
    EntryCache,
    Index,
    IndexEntry,
    IndexSummary,
    Progress,
    ProgressCallback,
    as_folder,
    default_db_path,
    require_folder,
    update_index,
)
from .limits import DEFAULT_LIMITS, Limits
from .notsame import not_same_pairs, pair_key
from .policy import DEFAULT_POLICY, Policy
from .query import describe_query
from .results import DuplicateCopy, DuplicateGroup, FindResult, Match

if TYPE_CHECKING:
    import numpy as np

    from .compare import Comparison, ImageSource, PreparedImage
    from .executor import Executor
    from .fetch import Fetcher, Retry
    from .hashes import HashSet
    from .search import CandidatePairs
    from .sync import SyncLog, SyncSummary

__all__ = [
    "DuplicateCopy",
    "DuplicateGroup",
    "FindResult",
    "Library",
    "Match",
    "describe_query",
]


def quality_key(entry: IndexEntry) -> tuple[int, int, int, int, str]:
    """Sort key, best copy first: more pixels, lossless, higher JPEG quality, larger file, path.

    A lossy file whose quality is unknown (WebP) ranks below every JPEG of known quality; its file
    size still breaks ties between such copies.
    """
    d = entry.descriptor
    return (
        -d.width * d.height,
        0 if d.lossless else 1,
        -(d.jpeg_quality or 0),
        -entry.size,
        entry.path,
    )


# ---------------------------------------------------------------------------------------------


class Library:
    """A folder of images with its persistent index.

    Parameters
    ----------
    path : path
        The folder (searched recursively; its ``.samepix`` folder is never indexed).
    db : path, optional
        The index database; default ``PATH/.samepix/index.db``.
    policy : Policy
        Thresholds for candidates and verdicts.
    limits : Limits
        Safety limits for every file and download.
    workers : int, optional
        Processes that decode new images during an update (default: one per CPU).
    executor : Executor or str, optional
        Where that decoding runs instead (:mod:`samepix.executor`): an executor object, or a
        Dask scheduler address (``"tcp://host:8786"``, ``"local:4"``; needs ``samepix[dask]``).
        One given as a string is closed with the library.
    progress : callable, optional
        Receives :class:`~samepix.index.Progress` reports during updates.
    follow_links : bool
        Follow symbolic links that lead out of the folder (default: counted, not followed).

    Examples
    --------
    >>> with samepix.Library("photos") as lib:                          # doctest: +SKIP
    ...     result = lib.find("https://example.com/cat.jpg")
    ...     result.found, [str(m.path) for m in result.matches]
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        db: str | os.PathLike[str] | None = None,
        policy: Policy = DEFAULT_POLICY,
        limits: Limits = DEFAULT_LIMITS,
        workers: int | None = None,
        progress: ProgressCallback | None = None,
        executor: Executor | str | None = None,
        follow_links: bool = False,
    ) -> None:
        self.root = as_folder(path)  # a Path, or an ObjectPath for s3://... (samepix.storage)
        self.db_path = Path(db) if db is not None else default_db_path(self.root)
        self._explicit_db = db is not None
        self.policy = policy
        self.limits = limits
        self.workers = workers
        self.progress = progress
        self._executor_spec = executor
        self._executor: Executor | None = None if isinstance(executor, str) else executor
        self.follow_links = follow_links
        self._index: Index | None = None
        self._updated = False

    def __repr__(self) -> str:
        return f"<Library {str(self.root)!r}>"

    def with_db(self, db: str | os.PathLike[str]) -> Library:
        """The same folder and settings with its index at ``db`` (a dry run's scratch copy)."""
        return Library(
            self.root,
            db=db,
            policy=self.policy,
            limits=self.limits,
            workers=self.workers,
            progress=self.progress,
            executor=self.executor,
        )

    @property
    def index(self) -> Index:
        """The open index (opened, or created, on first use)."""
        if self._index is None:
            self._index = Index(self.root, self.db_path if self._explicit_db else None)
        return self._index

    @property
    def executor(self) -> Executor | None:
        """The executor updates run on (None: local worker processes, made per update)."""
        if self._executor is None and isinstance(self._executor_spec, str):
            from .executor import DaskExecutor

            self._executor = DaskExecutor(self._executor_spec)
        return self._executor

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None
        if isinstance(self._executor_spec, str) and self._executor is not None:
            self._executor.close()  # made here, so closed here
            self._executor = None

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- index -----------------------------------------------------------------------------

    def update(self) -> IndexSummary:
        """Bring the index up to date with the folder (see :func:`samepix.index.update_index`)."""
        summary = update_index(
            self.index,
            limits=self.limits,
            workers=self.workers,
            progress=self.progress,
            executor=self.executor,
            follow_links=self.follow_links,
            fill_crop_hashes=self.policy.crop_is_same,  # only a crop search reads them
        )
        self._updated = True
        return summary

    def rebuild(self) -> IndexSummary:
        """Delete the index database (even a corrupted one) and index the folder from scratch."""
        self.close()
        require_folder(self.root)
        Index.remove_files(self.db_path)
        return self.update()

    def _ensure_current(self, update: bool) -> None:
        if update and not self._updated:
            self.update()

    # -- find ------------------------------------------------------------------------------

    def find(
        self,
        source: ImageSource,
        *,
        update: bool = True,
        first: bool = False,
        fetcher: Fetcher | None = None,
        also_turned_and_cropped: bool = True,
    ) -> FindResult:
        """Is the picture of ``source`` already in the folder?

        Parameters
        ----------
        source
            A path, URL, bytes, PIL image, array or :class:`~samepix.compare.PreparedImage`.
        update : bool
            Bring the index up to date first (once per Library object; call :meth:`update` to
            rescan later). With False the index is used as it is.
        first : bool
            Stop at the first file that matches (what a downloader needs).
        fetcher : Fetcher, optional
            How a URL ``source`` is downloaded (retries, ``allow_private``, state); by
            default a plain :class:`~samepix.fetch.Fetcher` with this library's limits.
        also_turned_and_cropped : bool
            When the picture matched as it stands, still look for the mirror images, rotations
            and crops that the policy counts as the same (``flip_is_same``,
            ``rotation_is_same``, ``crop_is_same``), so that every copy is reported (default).
            False looks for them only when nothing matched as it stands (what ``sync`` needs:
            one match decides). Ignored with ``first``. Without a match, mirror images,
            rotations and crops are always looked for (reported as ``similar`` unless the
            policy counts them as the same).

        Returns
        -------
        FindResult

        Raises
        ------
        SourceError, FetchError, DecodeError, LimitExceeded
            The query cannot be read. Files of the folder that cannot be read are skipped.
        IndexCorrupt
            The index is damaged.
        """
        from .align import aspect_change
        from .compare import compare, load

        started = time.perf_counter()
        query = load(source, limits=self.limits, lazy=True, fetcher=fetcher)
        desc = describe_query(query, self.limits)
        self._ensure_current(update)
        index = self.index
        policy = self.policy

        t0 = time.perf_counter()
        table = index.hash_table()
        ids, dists = table.candidates(desc.hashes, policy.candidate_hash_distance)
        lookup_ms = (time.perf_counter() - t0) * 1000.0

        ranked: dict[str, tuple[IndexEntry, int]] = {}
        if query.sha256 is not None:
            for entry in index.by_sha256(query.sha256):
                ranked[entry.path] = (entry, 0)
        found = index.by_ids(ids.tolist())
        for row_id, dist in zip(ids.tolist(), dists.tolist(), strict=True):
            if row_id in found:
                ranked.setdefault(found[row_id].path, (found[row_id], int(dist)))

        apart = not_same_pairs(index)
        if apart and query.sha256 is not None:  # pairs the user said are not the same picture
            ranked = {
                k: v for k, v in ranked.items() if pair_key(query.sha256, v[0].sha256) not in apart
            }

        matches: list[Match] = []
        similar: list[Match] = []
        screened = compared = unreadable = 0

        other_shape: dict[str, tuple[IndexEntry, int]] = {}  # hash-close, other aspect ratio
        examined: set[str] = set()  # compared (or found unreadable): never compared twice

        def examine(
            entry: IndexEntry, dist: int, size: tuple[int, int], thumb: bytes, screen: bool = True
        ) -> bool:
            """Screen, then compare one candidate; True when a match ends a ``first`` search."""
            try:
                return examine_one(entry, dist, size, thumb, screen)
            finally:  # every candidate counts: screened out, compared or unreadable
                self._report("comparing candidates", screened + compared + unreadable, len(ranked))

        def examine_one(
            entry: IndexEntry, dist: int, size: tuple[int, int], thumb: bytes, screen: bool
        ) -> bool:
            nonlocal screened, compared, unreadable
            d = entry.descriptor
            same_bytes = query.sha256 is not None and d.sha256 == query.sha256
            if screen and not same_bytes:
                if aspect_change(size, (d.width, d.height)) > policy.max_aspect_change:
                    other_shape.setdefault(entry.path, (entry, dist))  # perhaps a crop
                    screened += 1
                    return False
                if thumb_distance(thumb, d.thumb) > policy.candidate_thumb_distance:
                    screened += 1
                    return False
            examined.add(entry.path)
            try:
                other = load(self.root / entry.path, limits=self.limits, lazy=True)
                result = compare(query, other, policy=policy, limits=self.limits)
            except SamepixError:
                unreadable += 1
                return False  # changed or vanished since it was indexed: not evidence either way
            compared += 1
            match = Match(self.root / entry.path, result, dist)
            if result.is_match:
                matches.append(match)
                return first
            if result.verdict.value == "similar":
                similar.append(match)
            return False

        for entry, dist in ranked.values():
            if examine(entry, dist, (desc.width, desc.height), desc.thumb):
                break

        def new_candidates(hashes: HashSet) -> Iterator[tuple[IndexEntry, int]]:
            """Index entries close to ``hashes`` not ranked yet (checked as each is taken) and
            not set apart by the user."""
            v_ids, v_dists = table.candidates(hashes, policy.candidate_hash_distance)
            v_found = index.by_ids(v_ids.tolist())
            for row_id, dist in zip(v_ids.tolist(), v_dists.tolist(), strict=True):
                hit = v_found.get(row_id)
                if hit is None or hit.path in ranked:
                    continue
                if apart and query.sha256 and pair_key(query.sha256, hit.sha256) in apart:
                    continue
                yield hit, int(dist)

        # Mirror images, rotations and crops (samepix.variants). When nothing matched as it
        # stands, all are looked for (reported as similar unless the policy counts them as the
        # same); when something did, only those the policy counts as the same, and only when the
        # caller wants every copy (``also_turned_and_cropped``; not with ``first``).
        further = not matches or (also_turned_and_cropped and not first)
        flags = (("mirror", policy.flip_is_same), ("rotation", policy.rotation_is_same))
        kinds = [kind for kind, on in flags if on or not matches]
        if policy.find_relations and further and kinds:
            from .variants import query_variants

            for variant in query_variants(query, self.limits):
                if variant.kind not in kinds:
                    continue
                for hit, dist in new_candidates(variant.hashes):
                    ranked[hit.path] = (hit, dist)
                    if examine(hit, dist, (variant.width, variant.height), variant.thumb):
                        break
                if matches and first:
                    break

        further = not matches or (also_turned_and_cropped and not first)
        if policy.find_relations and further and (policy.crop_is_same or not matches):
            # A crop. Candidates: files whose hashes are close but whose shape differs (a crop
            # keeping most of the picture), files close to a crop of the query (a folder copy
            # that was cropped), and, with crop_is_same, files one of whose crops (kept in the
            # index, samepix.crophash) is close to the query or to a crop of it (the query is a
            # crop of a folder file). The comparison locates the crop.
            from .variants import crop_variants

            for variant in crop_variants(query, self.limits):
                for hit, dist in new_candidates(variant.hashes):
                    other_shape.setdefault(hit.path, (hit, dist))
            if policy.crop_is_same:
                other_shape.update(
                    (entry.path, (entry, dist))
                    for entry, dist in self._stored_crop_candidates(query, apart)
                    if entry.path not in other_shape
                )
            crops = sorted(
                (pair for pair in other_shape.values() if pair[0].path not in examined),
                key=lambda pair: (pair[1], pair[0].path),
            )
            for entry, dist in crops[:_CROP_CANDIDATES]:
                ranked.setdefault(entry.path, (entry, dist))
                if examine(entry, dist, (desc.width, desc.height), desc.thumb, screen=False):
                    break

        matches.sort(key=_match_order)
        similar.sort(key=_match_order)
        return FindResult(
            source=query.name,
            matches=tuple(matches),
            similar=tuple(similar),
            candidates=len(ranked),
            screened_out=screened,
            compared=compared,
            index_size=len(table),
            lookup_ms=lookup_ms,
            elapsed_s=time.perf_counter() - started,
        )

    def _stored_crop_candidates(
        self, query: PreparedImage, apart: set[tuple[str, str]]
    ) -> Iterator[tuple[IndexEntry, int]]:
        """Entries one of whose crops, kept in the index, is close to the query or to a crop of
        it (:func:`samepix.variants.crop_candidates`), closest first, at most
        ``_STORED_CROP_LOOKUPS`` of them; pairs the user set apart are left out."""
        from .variants import crop_candidates, query_crop_hashes

        table = self.index.crop_table()
        ids, dists = crop_candidates(
            table, query_crop_hashes(query, self.limits), self.policy.candidate_hash_distance
        )
        ids, dists = ids[:_STORED_CROP_LOOKUPS], dists[:_STORED_CROP_LOOKUPS]
        found = self.index.by_ids(ids.tolist())
        for row_id, dist in zip(ids.tolist(), dists.tolist(), strict=True):
            hit = found.get(row_id)
            if hit is None:
                continue
            if apart and query.sha256 and pair_key(query.sha256, hit.sha256) in apart:
                continue
            yield hit, int(dist)

    # -- sync ------------------------------------------------------------------------------

    def sync(
        self,
        urls: Iterable[str],
        *,
        dry_run: bool = False,
        replace_better: bool = False,
        concurrency: int = 16,
        per_host: int = 6,
        log: SyncLog | None = None,
        retry: Retry | None = None,
        allow_private: bool = True,
        cache: bool = True,
        keep_items: bool = True,
    ) -> SyncSummary:
        """Download into the folder only the pictures it does not have yet.

        For each URL: skipped when the server says it is unchanged (a conditional GET answered
        ``304``, nothing downloaded) and the file it was saved as still holds those bytes; skipped
        when the downloaded bytes are already in the folder, or when the picture is (``same`` or
        ``identical`` by :meth:`find`); otherwise saved under a name from the URL (see
        :mod:`samepix.sync`). Every file is written to a temporary file, fsynced, renamed into
        place and indexed at once; a sync killed at any moment and run again finishes the job.

        Parameters
        ----------
        urls : iterable of str
            URL lines; blank lines and ``#`` comments are skipped, a repeated URL is processed
            once, a malformed one is reported as failed. A single string is split into lines.
        dry_run : bool
            Decide and report, but write no file, no record and no validator.
        replace_better : bool
            When the URL holds the same picture in better quality than the best local copy
            (more pixels, then lossless, then higher JPEG quality, then a larger file), replace
            that copy, keeping the old one under ``.samepix/replaced/``.
        concurrency, per_host : int
            Most downloads in flight in all, and to one host.
        log : path or text stream, optional
            Where to write one JSON line per decision.
        retry : Retry, optional
            Retry policy of the downloads (default :data:`samepix.fetch.DEFAULT_RETRY`).
        allow_private : bool
            Allow loopback and private addresses.
        cache : bool
            Use the folder's fetch state (``.samepix/fetch-state.sqlite3``): send the stored
            ``ETag``/``Last-Modified`` and remember new ones. False downloads every URL.
        keep_items : bool
            Keep an item for every URL in the summary. False keeps only the failed ones and the
            totals: a list of millions then costs no memory per URL (``log`` has every item).

        Returns
        -------
        SyncSummary

        Raises
        ------
        SyncLocked
            Another sync is running on this folder.
        SyncError
            The folder cannot be written (disk full, permissions): nothing partial is left, and
            the next run continues where this one stopped.
        """
        from .sync import run_sync

        return run_sync(
            self,
            urls,
            dry_run=dry_run,
            replace_better=replace_better,
            concurrency=concurrency,
            per_host=per_host,
            log=log,
            retry=retry,
            allow_private=allow_private,
            cache=cache,
            keep_items=keep_items,
        )

    # -- duplicates ------------------------------------------------------------------------

    def duplicates(self, *, update: bool = True) -> list[DuplicateGroup]:
        """Groups of files in the folder that show the same picture (never deletes anything).

        Files with identical bytes are grouped without decoding; other pairs within the
        candidate hash distance (and passing the index pre-screen) are confirmed with a full
        comparison, and confirmed pairs are joined transitively. Each group's copies are
        compared with its best copy for the reasons shown.

        Parameters
        ----------
        update : bool
            Bring the index up to date first (once per Library object).

        Returns
        -------
        list of DuplicateGroup
            Largest groups first, then by the best copy's path.
        """
        from .align import aspect_change
        from .compare import CONFIRM_SIDE
        from .dupes_shards import ShardFile, confirm_pairs
        from .executor import LocalExecutor
        from .search import close_pairs

        self._ensure_current(update)
        # Only the compact hash table is loaded; entries are read when a pair or a group needs
        # them (a 1,000,000-entry index would be ~2 GB of entry objects).
        index = self.index
        table = index.hash_table(progress=self.progress)
        entries = _Entries(index.entry_cache(table.ids))
        n = len(table)
        parent = list(range(n))

        def find_root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        def union(i: int, j: int) -> None:
            ri, rj = find_root(i), find_root(j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)

        for same_bytes in index.same_content_ids():
            at = _positions(table.ids, same_bytes)
            for j in at[1:]:
                union(at[0], j)

        policy = self.policy
        progress = self.progress
        candidates = close_pairs(
            table.phash,
            table.dhash,
            policy.candidate_hash_distance,
            progress=_stage_reporter(progress, "searching"),
        )
        # The index pre-screen depends on the pair alone, so it runs first, over every candidate
        # (their rows read a block at a time); only the pairs it keeps are ranked and compared.
        apart = not_same_pairs(self.index)  # pairs the user said are not the same picture
        kept: list[tuple[int, int]] = []
        for i, j in _screened_in_blocks(candidates, entries, progress):
            if apart and pair_key(entries[i].sha256, entries[j].sha256) in apart:
                continue
            a, b = entries[i].descriptor, entries[j].descriptor
            if (
                aspect_change((a.width, a.height), (b.width, b.height)) > policy.max_aspect_change
                or thumb_distance(a.thumb, b.thumb) > policy.candidate_thumb_distance
            ):
                continue
            kept.append((i, j))
        # Each pair is compared best copy first, the pairs of better copies first: a group's
        # best copy then meets every candidate of its group before any other member does, so
        # the comparisons that join a group are, for most copies, the very (best, copy)
        # comparisons its report shows. Which pairs join is independent of this order: a pair
        # is skipped only when already joined. Ranked among the kept pairs' files only (the
        # same order as among all files: quality_key ends with the unique path).
        involved = sorted({k for pair in kept for k in pair}, key=lambda k: quality_key(entries[k]))
        rank = {k: position for position, k in enumerate(involved)}
        pairs = sorted(
            ((i, j) if rank[i] < rank[j] else (j, i) for i, j in kept),
            key=lambda p: (rank[p[0]], rank[p[1]]),
        )
        comparisons: dict[tuple[int, int], Comparison] = {}
        # Every comparison runs as shards on an executor (samepix.dupes_shards): the local
        # one's worker processes unless another is given; the joining stays here, in order.
        executor = self.executor or LocalExecutor(self.workers)

        def file_of(k: int) -> ShardFile:
            entry = entries[k]
            return ShardFile(self.root / entry.path, entry.sha256, entry.descriptor.hashes)

        def confirm(
            pairs: list[tuple[int, int]], stage: str, *, skip_joined: bool = True, before: int = 0
        ) -> Iterator[tuple[int, int, Comparison | None]]:
            """Compare the pairs (those not joined yet, with ``skip_joined``), keyed in order: a
            group's report compares (best, copy), so "a" is the best copy. Progress counts
            ``before`` more done (made earlier) out of as many more."""
            total = before + len(pairs)
            self._report(stage, before, total)
            made = confirm_pairs(
                executor,
                pairs,
                file_of,
                policy,
                self.limits,
                joined=lambda i, j: skip_joined and find_root(i) == find_root(j),
                max_side=CONFIRM_SIDE,
            )
            for done, (i, j, result) in enumerate(made, before + 1):
                if done % 64 == 0:
                    self._report(stage, done, total)
                if result is not None:
                    comparisons[(i, j)] = result
                yield i, j, result
            self._report(stage, total, total)

        def join_matches(pairs: list[tuple[int, int]], stage: str) -> set[int]:
            joined: set[int] = set()
            for i, j, result in confirm(pairs, stage):
                if result is not None and result.is_match and find_root(i) != find_root(j):
                    union(i, j)
                    joined.update((i, j))
            return joined

        join_matches(pairs, "comparing candidate pairs")

        turned_or_cropped: set[int] = set()  # joined through a mirror, rotation or crop
        # Mirror images and rotations have other hashes: when the policy counts them as the same
        # picture, pairs whose thumbnails look turned are compared too (samepix.variants).
        kinds = [k for k, on in (("mirror", policy.flip_is_same),
                                 ("rotation", policy.rotation_is_same)) if on]  # fmt: skip
        if kinds:
            from .variants import turned_pairs

            turned: list[tuple[int, int]] = []
            for i, j, _, turns in turned_pairs([e.descriptor.thumb for e in entries], kinds):
                if apart and pair_key(entries[i].sha256, entries[j].sha256) in apart:
                    continue
                a, b = entries[i].descriptor, entries[j].descriptor
                size_a = (a.height, a.width) if turns else (a.width, a.height)
                if aspect_change(size_a, (b.width, b.height)) <= policy.max_aspect_change:
                    turned.append((i, j))
            turned_or_cropped |= join_matches(turned, "comparing turned")

        # Crops: a file whose whole picture is close to one of the crops the index keeps of
        # another file (samepix.crophash) is compared with it; the comparison locates the crop.
        if policy.crop_is_same and policy.find_relations:
            from .variants import crop_pairs

            crop_table = index.crop_table()
            position = _aligned_positions(table.ids, crop_table.ids)
            cropped: list[tuple[int, int]] = []
            for inner, outer, _ in crop_pairs(crop_table, policy.candidate_hash_distance):
                i, j = int(position[inner]), int(position[outer])
                if i < 0 or j < 0 or i == j:
                    continue
                if entries.cache.get(i) is None or entries.cache.get(j) is None:
                    continue  # deleted since the table was read
                if apart and pair_key(entries[i].sha256, entries[j].sha256) in apart:
                    continue
                if quality_key(entries[j]) < quality_key(entries[i]):
                    i, j = j, i  # the better copy first, as the group's report compares them
                cropped.append((i, j))
            turned_or_cropped |= join_matches(cropped, "comparing crops")

        members: dict[int, list[int]] = {}
        for i in range(n):
            root = find_root(i)
            if root != i:  # a root is the smallest position of its group: seen before
                members.setdefault(root, [root]).append(i)
        grouped = [
            group
            for group in (
                [k for k in members_of if entries.cache.get(k) is not None]  # none vanished
                for members_of in members.values()
            )
            if len(group) >= 2
        ]
        for group in grouped:
            group.sort(key=lambda k: quality_key(entries[k]))  # the rank order
        # Each copy is shown with its comparison with the group's best copy: most were made
        # while joining (best copies come first); the others are made now, as shards too.
        shown = [(group[0], k) for group in grouped for k in group[1:]]
        missing = [pair for pair in shown if pair not in comparisons]
        stage = "comparing copies with the best"
        for _ in confirm(missing, stage, skip_joined=False, before=len(shown) - len(missing)):
            pass
        groups: list[DuplicateGroup] = []
        for group in grouped:
            best = group[0]
            copies = [self._copy(entries[best], None)]
            # A group joined through a mirror, rotation or crop can hold a file that is the same
            # picture as another member but not as the best copy (a crop of the original, when
            # the best copy is the original's mirror image: no one relation explains that pair).
            # Such a file is left out: every copy listed is the same picture as the best one,
            # which is what the report says and what the actions rely on.
            mixed = not turned_or_cropped.isdisjoint(group)
            for k in group[1:]:
                result = comparisons.get((best, k))
                if mixed and result is not None and not result.is_match:
                    continue
                copies.append(self._copy(entries[k], result))
            if len(copies) >= 2:
                groups.append(DuplicateGroup(tuple(copies)))
        groups.sort(key=lambda g: (-len(g.copies), str(g.best.path)))
        return groups

    def _report(self, stage: str, done: int, total: int) -> None:
        """Tell the progress callback, if any (the CLI draws it on a terminal)."""
        if self.progress is not None:
            self.progress(Progress(stage, done, total))

    def _copy(self, entry: IndexEntry, comparison: Comparison | None) -> DuplicateCopy:
        d = entry.descriptor
        return DuplicateCopy(
            path=self.root / entry.path,
            format=d.format,
            width=d.width,
            height=d.height,
            size=entry.size,
            lossless=d.lossless,
            jpeg_quality=d.jpeg_quality,
            comparison=comparison,
            sha256=entry.sha256,
        )


# Most possible crops ``find`` compares when nothing else matched (each costs a feature match,
# tens of milliseconds): the closest by hash distance.
_CROP_CANDIDATES = 8
# Entries read from the crop-hash lookup (closest first): more than can be compared, so that the
# other crop candidates compete with them by distance.
_STORED_CROP_LOOKUPS = 64


_VERDICT_RANK = {"identical": 0, "same": 1, "similar": 2, "different": 3}


def _match_order(m: Match) -> tuple[int, int, float, int, str]:
    """Identical, then same as it stands, then same through a mirror, rotation or crop (each by
    decreasing SSIM): a copy as it stands is the one to name first."""
    c = m.comparison
    return (
        _VERDICT_RANK[c.verdict.value],
        0 if c.relation is None else 1,
        -(c.metrics.ssim or 0.0),
        m.hash_distance,
        str(m.path),
    )


def thumb_distance(a: bytes, b: bytes) -> float:
    """Mean absolute difference of two index thumbnails, in grey levels (0–255)."""
    import numpy as np

    ta = np.frombuffer(a, dtype=np.uint8).astype(np.int16)
    tb = np.frombuffer(b, dtype=np.uint8).astype(np.int16)
    if ta.shape != tb.shape:
        return 255.0
    return float(np.abs(ta - tb).mean())


def _stage_reporter(
    progress: ProgressCallback | None, stage: str
) -> Callable[[int, int], None] | None:
    """``(done, total)`` reports as :class:`Progress` of ``stage`` (None without a callback)."""
    if progress is None:
        return None
    report = progress
    return lambda done, total: report(Progress(stage, done, total))


class _Entries:
    """``entries[i]`` over an :class:`~samepix.index.EntryCache`, for the grouping code."""

    def __init__(self, cache: EntryCache) -> None:
        self.cache = cache

    def __getitem__(self, position: int) -> IndexEntry:
        entry = self.cache.get(position)
        if entry is None:
            raise _Vanished(position)
        return entry

    def __len__(self) -> int:
        return len(self.cache)

    def __iter__(self) -> Iterator[IndexEntry]:
        """Every entry, read a block at a time (only for the opt-in turned-copy search)."""
        for start in range(0, len(self), 4096):
            block = range(start, min(len(self), start + 4096))
            self.cache.prefetch(block)
            yield from (self[k] for k in block)  # positions stay aligned with the table


class _Vanished(LookupError):
    """An entry deleted (by another process) since the search table was read."""


def _positions(ids: np.ndarray, wanted: list[int]) -> list[int]:
    """Positions of row ids in a hash table's ``ids`` (sorted by id when read from SQLite)."""
    import numpy as np

    if ids.shape[0] > 1 and not bool(np.all(ids[1:] > ids[:-1])):  # patched by Index.add
        order = np.argsort(ids, kind="stable")
        at = np.searchsorted(ids, wanted, sorter=order)
        at = order[np.minimum(at, ids.shape[0] - 1)]
    else:
        at = np.minimum(np.searchsorted(ids, wanted), max(0, ids.shape[0] - 1))
    return [int(p) for p, w in zip(at.tolist(), wanted, strict=True) if int(ids[p]) == w]


def _aligned_positions(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The position in ``ids`` of each of ``wanted`` (-1 where it is not there), aligned."""
    import numpy as np

    if ids.shape[0] == 0:
        return np.full(wanted.shape[0], -1, np.int64)
    order = np.argsort(ids, kind="stable")
    at = np.minimum(np.searchsorted(ids, wanted, sorter=order), ids.shape[0] - 1)
    positions: np.ndarray = order[at].astype(np.int64)
    positions[ids[positions] != wanted] = -1
    return positions


def _screened_in_blocks(
    pairs: CandidatePairs, entries: _Entries, progress: ProgressCallback | None
) -> Iterator[tuple[int, int]]:
    """The pairs, their entries read a block at a time (a few queries per 4,096 pairs), with a
    ``"screening"`` progress report per block; pairs whose entry vanished are skipped."""
    total = len(pairs)
    block = 4096
    if progress:
        progress(Progress("screening", 0, total))
    for start in range(0, total, block):
        first = pairs.first[start : start + block].tolist()
        second = pairs.second[start : start + block].tolist()
        entries.cache.prefetch([*first, *second])
        for i, j in zip(first, second, strict=True):
            if entries.cache.get(i) is not None and entries.cache.get(j) is not None:
                yield i, j
        if progress:
            progress(Progress("screening", min(total, start + block), total))

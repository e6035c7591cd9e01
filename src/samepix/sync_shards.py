"""``sync``'s per-URL work as shards an executor runs: fetch, hash and describe on workers.

With an executor (``--dask``, or ``Library(..., executor=...)``) a sync cuts its URL list into
shards of consecutive lines. A worker — a local process or a Dask worker on another machine —
downloads a shard's URLs (conditional requests with the validators the coordinator sends
along), describes every new body as the index would (decode, hashes, thumbnail), and makes the
variants the coordinator's search looks up when the picture is not in the folder as it stands
(its mirror images, rotations and crops, :mod:`samepix.variants`): the costly part of a
decision. It writes nothing. The coordinator takes the shards back in list order and
decides each URL as it does without an executor (same bytes in the index, same picture in the
folder, else save), remembers the validators, and alone writes the folder and its SQLite files.

So a worker killed mid-shard loses nothing: the scheduler runs the shard again elsewhere, its
URLs are downloaded again, and each URL is still decided — and its picture saved — once. A
coordinator killed mid-run resumes as a plain sync does: every URL decided before the kill has
its file and record, and is answered ``304`` next time.
"""

from __future__ import annotations

import asyncio
import itertools
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .errors import SamepixError, SourceError, WriteFailed
from .fetch import Fetcher

if TYPE_CHECKING:
    from .compare import PreparedImage
    from .executor import Executor
    from .fetch import Download, Retry
    from .index import Descriptor
    from .limits import Limits
    from .policy import Policy
    from .state import FetchState, UrlRecord
    from .variants import QueryVariants

__all__ = [
    "Described",
    "FetchShard",
    "Fetched",
    "ShardedDownloads",
    "fetch_shard",
    "searched_variants",
]

#: URLs per shard: enough that a task's fixed cost (a few ms through a Dask scheduler) is
#: small beside the downloads, few enough that a shard run again after a worker died costs
#: little and that the shards in flight hold little.
SHARD_URLS = 16


@dataclass(frozen=True)
class FetchShard:
    """Consecutive lines of a URL list, with what a worker needs to fetch them."""

    #: (line, url, conditional, what the state file knew about the URL before this run)
    urls: tuple[tuple[int, str, bool, UrlRecord | None], ...]
    limits: Limits
    retry: Retry
    allow_private: bool
    concurrency: int
    per_host: int
    #: The variants the coordinator's search will look up for a new picture ("turned",
    #: "crops", "crop_hashes": samepix.variants.variants_of), made here rather than there.
    variants: frozenset[str] = frozenset()


def searched_variants(policy: Policy) -> frozenset[str]:
    """The variants a sync's search (``Library.find(also_turned_and_cropped=False)``) looks up
    for a picture that matched nothing as it stands — a new picture, the common case — under
    ``policy``: mirror images and rotations, crops of it, and with ``crop_is_same`` its crop
    hashes (:func:`samepix.variants.variants_of`)."""
    if not policy.find_relations:
        return frozenset()
    wanted = {"turned", "crops"}
    if policy.crop_is_same:
        wanted.add("crop_hashes")
    return frozenset(wanted)


@dataclass(frozen=True)
class Described:
    """What a worker made of a new body: its index descriptor and the variants of it that a
    search looks up."""

    descriptor: Descriptor
    variants: QueryVariants | None = None

    def apply(self, query: PreparedImage) -> None:
        """Give ``query`` (the same bytes, loaded on the coordinator) what was made here:
        describing and searching it then decode nothing."""
        from .query import use_descriptor

        use_descriptor(query, self.descriptor)
        if self.variants is not None:
            from .variants import use_variants

            use_variants(query, self.variants)


@dataclass(frozen=True)
class Fetched:
    """One URL of a shard: its download (or why it failed) and, for a new body that decodes,
    what was made of it."""

    line: int
    url: str
    result: Download | SamepixError
    described: Described | None = None


class _ShardFetcher(Fetcher):
    """A Fetcher that knows what the coordinator's state file knew, and writes no state."""

    def __init__(self, known: dict[str, UrlRecord], **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self._known = known

    def known(self, url: str) -> UrlRecord | None:
        return self._known.get(url)


def fetch_shard(shard: FetchShard) -> list[Fetched]:
    """Download a shard's URLs and describe their new bodies; a plain, picklable function that
    a local process or a Dask worker runs. Writes nothing."""
    known = {url: record for _, url, _, record in shard.urls if record is not None}
    fetcher = _ShardFetcher(
        known,
        limits=shard.limits,
        retry=shard.retry,
        allow_private=shard.allow_private,
        concurrency=shard.concurrency,
    )
    results = asyncio.run(_fetch_all(fetcher, shard))
    out = []
    for (line, url, _, _), result in zip(shard.urls, results, strict=True):
        described = None
        if isinstance(result, SamepixError):
            result = _portable(result)
        elif not result.not_modified:
            described = _describe(result, shard.limits, shard.variants)
        out.append(Fetched(line, url, result, described))
    return out


async def _fetch_all(fetcher: Fetcher, shard: FetchShard) -> list[Download | SamepixError]:
    everyone = asyncio.Semaphore(shard.concurrency)
    hosts: dict[str, asyncio.Semaphore] = {}

    async def one(url: str, conditional: bool) -> Download | SamepixError:
        host = (urlsplit(url).hostname or "").lower()
        gate = hosts.setdefault(host, asyncio.Semaphore(shard.per_host))
        async with gate, everyone:
            try:
                fast = None
                if conditional and rechecks is not None:  # a 304, or None
                    fast = await rechecks.acheck(url)
                return fast or await fetcher.aget(url, conditional=conditional)
            except SamepixError as exc:
                return exc

    async with fetcher:
        # Unchanged URLs are re-checked on kept-alive stdlib connections, as a plain sync
        # does (samepix.recheck); anything but a 304 goes to the fetcher. The coordinator
        # remembers each answer (ShardedDownloads), so the worker writes no state here either.
        from .recheck import Rechecker

        rechecks = None
        if any(conditional for _, _, conditional, _ in shard.urls):
            rechecks = Rechecker.for_fetcher(fetcher, threads=shard.concurrency, stateless=True)
        try:
            return list(
                await asyncio.gather(
                    *(one(url, conditional) for _, url, conditional, _ in shard.urls)
                )
            )
        finally:
            if rechecks is not None:
                rechecks.close()


def _describe(download: Download, limits: Limits, variants: frozenset[str]) -> Described | None:
    """The body's index descriptor and ``variants``, as the coordinator would compute them;
    None when it does not decode (the coordinator then tries, and reports the error as it
    always does)."""
    from .compare import load
    from .query import describe_query
    from .variants import variants_of

    try:
        query = load(download, limits=limits, lazy=True)
        descriptor = describe_query(query, limits)
    except SamepixError:
        return None
    if not variants:
        return Described(descriptor)
    try:
        made = variants_of(
            query,
            limits,
            turned="turned" in variants,
            crops="crops" in variants,
            crop_hashes="crop_hashes" in variants,
        )
    except SamepixError:  # the coordinator makes them, or says why it cannot
        return Described(descriptor)
    return Described(descriptor, made)


def _portable(exc: SamepixError) -> SamepixError:
    """``exc``, or a plain error with its message when it would not survive the trip back."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return SourceError(str(exc))
    return exc


class ShardedDownloads:
    """The downloads of a sync run as shards on ``executor``: iterate to get
    ``(line, url, download or error)`` in the list's order, as :class:`samepix.sync._Downloads`
    gives them; what workers made of new bodies goes into ``described`` (by URL) for the
    decisions to use; ``variants``: which variants of a new picture to make there
    (:attr:`FetchShard.variants`).

    Validators are read from ``state`` for the shards as they are cut, and what each download
    told is remembered in it here, on the coordinator. Each host's limit ``per_host`` is split
    between the executor's slots, so that all workers together keep it.
    """

    def __init__(
        self,
        executor: Executor,
        work: list[tuple[int, str, bool]],
        *,
        state: FetchState | None,
        remember: Fetcher,
        described: dict[str, Described],
        limits: Limits,
        retry: Retry,
        allow_private: bool,
        concurrency: int,
        per_host: int,
        variants: frozenset[str] = frozenset(),
    ) -> None:
        self.executor = executor
        self.variants = variants
        self.work = work
        self.state = state
        self.remember = remember
        self.described = described
        self.limits = limits
        self.retry = retry
        self.allow_private = allow_private
        slots = max(1, executor.slots)
        self.concurrency = max(1, -(-concurrency // slots))
        self.per_host = max(1, -(-per_host // slots))
        # Fewer URLs a shard when the list is short, so that every slot gets work.
        self.shard_urls = max(1, min(SHARD_URLS, len(work) // (2 * slots)))
        self._stream: Iterator[list[Fetched]] | None = None

    def __enter__(self) -> ShardedDownloads:
        return self

    def __exit__(self, *exc: object) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # cancels the shards still in flight

    def _shards(self) -> Iterator[FetchShard]:
        work = iter(self.work)
        while chunk := list(itertools.islice(work, self.shard_urls)):
            urls = tuple(
                (line, url, conditional, self._known(url) if conditional else None)
                for line, url, conditional in chunk
            )
            yield FetchShard(
                urls,
                self.limits,
                self.retry,
                self.allow_private,
                self.concurrency,
                self.per_host,
                self.variants,
            )

    def _known(self, url: str) -> UrlRecord | None:
        return None if self.state is None else self.state.get(url)

    def __iter__(self) -> Iterator[tuple[int, str, Download | SamepixError]]:
        self._stream = self.executor.map_ordered(fetch_shard, self._shards())
        for fetched in self._stream:
            for one in fetched:
                result = one.result
                if not isinstance(result, SamepixError):
                    try:
                        self.remember.remember(result)
                    except WriteFailed as exc:  # the state file cannot be written: the
                        result = exc  # decision stops the sync, as a plain sync does
                if one.described is not None:
                    self.described[one.url] = one.described
                yield one.line, one.url, result

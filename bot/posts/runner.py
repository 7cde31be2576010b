"""The digest runner: claims the due daily posts, posts them through the platforms' posters
concurrently, and records what went out; keywords gone stale are refreshed first."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Collection, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Any, TypeVar

from bot.arxiv.daily import DailyRefresh, default_owner, last_refresh_slot
from bot.commands.core import Core
from bot.posts import claims, digest
from bot.posts.claims import Claim
from bot.posts.digest import DueChannel
from bot.posts.poster import Poster, PostFailed
from bot.replies import Papers
from bot.storage.db import is_sqlite, read_session, write_session

logger = logging.getLogger(__name__)
T = TypeVar("T")

MAX_CONCURRENT_CHANNELS = 1000  # channels being posted at once; waiting out rate limits is cheap
DB_THREADS_POSTGRESQL = 4
POST_TIMEOUT_SECONDS = 600.0  # under claims.CLAIM_LEASE, so a live sender is never "recovered"
PREPARE_BATCH = 20  # claims passed to "sending" per write transaction
RECORD_DELAY_SECONDS = 0.15  # accepted posts wait at most this long for a free database thread


@dataclass(frozen=True)
class DigestOutcome:
    """What one channel's turn did: sent, empty, failed, paused, uncertain, taken or error."""

    channel_id: int
    local_date: date
    status: str
    detail: str = ""


def posters_by_platform(posters: Sequence[Poster]) -> dict[str, Poster]:
    """A channel's workspace platform ("slack", "discord") picks its poster."""
    found: dict[str, Poster] = {}
    for poster in posters:
        if poster.platform in found:
            raise ValueError(f"two posters for platform {poster.platform!r}")
        found[poster.platform] = poster
    return found


class DigestRunner:
    """Posts the due daily digests concurrently (bounded)."""

    def __init__(
        self,
        core: Core,
        posters: Sequence[Poster],
        *,
        owner: str | None = None,
        max_concurrent: int = MAX_CONCURRENT_CHANNELS,
        post_timeout: float = POST_TIMEOUT_SECONDS,
        refresher: DailyRefresh | None = None,
    ) -> None:
        self.core = core
        self.posters = posters_by_platform(posters)
        self.owner = owner or default_owner()
        self.refresher = refresher or DailyRefresh(core, owner=self.owner)
        self.post_timeout = post_timeout
        self._slots = asyncio.Semaphore(max_concurrent)
        self._in_flight: set[int] = set()
        # SQLite takes one writer at a time: one thread queues our transactions instead of
        # leaving them to SQLite's busy-wait; PostgreSQL works on a few at once.
        threads = 1 if is_sqlite(core.engine) else DB_THREADS_POSTGRESQL
        self._db_threads = ThreadPoolExecutor(threads, thread_name_prefix="digest-db")
        # Accepted posts waiting to be recorded together (see _record_sent); the flush job
        # takes them in the database thread, hence the lock.
        self._unrecorded: list[tuple[Claim, Papers, asyncio.Future[None]]] = []
        self._unrecorded_lock = threading.Lock()
        self._flush_pending = False
        self._db_jobs = 0  # database-thread jobs submitted and not finished
        self._db_idle = asyncio.Event()
        # Claims waiting for begin_sending, taken PREPARE_BATCH at a time per transaction.
        self._unprepared: list[tuple[Claim, asyncio.Future[Papers | None]]] = []
        self._preparing = 0  # prepare jobs running or queued
        self._db_thread_count = threads
        self._tasks: set[asyncio.Future[None]] = set()

    # -- daily posts ------------------------------------------------------------------------

    async def run_due(
        self, now: datetime | None = None, *, only: Collection[int] | None = None
    ) -> list[DigestOutcome]:
        """Post every channel whose time today has passed and whose day is unsettled (all of
        them, or those in `only`); returns when each is done. Safe to call at any time."""
        now = now or self.core.clock()
        due = await self._in_db_thread(self._due, now, only)
        due = [d for d in due if d.channel_id not in self._in_flight]
        if not due:
            return []
        self._in_flight.update(d.channel_id for d in due)
        try:
            taken, stale = await self._in_db_thread(self._claim, due)
            turns = [
                self._deliver(d, taken.get(d.channel_id), stale.get(d.channel_id, [])) for d in due
            ]
            return list(await asyncio.gather(*turns))
        finally:
            self._in_flight.difference_update(d.channel_id for d in due)

    def _due(self, now: datetime, only: Collection[int] | None) -> list[DueChannel]:
        with read_session(self.core.engine) as session:
            abandoned = claims.has_abandoned(session, now=now)
        if abandoned:
            self._write(claims.recover_abandoned, now=now)
        with read_session(self.core.engine) as session:
            return digest.due_channels(
                session,
                settings=self.core.settings,
                now=now,
                platforms=self.posters.keys(),
                only=only,
            )

    def _claim(self, due: list[DueChannel]) -> tuple[dict[int, Claim], dict[int, list[str]]]:
        """Claims for the due channels, and the keywords each must refresh first."""
        now = self.core.clock()
        taken = self._write(claims.claim_due, due, owner=self.owner, now=now)
        since = last_refresh_slot(now, self.core.settings.fetch_time)
        stale = self._read(digest.stale_labels, channel_ids=list(taken), since=since)
        return taken, stale

    async def _deliver(
        self, due: DueChannel, claim: Claim | None, stale: list[str]
    ) -> DigestOutcome:
        if claim is None:
            return DigestOutcome(due.channel_id, due.local_date, "taken")
        try:
            await self.refresher.refresh_stale(stale)
            async with self._slots:
                post = await self._begin_sending(claim)
                if post is None:
                    return DigestOutcome(due.channel_id, due.local_date, digest.EMPTY)
                return await self._send(due, claim, post)
        except claims.ClaimLost:
            return DigestOutcome(due.channel_id, due.local_date, "taken")
        except Exception as exc:
            logger.exception("the %s post of channel %s failed", due.local_date, due.channel_id)
            return DigestOutcome(due.channel_id, due.local_date, "error", repr(exc))

    async def _send(self, due: DueChannel, claim: Claim, post: Papers) -> DigestOutcome:
        poster = self.posters[due.platform]
        outcome = DigestOutcome(due.channel_id, due.local_date, digest.SENT, f"{post.count} papers")
        try:
            async with asyncio.timeout(self.post_timeout):  # no task per post, unlike wait_for
                await poster.post(
                    workspace_id=due.workspace_id, channel_id=due.channel, replies=[post]
                )
        except PostFailed as exc:
            if exc.maybe_delivered:
                return await self._uncertain(outcome, claim, post, exc.reason)
            paused = await self._db(
                claims.record_failure,
                claim,
                reason=exc.reason,
                permanent=exc.permanent,
                now=self.core.clock(),
            )
            logger.warning(
                "channel %s refused its post%s: %s",
                due.channel_id,
                " and is now paused" if paused else "",
                exc.reason,
            )
            return DigestOutcome(
                due.channel_id, due.local_date, "paused" if paused else "failed", exc.reason
            )
        except TimeoutError:
            return await self._uncertain(
                outcome, claim, post, f"no answer in {self.post_timeout:g}s"
            )
        except Exception as exc:
            logger.exception("posting to channel %s broke", due.channel_id)
            return await self._uncertain(outcome, claim, post, f"{type(exc).__name__}: {exc}")
        await self._record_sent(claim, post)
        return outcome

    async def _begin_sending(self, claim: Claim) -> Papers | None:
        """`claims.begin_sending`, in a transaction shared with other channels' (PREPARE_BATCH
        at a time); these go ahead of recording sent posts in the database threads."""
        done: asyncio.Future[Papers | None] = asyncio.get_running_loop().create_future()
        self._unprepared.append((claim, done))
        # One job more than threads, so the next batch is already queued when one finishes.
        if self._preparing <= self._db_thread_count:
            self._preparing += 1
            self._background(self._prepare_queued())
        return await done

    async def _prepare_queued(self) -> None:
        try:
            while self._unprepared:
                batch = self._unprepared[:PREPARE_BATCH]
                del self._unprepared[:PREPARE_BATCH]
                try:
                    results = await self._db(
                        claims.begin_sending_many,
                        [claim for claim, _done in batch],
                        now=self.core.clock(),
                    )
                except BaseException as exc:
                    for _claim, done in batch:
                        _fail(done, exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_claim, done), result in zip(batch, results, strict=True):
                    if done.done():
                        continue
                    if isinstance(result, claims.ClaimLost):
                        done.set_exception(result)
                    else:
                        done.set_result(result)
        finally:
            self._preparing -= 1
            if not self._preparing:
                self._db_idle.set()

    async def _record_sent(self, claim: Claim, post: Papers) -> None:
        """Record an accepted post together with the others accepted meanwhile: one write
        transaction when the database threads are free, or after RECORD_DELAY_SECONDS.
        Until then the claim stays "sending", which crash recovery and `digest now` already
        count as delivered, so waiting never lets the post go out twice."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._unrecorded_lock:
            self._unrecorded.append((claim, post, done))
            start = not self._flush_pending
            self._flush_pending = True
        if start:
            self._background(self._flush_soon())
        await done

    async def _flush_soon(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RECORD_DELAY_SECONDS
        while self._unprepared or self._preparing:  # preparing posts goes first
            self._db_idle.clear()
            await self._db_idle.wait()
        while self._db_jobs and (left := deadline - loop.time()) > 0:
            self._db_idle.clear()
            try:
                await asyncio.wait_for(self._db_idle.wait(), left)
            except TimeoutError:
                break
        try:
            batch, error = await self._in_db_thread(self._flush_unrecorded)
        except BaseException as exc:  # the executor is gone: fail whatever is still queued
            with self._unrecorded_lock:
                batch, self._unrecorded, self._flush_pending = self._unrecorded, [], False
            error = exc
        for _claim, _post, done in batch:
            if error is not None:
                _fail(done, error)
            elif not done.done():
                done.set_result(None)

    def _flush_unrecorded(
        self,
    ) -> tuple[list[tuple[Claim, Papers, asyncio.Future[None]]], BaseException | None]:
        """In the database thread: record every accepted post queued so far, in one transaction."""
        with self._unrecorded_lock:
            batch, self._unrecorded, self._flush_pending = self._unrecorded, [], False
        if not batch:
            return batch, None
        try:
            self._write(
                claims.record_sent_many,
                [(claim, post) for claim, post, _done in batch],
                now=self.core.clock(),
            )
        except Exception as exc:
            logger.exception("recording %d sent posts failed", len(batch))
            return batch, exc
        return batch, None

    async def _uncertain(
        self, outcome: DigestOutcome, claim: Claim, post: Papers, reason: str
    ) -> DigestOutcome:
        await self._db(claims.record_uncertain, claim, post, reason=reason, now=self.core.clock())
        return DigestOutcome(outcome.channel_id, outcome.local_date, digest.UNCERTAIN, reason)

    async def prune(self) -> None:
        """Housekeeping, once a day by the daily refresh's holder: old settled claims go."""
        try:
            pruned = await self._db(claims.prune_claims, now=self.core.clock())
        except Exception:
            logger.exception("pruning old daily-post claims failed")
        else:
            logger.info("pruned %d settled daily-post claims", pruned)

    # -- plumbing ---------------------------------------------------------------------------

    def _write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with write_session(self.core.engine) as session:
            return fn(session, *args, **kwargs)

    def _read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with read_session(self.core.engine) as session:
            return fn(session, *args, **kwargs)

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(session, ...)` in a write transaction, in a database thread."""
        return await self._in_db_thread(self._write, fn, *args, **kwargs)

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    async def _in_db_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        self._db_jobs += 1
        try:
            return await loop.run_in_executor(self._db_threads, partial(fn, *args, **kwargs))
        finally:
            self._db_jobs -= 1
            if not self._db_jobs:
                self._db_idle.set()

    def close(self) -> None:
        self._db_threads.shutdown(wait=False)


def _fail(waiter: asyncio.Future[Any], error: BaseException) -> None:
    if waiter.done():
        return
    if isinstance(error, asyncio.CancelledError):
        waiter.cancel()
    else:
        waiter.set_exception(error)


async def run_due_digests(
    core: Core, posters: Sequence[Poster], now: datetime | None = None, **options: Any
) -> list[DigestOutcome]:
    """One pass as a fresh runner (a process of its own): post whatever is due at `now`."""
    runner = DigestRunner(core, posters, **options)
    try:
        return await runner.run_due(now)
    finally:
        runner.close()

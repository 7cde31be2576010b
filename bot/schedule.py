"""The scheduler of `papers serve`: the daily refresh and every channel's daily post.

APScheduler only says "now"; whether a post goes out is decided by the claim rows of
`bot.digest`, so restarts, crashes and extra processes never post twice. Blocking work (the
database, arXiv) runs in threads, never on the event loop.

    scheduler = await start_scheduler(core, [slack_poster, discord_poster])
    ...
    await scheduler.stop()
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Collection, Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import or_, update
from sqlmodel import Session, select

from bot import digest, store
from bot.core import Core, RefreshOutcome
from bot.db import is_sqlite, read_session, write_session
from bot.digest import Claim, DueChannel
from bot.models import Lease
from bot.poster import Poster, PostFailed
from bot.replies import Papers
from bot.text import keyword_key
from bot.timeparse import parse_hhmm

logger = logging.getLogger(__name__)
T = TypeVar("T")

MAX_CONCURRENT_CHANNELS = 1000  # channels being posted at once; waiting out rate limits is cheap
DB_THREADS_POSTGRESQL = 4
POST_TIMEOUT_SECONDS = 600.0  # under digest.CLAIM_LEASE, so a live sender is never "recovered"
REFRESH_LEASE_NAME = "daily-refresh"
REFRESH_LEASE = timedelta(minutes=10)  # renewed after every keyword


@dataclass(frozen=True)
class DigestOutcome:
    """What one channel's turn did: sent, empty, failed, paused, uncertain, taken or error."""

    channel_id: int
    local_date: date
    status: str
    detail: str = ""


def default_owner() -> str:
    """Who holds a claim or lease: host, process and a random part (unique per runner)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def posters_by_platform(posters: Sequence[Poster]) -> dict[str, Poster]:
    """A channel's workspace platform ("slack", "discord") picks its poster."""
    found: dict[str, Poster] = {}
    for poster in posters:
        if poster.platform in found:
            raise ValueError(f"two posters for platform {poster.platform!r}")
        found[poster.platform] = poster
    return found


class DigestRunner:
    """Posts the due daily digests concurrently (bounded) and runs the daily refresh once."""

    def __init__(
        self,
        core: Core,
        posters: Sequence[Poster],
        *,
        owner: str | None = None,
        max_concurrent: int = MAX_CONCURRENT_CHANNELS,
        post_timeout: float = POST_TIMEOUT_SECONDS,
    ) -> None:
        self.core = core
        self.posters = posters_by_platform(posters)
        self.owner = owner or default_owner()
        self.post_timeout = post_timeout
        self._slots = asyncio.Semaphore(max_concurrent)
        self._in_flight: set[int] = set()
        self._arxiv_turn = asyncio.Lock()
        # SQLite takes one writer at a time: one thread queues our transactions instead of
        # leaving them to SQLite's busy-wait; PostgreSQL works on a few at once.
        threads = 1 if is_sqlite(core.engine) else DB_THREADS_POSTGRESQL
        self._db_threads = ThreadPoolExecutor(threads, thread_name_prefix="digest-db")
        self._refreshes: dict[tuple[str, datetime], asyncio.Future[RefreshOutcome]] = {}

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
            claims, stale = await self._in_db_thread(self._claim, due)
            turns = [
                self._deliver(d, claims.get(d.channel_id), stale.get(d.channel_id, [])) for d in due
            ]
            return list(await asyncio.gather(*turns))
        finally:
            self._in_flight.difference_update(d.channel_id for d in due)

    def _due(self, now: datetime, only: Collection[int] | None) -> list[DueChannel]:
        with read_session(self.core.engine) as session:
            abandoned = digest.has_abandoned(session, now=now)
        if abandoned:
            self._write(digest.recover_abandoned, now=now)
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
        claims = self._write(digest.claim_due, due, owner=self.owner, now=now)
        since = digest.last_refresh_slot(now, self.core.settings.fetch_time)
        stale = self._read(digest.stale_labels, channel_ids=list(claims), since=since)
        return claims, stale

    async def _deliver(
        self, due: DueChannel, claim: Claim | None, stale: list[str]
    ) -> DigestOutcome:
        if claim is None:
            return DigestOutcome(due.channel_id, due.local_date, "taken")
        try:
            await self._refresh(stale)
            async with self._slots:
                post = await self._db(digest.begin_sending, claim, now=self.core.clock())
                if post is None:
                    return DigestOutcome(due.channel_id, due.local_date, digest.EMPTY)
                return await self._send(due, claim, post)
        except digest.ClaimLost:
            return DigestOutcome(due.channel_id, due.local_date, "taken")
        except Exception as exc:
            logger.exception("the %s post of channel %s failed", due.local_date, due.channel_id)
            return DigestOutcome(due.channel_id, due.local_date, "error", repr(exc))

    async def _send(self, due: DueChannel, claim: Claim, post: Papers) -> DigestOutcome:
        poster = self.posters[due.platform]
        outcome = DigestOutcome(due.channel_id, due.local_date, digest.SENT, f"{post.count} papers")
        try:
            await asyncio.wait_for(
                poster.post(workspace_id=due.workspace_id, channel_id=due.channel, replies=[post]),
                self.post_timeout,
            )
        except PostFailed as exc:
            if exc.maybe_delivered:
                return await self._uncertain(outcome, claim, post, exc.reason)
            paused = await self._db(
                digest.record_failure,
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
        await self._db(digest.record_sent, claim, post, now=self.core.clock())
        return outcome

    async def _uncertain(
        self, outcome: DigestOutcome, claim: Claim, post: Papers, reason: str
    ) -> DigestOutcome:
        await self._db(digest.record_uncertain, claim, post, reason=reason, now=self.core.clock())
        return DigestOutcome(outcome.channel_id, outcome.local_date, digest.UNCERTAIN, reason)

    async def _refresh(self, labels: list[str]) -> None:
        """Refresh keywords not fetched since the last daily refresh; each keyword once per
        refresh period in this process, however many channels wait for it."""
        if not labels:
            return
        since = digest.last_refresh_slot(self.core.clock(), self.core.settings.fetch_time)
        waits = [asyncio.shield(self._refresh_once(label, since)) for label in labels]
        for label, result in zip(
            labels, await asyncio.gather(*waits, return_exceptions=True), strict=True
        ):
            if isinstance(result, Exception):
                logger.error("refreshing %r before a post broke: %r", label, result)

    def _refresh_once(self, label: str, since: datetime) -> asyncio.Future[RefreshOutcome]:
        key = (keyword_key(label), since)
        if key not in self._refreshes:
            self._refreshes = {k: f for k, f in self._refreshes.items() if k[1] == since}
            self._refreshes[key] = asyncio.ensure_future(self._refresh_in_turn(label))
        return self._refreshes[key]

    async def _refresh_in_turn(self, label: str) -> RefreshOutcome:
        # The gateway sends one request at a time anyway; queueing here rather than in the
        # gateway keeps the thread pool free for the database work of other channels.
        async with self._arxiv_turn:
            return await asyncio.to_thread(self.core.refresh, label)

    # -- the daily refresh ------------------------------------------------------------------

    async def run_daily_refresh(self, now: datetime | None = None) -> bool:
        """Refresh every followed keyword once per day across all processes (the
        "daily-refresh" lease); a keyword already fetched since the refresh time is skipped.
        True when this call did the refresh."""
        now = now or self.core.clock()
        slot = digest.last_refresh_slot(now, self.core.settings.fetch_time)
        if not await asyncio.to_thread(self._take_refresh, slot.date(), now):
            return False
        try:
            outcomes = await asyncio.to_thread(self._refresh_followed, slot)
            status = refresh_status(outcomes)
        except Exception as exc:
            logger.exception("the daily refresh broke")
            status = f"failed: {type(exc).__name__}: {exc}"
        await asyncio.to_thread(
            self._write,
            finish_refresh,
            owner=self.owner,
            run_date=slot.date(),
            status=status,
            now=self.core.clock(),
        )
        logger.info("daily refresh for %s: %s", slot.date(), status)
        return True

    def _take_refresh(self, run_date: date, now: datetime) -> bool:
        with read_session(self.core.engine) as session:
            if refresh_done(session, run_date=run_date):
                return False
        return self._write(take_refresh_lease, owner=self.owner, run_date=run_date, now=now)

    def _refresh_followed(self, slot: datetime) -> list[RefreshOutcome]:
        def renew(_outcome: RefreshOutcome) -> None:
            if not self._write(renew_refresh_lease, owner=self.owner, now=self.core.clock()):
                raise RuntimeError("the daily-refresh lease was taken over")

        return self.core.refresh_all(self._still_stale(slot), progress=renew)

    def _still_stale(self, slot: datetime) -> Iterator[str]:
        """Followed keywords, each checked just before its turn (a post may have refreshed it)."""
        for label in self.core.followed_keywords():
            with read_session(self.core.engine) as session:
                keyword = store.find_keyword(session, label)
            if keyword is None or digest.is_stale(keyword, slot):
                yield label

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

    async def _in_db_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_threads, partial(fn, *args, **kwargs))

    def close(self) -> None:
        self._db_threads.shutdown(wait=False)


def refresh_status(outcomes: Sequence[RefreshOutcome]) -> str:
    """What /healthz shows of a daily refresh: "ok: 12 keywords fetched, 1 failed"."""
    failed = sum(not o.ok for o in outcomes)
    fetched = f"{len(outcomes)} keyword{'s' if len(outcomes) != 1 else ''} fetched"
    return f"ok: {fetched}" + (f", {failed} failed" if failed else "")


async def run_due_digests(
    core: Core, posters: Sequence[Poster], now: datetime | None = None, **options: Any
) -> list[DigestOutcome]:
    """One pass as a fresh runner (a process of its own): post whatever is due at `now`."""
    runner = DigestRunner(core, posters, **options)
    try:
        return await runner.run_due(now)
    finally:
        runner.close()


# -- the daily-refresh lease ----------------------------------------------------------------

_LEASES = Lease.__table__  # type: ignore[attr-defined]


def refresh_done(session: Session, *, run_date: date) -> bool:
    lease = session.exec(select(Lease).where(Lease.name == REFRESH_LEASE_NAME)).first()
    return lease is not None and lease.last_run_date is not None and lease.last_run_date >= run_date


def take_refresh_lease(session: Session, *, owner: str, run_date: date, now: datetime) -> bool:
    """Hold the lease for `run_date`'s refresh unless it ran already or a live holder has it."""
    insert = store.insert_for(session, Lease).values(
        name=REFRESH_LEASE_NAME, owner=owner, lease_until=now + REFRESH_LEASE
    )
    if session.execute(
        insert.on_conflict_do_nothing(index_elements=["name"]).returning(_LEASES.c.name)
    ).first():
        return True
    taken = session.execute(
        update(_LEASES)
        .where(
            _LEASES.c.name == REFRESH_LEASE_NAME,
            _LEASES.c.lease_until < now,
            or_(_LEASES.c.last_run_date.is_(None), _LEASES.c.last_run_date < run_date),
        )
        .values(owner=owner, lease_until=now + REFRESH_LEASE)
        .returning(_LEASES.c.name)
    ).first()
    return taken is not None


def renew_refresh_lease(session: Session, *, owner: str, now: datetime) -> bool:
    renewed = session.execute(
        update(_LEASES)
        .where(_LEASES.c.name == REFRESH_LEASE_NAME, _LEASES.c.owner == owner)
        .values(lease_until=now + REFRESH_LEASE)
        .returning(_LEASES.c.name)
    ).first()
    return renewed is not None


def finish_refresh(
    session: Session, *, owner: str, run_date: date, status: str, now: datetime
) -> None:
    """Record the run (read by /healthz) and let the lease go."""
    session.execute(
        update(_LEASES)
        .where(_LEASES.c.name == REFRESH_LEASE_NAME, _LEASES.c.owner == owner)
        .values(last_run_date=run_date, last_run_at=now, last_status=status[:500], lease_until=now)
    )


# -- APScheduler: only the trigger ----------------------------------------------------------

MISFIRE_GRACE_SECONDS = 6 * 3600


class DigestScheduler:
    """The daily refresh at FETCH_TIME (UTC), one job per distinct (post time, zone) of the
    channels, and a sweep every minute that rebuilds those jobs from the tables and posts
    anything due that a trigger missed (start-up, restarts, new channels)."""

    def __init__(
        self, runner: DigestRunner, *, sweep_seconds: float = 60.0, startup_delay: float = 5.0
    ) -> None:
        self.runner = runner
        self.sweep_seconds = sweep_seconds
        self.startup_delay = startup_delay
        self.scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={
                "coalesce": True,
                "misfire_grace_time": MISFIRE_GRACE_SECONDS,
                "max_instances": 1,
            },
        )
        self._schedules: dict[tuple[str, str], set[int]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._refresh: asyncio.Task[Any] | None = None
        self._warmup: asyncio.TimerHandle | None = None
        self._syncing = asyncio.Lock()

    async def start(self) -> None:
        hour, minute = parse_hhmm(self.runner.core.settings.fetch_time) or (1, 0)
        self.scheduler.add_job(
            self._refresh_job, CronTrigger(hour=hour, minute=minute, timezone=UTC), id="refresh"
        )
        self.scheduler.add_job(
            self._sweep, IntervalTrigger(seconds=self.sweep_seconds, timezone=UTC), id="sweep"
        )
        await self._sync_or_log()
        self.scheduler.start()
        if self.startup_delay > 0:
            # The front ends get a moment to connect before the catch-up posts go out.
            loop = asyncio.get_running_loop()
            self._warmup = loop.call_later(self.startup_delay, self._begin)
        else:
            self._spawn(self._startup())

    async def sync(self) -> None:
        """Rebuild the digest jobs from the channels table (call after a schedule changes;
        the sweep calls it every minute anyway)."""
        async with self._syncing:
            schedules = await asyncio.to_thread(self._read_schedules)
            for key in self._schedules.keys() - schedules.keys():
                self.scheduler.remove_job(_job_id(key))
            for key in schedules.keys() - self._schedules.keys():
                hour, minute = parse_hhmm(key[0]) or (9, 0)
                trigger = CronTrigger(hour=hour, minute=minute, timezone=ZoneInfo(key[1]))
                self.scheduler.add_job(self._digest_job, trigger, args=[key], id=_job_id(key))
            self._schedules = schedules

    async def _sync_or_log(self) -> None:
        # An unreachable database must not stop `papers serve` (/healthz reports it);
        # the next sweep tries again.
        try:
            await self.sync()
        except Exception as exc:
            logger.warning(
                "could not read the channels' schedules: %s: %s", type(exc).__name__, exc
            )

    def _read_schedules(self) -> dict[tuple[str, str], set[int]]:
        settings = self.runner.core.settings
        schedules: dict[tuple[str, str], set[int]] = {}
        with read_session(self.runner.core.engine) as session:
            rows = digest.scheduled_channels(session, platforms=self.runner.posters.keys())
        for channel, _workspace in rows:
            hhmm, zone = digest.digest_schedule(channel, settings)
            schedules.setdefault((hhmm, zone.key), set()).add(channel.id)  # type: ignore[arg-type]
        return schedules

    async def _digest_job(self, key: tuple[str, str]) -> None:
        channels = self._schedules.get(key)
        if channels:
            self._spawn(self.runner.run_due(only=set(channels)))

    async def _refresh_job(self) -> None:
        if self._refresh is None or self._refresh.done():
            self._refresh = self._spawn(self.runner.run_daily_refresh())

    async def _sweep(self) -> None:
        await self._sync_or_log()
        await self._refresh_job()
        self._spawn(self.runner.run_due())

    def _begin(self) -> None:
        self._spawn(self._startup())

    async def _startup(self) -> None:
        await self._refresh_job()
        await self.runner.run_due()

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("scheduled work broke", exc_info=task.exception())

    async def idle(self) -> None:
        """Wait until no scheduled work is running (tests; a graceful stop)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def stop(self, grace: float = 30.0) -> None:
        """Stop triggering; let running posts finish for up to `grace` seconds, then cancel them
        (a cancelled post is settled by the claims like a crash: never sent twice)."""
        if self._warmup is not None:
            self._warmup.cancel()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        try:
            await asyncio.wait_for(self.idle(), grace)
        except TimeoutError:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.runner.close()


def _job_id(key: tuple[str, str]) -> str:
    return f"digest {key[0]} {key[1]}"


async def start_scheduler(core: Core, posters: Sequence[Poster], **options: Any) -> DigestScheduler:
    """Start the daily refresh and posts for the given platform posters (one per platform);
    `options`: `sweep_seconds`, `startup_delay`, and the `DigestRunner` ones."""
    sweep = {k: options.pop(k) for k in ("sweep_seconds", "startup_delay") if k in options}
    scheduler = DigestScheduler(DigestRunner(core, posters, **options), **sweep)
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    await scheduler.start()
    return scheduler

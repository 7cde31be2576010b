"""The scheduler of `papers serve`: the daily refresh and every channel's daily post.

APScheduler only says "now"; whether a post goes out is decided by the claim rows of
`bot.posts.claims`, so restarts, crashes and extra processes never post twice. Blocking work (the
database, arXiv) runs in threads, never on the event loop.

    scheduler = await start_scheduler(core, [slack_poster, discord_poster])
    ...
    await scheduler.stop()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.commands.core import Core
from bot.posts import digest
from bot.posts.poster import Poster
from bot.posts.runner import DigestRunner
from bot.storage.db import read_session
from bot.timeparse import parse_hhmm

logger = logging.getLogger(__name__)

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
        for channel in rows:
            hhmm, zone = digest.digest_schedule(channel, settings)
            schedules.setdefault((hhmm, zone.key), set()).add(channel.id)
        return schedules

    async def _digest_job(self, key: tuple[str, str]) -> None:
        channels = self._schedules.get(key)
        if channels:
            self._spawn(self.runner.run_due(only=set(channels)))

    async def _refresh_job(self) -> None:
        if self._refresh is None or self._refresh.done():
            self._refresh = self._spawn(self._refresh_and_prune())

    async def _refresh_and_prune(self) -> None:
        if await self.runner.refresher.run():
            await self.runner.prune()  # housekeeping, once a day by the refresh's holder

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

"""The scheduler of `papers serve`: the daily refresh at FETCH_TIME (UTC), and a sweep every
30 seconds that posts whatever is due (a channel's post goes out within a sweep of its time,
a claim left by a dead process is taken over within its lease and a sweep).

APScheduler only says "now"; the claims of `bot.posts.claims` decide what goes out, so
restarts, crashes and extra processes never post twice.

    scheduler = await start_scheduler(core, [slack_poster, discord_poster])
    ...
    await scheduler.stop(grace=settings.shutdown_grace_seconds)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from datetime import UTC
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.commands.core import Core
from bot.posts.poster import Poster
from bot.posts.runner import DigestRunner
from bot.timeparse import parse_hhmm

logger = logging.getLogger(__name__)

MISFIRE_GRACE_SECONDS = 6 * 3600  # a refresh missed while the process was down still runs


class DigestScheduler:
    """Triggers the runner: the daily refresh (then pruning old claims) and the sweep."""

    def __init__(
        self, runner: DigestRunner, *, sweep_seconds: float = 30.0, startup_delay: float = 5.0
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
        self._tasks: set[asyncio.Task[Any]] = set()
        self._refresh: asyncio.Task[Any] | None = None
        self._warmup: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        hour, minute = parse_hhmm(self.runner.core.settings.fetch_time) or (1, 0)
        refresh_time = CronTrigger(hour=hour, minute=minute, timezone=UTC)
        self.scheduler.add_job(self._refresh_job, refresh_time, id="refresh")
        every = IntervalTrigger(seconds=self.sweep_seconds, timezone=UTC)
        self.scheduler.add_job(self._sweep, every, id="sweep")
        self.scheduler.start()
        if self.startup_delay > 0:  # the front ends get a moment to connect first
            loop = asyncio.get_running_loop()
            self._warmup = loop.call_later(self.startup_delay, lambda: self._spawn(self._sweep()))
        else:
            self._spawn(self._sweep())

    async def _refresh_job(self) -> None:
        if self._refresh is None or self._refresh.done():
            self._refresh = self._spawn(self._refresh_and_prune())

    async def _refresh_and_prune(self) -> None:
        if await self.runner.refresher.run():
            await self.runner.prune()  # housekeeping, once a day by the refresh's holder

    async def _sweep(self) -> None:
        await self._refresh_job()
        self._spawn(self.runner.run_due())

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
        """Wait until no scheduled work is running (tests)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def stop(self, grace: float = 20.0) -> None:
        """Stop triggering, then the runner's graceful stop: parts in flight get `grace`
        seconds, unfinished claims are handed back at once; other work (a refresh) is
        cancelled."""
        if self._warmup is not None:
            self._warmup.cancel()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await self.runner.stop(grace)
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=1.0)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self.runner.close()


async def start_scheduler(core: Core, posters: Sequence[Poster], **options: Any) -> DigestScheduler:
    """Start the daily refresh and posts for the given platform posters (one per platform);
    `options`: `sweep_seconds`, `startup_delay`, and the `DigestRunner` ones (lease_seconds,
    renew_seconds, max_concurrent, send_timeout, owner)."""
    sweep = {k: options.pop(k) for k in ("sweep_seconds", "startup_delay") if k in options}
    scheduler = DigestScheduler(DigestRunner(core, posters, **options), **sweep)
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    await scheduler.start()
    return scheduler

"""The scheduler of `papers serve`: APScheduler triggers a sweep every 30 seconds that starts
the daily refresh once its time has come (then prunes old claims) and a pass over the posts
that are due.

A post goes out within a sweep of its time; a claim left by a dead process is taken over
within its lease and a sweep. The loop only says "now": the claims of `bot.posts.claims`
decide what goes out, so restarts, crashes and extra processes never post twice.

    scheduler = await start_scheduler(core, [slack_poster, discord_poster])
    ...
    await scheduler.stop(grace=settings.shutdown_grace_seconds)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.arxiv.daily import Deployment
from bot.posts.poster import Poster
from bot.posts.runner import DigestRunner

logger = logging.getLogger(__name__)


class DigestScheduler:
    """Sweeps every `sweep_seconds`, the first after `startup_delay` (the front ends get a
    moment to connect; 0: at once)."""

    def __init__(
        self, runner: DigestRunner, *, sweep_seconds: float = 30.0, startup_delay: float = 5.0
    ) -> None:
        self.runner = runner
        self.sweep_seconds = sweep_seconds
        self.startup_delay = startup_delay
        self._tasks: set[asyncio.Task[Any]] = set()
        self._refresh: asyncio.Task[Any] | None = None
        # Only the trigger: a late or missed sweep is simply the next one (coalesced), and
        # whether a post goes out is the claims' decision, not the scheduler's.
        self._trigger = AsyncIOScheduler(
            timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1}
        )

    def start(self) -> None:
        if self.startup_delay <= 0:
            self.sweep()
        first = datetime.now(UTC) + timedelta(seconds=self.startup_delay or self.sweep_seconds)
        every = IntervalTrigger(seconds=self.sweep_seconds, start_date=first, timezone=UTC)
        self._trigger.add_job(self._sweep_job, every, id="sweep", misfire_grace_time=None)
        self._trigger.start()

    async def _sweep_job(self) -> None:
        self.sweep()  # on the event loop: it only spawns tasks

    def sweep(self) -> None:
        """The daily refresh (which runs once a day across processes) unless it is running,
        and a pass over the due posts (each pass takes only claims that are free)."""
        if self._refresh is None or self._refresh.done():
            self._refresh = self._spawn(self._refresh_and_prune())
        self._spawn(self.runner.run_due())

    async def _refresh_and_prune(self) -> None:
        if await self.runner.refresher.run():
            await self.runner.prune()  # housekeeping, once a day by the refresh's holder

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
        """No more sweeps, then the runner's graceful stop: parts in flight get `grace`
        seconds, unfinished claims are handed back at once; a refresh running is cancelled."""
        if self._trigger.running:
            self._trigger.shutdown(wait=False)
        await self.runner.stop(grace)
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=1.0)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self.runner.close()


async def start_scheduler(
    core: Deployment, posters: Sequence[Poster], **options: Any
) -> DigestScheduler:
    """Start the daily refresh and posts for the given platform posters (one per platform);
    `options`: `sweep_seconds`, `startup_delay`, and the `DigestRunner` ones (owner,
    lease_seconds, renew_seconds, max_concurrent, send_timeout)."""
    sweep = {k: options.pop(k) for k in ("sweep_seconds", "startup_delay") if k in options}
    scheduler = DigestScheduler(DigestRunner(core, posters, **options), **sweep)
    scheduler.start()
    return scheduler

"""What both chat front ends put around `Core.execute`: its threads, the commands in flight, the
drain at shutdown and the platform's answer window. One instance serves Slack and Discord."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from bot.commands.core import Core, Place
from bot.commands.grammar import Add, Command, Fetch, Preview
from bot.replies import Reply, Text, error

logger = logging.getLogger("papers.commands")
T = TypeVar("T")

# Commands that may wait on arXiv (and on the deployment-wide pacer in front of it): they run in
# threads of their own, so that `list` never queues behind a slow fetch.
SLOW_COMMANDS = (Add, Fetch, Preview)
# A command the core answers this quick is answered at once, visible as the answer says;
# otherwise the platform is told "working on it" first (Slack ack note, Discord deferral).
QUICK_SECONDS = 1.0
# Measured with bench_slack_ack: more threads only contend with the event loop for the GIL.
QUICK_THREADS = 2
ARXIV_THREADS = 8
SORRY = "Sorry, that failed on our side; it has been logged. Please try again in a minute."
REPEATED = "You sent that command a moment ago; it runs once."


@dataclass(frozen=True)
class Deadline:
    """The end of a platform's window for answering one command (Discord: its interaction token)."""

    at: datetime

    @classmethod
    def after(cls, start: datetime, window: timedelta) -> Deadline:
        return cls(start + window)

    @property
    def passed(self) -> bool:
        return datetime.now(UTC) >= self.at


class CommandService:
    """Runs commands and front-end questions off the event loop, in two pools of its own.

    The loop's default executor stays free for /healthz and the scheduler, however many
    commands wait on arXiv. `track()` marks a handler as in flight; `drain()` waits for them.
    """

    def __init__(
        self, core: Core, *, quick_threads: int = QUICK_THREADS, arxiv_threads: int = ARXIV_THREADS
    ) -> None:
        self.core = core
        self._quick = ThreadPoolExecutor(quick_threads, thread_name_prefix="papers-cmd")
        self._arxiv = ThreadPoolExecutor(arxiv_threads, thread_name_prefix="papers-arxiv")
        self._inflight: set[asyncio.Task[Any]] = set()

    def close(self) -> None:
        self._quick.shutdown(wait=False, cancel_futures=True)
        self._arxiv.shutdown(wait=False, cancel_futures=True)

    # -- running --------------------------------------------------------------------

    def start(
        self, place: Place, command: Command, *, delivery: str | None = None
    ) -> asyncio.Future[list[Reply]]:
        """The command in its pool, once (`Core.once`): a redelivery answers nothing (the first
        delivery does), a second submit a note. An unexpected error is logged and becomes an
        apology."""
        pool = self._arxiv if isinstance(command, SLOW_COMMANDS) else self._quick
        run = functools.partial(_execute, self.core, place, command, delivery)
        return asyncio.get_running_loop().run_in_executor(pool, run)

    async def execute(
        self, place: Place, command: Command, *, delivery: str | None = None
    ) -> list[Reply]:
        return await self.start(place, command, delivery=delivery)

    @staticmethod
    async def settled(work: asyncio.Future[T], seconds: float | None = None) -> bool:
        """Whether `work` finished within `seconds` (QUICK_SECONDS); it keeps running if not."""
        limit = QUICK_SECONDS if seconds is None else seconds
        done, _ = await asyncio.wait({work}, timeout=limit)
        return bool(done)

    async def ask(self, question: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A quick question to the core (a paper, a channel's labels, a claim) in the quick pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._quick, functools.partial(question, *args, **kwargs))

    # -- in flight --------------------------------------------------------------------

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        """The current handler is in flight until the block ends (its answer delivered)."""
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._inflight.discard(task)

    @property
    def inflight(self) -> int:
        return sum(1 for task in self._inflight if not task.done())

    async def drain(self, timeout: float) -> None:
        """Let the handlers in flight answer for up to `timeout` seconds; cancel the late ones."""
        pending = [task for task in self._inflight if not task.done()]
        if not pending:
            return
        _done, late = await asyncio.wait(pending, timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            logger.warning("%d command(s) still running at shutdown were cancelled", len(late))


def _execute(core: Core, place: Place, command: Command, delivery: str | None) -> list[Reply]:
    try:
        seen = core.once(place, command, delivery=delivery)
        if seen != "new":
            return [Text(REPEATED, ephemeral=True)] if seen == "repeated" else []
        return core.execute(place, command)
    except Exception:
        logger.exception(
            "/papers %s failed",
            type(command).__name__.lower(),
            extra={"workspace": place.workspace, "channel": place.channel},
        )
        note = " The fetch may still have run." if isinstance(command, Fetch) else ""
        return [error(SORRY + note)]

"""`papers serve`: every configured front end, the scheduler and /healthz in one event loop.

What starts, in order (`run`): the chat front ends the settings enable (sharing one command
service), the HTTP listener (/healthz, the private feeds, and Slack's routes in HTTP mode), the
scheduler (daily refresh and daily posts), then each front end's connection. SIGTERM or Ctrl-C
stops them in reverse order: no new requests, daily posts in flight get SHUTDOWN_GRACE_SECONDS
and unfinished claims are handed back, commands in flight finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from aiohttp import web

from adapters import composition, feeds
from adapters.composition import FrontEnd
from bot.commands.core import Core
from bot.config import Settings

logger = logging.getLogger("papers.serve")

NO_FRONT_END = (
    "no chat front end configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET "
    "(or SLACK_APP_TOKEN for Socket Mode) for Slack, DISCORD_BOT_TOKEN for Discord"
)


def serve(settings: Settings) -> int:
    """Run until SIGTERM or Ctrl-C; returns the process exit code."""
    core = composition.build_core(settings)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C before the signal handlers are set
        asyncio.run(run(core))
    return 0


async def run(core: Core, *, stop: asyncio.Event | None = None) -> None:
    """Start everything, wait for `stop` (or SIGINT/SIGTERM), then shut down in reverse order."""
    settings = core.settings
    stop = stop or _stop_on_signals()
    service = composition.build_service(core)
    front_ends = composition.build_front_ends(core, service)
    if not front_ends:
        logger.info(NO_FRONT_END)
    runner, site = await _start_listener(core, front_ends)
    scheduler = await composition.start_scheduler(core, [fe.poster for fe in front_ends])
    try:
        for front_end in front_ends:
            await front_end.start()
        await stop.wait()
    finally:
        # No new requests first, then let the scheduler and the front ends finish what is in flight.
        await site.stop()
        await scheduler.stop(settings.shutdown_grace_seconds)
        for front_end in reversed(front_ends):
            with contextlib.suppress(Exception):
                await front_end.stop()
        service.close()
        await runner.cleanup()
        core.engine.dispose()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def _start_listener(
    core: Core, front_ends: list[FrontEnd]
) -> tuple[web.AppRunner, web.TCPSite]:
    """The HTTP listener on HOST:PORT: /healthz, /feeds/<token>.atom and whatever routes the
    front ends mount."""
    app = web.Application()
    app.router.add_get("/healthz", health_handler(core, front_ends))
    feeds.mount(app, core)
    for front_end in front_ends:
        front_end.mount(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, core.settings.host, core.settings.port)
    await site.start()
    logger.info("listening on http://%s:%d (/healthz)", core.settings.host, core.settings.port)
    return runner, site


def health_handler(core: Core, front_ends: list[FrontEnd]) -> Any:
    """GET /healthz: 200 while the database answers and every front end is up, else 503."""

    async def healthz(_request: web.Request) -> web.Response:
        from bot.health import health_report

        statuses = [await front_end.status() for front_end in front_ends]
        report = await asyncio.to_thread(health_report, core, statuses)
        return web.json_response(report, status=200 if report["status"] == "ok" else 503)

    return healthz

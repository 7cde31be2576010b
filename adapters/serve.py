"""`papers serve`: every configured front end, the scheduler and /healthz in one event loop.

What starts, in order (`run`): the chat front ends the settings enable, the HTTP listener
(/healthz, and Slack's routes in HTTP mode), the scheduler (daily refresh and daily posts), then
each front end's connection. SIGTERM or Ctrl-C stops them in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from aiohttp import web

from adapters import composition
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
    front_ends = composition.build_front_ends(core)
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
    """The HTTP listener on HOST:PORT: /healthz and whatever routes the front ends mount."""
    app = web.Application()
    app.router.add_get("/healthz", health_handler(core))
    for front_end in front_ends:
        front_end.mount(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, core.settings.host, core.settings.port)
    await site.start()
    logger.info("listening on http://%s:%d (/healthz)", core.settings.host, core.settings.port)
    return runner, site


def health_handler(core: Core) -> Any:
    async def healthz(_request: web.Request) -> web.Response:
        from bot.health import health_report

        report = await asyncio.to_thread(health_report, core)
        return web.json_response(report, status=200 if report["database"] == "ok" else 503)

    return healthz

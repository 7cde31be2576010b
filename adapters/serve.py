"""`papers serve`: every configured front end, the scheduler and /healthz in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from aiohttp import web

from adapters import feeds
from bot.commands.core import Core
from bot.config import Settings

logger = logging.getLogger("papers.serve")


def serve(settings: Settings) -> int:
    """Run until interrupted; returns the process exit code."""
    from adapters.cli import make_core

    core = make_core(settings)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(core))
    return 0


async def run(core: Core, *, stop: asyncio.Event | None = None) -> None:
    """Start everything, wait for `stop` (or SIGINT/SIGTERM), then shut down in reverse order."""
    settings = core.settings
    stop = stop or _stop_on_signals()
    app = web.Application()
    app.router.add_get("/healthz", health_handler(core))
    feeds.mount(app, core)  # /feeds/<token>.atom
    front_ends: list[Any] = []

    if settings.slack_enabled:
        from adapters.slack.app import SlackFrontEnd

        front_ends.append(SlackFrontEnd(core))
    if settings.discord_enabled:
        from adapters.discord.bot import DiscordFrontEnd

        front_ends.append(DiscordFrontEnd(core))
    if not front_ends:
        logger.info(
            "no chat front end configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET "
            "(or SLACK_APP_TOKEN for Socket Mode) for Slack, DISCORD_BOT_TOKEN for Discord"
        )
    for front_end in front_ends:
        front_end.mount(app)

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    logger.info("listening on http://%s:%d (/healthz)", settings.host, settings.port)

    from bot.posts.schedule import start_scheduler

    scheduler = await start_scheduler(core, [fe.poster for fe in front_ends])
    try:
        for front_end in front_ends:
            await front_end.start()
        await stop.wait()
    finally:
        # No new requests first, then let the front ends finish what is in flight.
        await site.stop()
        await scheduler.stop(grace=settings.shutdown_grace_seconds)
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


def health_handler(core: Core) -> Any:
    async def healthz(_request: web.Request) -> web.Response:
        from bot.health import health_report

        report = await asyncio.to_thread(health_report, core)
        return web.json_response(report, status=200 if report["database"] == "ok" else 503)

    return healthz

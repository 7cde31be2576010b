"""The composition root: the one place that builds the settings, the engine, the arXiv gateway,
the core, the chat front ends and the scheduler. `papers` (cli.py) and `papers serve`
(serve.py) call it; nothing else constructs these parts.

Each part's library is imported inside the function that builds it, so a terminal command pays
only for what it uses: `papers list` never loads arxiv, requests, Alembic, a chat SDK or
APScheduler (bench/bench_startup.py measures it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from aiohttp import web
    from sqlalchemy import Engine

    from adapters.command_service import CommandService
    from bot.arxiv.gateway import ArxivGateway
    from bot.commands.core import Core
    from bot.config import Settings
    from bot.health import FrontEndStatus
    from bot.posts.poster import Poster
    from bot.posts.schedule import DigestScheduler


class FrontEnd(Protocol):
    """What `papers serve` does with a chat front end (Slack, Discord)."""

    @property
    def poster(self) -> Poster: ...

    def mount(self, app: web.Application) -> None: ...

    async def start(self) -> None: ...

    async def status(self) -> FrontEndStatus: ...

    async def stop(self) -> None: ...


def build_settings() -> Settings:
    """The process's settings: the environment over `.env`; ConfigError names a bad variable."""
    from bot.config import load_settings

    return load_settings()


def build_engine(settings: Settings, *, upgrade: bool = True) -> Engine:
    """The database engine, its schema brought up to date (one query when it already is)
    unless `upgrade` is False (`papers db`: a backup copies the database as it is)."""
    from bot.storage.db import ensure_schema, make_engine

    engine = make_engine(settings.database_url)
    if upgrade:
        ensure_schema(engine)
    return engine


def build_gateway(settings: Settings, engine: Engine) -> ArxivGateway:
    """The process's one arXiv gateway (`engine`: for the pacer every process on the database
    shares, SPEC section 4)."""
    from bot.arxiv.gateway import ArxivGateway

    return ArxivGateway(settings, engine)


def build_core(settings: Settings, *, fetch_on_demand: bool = False) -> Core:
    """The core on a ready database. `fetch_on_demand` (terminal commands): the arXiv gateway
    is built when a command first fetches, so `list` and `readme` never import its libraries."""
    from bot.commands.core import Core

    engine = build_engine(settings)

    def gateway() -> ArxivGateway:
        return build_gateway(settings, engine)

    if fetch_on_demand:
        return Core(settings, engine, cast("ArxivGateway", _Deferred(gateway)))
    return Core(settings, engine, gateway())


def build_service(core: Core) -> CommandService:
    """The one service both chat front ends run commands through (its thread pools: one
    policy for the process, so a burst of commands waiting on arXiv starves nothing else)."""
    from adapters.command_service import CommandService

    return CommandService(core)


def build_front_ends(core: Core, service: CommandService) -> list[FrontEnd]:
    """Slack and Discord, each when its variables are set (its SDK is imported only then)."""
    front_ends: list[FrontEnd] = []
    if core.settings.slack_enabled:
        from adapters.slack.app import SlackFrontEnd

        front_ends.append(SlackFrontEnd(core, service=service))
    if core.settings.discord_enabled:
        from adapters.discord.bot import DiscordFrontEnd

        front_ends.append(DiscordFrontEnd(core, service=service))
    return front_ends


async def start_scheduler(core: Core, posters: Sequence[Poster]) -> DigestScheduler:
    """The daily refresh and every channel's daily post, through the given platform posters."""
    from bot.posts.schedule import start_scheduler

    return await start_scheduler(core, posters)


class _Deferred:
    """Stands in for an object until it is first used, then builds it and passes every
    attribute through (the gateway: arxiv and requests cost 0.1-0.2 s to import)."""

    def __init__(self, build: Callable[[], object]) -> None:
        self._build = build
        self._built: object | None = None

    def __getattr__(self, name: str) -> Any:
        if self._built is None:
            self._built = self._build()
        return getattr(self._built, name)

"""`DiscordFrontEnd`: what `papers serve` starts for Discord.

    fe = DiscordFrontEnd(core)
    fe.mount(app)        # nothing: interactions arrive over the gateway, not HTTP
    await fe.start()     # log in (commands synced in setup_hook), gateway as a background task
    fe.poster            # DiscordPoster, for the daily posts
    await fe.stop()      # let answers in flight finish, disconnect

It composes the client (`client.py`), the /papers group and its answers (`interactions.py`)
and the poster (`poster.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import discord
from aiohttp import web

from adapters.discord.client import make_client, redirect, restore
from adapters.discord.interactions import PLATFORM, Interactions, PapersTree
from adapters.discord.poster import DiscordPoster
from bot.commands.core import Core
from bot.config import ConfigError
from bot.storage import store
from bot.storage.db import write_session

logger = logging.getLogger("papers.discord")


class DiscordFrontEnd:
    """The Discord front end of `papers serve`."""

    def __init__(self, core: Core, *, client: discord.Client | None = None) -> None:
        self.core = core
        self.settings = core.settings
        if self.settings.discord_bot_token is None:
            raise ConfigError("DISCORD_BOT_TOKEN is missing")
        self.client = client or make_client(self.settings)
        self.client.hooks = self  # type: ignore[attr-defined]  # setup_hook, on_guild_remove
        self.interactions = Interactions(core)
        self.tree = PapersTree(self.client)
        guild_id = self.settings.discord_guild_id
        self.guild = discord.Object(guild_id) if guild_id else None
        self.tree.add_command(self.interactions.group, guild=self.guild)
        self.logged_in = asyncio.Event()
        self.poster = DiscordPoster(self.client, self.logged_in)
        self._gateway: asyncio.Task[None] | None = None
        self._redirected: list[tuple[type, str, Any]] = []

    def mount(self, app: web.Application) -> None:
        """Discord needs no HTTP route: interactions arrive over the gateway."""

    async def start(self) -> None:
        """Log in (which syncs the commands), then run the gateway in the background."""
        self._redirected = redirect(self.settings)
        token = self.settings.discord_bot_token
        assert token is not None
        await self.client.login(token.get_secret_value())
        self.logged_in.set()
        self._gateway = asyncio.create_task(self._connect(), name="discord-gateway")
        logger.info("Discord: logged in as %s", self.client.user)

    async def _connect(self) -> None:
        # discord.py reconnects (RESUME or a new IDENTIFY) by itself; this ends on close()
        # or on a failure it cannot recover from (a revoked token, say).
        try:
            await self.client.connect(reconnect=True)
        except Exception:
            logger.exception("Discord gateway stopped; /papers commands are not answered")

    async def stop(self, *, grace_seconds: float = 10.0) -> None:
        """Let the commands in flight answer (up to `grace_seconds`), then disconnect."""
        await self.interactions.drain(grace_seconds)
        await self.client.close()
        if self._gateway is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._gateway, 10)
        self.logged_in.clear()
        restore(self._redirected)
        self._redirected = []

    async def sync_commands(self) -> None:
        """Register /papers (globally, or to DISCORD_GUILD_ID at once); from `setup_hook`."""
        where = f"guild {self.guild.id}" if self.guild else "all servers"
        try:
            synced = await self.tree.sync(guild=self.guild)
        except discord.HTTPException as exc:
            logger.error(
                "Discord: registering /papers for %s failed (%s); is the bot in that server "
                "with the applications.commands scope? See the invite URL in the README.",
                where,
                exc,
            )
            return
        logger.info("Discord: registered %s for %s", [c.name for c in synced], where)

    async def guild_removed(self, guild_id: int) -> None:
        """The bot left or was removed: the guild's channels stop (their data stays)."""

        def deactivate() -> int:
            with write_session(self.core.engine) as session:
                return store.deactivate_workspace(
                    session, platform=PLATFORM, external_id=str(guild_id)
                )

        try:
            stopped = await asyncio.to_thread(deactivate)
        except Exception:
            logger.exception("Discord: could not deactivate guild %s", guild_id)
            return
        logger.info("Discord: left guild %s; %d channel(s) deactivated", guild_id, stopped)

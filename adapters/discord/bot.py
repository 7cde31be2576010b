"""`DiscordFrontEnd`: what `papers serve` starts for Discord.

    fe = DiscordFrontEnd(core, service=service)  # service: the process's CommandService
    fe.mount(app)        # nothing: interactions arrive over the gateway, not HTTP
    await fe.start()     # log in (commands synced in setup_hook), gateway as a background task
    fe.poster            # DiscordPoster, for the daily posts
    await fe.status()    # for /healthz
    await fe.stop()      # let answers in flight finish, disconnect

It composes the client (`client.py`, built with this front end as its handlers), the /papers
group and its answers (`interactions.py`) and the poster (`poster.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import discord
from aiohttp import web
from discord import app_commands

from adapters.command_service import CommandService
from adapters.discord.buttons import AbstractButton, SaveButton
from adapters.discord.client import make_client
from adapters.discord.interactions import PLATFORM, Interactions, PapersTree
from adapters.discord.poster import DiscordPoster
from adapters.discord.saves import SaveButtons
from bot.commands.core import Core, Place
from bot.config import ConfigError
from bot.health import FrontEndStatus

logger = logging.getLogger("papers.discord")


class DiscordFrontEnd:
    """The Discord front end of `papers serve`.

    `client_options` are further discord.py client options (tests pass `guild_ready_timeout`).
    Without `service` the front end makes and closes a CommandService of its own.
    """

    def __init__(
        self,
        core: Core,
        *,
        service: CommandService | None = None,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        self.core = core
        self.settings = core.settings
        if self.settings.discord_bot_token is None:
            raise ConfigError("DISCORD_BOT_TOKEN is missing")
        self._owns_service = service is None
        self.service = service or CommandService(core)
        self.interactions = Interactions(self.service)
        self.saves = SaveButtons(self.service)
        guild_id = self.settings.discord_guild_id
        self.guild = discord.Object(guild_id) if guild_id else None
        self.client = make_client(self.settings, self, **(client_options or {}))
        self.logged_in = asyncio.Event()
        self.poster = DiscordPoster(self.client, self.logged_in)
        self._gateway: asyncio.Task[None] | None = None

    def mount(self, app: web.Application) -> None:
        """Discord needs no HTTP route: interactions arrive over the gateway."""

    async def start(self) -> None:
        """Log in (which syncs the commands), then run the gateway in the background."""
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

    async def status(self) -> FrontEndStatus:
        """For /healthz: up while the gateway connection runs and is ready."""
        if self._gateway is None or self._gateway.done() or self.client.is_closed():
            return FrontEndStatus(PLATFORM, up=False, detail="gateway stopped")
        if not self.client.is_ready():
            return FrontEndStatus(PLATFORM, up=False, detail="gateway connecting")
        return FrontEndStatus(PLATFORM, up=True)

    async def stop(self) -> None:
        """Let the commands in flight answer (up to SHUTDOWN_GRACE_SECONDS), then disconnect."""
        await self.service.drain(self.settings.shutdown_grace_seconds)
        await self.client.close()
        if self._gateway is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._gateway, 10)
        self.logged_in.clear()
        if self._owns_service:
            self.service.close()

    # -- what the client hands over (client.Handlers) -----------------------------------

    def tree_for(self, client: discord.Client) -> app_commands.CommandTree[Any]:
        tree = PapersTree(client)
        tree.add_command(self.interactions.group, guild=self.guild)
        # Save and Abstract presses, whenever the message was sent
        client.add_dynamic_items(SaveButton, AbstractButton)
        return tree

    async def sync_commands(self, tree: app_commands.CommandTree[Any]) -> None:
        """Register /papers (globally, or to DISCORD_GUILD_ID at once); from `setup_hook`."""
        where = f"guild {self.guild.id}" if self.guild else "all servers"
        try:
            synced = await tree.sync(guild=self.guild)
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
        try:
            stopped = await self.service.ask(self.core.leave_workspace, PLATFORM, str(guild_id))
        except Exception:
            logger.exception("Discord: could not deactivate guild %s", guild_id)
            return
        logger.info("Discord: left guild %s; %d channel(s) deactivated", guild_id, stopped)

    async def save_pressed(self, interaction: discord.Interaction, arxiv_id: str) -> None:
        """A Save button under a paper was pressed (buttons.py)."""
        await self.saves.pressed(interaction, arxiv_id)

    async def abstract_pressed(self, interaction: discord.Interaction, arxiv_id: str) -> None:
        """An Abstract button under a compact post was pressed (buttons.py)."""
        await self.saves.abstract(interaction, arxiv_id)

    async def channel_deleted(self, guild_id: int, channel_id: int) -> None:
        """A channel was deleted: it stops at once, not after three failed daily posts."""
        place = Place(PLATFORM, str(guild_id), str(channel_id))
        try:
            known = await self.service.ask(self.core.leave_channel, place)
        except Exception:
            logger.exception("Discord: could not stop deleted channel %s", channel_id)
            return
        if known:
            logger.info("Discord: channel %s of guild %s deleted; stopped", channel_id, guild_id)

"""`DiscordFrontEnd`: the discord.py client, the /papers group and the answers to interactions.

`papers serve` uses it as `fe = DiscordFrontEnd(core)`, `fe.mount(app)`, `await fe.start()`
(logs in, syncs the commands in `setup_hook`, runs the gateway as a background task),
`fe.poster` for the daily posts, and `await fe.stop()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Callable
from typing import Any

import discord
import yarl
from aiohttp import web
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord.commands import Choices, papers_group, usage_lines
from adapters.discord.format import Message, format_replies, help_message
from adapters.discord.poster import DiscordPoster
from bot import store
from bot.commands import (
    MANAGER_COMMANDS,
    BadInput,
    Command,
    DigestAt,
    DigestOff,
    Fetch,
    Help,
    Keywords,
    Remove,
)
from bot.config import ConfigError, Settings
from bot.core import Core, Place
from bot.db import read_session, write_session
from bot.replies import Reply, Text, error

logger = logging.getLogger("papers.discord")

NO_MENTIONS = discord.AllowedMentions.none()
PLATFORM = "discord"
# Commands answered in one response when the core is this quick; slower ones are deferred.
QUICK_COMMANDS = (Keywords, Remove, DigestAt, DigestOff)
QUICK_SECONDS = 1.0
DM_REFUSAL = (
    "The /papers commands work in a server's text channel, where keywords are followed; "
    "not in direct messages. Run them in a channel of a server the bot is in."
)
NOT_MANAGER = (
    "Only members with Manage Server or Manage Channels can do that here. "
    "Anyone can use `/papers keywords`, `/papers list`, `/papers readme` and `/papers help`."
)
APOLOGY = "Sorry, something went wrong on our side; it has been logged. Please try again later."


class _PapersHooks:
    """discord.py calls these on the client; they hand over to the front end."""

    front_end: DiscordFrontEnd

    async def setup_hook(self) -> None:
        await self.front_end.sync_commands()

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        await self.front_end.guild_removed(guild.id)


class PapersClient(_PapersHooks, discord.Client):
    """One gateway connection."""


class ShardedPapersClient(_PapersHooks, discord.AutoShardedClient):
    """The shards in DISCORD_SHARD_IDS of DISCORD_SHARD_COUNT (or all of them)."""


class PapersTree(app_commands.CommandTree):
    """Refuses DMs before any option is read; turns unexpected errors into an apology."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        if interaction.guild_id is not None:
            return True
        if interaction.type is discord.InteractionType.autocomplete:
            await interaction.response.autocomplete([])
        else:
            await interaction.response.send_message(
                DM_REFUSAL, ephemeral=True, allowed_mentions=NO_MENTIONS
            )
        return False

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError, /
    ) -> None:
        logger.error(
            "/papers failed in guild %s channel %s",
            interaction.guild_id,
            interaction.channel_id,
            exc_info=error,
        )
        with contextlib.suppress(Exception):  # the last word: never an error of its own
            if interaction.response.is_done():
                await interaction.followup.send(
                    APOLOGY, ephemeral=True, allowed_mentions=NO_MENTIONS
                )
            else:
                await interaction.response.send_message(
                    APOLOGY, ephemeral=True, allowed_mentions=NO_MENTIONS
                )


def make_client(settings: Settings, **overrides: Any) -> discord.Client:
    """A plain client, or an auto-sharded one when DISCORD_SHARD_IDS / DISCORD_SHARD_COUNT say so.

    `overrides` are further discord.py client options (tests pass `guild_ready_timeout`).
    """
    # The bot never joins voice: no start-up warnings about voice libraries it does not need.
    discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
    intents = discord.Intents.none()
    intents.guilds = True  # guild joins/leaves and the channel cache; no privileged intents
    options: dict[str, Any] = {
        "intents": intents,
        "allowed_mentions": NO_MENTIONS,
        "member_cache_flags": discord.MemberCacheFlags.none(),
        "chunk_guilds_at_startup": False,
        **overrides,
    }
    ids, count = settings.discord_shard_ids, settings.discord_shard_count
    if ids is None and count is None:
        return PapersClient(**options)
    if ids is not None and count is None:
        raise ConfigError("DISCORD_SHARD_IDS is set but DISCORD_SHARD_COUNT is missing")
    if ids is not None and count is not None and any(i >= count for i in ids):
        raise ConfigError(
            f"DISCORD_SHARD_IDS must be below DISCORD_SHARD_COUNT ({count}), got {list(ids)}"
        )
    if ids is not None:
        options["shard_ids"] = list(ids)
    return ShardedPapersClient(shard_count=count, **options)


def is_manager(interaction: discord.Interaction) -> bool:
    """Manage Server or Manage Channels here (the channel-resolved permissions Discord sends)."""
    perms = interaction.permissions
    return perms.administrator or perms.manage_guild or perms.manage_channels


def place_of(interaction: discord.Interaction) -> Place:
    guild = interaction.guild
    return Place(
        platform=PLATFORM,
        workspace_id=str(interaction.guild_id),
        channel_id=str(interaction.channel_id),
        user_id=str(interaction.user.id),
        is_manager=is_manager(interaction),
        workspace_name=guild.name if guild is not None else "",
    )


class DiscordFrontEnd:
    """The Discord front end of `papers serve`."""

    def __init__(self, core: Core, *, client: discord.Client | None = None) -> None:
        self.core = core
        self.settings = core.settings
        if self.settings.discord_bot_token is None:
            raise ConfigError("DISCORD_BOT_TOKEN is missing")
        self.client = client or make_client(self.settings)
        if isinstance(self.client, _PapersHooks):
            self.client.front_end = self
        self.tree = PapersTree(self.client)
        self.group = papers_group(self)
        self.guild = (
            discord.Object(self.settings.discord_guild_id)
            if self.settings.discord_guild_id
            else None
        )
        self.tree.add_command(self.group, guild=self.guild)
        self.logged_in = asyncio.Event()
        self.poster = DiscordPoster(self.client, self.logged_in)
        self._task: asyncio.Task[None] | None = None
        self._restore: list[tuple[type, str, Any]] = []
        self._inflight: set[asyncio.Task[Any]] = set()

    # -- lifecycle ------------------------------------------------------------

    def mount(self, app: web.Application) -> None:
        """Discord needs no HTTP route: interactions arrive over the gateway."""

    async def start(self) -> None:
        """Log in (which syncs the commands), then run the gateway in the background."""
        self._redirect()
        token = self.settings.discord_bot_token
        assert token is not None
        await self.client.login(token.reveal())
        self.logged_in.set()
        self._task = asyncio.create_task(self._connect(), name="discord-gateway")
        logger.info("Discord: logged in as %s", self.client.user)

    async def _connect(self) -> None:
        try:
            await self.client.connect(reconnect=True)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Discord gateway stopped; /papers commands are not answered")

    async def stop(self, *, grace_seconds: float = 10.0) -> None:
        """Let the commands in flight answer (up to `grace_seconds`), then disconnect."""
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=grace_seconds)
        await self.client.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._task, 10)
        self.logged_in.clear()
        while self._restore:
            owner, name, value = self._restore.pop()
            setattr(owner, name, value)

    def _redirect(self) -> None:
        """DISCORD_API_URL / DISCORD_GATEWAY_URL: discord.py reads these two class attributes."""
        targets: list[tuple[type, str, Any]] = []
        if self.settings.discord_api_url:
            targets.append((Route, "BASE", self.settings.discord_api_url.rstrip("/")))
        if self.settings.discord_gateway_url:
            targets.append(
                (DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(self.settings.discord_gateway_url))
            )
        for owner, name, value in targets:
            self._restore.append((owner, name, getattr(owner, name)))
            setattr(owner, name, value)

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

    # -- interactions ---------------------------------------------------------

    async def run(self, interaction: discord.Interaction, make: Callable[[], Command]) -> None:
        """Validate, check permissions, execute in a thread, answer (deferring slow work)."""
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        try:
            command = make()
        except BadInput as exc:
            await self._answer(interaction, [error(str(exc))], deferred=False)
            return
        if isinstance(command, MANAGER_COMMANDS) and not is_manager(interaction):
            await self._answer(interaction, [error(NOT_MANAGER)], deferred=False)
            return
        if isinstance(command, Help):
            await self._send(interaction, help_message(usage_lines(self.group)), first=True)
            return
        work = asyncio.ensure_future(self._execute(place_of(interaction), command))
        deferred = False
        if isinstance(command, QUICK_COMMANDS):
            await asyncio.wait({work}, timeout=QUICK_SECONDS)
        if not work.done():
            try:
                await interaction.response.defer(thinking=True)
            except discord.HTTPException as exc:  # too late (10062) or Discord trouble
                logger.warning(
                    "Discord: could not defer /papers in guild %s channel %s: %s",
                    interaction.guild_id,
                    interaction.channel_id,
                    exc,
                )
                await work  # the command still completes; there is no one left to tell
                return
            deferred = True
        await self._answer(interaction, await work, deferred=deferred)

    async def _execute(self, place: Place, command: Command) -> list[Reply]:
        try:
            return await asyncio.to_thread(self.core.execute, place, command)
        except Exception:
            logger.exception(
                "/papers %s failed in guild %s channel %s",
                type(command).__name__.lower(),
                place.workspace_id,
                place.channel_id,
            )
            note = " The fetch may still have run." if isinstance(command, Fetch) else ""
            return [error(APOLOGY + note)]

    async def _answer(
        self, interaction: discord.Interaction, replies: list[Reply], *, deferred: bool
    ) -> None:
        messages = format_replies(replies) or format_replies([Text("Done.")])
        messages = [self._within_upload_limit(interaction, m) for m in messages]
        if deferred and messages[0].ephemeral:
            # The first follow-up after a deferral becomes the (public) "thinking" message;
            # remove that one so the ephemeral answer is a message of its own.
            with contextlib.suppress(discord.HTTPException):
                await interaction.delete_original_response()
        for index, message in enumerate(messages):
            await self._send(interaction, message, first=index == 0 and not deferred)

    @staticmethod
    def _within_upload_limit(interaction: discord.Interaction, message: Message) -> Message:
        limit = getattr(interaction, "filesize_limit", None)
        if message.file is None or not limit or len(message.file.data) <= limit:
            return message
        size = len(message.file.data) / 1e6
        return format_replies(
            [
                error(
                    f"{message.file.filename} is {size:.1f} MB, over this server's upload "
                    f"limit of {limit / 1e6:.0f} MB. `/papers readme` in one channel exports "
                    "fewer keywords."
                )
            ]
        )[0]

    async def _send(
        self, interaction: discord.Interaction, message: Message, *, first: bool
    ) -> None:
        kwargs: dict[str, Any] = {
            "embeds": list(message.embeds),
            "ephemeral": message.ephemeral,
            "allowed_mentions": NO_MENTIONS,
        }
        if message.content:
            kwargs["content"] = message.content
        if message.file is not None:
            kwargs["file"] = discord.File(
                io.BytesIO(message.file.data), filename=message.file.filename
            )
        try:
            if first:
                await interaction.response.send_message(**kwargs)
            else:
                await interaction.followup.send(**kwargs)
        except discord.HTTPException:
            logger.exception(
                "Discord: answering /papers failed in guild %s channel %s",
                interaction.guild_id,
                interaction.channel_id,
            )

    async def keyword_choices(self, interaction: discord.Interaction, current: str) -> Choices:
        """Autocomplete: this channel's keywords containing what is typed, prefix matches first."""
        if interaction.guild_id is None or interaction.channel_id is None:
            return []
        labels = await asyncio.to_thread(
            self._channel_labels, str(interaction.guild_id), str(interaction.channel_id)
        )
        typed = current.strip().casefold()
        starts = [label for label in labels if label.casefold().startswith(typed)]
        within = [label for label in labels if typed in label.casefold() and label not in starts]
        return [app_commands.Choice(name=label, value=label) for label in (starts + within)[:25]]

    def _channel_labels(self, guild_id: str, channel_id: str) -> list[str]:
        with read_session(self.core.engine) as session:
            workspace = store.find_workspace(session, platform=PLATFORM, external_id=guild_id)
            if workspace is None:
                return []
            channel = store.find_channel(session, workspace=workspace, external_id=channel_id)
            if channel is None:
                return []
            return [s.label for s, _ in store.channel_subscriptions(session, channel)]

"""Answering /papers interactions: checks, the core in a thread, deferral, ephemeral errors."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Callable
from typing import Any

import discord
from discord import app_commands

from adapters.discord.commands import Choices, papers_group, usage_lines
from adapters.discord.format import NO_MENTIONS, Message, format_replies, help_message
from bot.commands.core import Core, Place
from bot.commands.grammar import (
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
from bot.replies import Reply, Text, error
from bot.storage import store
from bot.storage.db import read_session

logger = logging.getLogger("papers.discord")

PLATFORM = "discord"
# Answered in one response when the core is this quick; everything else is deferred at once.
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


def is_manager(interaction: discord.Interaction) -> bool:
    """Manage Server or Manage Channels here (the channel-resolved permissions Discord sends)."""
    perms = interaction.permissions
    return perms.administrator or perms.manage_guild or perms.manage_channels


def place_of(interaction: discord.Interaction) -> Place:
    """The workspace and channel come from the interaction Discord sent, never from options."""
    guild = interaction.guild
    return Place(
        platform=PLATFORM,
        workspace_id=str(interaction.guild_id),
        channel_id=str(interaction.channel_id),
        user_id=str(interaction.user.id),
        is_manager=is_manager(interaction),
        workspace_name=guild.name if guild is not None else "",
    )


def within_upload_limit(interaction: discord.Interaction, message: Message) -> Message:
    """A file over the server's upload limit becomes an ephemeral note saying so."""
    limit = getattr(interaction, "filesize_limit", None)
    if message.file is None or not limit or len(message.file.data) <= limit:
        return message
    size = len(message.file.data) / 1e6
    note = (
        f"{message.file.filename} is {size:.1f} MB, over this server's upload limit of "
        f"{limit / 1e6:.0f} MB. `/papers readme` in one channel exports fewer keywords."
    )
    return format_replies([error(note)])[0]


class Interactions:
    """The /papers group and its answers; `run` is what every subcommand handler calls."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.group = papers_group(self)
        self.inflight: set[asyncio.Task[Any]] = set()

    async def drain(self, timeout: float) -> None:
        """Wait (up to `timeout`) for the commands being answered."""
        if self.inflight:
            await asyncio.wait(set(self.inflight), timeout=timeout)

    async def run(self, interaction: discord.Interaction, make: Callable[[], Command]) -> None:
        """Validate, check permissions, execute in a thread, answer (deferring slow work)."""
        task = asyncio.current_task()
        if task is not None:
            self.inflight.add(task)
            task.add_done_callback(self.inflight.discard)
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
        await self._execute_and_answer(interaction, command)

    async def _execute_and_answer(self, interaction: discord.Interaction, command: Command) -> None:
        """Slow commands are deferred at once; quick ones answered directly if the core is quick."""
        place = place_of(interaction)
        if not isinstance(command, QUICK_COMMANDS):
            # Defer before the work's thread starts competing with the event loop.
            if await self._defer(interaction):
                await self._answer(interaction, await self._execute(place, command), deferred=True)
            return
        work = asyncio.ensure_future(self._execute(place, command))
        done, _ = await asyncio.wait({work}, timeout=QUICK_SECONDS)
        if done:
            await self._answer(interaction, work.result(), deferred=False)
            return
        deferred = await self._defer(interaction)
        replies = await work  # it runs to the end even when Discord can no longer be told
        if deferred:
            await self._answer(interaction, replies, deferred=True)

    async def _defer(self, interaction: discord.Interaction) -> bool:
        try:
            await interaction.response.defer(thinking=True)
        except discord.HTTPException as exc:  # too late (10062) or Discord trouble
            logger.warning(
                "Discord: could not defer /papers in guild %s channel %s: %s",
                interaction.guild_id,
                interaction.channel_id,
                exc,
            )
            return False
        return True

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
        messages = [within_upload_limit(interaction, m) for m in messages]
        if deferred and messages[0].ephemeral:
            # The first follow-up after a deferral becomes the (public) "thinking" message,
            # whatever its flags; remove that one so the ephemeral answer stands on its own.
            with contextlib.suppress(discord.HTTPException):
                await interaction.delete_original_response()
        for index, message in enumerate(messages):
            await self._send(interaction, message, first=index == 0 and not deferred)

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

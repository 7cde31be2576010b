"""Answering /papers interactions: the checks only Discord can make, the core through the command
service, an answer at once when it is quick, a deferral when it is not."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta

import discord
from discord import app_commands

from adapters.command_service import SORRY, CommandService, Deadline
from adapters.discord.answers import answer
from adapters.discord.commands import Choices, papers_group, slash_syntax
from adapters.discord.format import NO_MENTIONS, Message, format_reply, help_message
from bot.commands.core import Place
from bot.commands.grammar import PRIVATE_ANSWERS, Add, BadInput, Command
from bot.replies import CommandHelp, Reply, Text, error

logger = logging.getLogger("papers.discord")

PLATFORM = "discord"
MANAGERS = "members with Manage Server or Manage Channels"
# An interaction's token takes answers for 15 minutes; later ones go to the channel, and the
# margin leaves time to send a long answer's last parts.
ANSWER_WINDOW = timedelta(minutes=14)
DM_REFUSAL = (
    "The /papers commands work in a server's text channel, where keywords are followed; "
    "not in direct messages. Run them in a channel of a server the bot is in."
)
# What the bot itself needs in a channel to post the daily papers there.
POSTING = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "embed_links": "Embed Links",
}


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
                await interaction.followup.send(SORRY, ephemeral=True, allowed_mentions=NO_MENTIONS)
            else:
                await interaction.response.send_message(
                    SORRY, ephemeral=True, allowed_mentions=NO_MENTIONS
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
        workspace=str(interaction.guild_id),
        channel=str(interaction.channel_id),
        user_id=str(interaction.user.id),
        is_manager=is_manager(interaction),
        workspace_name=guild.name if guild is not None else "",
        managers=MANAGERS,
    )


def cannot_post(interaction: discord.Interaction) -> Text | None:
    """`add` in a channel where the bot could not post its daily papers: say what is missing."""
    granted = interaction.app_permissions
    missing = [name for flag, name in POSTING.items() if not getattr(granted, flag)]
    if not missing:
        return None
    return error(
        f"The bot cannot post the daily papers in this channel: it lacks {' and '.join(missing)} "
        "here. Give its role these permissions in this channel, then add the keyword again."
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
    return format_reply(error(note))[0]


class Interactions:
    """The /papers group and its answers; `run` is what every subcommand handler calls."""

    def __init__(self, service: CommandService) -> None:
        self.service = service
        self.core = service.core
        self.group = papers_group(self)
        self.syntax = slash_syntax(self.group)

    async def run(self, interaction: discord.Interaction, make: Callable[[], Command]) -> None:
        """Validate, check, execute off the loop, answer (deferring work that is not quick)."""
        deadline = Deadline.after(interaction.created_at, ANSWER_WINDOW)
        with self.service.track():
            try:
                command = make()
            except BadInput as exc:
                await self._answer(
                    interaction, [error(str(exc))], deferred=False, deadline=deadline
                )
                return
            refusal = cannot_post(interaction) if isinstance(command, Add) else None
            if refusal is not None:
                await self._answer(interaction, [refusal], deferred=False, deadline=deadline)
                return
            place = place_of(interaction)
            await self._execute_and_answer(interaction, place, command, deadline)

    async def _execute_and_answer(
        self, interaction: discord.Interaction, place: Place, command: Command, deadline: Deadline
    ) -> None:
        """A quick answer is the response itself, with the visibility it asks for (an error, a
        duplicate, a cooldown stay private); slower work is deferred publicly first. Discord
        delivers an interaction once: only a change submitted twice is held back."""
        work = self.service.start(place, command)
        if await self.service.settled(work):
            await self._answer(interaction, work.result(), deferred=False, deadline=deadline)
            return
        private = isinstance(command, PRIVATE_ANSWERS)
        deferred = await self._defer(interaction, private=private)
        # The work runs to its end either way; without a deferral its answer goes to the channel.
        replies = await work
        await self._answer(
            interaction, replies, deferred=deferred, deadline=deadline, privately=private
        )

    async def _defer(self, interaction: discord.Interaction, *, private: bool) -> bool:
        try:
            await interaction.response.defer(thinking=True, ephemeral=private)
        except discord.HTTPException as exc:  # too late (10062) or Discord trouble
            logger.warning(
                "Discord: could not defer /papers in guild %s channel %s: %s",
                interaction.guild_id,
                interaction.channel_id,
                exc,
            )
            return False
        return True

    async def _answer(
        self,
        interaction: discord.Interaction,
        replies: list[Reply],
        *,
        deferred: bool,
        deadline: Deadline,
        privately: bool = False,
    ) -> None:
        formatted = [m for reply in replies for m in self._formatted(reply)]
        messages = [within_upload_limit(interaction, m) for m in formatted]
        done = messages or self._formatted(Text("Done."))
        await answer(
            interaction, done, deferred=deferred, deadline=deadline, deferred_privately=privately
        )

    def _formatted(self, reply: Reply) -> list[Message]:
        if isinstance(reply, CommandHelp):
            return [help_message(reply, self.syntax)]
        return format_reply(reply)

    async def keyword_choices(self, interaction: discord.Interaction, current: str) -> Choices:
        """Autocomplete: this channel's keywords containing what is typed, prefix matches first."""
        if interaction.guild_id is None or interaction.channel_id is None:
            return []
        here = Place(PLATFORM, str(interaction.guild_id), str(interaction.channel_id))
        labels = await self.service.ask(self.core.channel_labels, here)
        typed = current.strip().casefold()
        starts = [label for label in labels if label.casefold().startswith(typed)]
        within = [label for label in labels if typed in label.casefold() and label not in starts]
        return [app_commands.Choice(name=label, value=label) for label in (starts + within)[:25]]

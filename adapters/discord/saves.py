"""A Save press on Discord (buttons.py's `SaveButton`): the core's `save` for the member who
pressed, answered ephemerally; and an Abstract press (`AbstractButton`): the paper's abstract."""

from __future__ import annotations

import logging
from typing import Any

import discord

from adapters.command_service import CommandService
from adapters.discord.answers import TRANSIENT
from adapters.discord.format import NO_MENTIONS, Message, format_replies, paper_embed
from adapters.discord.interactions import DM_REFUSAL, place_of
from bot.commands.grammar import BadInput, build
from bot.replies import Reply, error

logger = logging.getLogger("papers.discord")


class SaveButtons:
    """Answers a Save press through the command service: the core's `save`, for the presser."""

    def __init__(self, service: CommandService) -> None:
        self.service = service

    async def pressed(self, interaction: discord.Interaction, arxiv_id: str) -> None:
        with self.service.track():
            replies = await self._save(interaction, arxiv_id)
            for message in format_replies(replies):
                await _tell(interaction, message)

    async def abstract(self, interaction: discord.Interaction, arxiv_id: str) -> None:
        """An Abstract press: the paper with its abstract, only for the member who pressed."""
        with self.service.track():
            paper = await self.service.ask(self.service.core.paper, arxiv_id)
            if paper is None:
                message = Message(content="That paper is no longer stored here.")
            else:
                message = Message(embeds=(paper_embed(paper),))
            await _tell(interaction, message)

    async def _save(self, interaction: discord.Interaction, arxiv_id: str) -> list[Reply]:
        if interaction.guild_id is None:
            return [error(DM_REFUSAL)]
        try:
            command = build("save", [arxiv_id])
        except BadInput as exc:
            return [error(str(exc))]
        work = self.service.start(place_of(interaction), command)
        if not await self.service.settled(work):
            try:
                await interaction.response.defer(ephemeral=True, thinking=True)
            except TRANSIENT as exc:
                logger.warning("Discord: could not defer a Save press: %s", exc)
        return await work


async def _tell(interaction: discord.Interaction, message: Message) -> None:
    """One message of the answer, only for the member who pressed."""
    kwargs: dict[str, Any] = {"ephemeral": True, "allowed_mentions": NO_MENTIONS}
    if message.content:
        kwargs["content"] = message.content
    if message.embeds:
        kwargs["embeds"] = list(message.embeds)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(**kwargs)
        else:
            await interaction.response.send_message(**kwargs)
    except TRANSIENT as exc:
        logger.warning("Discord: answering a Save press failed: %s", exc)

"""A command's answer into Discord: the interaction's response and follow-ups while its token
lasts, retried once; past its deadline, or when Discord refuses it, the channel instead."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import discord

from adapters.command_service import Deadline
from adapters.discord.buttons import save_view
from adapters.discord.format import CONTENT, NO_MENTIONS, Message, fit

logger = logging.getLogger("papers.discord")

FOLLOWUP_ATTEMPTS = 2
RETRY_SECONDS = 0.5
TRANSIENT = (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError)


def message_kwargs(message: Message) -> dict[str, Any]:
    """What `send_message` / `followup.send` / `channel.send` take (a fresh file each time)."""
    kwargs: dict[str, Any] = {"embeds": list(message.embeds), "allowed_mentions": NO_MENTIONS}
    if message.content:
        kwargs["content"] = message.content
        # A link in a text answer (a saved paper, a feed URL) gets no preview: a list of them
        # would bury the answer, and a feed URL would be fetched by Discord's link crawler.
        kwargs["suppress_embeds"] = not message.embeds and "://" in message.content
    if message.file is not None:
        data = io.BytesIO(message.file.data)
        kwargs["file"] = discord.File(data, filename=message.file.filename)
    if message.saves or message.abstracts:
        kwargs["view"] = save_view(message.saves, message.abstracts)
    return kwargs


async def answer(
    interaction: discord.Interaction,
    messages: list[Message],
    *,
    deferred: bool,
    deadline: Deadline,
    deferred_privately: bool = False,
) -> None:
    """Send `messages` as the answer: the first as the response unless the interaction was
    deferred (publicly, or privately for an answer only the asker sees), the rest as
    follow-ups."""
    if deferred and not deferred_privately and messages and messages[0].ephemeral:
        # The first follow-up after a deferral becomes the (public) "thinking" message,
        # whatever its flags; remove that one so the ephemeral answer stands on its own.
        with contextlib.suppress(*TRANSIENT):
            await interaction.delete_original_response()
    for index, message in enumerate(messages):
        if index == 0 and not deferred:
            await _respond(interaction, message)
        elif deadline.passed:
            await to_channel(interaction, message, "too late for the command's reply")
        elif not await _follow_up(interaction, message):
            await to_channel(interaction, message, "Discord refused the command's reply")


async def _respond(interaction: discord.Interaction, message: Message) -> None:
    send = interaction.response.send_message
    try:
        await send(ephemeral=message.ephemeral, **message_kwargs(message))
    except TRANSIENT as exc:
        _log_refusal(interaction, "responding", exc)
        await to_channel(interaction, message, "Discord refused the command's reply")


async def _follow_up(interaction: discord.Interaction, message: Message) -> bool:
    """The follow-up sent, retried once unless the interaction is gone (its token expired)."""
    send: Callable[..., Any] = interaction.followup.send
    for attempt in range(1, FOLLOWUP_ATTEMPTS + 1):
        try:
            await send(ephemeral=message.ephemeral, **message_kwargs(message))
            return True
        except discord.NotFound as exc:  # unknown webhook or interaction: retrying cannot help
            _log_refusal(interaction, "following up", exc)
            return False
        except TRANSIENT as exc:
            _log_refusal(interaction, f"following up (attempt {attempt})", exc)
            if attempt < FOLLOWUP_ATTEMPTS:
                await asyncio.sleep(RETRY_SECONDS)
    return False


async def to_channel(interaction: discord.Interaction, message: Message, why: str) -> None:
    """The answer posted in the channel the command came from, saying whose it is."""
    channel = interaction.channel
    if not isinstance(channel, discord.abc.Messageable):
        logger.warning("Discord: no channel to post an answer in (%s)", why)
        return
    name = interaction.command.qualified_name if interaction.command else "papers"
    note = f"{interaction.user.mention}, the answer to your `/{name}` ({why}):"
    kwargs = message_kwargs(message)
    kwargs["content"] = fit(f"{note}\n{kwargs.get('content', '')}".strip(), CONTENT)
    try:
        await channel.send(**kwargs)
    except TRANSIENT as exc:
        _log_refusal(interaction, "posting the answer in the channel", exc)


def _log_refusal(interaction: discord.Interaction, doing: str, exc: BaseException) -> None:
    logger.warning(
        "Discord: %s for /papers failed in guild %s channel %s: %s",
        doing,
        interaction.guild_id,
        interaction.channel_id,
        exc,
    )

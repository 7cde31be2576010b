"""`DiscordPoster`: the daily posts' way into a Discord channel (the `Poster` protocol)."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

import aiohttp
import discord

from adapters.discord.buttons import save_view
from adapters.discord.format import NO_MENTIONS, Message, format_replies
from bot.posts.poster import PostFailed
from bot.replies import Reply

logger = logging.getLogger("papers.discord")


class DiscordPoster:
    """Posts replies to a guild text channel; discord.py keeps to the rate-limit buckets.

    Refusals that repeat until someone acts (the bot was removed, the channel is gone, a
    permission is missing, the token is invalid) raise `PostFailed(permanent=True)`. A timeout,
    or a failure after part of the post was sent, raises `PostFailed(maybe_delivered=True)`.
    """

    platform = "discord"

    def __init__(
        self,
        client: discord.Client,
        logged_in: asyncio.Event,
        *,
        timeout_seconds: float = 60.0,
    ) -> None:
        self.client = client
        self.logged_in = logged_in
        self.timeout_seconds = timeout_seconds

    async def post(self, *, workspace_id: str, channel_id: str, replies: list[Reply]) -> None:
        messages = format_replies(replies)
        if not messages:
            return
        channel = await self._channel(workspace_id, channel_id)
        for sent, message in enumerate(messages):
            try:
                await asyncio.wait_for(self._send(channel, message), self.timeout_seconds)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                refused = isinstance(exc, aiohttp.ClientConnectorError)
                raise PostFailed(
                    f"Discord did not answer in time or the connection broke ({exc!r})",
                    maybe_delivered=sent > 0 or not refused,
                ) from exc
            except discord.HTTPException as exc:
                raise failure(exc, sent_before=sent > 0) from exc

    async def _channel(self, workspace_id: str, channel_id: str) -> discord.abc.Messageable:
        if not channel_id.isdigit() or not workspace_id.isdigit():
            raise PostFailed(f"not a Discord channel id: {channel_id!r}", permanent=True)
        try:
            await asyncio.wait_for(self.logged_in.wait(), self.timeout_seconds)
        except TimeoutError:
            raise PostFailed("the Discord client is not logged in") from None
        channel: Any = self.client.get_channel(int(channel_id))
        if channel is None:
            try:
                channel = await asyncio.wait_for(
                    self.client.fetch_channel(int(channel_id)), self.timeout_seconds
                )
            except discord.HTTPException as exc:
                raise failure(exc, sent_before=False) from exc
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise PostFailed(f"could not look up channel {channel_id}: {exc!r}") from exc
        guild = getattr(channel, "guild", None)
        if guild is None or str(guild.id) != workspace_id:
            # Never post across tenants, whatever the stored ids say.
            raise PostFailed(
                f"channel {channel_id} is not a text channel of guild {workspace_id}",
                permanent=True,
            )
        if not isinstance(channel, discord.abc.Messageable):
            raise PostFailed(f"channel {channel_id} does not take messages", permanent=True)
        return channel

    @staticmethod
    async def _send(channel: discord.abc.Messageable, message: Message) -> None:
        kwargs: dict[str, Any] = {"allowed_mentions": NO_MENTIONS}
        if message.content:
            kwargs["content"] = message.content
        if message.embeds:
            kwargs["embeds"] = list(message.embeds)
        if message.file is not None:
            kwargs["file"] = discord.File(
                io.BytesIO(message.file.data), filename=message.file.filename
            )
        if message.saves:
            kwargs["view"] = save_view(message.saves)
        await channel.send(**kwargs)


def failure(exc: discord.HTTPException, *, sent_before: bool) -> PostFailed:
    """Discord's refusal as `PostFailed`: missing access, unknown channel or bad token are permanent."""
    permanent = isinstance(exc, (discord.Forbidden, discord.NotFound)) or exc.status == 401
    reason = f"Discord refused the post: {exc.status} {exc.text or exc}".strip()
    return PostFailed(reason[:300], permanent=permanent, maybe_delivered=sent_before)

"""Daily posts to Slack: replies as Block Kit through chat.postMessage, paced per channel."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.format import SlackMessage, to_messages
from bot.posts.poster import PostFailed
from bot.replies import Reply

logger = logging.getLogger(__name__)

# Errors that repeat until someone acts: the channel counts them towards its pause.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "missing_scope",
    }
)

TokenSource = Callable[[str], Awaitable[str | None]]
ClientFactory = Callable[[str], AsyncWebClient]


class ChannelPacer:
    """At most one message per `interval` seconds into each channel (Slack's posting limit).

    Slack allows about one per second; the margin keeps network jitter from making two
    consecutive posts arrive closer than that.
    """

    def __init__(self, interval: float = 1.1) -> None:
        self.interval = interval
        self._next: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def wait(self, channel_key: str) -> None:
        lock = self._locks.setdefault(channel_key, asyncio.Lock())
        async with lock:
            delay = self._next.get(channel_key, 0.0) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next[channel_key] = time.monotonic() + self.interval


def failure_of(exc: SlackApiError) -> PostFailed:
    """A Slack refusal as the scheduler's `PostFailed`."""
    error = str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
    return PostFailed(f"Slack refused the post: {error}", permanent=error in PERMANENT_ERRORS)


class SlackPoster:
    """The scheduler's `Poster` for Slack: one workspace's bot token per post, from `tokens`."""

    platform = "slack"

    def __init__(
        self, *, tokens: TokenSource, clients: ClientFactory, pacer: ChannelPacer | None = None
    ) -> None:
        self._tokens = tokens
        self._clients = clients
        self.pacer = pacer or ChannelPacer()

    async def post(self, *, workspace_id: str, channel_id: str, replies: list[Reply]) -> None:
        """Post `replies` in order; raise `PostFailed` (maybe_delivered once anything went out)."""
        token = await self._tokens(workspace_id)
        if not token:
            raise PostFailed("the Slack app is not installed in this workspace", permanent=True)
        client = self._clients(token)
        messages = [message for reply in replies for message in to_messages(reply)]
        for sent, message in enumerate(messages):
            try:
                if message.upload is None:  # the posting limit is chat.postMessage's
                    await self.pacer.wait(f"{workspace_id}/{channel_id}")
                await send(client, channel_id, message)
            except PostFailed as exc:
                logger.warning(
                    "posting to Slack failed: %s",
                    exc.reason,
                    extra={"workspace": workspace_id, "channel": channel_id},
                )
                if sent:
                    raise PostFailed(
                        f"{exc.reason} (after {sent} of {len(messages)} messages)",
                        permanent=exc.permanent,
                        maybe_delivered=True,
                    ) from None
                raise


async def send(client: AsyncWebClient, channel_id: str, message: SlackMessage) -> None:
    """One message (or file upload) into a channel; Slack's refusals become `PostFailed`."""
    try:
        if message.upload is not None:
            await client.files_upload_v2(
                channel=channel_id,
                filename=message.upload.filename,
                title=message.upload.filename,
                content=message.upload.content,
                initial_comment=message.text,
            )
        else:
            await client.chat_postMessage(channel=channel_id, **message.payload())
    except SlackApiError as exc:
        raise failure_of(exc) from None
    except aiohttp.ClientConnectorError as exc:  # nothing was sent
        raise PostFailed(f"cannot reach Slack: {exc.__class__.__name__}") from None
    except aiohttp.ConnectionTimeoutError:
        raise PostFailed("cannot reach Slack: connection timed out") from None
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise PostFailed(
            f"Slack did not answer ({exc.__class__.__name__}); the message may have been posted",
            maybe_delivered=True,
        ) from None

"""Daily posts to Slack: parts as Block Kit through chat.postMessage, each marked with message
metadata (`papers_digest`) and found again through conversations.history; paced per channel."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.format import SlackMessage, parent_message, to_messages
from bot.posts.poster import Part, PostFailed, parts_of, threaded
from bot.replies import Papers

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
        "restricted_action",
        "missing_scope",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",  # a top-level post is refused there
    }
)
# A reply's thread refuses it (its parent deleted, or not a message that takes replies): the
# runner sends it into the channel instead; a read-back skips such a thread.
THREAD_GONE = frozenset(
    {
        "thread_not_found",
        "invalid_thread_ts",
        "cannot_reply_to_message",
        "thread_locked",
        "restricted_action_thread_locked",
        "restricted_action_non_threadable_channel",
    }
)
MARKER_EVENT = "papers_digest"  # message metadata event_type of every part of a daily post
HISTORY_PAGES = 5  # of 200 messages: a read-back looks no further back

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
    """A Slack refusal as `PostFailed`; after a 5xx the message may have been posted."""
    error = str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
    return PostFailed(
        f"Slack refused: {error}",
        permanent=error in PERMANENT_ERRORS,
        maybe_delivered=exc.response.status_code >= 500,
        thread_gone=error in THREAD_GONE,
    )


@asynccontextmanager
async def slack_errors() -> AsyncIterator[None]:
    """Slack's refusals and network failures as `PostFailed`."""
    try:
        yield
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


class SlackPoster:
    """The daily posts' `Poster` for Slack: one workspace's bot token per call, from `tokens`."""

    platform = "slack"

    def __init__(
        self, *, tokens: TokenSource, clients: ClientFactory, pacer: ChannelPacer | None = None
    ) -> None:
        self._tokens = tokens
        self._clients = clients
        self.pacer = pacer or ChannelPacer()

    def render(self, post: Papers, *, claim: int, threads: bool = False) -> list[Part]:
        """Block Kit messages, each with metadata naming the claim and its part number; with
        `threads`, a one-line parent first and the papers as replies in its thread."""
        messages = to_messages(post)
        if threads:
            messages = [parent_message(post), *messages]
        bodies = [
            message.payload()
            | {
                "metadata": {
                    "event_type": MARKER_EVENT,
                    "event_payload": {"claim": claim, "part": n},
                }
            }
            for n, message in enumerate(messages, 1)
        ]
        parts = parts_of(post, bodies)
        return threaded(parts) if threads else parts

    async def send(
        self, *, workspace: str, channel: str, part: Part, thread: str | None = None
    ) -> str:
        client = await self._client(workspace)
        await self.pacer.wait(f"{workspace}/{channel}")
        where: dict[str, Any] = {"thread_ts": thread} if thread else {}
        async with slack_errors():
            answer = await client.chat_postMessage(channel=channel, **where, **part.body)
        return str(answer["ts"])

    async def find(
        self,
        *,
        workspace: str,
        channel: str,
        claim: int,
        since: datetime,
        threads: Sequence[str] = (),
    ) -> dict[int, str]:
        """The claim's parts among the channel's messages since `since` (by their metadata),
        and among the replies in `threads` (conversations.history lists no replies)."""
        client = await self._client(workspace)
        found: dict[int, str] = {}
        read: dict[str, Any] = {"channel": channel, "oldest": f"{since.timestamp():.6f}"}
        pages = [partial(client.conversations_history, **read)]
        pages += [partial(client.conversations_replies, **read, ts=ts) for ts in threads]
        for page in pages:
            try:
                async for message in _messages(page):
                    metadata = message.get("metadata") or {}
                    payload = metadata.get("event_payload") or {}
                    if metadata.get("event_type") == MARKER_EVENT and payload.get("claim") == claim:
                        found[int(payload["part"])] = str(message["ts"])
            except PostFailed as exc:
                if not exc.thread_gone:  # a thread whose parent is gone shows no reply of ours
                    raise
        return found

    async def _client(self, workspace: str) -> AsyncWebClient:
        token = await self._tokens(workspace)
        if not token:
            raise PostFailed("the Slack app is not installed in this workspace", permanent=True)
        return self._clients(token)


async def _messages(page: Callable[..., Awaitable[Any]]) -> AsyncIterator[dict[str, Any]]:
    """The messages of up to HISTORY_PAGES pages of 200 (with their metadata)."""
    cursor = None
    for _ in range(HISTORY_PAGES):
        async with slack_errors():
            answer = await page(include_all_metadata=True, limit=200, cursor=cursor)
        for message in answer.get("messages") or []:
            yield message
        cursor = (answer.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break


async def send(client: AsyncWebClient, channel: str, message: SlackMessage) -> None:
    """One message (or file upload) into a channel (command answers); refusals as `PostFailed`."""
    async with slack_errors():
        if message.upload is not None:
            await client.files_upload_v2(
                channel=channel,
                filename=message.upload.filename,
                title=message.upload.filename,
                content=message.upload.content,
                initial_comment=message.text,
            )
        else:
            await client.chat_postMessage(channel=channel, **message.payload())

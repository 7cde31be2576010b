"""Daily posts to Discord: parts as embeds, each marked in its last embed's footer and sent with
a `nonce` (discord.py adds `enforce_nonce`), found again in the channel's messages."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Literal

import aiohttp
import discord

from adapters.discord.buttons import save_view
from adapters.discord.format import NO_MENTIONS, fit, papers_messages
from adapters.discord.posts import parent_message
from bot.posts.poster import Part, PostFailed, parts_of, threaded
from bot.replies import Papers
from bot.text import squash

logger = logging.getLogger("papers.discord")

MARKER_ROOM = 40  # characters kept free in every message for the marker
HISTORY_LIMIT = 500  # messages a read-back looks through
ARCHIVED_THREAD = 50083
# Refusals that repeat until someone acts: archived or locked thread, a channel type without
# threads (50024), the server's active threads at their maximum (160006, 160007).
REFUSED_CODES = frozenset({ARCHIVED_THREAD, 160005, 50024, 160006, 160007})
THREAD_EXISTS = 160004  # "A thread has already been created for this message"
THREAD_NAME = 100  # characters of a thread's name
THREAD_ARCHIVE_MINUTES: Literal[1440] = 1440  # a day without messages, then it is archived
THREADS_KEPT = 1000  # threads remembered as started (a restart asks Discord again)
THREAD_PERMISSIONS = (
    "threads need the bot's Create Public Threads and Send Messages in Threads permissions, "
    "and a thread that is not locked"
)
_MARKER = re.compile(r"post (\d+), part (\d+)$")


def marker(claim: int, number: int) -> str:
    """What marks a daily post's part, at the end of its last embed's footer."""
    return f"post {claim}, part {number}"


def read_marker(text: str) -> tuple[int, int] | None:
    """(claim, part number) of a text that ends with a `marker`."""
    found = _MARKER.search(text)
    return (int(found[1]), int(found[2])) if found else None


class DiscordPoster:
    """The daily posts' `Poster` for Discord; discord.py keeps to the rate-limit buckets.

    Refusals that repeat until someone acts (the bot was removed, the channel is gone or
    archived, a permission is missing, the token is invalid) are permanent. A timeout or a
    broken connection after the request left may have posted: the part is verified (and
    should it be sent again within minutes, the nonce makes Discord return the first one).
    """

    platform = "discord"

    def __init__(
        self, client: discord.Client, logged_in: asyncio.Event, *, timeout_seconds: float = 60.0
    ) -> None:
        self.client = client
        self.logged_in = logged_in
        self.timeout_seconds = timeout_seconds
        self._threads: dict[str, None] = {}  # parent message ids whose thread we started

    def render(self, post: Papers, *, claim: int, threads: bool = False) -> list[Part]:
        """Messages marked with (claim, part); with `threads`, a one-line parent first and the
        papers in the thread started from it (each reply names the thread, made once)."""
        messages = papers_messages(post, reserve=MARKER_ROOM)
        if threads:
            messages = [parent_message(post, reserve=MARKER_ROOM), *messages]
        bodies = []
        for number, message in enumerate(messages, 1):
            embeds: list[dict[str, Any]] = [dict(embed.to_dict()) for embed in message.embeds]
            mark = marker(claim, number)
            content = message.content
            if embeds:
                text = (embeds[-1].get("footer") or {}).get("text")
                embeds[-1]["footer"] = {"text": f"{text} · {mark}" if text else mark}
            else:
                content = f"{content or ''}\n-# {mark}".strip()
            nonce = f"p{claim}.{number}"[:25]
            # Buttons (Save per paper, Abstract per compact line) are rebuilt when sent.
            buttons = {"saves": list(message.saves), "abstracts": list(message.abstracts)}
            bodies.append({"content": content, "embeds": embeds, "nonce": nonce} | buttons)
        if not threads:
            return parts_of(post, bodies)
        name = fit(squash(post.heading), THREAD_NAME) or "Daily papers"
        return threaded(parts_of(post, bodies[:1] + [b | {"thread": name} for b in bodies[1:]]))

    async def send(
        self, *, workspace: str, channel: str, part: Part, thread: str | None = None
    ) -> str:
        target = await self._channel(workspace, channel)
        if thread is None:
            return await self._post(target, part.body)
        try:
            target = await self._thread(target, workspace, thread, part.body.get("thread", ""))
            return await self._post(target, part.body)
        except PostFailed as exc:
            if not exc.permanent:
                raise
            # Refused by the thread: the runner sends the reply into the channel instead.
            reason = f"{exc.reason}; {THREAD_PERMISSIONS}"
            raise PostFailed(reason[:300], permanent=True, thread_gone=True) from exc

    async def _post(self, target: Any, body: dict[str, Any]) -> str:
        saves, abstracts = body.get("saves") or [], body.get("abstracts") or []
        extra: dict[str, Any] = {"view": save_view(saves, abstracts)} if saves or abstracts else {}
        async with self._errors(sending=True):
            message = await target.send(
                content=body["content"],
                embeds=[discord.Embed.from_dict(e) for e in body["embeds"]],
                nonce=body["nonce"],
                allowed_mentions=NO_MENTIONS,
                **extra,
            )
        return str(message.id)

    async def _thread(self, channel: Any, workspace: str, parent: str, name: str) -> Any:
        """The thread started from the message `parent` (its id is the message's), started
        now unless this process started it already; Discord's "already exists" (a retry, a
        restart) means it is there."""
        if parent not in self._threads:
            async with self._errors():
                try:
                    await self.client.http.start_thread_with_message(
                        channel.id,
                        int(parent),
                        name=name[:THREAD_NAME] or "Daily papers",
                        auto_archive_duration=THREAD_ARCHIVE_MINUTES,
                    )
                except discord.HTTPException as exc:
                    if exc.code != THREAD_EXISTS:
                        raise
            self._threads[parent] = None
            while len(self._threads) > THREADS_KEPT:  # the oldest first
                self._threads.pop(next(iter(self._threads)))
        return await self._channel(workspace, parent)

    async def find(
        self,
        *,
        workspace: str,
        channel: str,
        claim: int,
        since: datetime,
        threads: Sequence[str] = (),
    ) -> dict[int, str]:
        """The claim's parts among the bot's messages in the channel since `since`, and in
        the threads started from the messages `threads`."""
        places = [await self._channel(workspace, channel)]
        for thread in threads:
            try:
                places.append(await self._channel(workspace, thread))
            except PostFailed as exc:  # a thread deleted: no reply of ours is to be seen there
                if not exc.permanent:
                    raise
                logger.info("thread %s cannot be read (%s): not looked into", thread, exc.reason)
        me = self.client.user.id if self.client.user else None
        found: dict[int, str] = {}
        async with self._errors():
            for place in places:
                async for message in place.history(limit=HISTORY_LIMIT, after=since):
                    text = message.embeds[-1].footer.text if message.embeds else message.content
                    mark = read_marker(text or "") if message.author.id == me else None
                    if mark is not None and mark[0] == claim:
                        found[mark[1]] = str(message.id)
        return found

    @asynccontextmanager
    async def _errors(self, *, sending: bool = False) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self.timeout_seconds):
                yield
        except discord.HTTPException as exc:
            raise failure(exc, sending=sending) from exc
        except aiohttp.ClientConnectorError as exc:  # nothing was sent
            raise PostFailed(f"cannot reach Discord: {exc!r}") from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise PostFailed(
                f"Discord did not answer in time or the connection broke ({exc!r})",
                maybe_delivered=sending,
            ) from exc

    async def _channel(self, workspace: str, channel: str) -> Any:
        if not channel.isdigit() or not workspace.isdigit():
            raise PostFailed(f"not a Discord channel id: {channel!r}", permanent=True)
        try:
            await asyncio.wait_for(self.logged_in.wait(), self.timeout_seconds)
        except TimeoutError:
            raise PostFailed("the Discord client is not logged in") from None
        found: Any = self.client.get_channel(int(channel))
        if found is None:
            async with self._errors():
                found = await self.client.fetch_channel(int(channel))
        guild = getattr(found, "guild", None)
        if guild is None or str(guild.id) != workspace:
            # Never post across tenants, whatever the stored ids say.
            raise PostFailed(
                f"channel {channel} is not a text channel of guild {workspace}",
                permanent=True,
            )
        if not isinstance(found, discord.abc.Messageable):
            raise PostFailed(f"channel {channel} does not take messages", permanent=True)
        return found


def failure(exc: discord.HTTPException, *, sending: bool = True) -> PostFailed:
    """Discord's refusal as `PostFailed`: missing access, an unknown or archived channel, a bad
    token are permanent; after a 5xx the message may have been posted."""
    permanent = (
        isinstance(exc, (discord.Forbidden, discord.NotFound))
        or exc.status == 401
        or exc.code in REFUSED_CODES
    )
    reason = f"Discord refused: {exc.status} {exc.text or exc}".strip()
    return PostFailed(
        reason[:300], permanent=permanent, maybe_delivered=sending and exc.status >= 500
    )

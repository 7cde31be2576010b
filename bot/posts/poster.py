"""What the daily posts need from a chat platform: render a post into parts, send one part,
and find a post's parts again in the channel (the read-back that settles an unknown outcome)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from bot.replies import Papers


@dataclass(frozen=True)
class Part:
    """One platform message of a daily post: its payload (JSON, with the part's marker) and
    the arXiv ids of the papers it shows, delivered when it is sent."""

    number: int  # from 1
    body: dict[str, Any]
    papers: tuple[str, ...] = ()
    # `threads on`: the number of the part (the parent) in whose thread this one goes; the
    # runner passes the parent's recorded message id to `send` as `thread`.
    thread_of: int | None = None


class PostFailed(Exception):
    """The platform did not take the part.

    `permanent`: it will refuse again until someone acts (bot removed, channel archived,
    missing permission, revoked token); such days count towards pausing the channel.
    `maybe_delivered`: the request left and no clear answer came (a timeout, a dropped
    connection, a 5xx): the part is verified by reading the channel back before any resend.
    Neither: nothing was posted (429 beyond its retries, no connection); tried again later.
    `thread_gone`: a reply was refused by its thread, not by the channel (the parent was
    deleted, the thread archived or locked, threads not permitted): nothing was posted, and
    the runner sends the reply into the channel instead (the papers twice beats never).
    """

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool = False,
        maybe_delivered: bool = False,
        thread_gone: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.maybe_delivered = maybe_delivered
        self.thread_gone = thread_gone


class Poster(Protocol):
    """Implemented once per platform (Slack, Discord); the daily-post code knows no platform."""

    platform: str

    def render(self, post: Papers, *, claim: int, threads: bool = False) -> list[Part]:
        """The post as the messages to send, in order, each marked with (claim, part number);
        with `threads`, a short parent (`parent_line`) and the papers in its thread."""
        ...

    async def send(
        self, *, workspace: str, channel: str, part: Part, thread: str | None = None
    ) -> str:
        """Send one part (into the thread of the message `thread`, when given); the
        platform's message id. Raises `PostFailed`; honours rate limits."""
        ...

    async def find(
        self,
        *,
        workspace: str,
        channel: str,
        claim: int,
        since: datetime,
        threads: Sequence[str] = (),
    ) -> dict[int, str]:
        """Part number -> message id of the claim's parts in the channel's messages since
        `since`, and in the threads of the messages `threads`. Raises `PostFailed`
        (`permanent` when the platform refuses the read-back)."""
        ...


def parent_line(post: Papers) -> str:
    """A threaded post's parent: "14 new papers: Virtual Try-On 9, Image Editing 5" (what
    this post carries per keyword; a post cut by `max` says how many more wait)."""
    total = post.count + post.more
    counts = ", ".join(f"{g.label or 'papers'} {len(g.papers)}" for g in post.groups)
    more = f" ({post.more} more in the next post)" if post.more else ""
    return f"{total} new paper{'s' if total != 1 else ''}: {counts}{more}"


def more_line(post: Papers, command: str) -> str:
    """The closing line of a post cut by `max`: how many wait, and the commands that show
    them (`list` shows the newest, which the post just carried: the rest are older)."""
    plural = "s" if post.more != 1 else ""
    return (
        f"{post.more} more paper{plural} wait for the next post; `{command} digest now` posts "
        f"them now, `{command} list 20` shows the 20 newest."
    )


def threaded(parts: list[Part]) -> list[Part]:
    """The parts after the first go in the first one's thread."""
    return parts[:1] + [replace(p, thread_of=parts[0].number) for p in parts[1:]]


def parts_of(post: Papers, bodies: Sequence[dict[str, Any]]) -> list[Part]:
    """Numbered parts, each with the papers whose arXiv link it shows (a paper no part links
    goes with the last part, so that it is delivered once everything is sent)."""
    if not bodies:
        raise ValueError("the post rendered as no message")
    texts = [json.dumps(body, ensure_ascii=False) for body in bodies]
    carried: list[list[str]] = [[] for _ in bodies]
    for group in post.groups:
        for paper in group.papers:
            where = next((i for i, t in enumerate(texts) if paper.abs_url in t), len(texts) - 1)
            carried[where].append(paper.arxiv_id)
    return [
        Part(number, dict(body), tuple(papers))
        for number, (body, papers) in enumerate(zip(bodies, carried, strict=True), 1)
    ]

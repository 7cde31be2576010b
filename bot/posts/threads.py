"""A threaded post's replies when the thread refuses them (the parent deleted, the thread
archived or locked, threads not permitted): they go into the channel instead, and the
channel's `keywords` says why, so a missing permission neither loses the papers nor pauses
the channel in silence."""

from __future__ import annotations

import logging

from bot.posts.claims import Claim
from bot.posts.poster import Part, Poster, PostFailed

logger = logging.getLogger(__name__)

THREADS_REFUSED = "threads refused: "  # a channel's `last_failure` that is only this note


async def send_reply(
    poster: Poster, claim: Claim, part: Part, thread: str | None, refused: dict[int, str]
) -> str:
    """Send `part` (into the thread of the message `thread`, when given); a reply its thread
    refuses goes into the channel, as do the claim's later replies (`refused`: claim id ->
    the thread's refusal, kept by the caller for the claim's end)."""
    if thread is not None and claim.id not in refused:
        try:
            return await poster.send(**claim.where, part=part, thread=thread)
        except PostFailed as exc:
            if not exc.thread_gone:
                raise
            refused[claim.id] = exc.reason
            logger.warning(
                "%s: the thread refused part %d (%s); its replies go into the channel",
                *(claim, part.number, exc.reason),
            )
    return await poster.send(**claim.where, part=part)


def thread_note(claim: Claim, refused: dict[int, str]) -> dict[str, str]:
    """What a finished threaded post leaves on its channel for `keywords`: the refusal, or
    "" (the thread worked: an earlier note goes). Nothing for a post without threads."""
    if not claim.due.shape.threads:
        return {}
    reason = refused.pop(claim.id, None)
    return {"thread_note": f"{THREADS_REFUSED}{reason}" if reason else ""}

"""The channel's daily post, as commands shape it: `digest <HH:MM> [tz]`, `digest off`,
`digest now`, and how `keywords` describes the schedule."""

from __future__ import annotations

from bot.commands.context import TERMINAL, Context, Place
from bot.commands.grammar import DigestAt, DigestOff
from bot.posts import digest
from bot.replies import Reply, Text, error
from bot.storage.db import write_session
from bot.storage.models import Channel

# The terminal has no poster: `digest HH:MM` there would promise a post that never comes.
NO_TERMINAL_POST = (
    "The terminal has no daily post: `papers serve` posts to Slack and Discord channels only. "
    "`papers digest now` shows the papers not seen here yet."
)


def digest_schedule(ctx: Context, channel: Channel | None) -> tuple[str, str]:
    """(HH:MM, IANA zone) of the channel's daily post, defaults filled in."""
    time_ = (channel.digest_time if channel else None) or ctx.settings.digest_time
    zone = (channel.digest_timezone if channel else None) or ctx.settings.timezone
    return time_, zone


def digest_text(ctx: Context, channel: Channel | None) -> str:
    if channel is not None and not channel.digest_enabled:
        return "Daily post: off."
    time_, zone = digest_schedule(ctx, channel)
    paused = (
        " (paused after repeated failures; `digest HH:MM` resumes it)"
        if channel and channel.paused
        else ""
    )
    return f"Daily post at {time_} {zone}{paused}."


def set_digest(ctx: Context, place: Place, command: DigestAt | DigestOff) -> Reply:
    if place.platform == TERMINAL.platform:
        return error(NO_TERMINAL_POST)
    with write_session(ctx.engine) as session:
        channel = ctx.channel(session, place)
        if isinstance(command, DigestOff):
            channel.digest_enabled = False
        else:
            channel.digest_enabled = True
            channel.digest_time = command.time
            channel.digest_timezone = command.timezone or channel.digest_timezone
            channel.paused = False
            channel.failed_days = 0
        session.add(channel)
        text = digest_text(ctx, channel)
    return Text(text)


def digest_now(ctx: Context, place: Place) -> list[Reply]:
    """The channel's undelivered papers, at once: the reply is the post.

    They are recorded as delivered as the reply is made, leaving out papers on their way in a
    daily post's parts; the day's scheduled post is not used up: it carries whatever is new
    by then.
    """
    with write_session(ctx.engine) as session:
        channel = ctx.channel(session, place)
        post = digest.take_now(session, channel)
    if post is None:
        return [Text("Nothing new since the last post.", ephemeral=True)]
    return [post]

"""The channel's post, as commands shape it: `digest <HH:MM> [tz]`, `digest weekly ...`,
`digest off`, `digest now`, threads, style and max, and how `keywords` describes them."""

from __future__ import annotations

from sqlmodel import Session, select

from bot.commands.context import TERMINAL, Context, Place
from bot.commands.digest_grammar import WEEKDAYS
from bot.commands.grammar import DigestAt, DigestOff, DigestShape
from bot.posts import digest
from bot.posts.threads import THREADS_REFUSED
from bot.replies import Reply, Text, error
from bot.storage.db import write_session
from bot.storage.models import Channel, DigestClaim

# The terminal has no poster: `digest HH:MM` there would promise a post that never comes.
NO_TERMINAL_POST = (
    "The terminal has no daily post: `papers serve` posts to Slack and Discord channels only. "
    "`papers digest now` shows the papers not seen here yet."
)


def digest_text(ctx: Context, channel: Channel | None) -> str:
    """The schedule and shape in one line: "Daily post at 08:30 Europe/Berlin · threads ·
    compact · max 50." (only what differs from the defaults after the schedule)."""
    if channel is not None and not channel.digest_enabled:
        return "Daily post: off."
    when = (channel.digest_time, channel.digest_timezone, channel.digest_weekday) if channel else ()
    schedule = digest.schedule_of(ctx.settings, *when)
    line = [schedule.describe()]
    shape = digest.shape_of(channel) if channel else digest.Shape()
    line += [f"threads{_thread_refusal(channel)}"] if shape.threads else []
    line += [shape.style] if shape.style != digest.Shape.style else []
    line += [f"max {shape.max_papers}"] if shape.max_papers != digest.Shape.max_papers else []
    paused = _paused(channel, schedule) if channel and channel.paused else ""
    return f"{' · '.join(line)}{paused}."


def _paused(channel: Channel, schedule: digest.Schedule) -> str:
    """Why the channel stopped, and the command that resumes it as it was (a weekly channel
    told `digest HH:MM` would have become a daily one)."""
    day = f"weekly {WEEKDAYS[schedule.weekday]} " if schedule.weekday is not None else ""
    reason = channel.last_failure or ""
    why = f": {reason}" if reason and not reason.startswith(THREADS_REFUSED) else ""
    return f" (paused after repeated failures{why}; `digest {day}{schedule.hhmm}` resumes it)"


def _thread_refusal(channel: Channel | None) -> str:
    """Why the last threaded post went into the channel instead (a missing permission ...)."""
    note = (channel.last_failure or "") if channel else ""
    if not note.startswith(THREADS_REFUSED):
        return ""
    return f" (refused, so the papers went into the channel: {note[len(THREADS_REFUSED) :]})"


def set_digest(ctx: Context, place: Place, command: DigestAt | DigestOff | DigestShape) -> Reply:
    if place.platform == TERMINAL.platform:
        return error(NO_TERMINAL_POST)
    with write_session(ctx.engine) as session:
        channel = ctx.channel(session, place)
        match command:
            case DigestOff():
                channel.digest_enabled = False
            case DigestAt():
                channel.digest_enabled = True
                channel.digest_time = command.time
                channel.digest_timezone = command.timezone or channel.digest_timezone
                channel.digest_weekday = command.weekday  # `digest HH:MM` is daily again
                channel.paused = False
                channel.failed_days = 0
            case DigestShape():
                _reshape(channel, command)
        session.add(channel)
        session.flush()
        text = digest_text(ctx, channel)
        if isinstance(command, DigestAt):
            text += _due_now(ctx, session, channel)
    return Text(text)


def _due_now(ctx: Context, session: Session, channel: Channel) -> str:
    """A time set after it has passed in this period (today, or this week) with no post yet:
    the post goes out at the next sweep, as it would for a process started late; say so."""
    when = (channel.digest_time, channel.digest_timezone, channel.digest_weekday)
    period = digest.schedule_of(ctx.settings, *when).due(ctx.clock())
    if period is None:
        return ""
    posted = select(DigestClaim.id).where(
        DigestClaim.channel_id == channel.id, DigestClaim.local_date == period
    )
    if session.exec(posted).first() is not None:
        return ""  # this period's post happened (or is under way): the next one is next time
    post = digest.pending_post(session, channel)
    if post is None:
        return ""  # nothing to post: the period passes quietly, as it would have anyway
    this = "today" if channel.digest_weekday is None else "this week"
    papers = f"{post.count} new paper goes" if post.count == 1 else f"{post.count} new papers go"
    return f" That time has passed {this}: {papers} out now, then on schedule."


def _reshape(channel: Channel, command: DigestShape) -> None:
    if command.threads is not None:
        channel.digest_threads = command.threads
        if (channel.last_failure or "").startswith(THREADS_REFUSED):
            channel.last_failure = None  # someone acted: the next post says again if need be
    if command.style is not None:
        channel.digest_style = command.style
    if command.max_papers is not None:
        channel.digest_max = command.max_papers


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

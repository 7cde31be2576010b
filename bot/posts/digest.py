"""Daily posts in the database: who is due, and what a channel's post holds.

The claim that makes each post happen once lives in `bot.posts.claims`; this module gives it the
channels that are due, their undelivered papers, and the papers already on their way.
Every function here is synchronous and takes its session; `bot.posts.runner` runs them in threads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

# The generic ARRAY: on PostgreSQL it becomes the dialect's, and SQLite never imports that.
from sqlalchemy import ARRAY, Integer, Table, any_, bindparam, exists, or_
from sqlalchemy import select as sa_select
from sqlalchemy.exc import NoResultFound
from sqlmodel import Session, col, select

from bot.config import Settings
from bot.replies import PaperGroup, Papers
from bot.storage import catalog, store
from bot.storage.models import Channel, DigestClaim, Keyword, Subscription, Workspace
from bot.timeparse import parse_hhmm, parse_zone

logger = logging.getLogger(__name__)

CLAIMED, SENDING, SENT, EMPTY, FAILED, UNCERTAIN = (
    "claimed",
    "sending",
    "sent",
    "empty",
    "failed",
    "uncertain",
)
_CLAIMS: Table = DigestClaim.__table__  # type: ignore[attr-defined]
_CHANNELS: Table = Channel.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class DueChannel:
    """A channel whose post time has passed today (in its zone) and whose day is not settled."""

    channel_id: int
    platform: str
    workspace_id: str  # the platform's id of the workspace (what a Poster needs)
    channel: str  # the platform's id of the channel
    local_date: date
    retake: bool = False  # its claim was taken by a process that died before sending


# -- when ---------------------------------------------------------------------------------


def digest_schedule(
    channel: Channel | ScheduledChannel, settings: Settings
) -> tuple[str, ZoneInfo]:
    """The channel's post time and zone, with the deployment's defaults filled in."""
    zone = parse_zone(channel.digest_timezone or settings.timezone)
    if zone is None:
        logger.warning(
            "channel %s has an unknown timezone; using %s", channel.id, settings.timezone
        )
        zone = ZoneInfo(settings.timezone)
    return channel.digest_time or settings.digest_time, zone


def post_instant(day: date, hhmm: str, zone: ZoneInfo) -> datetime:
    """When `day`'s post is due, in UTC. A time skipped by a DST change falls after the gap;
    a time that happens twice is its first occurrence (fold=0)."""
    hour, minute = parse_hhmm(hhmm) or (9, 0)
    return datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class ScheduledChannel:
    """What the schedule needs of a channel that gets daily posts."""

    id: int
    digest_time: str | None
    digest_timezone: str | None
    external_id: str  # the platform's id of the channel
    platform: str
    workspace_external_id: str  # the platform's id of its workspace


def scheduled_channels(
    session: Session, *, platforms: Collection[str], only: Collection[int] | None = None
) -> list[ScheduledChannel]:
    """Channels that get a daily post here: active, on, not paused, following something."""
    follows = exists().where(col(Subscription.channel_id) == col(Channel.id))
    query = (
        sa_select(
            col(Channel.id),
            col(Channel.digest_time),
            col(Channel.digest_timezone),
            col(Channel.external_id),
            col(Workspace.platform),
            col(Workspace.external_id),
        )
        .join(Workspace, col(Workspace.id) == col(Channel.workspace_id))
        .where(
            col(Channel.active).is_(True),
            col(Channel.digest_enabled).is_(True),
            col(Channel.paused).is_(False),
            col(Workspace.active).is_(True),
            col(Workspace.platform).in_(list(platforms)),
            follows,
        )
        .order_by(col(Channel.id))
    )
    if only is not None:
        query = query.where(col(Channel.id).in_(list(only)))
    return [ScheduledChannel(*row) for row in session.execute(query)]


def due_channels(
    session: Session,
    *,
    settings: Settings,
    now: datetime,
    platforms: Collection[str],
    only: Collection[int] | None = None,
) -> list[DueChannel]:
    """Channels whose post time today has passed and whose today is neither done nor held."""
    candidates = []
    today: dict[tuple[str, str], tuple[date, bool]] = {}  # per schedule: local date, passed
    for channel in scheduled_channels(session, platforms=platforms, only=only):
        hhmm, zone = digest_schedule(channel, settings)
        if (hhmm, zone.key) not in today:
            day = now.astimezone(zone).date()
            today[hhmm, zone.key] = day, now >= post_instant(day, hhmm, zone)
        day, passed = today[hhmm, zone.key]
        if passed:
            candidates.append(
                DueChannel(
                    channel.id,
                    channel.platform,
                    channel.workspace_external_id,
                    channel.external_id,
                    day,
                )
            )
    if not candidates:
        return []
    claimed = _claims_of(session, candidates)
    due = []
    for c in candidates:
        held = claimed.get((c.channel_id, c.local_date))
        if held is None:
            due.append(c)
        elif held[0] == CLAIMED and store.as_utc(held[1]) < now:
            due.append(replace(c, retake=True))
    return due


def _claims_of(
    session: Session, candidates: Sequence[DueChannel]
) -> dict[tuple[int, date], tuple[str, datetime]]:
    """(channel, day) -> (status, lease end) of the candidates' claims."""
    found = {}
    days = {c.local_date for c in candidates}
    for start in range(0, len(candidates), 500):
        ids = [c.channel_id for c in candidates[start : start + 500]]
        rows = session.execute(
            select(
                _CLAIMS.c.channel_id, _CLAIMS.c.local_date, _CLAIMS.c.status, _CLAIMS.c.lease_until
            ).where(_CLAIMS.c.channel_id.in_(ids), _CLAIMS.c.local_date.in_(days))
        ).all()
        found.update({(cid, day): (status, lease) for cid, day, status, lease in rows})
    return found


# Built once: these run for every channel every morning, and building a statement costs
# SQLAlchemy several times what SQLite takes to run it.
_LOCK_CHANNEL = (
    select(_CHANNELS.c.id).where(_CHANNELS.c.id == bindparam("channel")).with_for_update()
)
_LOCK_CHANNELS = (
    select(_CHANNELS.c.id)
    .where(_CHANNELS.c.id == any_(bindparam("channels", type_=ARRAY(Integer))))
    .order_by(_CHANNELS.c.id)
    .with_for_update()
)
_IN_FLIGHT = select(_CLAIMS.c.papers).where(
    _CLAIMS.c.channel_id == bindparam("channel"), _CLAIMS.c.status == SENDING
)
_IN_FLIGHT_MANY = select(_CLAIMS.c.channel_id, _CLAIMS.c.papers).where(
    _CLAIMS.c.channel_id.in_(bindparam("channels", expanding=True)), _CLAIMS.c.status == SENDING
)


# -- what a post holds --------------------------------------------------------------------


def lock_channel(session: Session, channel_id: int) -> None:
    """Lock the channel's row until commit (PostgreSQL; SQLite's BEGIN IMMEDIATE already is)."""
    session.execute(_LOCK_CHANNEL, {"channel": channel_id}).one()


def lock_channels(session: Session, channel_ids: Sequence[int]) -> None:
    """`lock_channel` for several channels (ascending ids), in one statement on PostgreSQL.

    On PostgreSQL the row locks (SELECT … FOR UPDATE, taken in id order) keep a concurrent
    `digest now` or another process from picking the same undelivered papers until commit.
    On SQLite there are no row locks: the SELECT would lock nothing, as the write transactions
    begin IMMEDIATE (`bot.storage.db`) and so already hold the database's only write lock, so the
    statement is skipped. Raises `NoResultFound` for a missing channel, as `lock_channel`.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    wanted = sorted(set(channel_ids))
    locked = session.execute(_LOCK_CHANNELS, {"channels": wanted}).scalars().all()
    if len(locked) != len(wanted):
        raise NoResultFound(f"channels {sorted(set(wanted) - set(locked))} not found")


def in_flight_papers(session: Session, channel_id: int) -> set[str]:
    """Papers of the channel's posts in the "sending" state (on their way, not yet recorded)."""
    rows = session.execute(_IN_FLIGHT, {"channel": channel_id}).all()
    return {pid for (papers,) in rows for pid in json.loads(papers or "[]")}


def in_flight_papers_many(session: Session, channel_ids: Sequence[int]) -> dict[int, set[str]]:
    """`in_flight_papers` of several channels in one query (channels with none are left out)."""
    found: dict[int, set[str]] = {}
    for channel_id, papers in session.execute(_IN_FLIGHT_MANY, {"channels": list(channel_ids)}):
        found.setdefault(channel_id, set()).update(json.loads(papers or "[]"))
    return found


def undelivered_post(
    session: Session, channel: Channel | int, *, exclude: Collection[str] = ()
) -> Papers | None:
    """The channel's undelivered papers as one post, grouped by keyword; None if nothing is new."""
    return post_of(catalog.undelivered_groups(session, channel, exclude=exclude))


def post_of(groups: Sequence[PaperGroup]) -> Papers | None:
    if not groups:
        return None
    total = sum(len(g.papers) for g in groups)
    return Papers(
        heading=f"{total} new paper{'s' if total != 1 else ''} on arXiv", groups=tuple(groups)
    )


def take_now(session: Session, channel: Channel) -> Papers | None:
    """`digest now`: the undelivered papers, recorded as delivered before the reply carries them.

    Takes no claim, so the day's scheduled post still happens (with whatever is new by then).
    """
    assert channel.id is not None
    lock_channel(session, channel.id)
    post = undelivered_post(session, channel, exclude=in_flight_papers(session, channel.id))
    if post is not None:
        store.mark_delivered(session, channel_id=channel.id, paper_ids=paper_ids(post))
    return post


def paper_ids(post: Papers) -> list[str]:
    return [p.arxiv_id for g in post.groups for p in g.papers]


def stale_labels(
    session: Session, *, channel_ids: Sequence[int], since: datetime
) -> dict[int, list[str]]:
    """Per channel, its keywords not fetched successfully since `since` (the last daily refresh).
    Compared in SQL (timestamps are stored in UTC, `since` is turned to UTC), so the usual
    answer, nothing stale, reads no rows."""
    stale: dict[int, list[str]] = {}
    last_success = col(Keyword.last_success_at)
    for start in range(0, len(channel_ids), 500):
        rows = session.execute(
            select(Subscription.channel_id, Keyword.phrase)
            .join(Keyword, col(Keyword.id) == col(Subscription.keyword_id))
            .where(
                col(Subscription.channel_id).in_(channel_ids[start : start + 500]),
                or_(last_success.is_(None), last_success < since.astimezone(UTC)),
            )
        ).all()
        for channel_id, phrase in rows:
            stale.setdefault(channel_id, []).append(phrase)
    return stale

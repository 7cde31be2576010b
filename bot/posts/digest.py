"""Daily posts in the database: which channels are due, and what a channel's post holds.

Every function here is synchronous and takes its session; `bot.posts.runner` runs them in a
thread. The claim that makes each post happen once is `bot.posts.claims`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import exists, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bot.config import Settings
from bot.replies import PaperGroup, Papers
from bot.storage import catalog, store
from bot.storage.models import Channel, DigestClaim, DigestPart, Keyword, Subscription, Workspace
from bot.timeparse import clock_of, parse_zone

logger = logging.getLogger(__name__)

MAX_PAPERS = 200  # `digest max N` takes 1..MAX_PAPERS
# Undelivered papers read per keyword: as many as the largest `max` carries, so a post of one
# busy keyword is not cut at the catalogue's default of 100 before `max` is applied.
PER_KEYWORD = MAX_PAPERS

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Shape:
    """How a channel's post looks: its papers in a thread under a short parent, the full or
    compact style, and at most `max_papers` papers (the rest wait for the next post)."""

    threads: bool = False
    style: str = "full"
    max_papers: int = 100  # `digest max N` takes 1..MAX_PAPERS


@dataclass(frozen=True)
class DueChannel:
    """A channel whose post time has passed in its period: the local date of its post
    (today's for a daily post, the chosen weekday's of this week for a weekly one)."""

    channel_id: int
    platform: str
    workspace: str  # the platform's ids, what a Poster needs
    channel: str
    local_date: date
    shape: Shape = Shape()


@dataclass(frozen=True)
class DigestOutcome:
    """What one channel's turn did: sent, empty, failed, paused, retry, taken or stopped."""

    channel_id: int
    local_date: date
    status: str


@dataclass(frozen=True)
class Schedule:
    """When a channel posts: at `hhmm` in `zone`, daily or weekly on `weekday` (0 = Monday).
    The one place the defaults (`DIGEST_TIME`, `TIMEZONE`) are filled in."""

    hhmm: str
    zone_name: str
    weekday: int | None = None

    @property
    def zone(self) -> ZoneInfo:
        zone = parse_zone(self.zone_name)
        assert zone is not None, self.zone_name  # `schedule_of` chose a zone that exists
        return zone

    def period(self, now: datetime) -> date:
        """The local date of the latest post day on or before `now`'s local date."""
        today = now.astimezone(self.zone).date()
        if self.weekday is None:
            return today
        return today - timedelta(days=(today.weekday() - self.weekday) % 7)

    def due(self, now: datetime) -> date | None:
        """The period whose post time has passed at `now`, or None (not yet)."""
        day = self.period(now)
        return day if now >= post_instant(day, self.hhmm, self.zone) else None

    def describe(self) -> str:
        if self.weekday is None:
            return f"Daily post at {self.hhmm} {self.zone_name}"
        return f"Weekly post on {DAY_NAMES[self.weekday]} at {self.hhmm} {self.zone_name}"


def schedule_of(
    settings: Settings,
    hhmm: str | None = None,
    zone_name: str | None = None,
    weekday: int | None = None,
) -> Schedule:
    """A channel's stored schedule with the defaults filled in; an unknown stored zone (one
    removed from the zone database since) falls back to `TIMEZONE`, with a warning."""
    name = zone_name or settings.timezone
    if parse_zone(name) is None:
        logger.warning("unknown timezone %r; using %s", name, settings.timezone)
        name = settings.timezone
    return Schedule(hhmm or settings.digest_time, name, weekday)


def post_instant(day: date, hhmm: str, zone: ZoneInfo) -> datetime:
    """When `day`'s post is due, in UTC. A time skipped by a DST change falls after the gap;
    a time that happens twice is its first occurrence (fold=0)."""
    hour, minute = clock_of(hhmm)
    return datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)


def due_channels(
    session: Session,
    *,
    settings: Settings,
    now: datetime,
    platforms: Collection[str],
) -> list[DueChannel]:
    """Channels that get posts here (active, on, not paused, following something) whose
    post time in their period has passed, settled or not: the claims decide that."""
    when = (Channel.digest_time, Channel.digest_timezone, Channel.digest_weekday)
    shape = (Channel.digest_threads, Channel.digest_style, Channel.digest_max)
    query = (
        sa_select(
            *(col(c) for c in (Channel.id, *when, *shape)),
            *(col(c) for c in (Channel.external_id, Workspace.platform, Workspace.external_id)),
        )
        .join(Workspace, col(Workspace.id) == col(Channel.workspace_id))
        .where(col(Channel.active), col(Channel.digest_enabled), ~col(Channel.paused))
        .where(col(Workspace.active), col(Workspace.platform).in_(list(platforms)))
        .where(exists().where(col(Subscription.channel_id) == col(Channel.id)))
        .order_by(col(Channel.id))
    )
    due = []
    for id_, hhmm, zone, weekday, threads, style, most, channel, platform, ws in session.execute(
        query
    ):
        day = schedule_of(settings, hhmm, zone, weekday).due(now)
        if day is not None:
            shaped = Shape(bool(threads), style, most)
            due.append(DueChannel(id_, platform, ws, channel, day, shaped))
    return due


# -- what a post holds --------------------------------------------------------------------


def lock_channels(session: Session, channel_ids: Sequence[int]) -> None:
    """Lock the channels' rows until commit (ascending ids, one lock order everywhere), so
    that a concurrent `digest now` or another process cannot pick the same undelivered papers
    meanwhile. On SQLite this locks nothing and needs not: its write transactions begin
    IMMEDIATE (`bot.storage.db`) and so already exclude each other."""
    locking = select(Channel.id).where(col(Channel.id).in_(channel_ids)).with_for_update()
    session.execute(locking.order_by(col(Channel.id))).all()


def in_flight_papers(session: Session, channel_ids: Sequence[int]) -> dict[int, set[str]]:
    """Per channel, the papers of parts not yet sent of its open posts: they are on their way."""
    rows = session.execute(
        select(DigestClaim.channel_id, DigestPart.papers)
        .join(DigestClaim, col(DigestClaim.id) == col(DigestPart.claim_id))
        .where(
            col(DigestClaim.channel_id).in_(list(channel_ids)),
            DigestClaim.status == "open",
            DigestPart.status != "sent",
        )
    )
    found: dict[int, set[str]] = {}
    for channel_id, papers in rows:
        found.setdefault(channel_id, set()).update(json.loads(papers))
    return found


def post_of(groups: Sequence[PaperGroup], shape: Shape | None = None) -> Papers | None:
    """The undelivered papers as one post in the channel's shape; None when nothing is new.
    Past `max_papers`, the post carries the oldest (first come, first posted: papers left
    waiting go out before newer ones, so a backlog drains) and counts the rest; each keyword
    still shows its papers newest first."""
    total = sum(len(g.papers) for g in groups)
    if not total:
        return None
    shape = shape or Shape()
    kept = list(groups)
    if total > shape.max_papers:
        waiting = sorted(
            (p for g in groups for p in g.papers), key=lambda p: (p.updated, p.arxiv_id)
        )
        carried = {p.arxiv_id for p in waiting[: shape.max_papers]}
        kept = [
            PaperGroup(g.label, tuple(p for p in g.papers if p.arxiv_id in carried)) for g in groups
        ]
        kept = [g for g in kept if g.papers]
    return Papers(
        heading=f"{total} new paper{'s' if total != 1 else ''} on arXiv",
        groups=tuple(kept),
        style=shape.style,
        more=total - shape.max_papers if total > shape.max_papers else 0,
    )


def shape_of(channel: Channel) -> Shape:
    return Shape(channel.digest_threads, channel.digest_style, channel.digest_max)


def paper_ids(post: Papers) -> list[str]:
    return [p.arxiv_id for g in post.groups for p in g.papers]


def pending_post(
    session: Session, channel: Channel, exclude: Collection[str] = ()
) -> Papers | None:
    """The channel's undelivered papers (less `exclude`) as its next post carries them: its
    style, within its `max`; None when nothing is new."""
    groups = catalog.undelivered_groups(session, channel, per_keyword=PER_KEYWORD, exclude=exclude)
    return post_of(groups, shape_of(channel))


def take_now(session: Session, channel: Channel) -> Papers | None:
    """`digest now`: the undelivered papers not on their way in a post, in the channel's
    style and within its `max`, recorded as delivered before the reply carries them (the rest
    stay for the next post). Takes no claim: the day's post still happens."""
    assert channel.id is not None
    lock_channels(session, [channel.id])
    on_their_way = in_flight_papers(session, [channel.id]).get(channel.id, set())
    post = pending_post(session, channel, exclude=on_their_way)
    if post is not None:
        store.mark_delivered(session, channel_id=channel.id, paper_ids=paper_ids(post))
    return post


def stale_labels(session: Session, *, channel_ids: Sequence[int], since: datetime) -> list[str]:
    """The keywords of these channels not fetched successfully since `since` (the last daily
    refresh), each once. Compared in SQL, so the usual answer, nothing stale, reads no rows."""
    last_success = col(Keyword.last_success_at)
    rows = session.execute(
        select(Keyword.phrase)
        .join(Subscription, col(Keyword.id) == col(Subscription.keyword_id))
        .where(col(Subscription.channel_id).in_(list(channel_ids)))
        .where(or_(last_success.is_(None), last_success < since.astimezone(UTC)))
        .distinct()
    )
    return list(rows.scalars())

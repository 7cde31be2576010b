"""Daily posts in the database: which channels are due, and what a channel's post holds.

Every function here is synchronous and takes its session; `bot.posts.runner` runs them in a
thread. The claim that makes each post happen once is `bot.posts.claims`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import exists, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bot.config import Settings
from bot.replies import PaperGroup, Papers
from bot.storage import catalog, store
from bot.storage.models import Channel, DigestClaim, DigestPart, Keyword, Subscription, Workspace
from bot.timeparse import parse_hhmm, parse_zone

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DueChannel:
    """A channel whose post time has passed on its local date (the period of its post)."""

    channel_id: int
    platform: str
    workspace: str  # the platform's ids, what a Poster needs
    channel: str
    local_date: date


def post_instant(day: date, hhmm: str, zone: ZoneInfo) -> datetime:
    """When `day`'s post is due, in UTC. A time skipped by a DST change falls after the gap;
    a time that happens twice is its first occurrence (fold=0)."""
    hour, minute = parse_hhmm(hhmm) or (9, 0)
    return datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)


def due_channels(
    session: Session,
    *,
    settings: Settings,
    now: datetime,
    platforms: Collection[str],
) -> list[DueChannel]:
    """Channels that get daily posts here (active, on, not paused, following something) whose
    post time on their local date has passed, settled or not: the claims decide that."""
    query = (
        sa_select(
            *(col(c) for c in (Channel.id, Channel.digest_time, Channel.digest_timezone)),
            *(col(c) for c in (Channel.external_id, Workspace.platform, Workspace.external_id)),
        )
        .join(Workspace, col(Workspace.id) == col(Channel.workspace_id))
        .where(col(Channel.active), col(Channel.digest_enabled), ~col(Channel.paused))
        .where(col(Workspace.active), col(Workspace.platform).in_(list(platforms)))
        .where(exists().where(col(Subscription.channel_id) == col(Channel.id)))
        .order_by(col(Channel.id))
    )
    due = []
    for id_, hhmm, zone_name, channel, platform, workspace in session.execute(query):
        zone = parse_zone(zone_name or settings.timezone)
        if zone is None:
            logger.warning("channel %s has an unknown timezone; using %s", id_, settings.timezone)
            zone = ZoneInfo(settings.timezone)
        day = now.astimezone(zone).date()
        if now >= post_instant(day, hhmm or settings.digest_time, zone):
            due.append(DueChannel(id_, platform, workspace, channel, day))
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


def post_of(groups: Sequence[PaperGroup]) -> Papers | None:
    """The undelivered papers as one post, or None when nothing is new."""
    total = sum(len(g.papers) for g in groups)
    if not total:
        return None
    return Papers(
        heading=f"{total} new paper{'s' if total != 1 else ''} on arXiv", groups=tuple(groups)
    )


def undelivered_post(session: Session, channel: Channel | int) -> Papers | None:
    """The channel's undelivered papers as one post, grouped by keyword; None if nothing is new."""
    return post_of(catalog.undelivered_groups(session, channel))


def paper_ids(post: Papers) -> list[str]:
    return [p.arxiv_id for g in post.groups for p in g.papers]


def take_now(session: Session, channel: Channel) -> Papers | None:
    """`digest now`: the undelivered papers not on their way in a daily post, recorded as
    delivered before the reply carries them. Takes no claim: the day's post still happens."""
    assert channel.id is not None
    lock_channels(session, [channel.id])
    exclude = in_flight_papers(session, [channel.id]).get(channel.id, set())
    post = post_of(catalog.undelivered_groups(session, channel, exclude=exclude))
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

"""Daily posts in the database: who is due, the exactly-once claim, and what a post holds.

A post moves through one claim row per (channel, local date):

    claimed ──> sending ──> sent | failed | uncertain
       └──────> empty (nothing new: no post)

"claimed" may be retaken by another process once its lease expires; "sending" never is:
from then on the platform may have the post, so a crash leaves it to `recover_abandoned`,
which counts its papers as delivered instead of posting them twice (at most once beats twice).
Every function here is synchronous and takes its session; `bot.schedule` runs them in threads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, exists, update
from sqlmodel import Session, col, select

from bot import store
from bot.config import Settings
from bot.models import Channel, DigestClaim, Keyword, Subscription, Workspace
from bot.replies import Papers
from bot.timeparse import parse_hhmm, parse_zone

logger = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=15)
PAUSE_AFTER_FAILED_DAYS = 3
CLAIMED, SENDING, SENT, EMPTY, FAILED, UNCERTAIN = (
    "claimed",
    "sending",
    "sent",
    "empty",
    "failed",
    "uncertain",
)
_CLAIMS: Table = DigestClaim.__table__  # type: ignore[attr-defined]


class ClaimLost(Exception):
    """Another process retook the claim after our lease expired; it posts, we do not."""


@dataclass(frozen=True)
class DueChannel:
    """A channel whose post time has passed today (in its zone) and whose day is not settled."""

    channel_id: int
    platform: str
    workspace_id: str  # the platform's id of the workspace (what a Poster needs)
    channel: str  # the platform's id of the channel
    local_date: date


@dataclass(frozen=True)
class Claim:
    id: int
    channel_id: int
    local_date: date
    owner: str


# -- when ---------------------------------------------------------------------------------


def digest_schedule(channel: Channel, settings: Settings) -> tuple[str, ZoneInfo]:
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


def last_refresh_slot(now: datetime, fetch_time: str) -> datetime:
    """The most recent daily refresh time (UTC) at or before `now`."""
    hour, minute = parse_hhmm(fetch_time) or (1, 0)
    slot = now.astimezone(UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return slot if slot <= now else slot - timedelta(days=1)


def scheduled_channels(
    session: Session, *, platforms: Collection[str], only: Collection[int] | None = None
) -> list[tuple[Channel, Workspace]]:
    """Channels that get a daily post here: active, on, not paused, following something."""
    follows = exists().where(col(Subscription.channel_id) == col(Channel.id))
    query = (
        select(Channel, Workspace)
        .join(Workspace, Workspace.id == Channel.workspace_id)  # type: ignore[arg-type]
        .where(
            Channel.active == True,  # noqa: E712
            Channel.digest_enabled == True,  # noqa: E712
            Channel.paused == False,  # noqa: E712
            Workspace.active == True,  # noqa: E712
            col(Workspace.platform).in_(list(platforms)),
            follows,
        )
        .order_by(col(Channel.id))
    )
    if only is not None:
        query = query.where(col(Channel.id).in_(list(only)))
    return [(c, w) for c, w in session.exec(query).all()]


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
    for channel, workspace in scheduled_channels(session, platforms=platforms, only=only):
        hhmm, zone = digest_schedule(channel, settings)
        day = now.astimezone(zone).date()
        if now >= post_instant(day, hhmm, zone):
            assert channel.id is not None
            candidates.append(
                DueChannel(
                    channel.id, workspace.platform, workspace.external_id, channel.external_id, day
                )
            )
    if not candidates:
        return []
    settled = _settled_days(session, candidates, now)
    return [c for c in candidates if (c.channel_id, c.local_date) not in settled]


def _settled_days(
    session: Session, candidates: Sequence[DueChannel], now: datetime
) -> set[tuple[int, date]]:
    rows = session.execute(
        select(_CLAIMS.c.channel_id, _CLAIMS.c.local_date, _CLAIMS.c.status, _CLAIMS.c.lease_until)
        .where(_CLAIMS.c.channel_id.in_([c.channel_id for c in candidates]))
        .where(_CLAIMS.c.local_date.in_({c.local_date for c in candidates}))
    ).all()
    return {
        (cid, day)
        for cid, day, status, lease in rows
        if not (status == CLAIMED and store.as_utc(lease) < now)
    }


# -- the claim ----------------------------------------------------------------------------


def claim_digest(
    session: Session, *, channel_id: int, local_date: date, owner: str, now: datetime
) -> Claim | None:
    """Take the channel's claim for `local_date`, or retake one whose holder died before sending."""
    until = now + CLAIM_LEASE
    insert = store.insert_for(session, DigestClaim).values(
        channel_id=channel_id,
        local_date=local_date,
        status=CLAIMED,
        owner=owner,
        lease_until=until,
        claimed_at=now,
    )
    row = session.execute(
        insert.on_conflict_do_nothing(index_elements=["channel_id", "local_date"]).returning(
            _CLAIMS.c.id
        )
    ).first()
    if row is None:
        row = session.execute(
            update(_CLAIMS)
            .where(
                _CLAIMS.c.channel_id == channel_id,
                _CLAIMS.c.local_date == local_date,
                _CLAIMS.c.status == CLAIMED,
                _CLAIMS.c.lease_until < now,
            )
            .values(owner=owner, lease_until=until, claimed_at=now)
            .returning(_CLAIMS.c.id)
        ).first()
        if row is not None:
            logger.warning(
                "retook the %s post of channel %s: its holder stopped before sending",
                local_date,
                channel_id,
            )
    return None if row is None else Claim(row[0], channel_id, local_date, owner)


def begin_sending(session: Session, claim: Claim, *, now: datetime) -> Papers | None:
    """Pick the papers and pass the point of no return, or settle the day as empty.

    Holds the channel's row lock, so `digest now` cannot pick the same papers meanwhile.
    Raises `ClaimLost` when another process retook the claim.
    """
    channel = lock_channel(session, claim.channel_id)
    held = session.execute(
        update(_CLAIMS)
        .where(
            _CLAIMS.c.id == claim.id, _CLAIMS.c.owner == claim.owner, _CLAIMS.c.status == CLAIMED
        )
        .values(lease_until=now + CLAIM_LEASE)
        .returning(_CLAIMS.c.id)
    ).first()
    if held is None:
        raise ClaimLost(f"claim {claim.id} of channel {claim.channel_id}")
    post = undelivered_post(session, channel, exclude=in_flight_papers(session, channel.id))  # type: ignore[arg-type]
    if post is None:
        _settle(session, claim, EMPTY, now)
        return None
    _set_claim(session, claim.id, status=SENDING, papers=json.dumps(paper_ids(post)))
    return post


def record_sent(session: Session, claim: Claim, post: Papers, *, now: datetime) -> None:
    """The platform accepted the post: its papers are delivered, the failure count resets."""
    store.mark_delivered(session, channel_id=claim.channel_id, paper_ids=paper_ids(post))
    _settle(session, claim, SENT, now)
    channel = session.get(Channel, claim.channel_id)
    if channel is not None and channel.failed_days:
        channel.failed_days = 0
        session.add(channel)


def record_uncertain(
    session: Session, claim: Claim, post: Papers, *, reason: str, now: datetime
) -> None:
    """The platform may have the post: count its papers as delivered, never send it again."""
    logger.warning(
        "the %s post of channel %s may or may not have arrived (%s); not sending it again",
        claim.local_date,
        claim.channel_id,
        reason,
    )
    store.mark_delivered(session, channel_id=claim.channel_id, paper_ids=paper_ids(post))
    _settle(session, claim, UNCERTAIN, now, detail=reason)


def record_failure(
    session: Session, claim: Claim, *, reason: str, permanent: bool, now: datetime
) -> bool:
    """The platform refused the post; its papers stay undelivered. True when the channel
    is now paused (refused for good on `PAUSE_AFTER_FAILED_DAYS` days running)."""
    _settle(session, claim, FAILED, now, detail=reason)
    channel = session.get(Channel, claim.channel_id)
    if channel is None or not permanent:
        return False
    channel.failed_days += 1
    channel.last_failure = reason[:300]
    channel.paused = channel.failed_days >= PAUSE_AFTER_FAILED_DAYS
    session.add(channel)
    return channel.paused


def recover_abandoned(session: Session, *, now: datetime) -> int:
    """Settle posts whose process stopped after sending began: their papers count as delivered."""
    rows = session.execute(
        select(_CLAIMS.c.id, _CLAIMS.c.channel_id, _CLAIMS.c.local_date, _CLAIMS.c.papers).where(
            _CLAIMS.c.status == SENDING, _CLAIMS.c.lease_until < now
        )
    ).all()
    for claim_id, channel_id, day, papers in rows:
        logger.warning(
            "the %s post of channel %s stopped after it was handed to the platform; "
            "counting its papers as delivered, not posting it again",
            day,
            channel_id,
        )
        store.mark_delivered(session, channel_id=channel_id, paper_ids=json.loads(papers or "[]"))
        _set_claim(
            session,
            claim_id,
            status=UNCERTAIN,
            finished_at=now,
            detail="abandoned while sending",
        )
    return len(rows)


def has_abandoned(session: Session, *, now: datetime) -> bool:
    return (
        session.execute(
            select(_CLAIMS.c.id)
            .where(_CLAIMS.c.status == SENDING, _CLAIMS.c.lease_until < now)
            .limit(1)
        ).first()
        is not None
    )


def _settle(
    session: Session, claim: Claim, status: str, now: datetime, detail: str | None = None
) -> None:
    _set_claim(
        session, claim.id, status=status, finished_at=now, detail=detail[:500] if detail else None
    )


def _set_claim(session: Session, claim_id: int, **values: Any) -> None:
    session.execute(update(_CLAIMS).where(_CLAIMS.c.id == claim_id).values(**values))


# -- what a post holds --------------------------------------------------------------------


def lock_channel(session: Session, channel_id: int) -> Channel:
    """The channel's row, locked until commit (PostgreSQL; SQLite's BEGIN IMMEDIATE already is)."""
    return session.exec(select(Channel).where(Channel.id == channel_id).with_for_update()).one()


def in_flight_papers(session: Session, channel_id: int) -> set[str]:
    """Papers of the channel's posts in the "sending" state (on their way, not yet recorded)."""
    rows = session.execute(
        select(_CLAIMS.c.papers).where(
            _CLAIMS.c.channel_id == channel_id, _CLAIMS.c.status == SENDING
        )
    ).all()
    return {pid for (papers,) in rows for pid in json.loads(papers or "[]")}


def undelivered_post(
    session: Session, channel: Channel, *, exclude: Collection[str] = ()
) -> Papers | None:
    """The channel's undelivered papers as one post, grouped by keyword; None if nothing is new."""
    groups = store.undelivered_groups(session, channel, exclude=exclude)
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
    lock_channel(session, channel.id)  # type: ignore[arg-type]
    post = undelivered_post(session, channel, exclude=in_flight_papers(session, channel.id))  # type: ignore[arg-type]
    if post is not None:
        store.mark_delivered(session, channel_id=channel.id, paper_ids=paper_ids(post))  # type: ignore[arg-type]
    return post


def paper_ids(post: Papers) -> list[str]:
    return [p.arxiv_id for g in post.groups for p in g.papers]


def stale_labels(session: Session, *, channel_id: int, since: datetime) -> list[str]:
    """The channel's keywords not fetched successfully since `since` (the last daily refresh)."""
    rows = session.exec(
        select(Keyword)
        .join(Subscription, Subscription.keyword_id == Keyword.id)  # type: ignore[arg-type]
        .where(Subscription.channel_id == channel_id)
    ).all()
    return [k.phrase for k in rows if is_stale(k, since)]


def is_stale(keyword: Keyword, since: datetime) -> bool:
    return keyword.last_success_at is None or store.as_utc(keyword.last_success_at) < since

"""The daily post's claim and its parts: one post per channel and local date, each part in
the channel once, whatever restarts, crashes, deploys or extra processes (SPEC section 5).

    take -> open -> sent    (every part sent)
                 -> empty   (nothing new: no post)
                 -> failed  (refused for good, a rendering error, or the day ended)
            open -> open, handed back until retry_at (a transient failure: 1, 5, 15, 60 min)

An open claim is its owner's while `lease_until` is ahead (renewed every 20 s by a live
holder); one handed back, or whose holder died, is taken by any process. Its parts are
rendered once and stored; each goes pending -> sending (its request is leaving) -> sent, and
its papers are delivered with it. A part a new holder finds "sending" is verified by reading
the channel back (`bot.posts.runner`). Every function here takes its session.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, delete, or_, select, update
from sqlmodel import Session

from bot.posts.digest import PER_KEYWORD, DueChannel, in_flight_papers, lock_channels, post_of
from bot.posts.poster import Part
from bot.replies import Papers
from bot.storage import catalog, store
from bot.storage.models import Channel, DigestClaim, DigestPart

logger = logging.getLogger(__name__)

OPEN, SENT, EMPTY, FAILED = "open", "sent", "empty", "failed"
PENDING, SENDING = "pending", "sending"  # a part's states before SENT
BACKOFF = tuple(timedelta(minutes=m) for m in (1, 5, 15, 60))
PAUSE_AFTER_FAILED_DAYS = 3
CLAIMS_KEPT_DAYS = 30  # settled claims are history after a day; a month is kept to look into
_CLAIMS: Table = DigestClaim.__table__  # type: ignore[attr-defined]
_PARTS: Table = DigestPart.__table__  # type: ignore[attr-defined]


class ClaimLost(Exception):
    """The claim is no longer ours (handed back, or taken over after our lease ran out)."""


@dataclass(frozen=True)
class Claim:
    id: int
    due: DueChannel
    began: datetime  # when the post was first claimed: its parts are not older

    @property
    def where(self) -> dict[str, str]:
        """The channel as a `Poster` takes it."""
        return {"workspace": self.due.workspace, "channel": self.due.channel}

    def __str__(self) -> str:
        return f"the {self.due.local_date} post of channel {self.due.channel_id}"


@dataclass(frozen=True)
class StoredPart:
    id: int
    status: str
    part: Part
    message_id: str | None = None  # once sent


THREAD_OF = "thread_of"  # kept in a part's stored body: the parent part's number


def take(
    session: Session, due: Sequence[DueChannel], *, owner: str, now: datetime, lease: timedelta
) -> list[Claim]:
    """The claims of the due channels that are free: a new one for a channel's day not yet
    claimed, or an open one handed back or left by a dead holder whose retry time has come.
    An open claim of an earlier day that is free is closed: that day is over."""
    if not due:
        return []
    by_channel = {d.channel_id: d for d in due}
    free = and_(_CLAIMS.c.status == OPEN, or_(_CLAIMS.c.owner == "", _CLAIMS.c.lease_until < now))
    days = {d.local_date for d in due}
    rows = session.execute(
        select(_CLAIMS.c.id, _CLAIMS.c.channel_id, _CLAIMS.c.local_date, _CLAIMS.c.retry_at, free)
        .where(_CLAIMS.c.channel_id.in_(list(by_channel)))
        .where(or_(_CLAIMS.c.status == OPEN, _CLAIMS.c.local_date.in_(days)))
    )
    claimed, retake, over = set(), [], []
    for id_, channel_id, day, retry_at, is_free in rows:
        if day == by_channel[channel_id].local_date:
            claimed.add(channel_id)
            if is_free and (retry_at is None or store.as_utc(retry_at) <= now):
                retake.append(id_)
        elif is_free:
            over.append(id_)
    ended = {"status": FAILED, "finished_at": now, "detail": "the day ended before it was posted"}
    session.execute(update(_CLAIMS).where(_CLAIMS.c.id.in_(over)).values(**ended))
    returning = (_CLAIMS.c.id, _CLAIMS.c.channel_id, _CLAIMS.c.claimed_at)
    taken: list[Any] = list(
        session.execute(
            update(_CLAIMS)
            .where(_CLAIMS.c.id.in_(retake), free)
            .values(owner=owner, lease_until=now + lease)
            .returning(*returning)
        )
    )
    new = [
        {"channel_id": d.channel_id, "local_date": d.local_date, "status": OPEN, "owner": owner}
        | {"lease_until": now + lease, "claimed_at": now, "attempts": 0}
        for d in due
        if d.channel_id not in claimed
    ]
    if new:
        insert = store.insert_for(session, DigestClaim)
        insert = insert.on_conflict_do_nothing(index_elements=["channel_id", "local_date"])
        taken += session.connection().execute(insert.returning(*returning), new)
    return [Claim(id_, by_channel[cid], store.as_utc(began)) for id_, cid, began in taken]


def prepare(
    session: Session,
    claims: Sequence[Claim],
    render: Callable[[Claim, Papers], list[Part]],
    *,
    owner: str,
    now: datetime,
) -> dict[int, list[StoredPart] | str]:
    """Claim id -> its parts: those stored, or the post rendered and stored now, before
    anything is sent. A claim with nothing new settles as empty (-> "empty"); one whose post
    fails to render settles as failed (-> "failed"), its papers undelivered and the channel's
    failure count untouched (a bug of ours, not a refusal)."""
    # Locked first, read after: parts another transaction was storing for these claims (a
    # process that handed them back while rendering) are seen, not rendered a second time.
    lock_channels(session, [c.due.channel_id for c in claims])
    result: dict[int, list[StoredPart] | str] = {**_stored_parts(session, [c.id for c in claims])}
    fresh = [c for c in claims if c.id not in result]
    channels = [c.due.channel_id for c in fresh]
    exclude = in_flight_papers(session, channels)
    groups = catalog.undelivered_groups_many(
        session, channels, per_keyword=PER_KEYWORD, exclude=exclude
    )
    rows = []
    for claim in fresh:
        post = post_of(groups[claim.due.channel_id], claim.due.shape)
        try:
            parts = render(claim, post) if post is not None else []
        except Exception as exc:
            logger.exception("rendering %s failed", claim)
            finish(session, claim, FAILED, owner=owner, now=now, reason=f"rendering: {exc!r}")
            result[claim.id] = FAILED
            continue
        if not parts:
            finish(session, claim, EMPTY, owner=owner, now=now)
            result[claim.id] = EMPTY
        rows += [
            {"claim_id": claim.id, "number": p.number, "status": PENDING, "sent_at": None}
            | {"papers": json.dumps(p.papers), "body": _stored_body(p), "message_id": None}
            for p in parts
        ]
    if rows:
        session.execute(_PARTS.insert(), rows)
    return result | _stored_parts(session, [c.id for c in fresh])


def _stored_parts(session: Session, claim_ids: Sequence[int]) -> dict[int, list[StoredPart]]:
    rows = session.execute(
        select(_PARTS).where(_PARTS.c.claim_id.in_(claim_ids)).order_by(_PARTS.c.number)
    )
    found: dict[int, list[StoredPart]] = {}
    for row in rows:
        body = json.loads(row.body or "{}")
        thread_of = body.pop(THREAD_OF, None)
        part = Part(row.number, body, tuple(json.loads(row.papers)), thread_of)
        stored = StoredPart(row.id, row.status, part, row.message_id)
        found.setdefault(row.claim_id, []).append(stored)
    return found


def _stored_body(part: Part) -> str:
    extra = {THREAD_OF: part.thread_of} if part.thread_of is not None else {}
    return json.dumps(part.body | extra)


def mark_sending(
    session: Session, claim: Claim, part: StoredPart, *, owner: str, now: datetime, lease: timedelta
) -> None:
    """Just before the part's request leaves: checks the claim is still ours (renewing its
    lease), or raises `ClaimLost` and nothing is sent."""
    if not renew(session, [claim.id], owner=owner, now=now, lease=lease):
        raise ClaimLost(str(claim))
    session.execute(update(_PARTS).where(_PARTS.c.id == part.id).values(status=SENDING))


def unmark_sending(session: Session, part: StoredPart) -> None:
    """The part's request never left (or was refused): it is pending again."""
    session.execute(update(_PARTS).where(_PARTS.c.id == part.id).values(status=PENDING))


def record_sent(
    session: Session, claim: Claim, part: StoredPart, *, message_id: str, now: datetime
) -> None:
    """The part is in the channel: its papers are delivered (and its payload no longer kept)."""
    sent = {"status": SENT, "message_id": message_id[:64], "body": None, "sent_at": now}
    session.execute(update(_PARTS).where(_PARTS.c.id == part.id).values(**sent))
    store.mark_delivered(session, channel_id=claim.due.channel_id, paper_ids=part.part.papers)


def finish(
    session: Session,
    claim: Claim,
    status: str,
    *,
    owner: str,
    now: datetime,
    reason: str | None = None,
    refused: bool = False,
    thread_note: str | None = None,
) -> bool:
    """Settle our claim. Sent resets the channel's failure count; `refused` (for good) adds a
    failed day; a sent threaded post leaves `thread_note` ("" clears it: `bot.posts.threads`).
    True when the channel is now paused."""
    done = session.execute(
        update(_CLAIMS)
        .where(_ours([claim.id], owner))
        .values(status=status, finished_at=now, detail=reason and reason[:500], retry_at=None)
        .returning(_CLAIMS.c.id)
    ).first()
    channel = session.get(Channel, claim.due.channel_id)
    if done is None or channel is None or not (status == SENT or refused):
        return False
    channel.failed_days = channel.failed_days + 1 if refused else 0
    if thread_note is not None:
        channel.last_failure = thread_note[:300] or None
    if refused:
        channel.last_failure = (reason or "")[:300]
        channel.paused = channel.failed_days >= PAUSE_AFTER_FAILED_DAYS
    session.add(channel)
    return channel.paused


def retry_later(
    session: Session, claim: Claim, *, owner: str, now: datetime, reason: str
) -> datetime:
    """A transient failure: the claim is handed back until the next step of the backoff."""
    attempts = session.execute(select(_CLAIMS.c.attempts).where(_ours([claim.id], owner))).scalar()
    if attempts is None:
        raise ClaimLost(str(claim))
    retry_at: datetime = now + BACKOFF[min(attempts, len(BACKOFF) - 1)]
    again = {"attempts": attempts + 1, "retry_at": retry_at, "detail": reason[:500]}
    session.execute(
        update(_CLAIMS).where(_CLAIMS.c.id == claim.id).values(owner="", lease_until=now, **again)
    )
    return retry_at


def renew(
    session: Session, claim_ids: Sequence[int], *, owner: str, now: datetime, lease: timedelta
) -> set[int]:
    """Extend our leases; the ids of the claims still ours."""
    renewed = session.execute(
        update(_CLAIMS)
        .where(_ours(claim_ids, owner))
        .values(lease_until=now + lease)
        .returning(_CLAIMS.c.id)
    )
    return set(renewed.scalars())


def hand_back(session: Session, claim_ids: Sequence[int], *, owner: str, now: datetime) -> None:
    """Let our open claims go at once (a graceful stop): any process may take them now."""
    session.execute(
        update(_CLAIMS).where(_ours(claim_ids, owner)).values(owner="", lease_until=now)
    )


def prune(session: Session, *, now: datetime) -> int:
    """Delete claims (and their parts) more than `CLAIMS_KEPT_DAYS` old."""
    cutoff = now.astimezone(UTC).date() - timedelta(days=CLAIMS_KEPT_DAYS)
    result = session.execute(delete(_CLAIMS).where(_CLAIMS.c.local_date < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


def _ours(claim_ids: Sequence[int], owner: str) -> ColumnElement[bool]:
    return and_(
        _CLAIMS.c.id.in_(list(claim_ids)), _CLAIMS.c.owner == owner, _CLAIMS.c.status == OPEN
    )

"""The daily post's claim: taken before sending, so each channel gets one post per local day.

A post moves through one claim row per (channel, local date):

    claimed ──> sending ──> sent | failed | uncertain
       └──────> empty (nothing new: no post)

"claimed" may be retaken by another process once its lease expires; "sending" never is:
from then on the platform may have the post, so a crash leaves it to `recover_abandoned`,
which counts its papers as delivered instead of posting them twice (at most once beats twice).
Every function here is synchronous and takes its session; `bot.posts.runner` runs them in threads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    column,
    delete,
    func,
    literal,
    update,
)
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, select

from bot.posts.digest import (
    CLAIMED,
    EMPTY,
    FAILED,
    SENDING,
    SENT,
    UNCERTAIN,
    DueChannel,
    in_flight_papers,
    in_flight_papers_many,
    lock_channel,
    lock_channels,
    paper_ids,
    post_of,
    undelivered_post,
)
from bot.replies import Papers
from bot.storage import catalog, store
from bot.storage.models import Channel, DigestClaim, utcnow

logger = logging.getLogger(__name__)

_CLAIMS: Table = DigestClaim.__table__  # type: ignore[attr-defined]
_CHANNELS: Table = Channel.__table__  # type: ignore[attr-defined]
CLAIM_LEASE = timedelta(minutes=15)
PAUSE_AFTER_FAILED_DAYS = 3
CLAIMS_KEPT_DAYS = 30  # settled claims are history after a day; a month is kept to look into


class ClaimLost(Exception):
    """Another process retook the claim after our lease expired; it posts, we do not."""


@dataclass(frozen=True)
class Claim:
    id: int
    channel_id: int
    local_date: date
    owner: str


def claim_due(
    session: Session, due: Sequence[DueChannel], *, owner: str, now: datetime
) -> dict[int, Claim]:
    """Take the day's claim of every due channel (INSERT … ON CONFLICT DO NOTHING …
    RETURNING), retaking those whose holder died before sending. Channel id -> claim."""
    claims: dict[int, Claim] = {}
    fresh = {d.channel_id: d.local_date for d in due if not d.retake}
    if fresh:
        taken = _insert_claims(session, fresh, owner=owner, now=now)
        claims.update({cid: Claim(id_, cid, fresh[cid], owner) for id_, cid in taken})
    for d in due:
        if d.retake and (claim := _retake(session, d.channel_id, d.local_date, owner, now)):
            claims[d.channel_id] = claim
    return claims


def _insert_claims(
    session: Session, days: dict[int, date], *, owner: str, now: datetime
) -> list[tuple[int, int]]:
    """(claim id, channel id) of the claims inserted; a channel already claimed that day is
    skipped (ON CONFLICT DO NOTHING). PostgreSQL gets the channels as one JSON document
    (psycopg parses the placeholders of a long query in Python: 6,000 of them took 40 ms);
    SQLite gets SQLAlchemy's multi-row "insertmanyvalues" batches of one cached statement."""
    if session.get_bind().dialect.name == "postgresql":
        document = json.dumps(
            [{"channel_id": cid, "local_date": day.isoformat()} for cid, day in days.items()]
        )
        params = {"days": document, "owner": owner, "until": now + CLAIM_LEASE, "now": now}
        return [(id_, cid) for id_, cid in session.execute(_CLAIM_MANY_PG, params)]
    insert = store.insert_for(session, DigestClaim).on_conflict_do_nothing(
        index_elements=["channel_id", "local_date"]
    )
    rows = [_claim_row(cid, day, owner, now) for cid, day in days.items()]
    taken = session.connection().execute(insert.returning(_CLAIMS.c.id, _CLAIMS.c.channel_id), rows)
    return [(id_, cid) for id_, cid in taken]


def claim_digest(
    session: Session, *, channel_id: int, local_date: date, owner: str, now: datetime
) -> Claim | None:
    """Take the channel's claim for `local_date`, or retake one whose holder died before sending."""
    insert = store.insert_for(session, DigestClaim).values(
        _claim_row(channel_id, local_date, owner, now)
    )
    row = session.execute(
        insert.on_conflict_do_nothing(index_elements=["channel_id", "local_date"]).returning(
            _CLAIMS.c.id
        )
    ).first()
    if row is not None:
        return Claim(row[0], channel_id, local_date, owner)
    return _retake(session, channel_id, local_date, owner, now)


def _claim_row(channel_id: int, local_date: date, owner: str, now: datetime) -> dict[str, Any]:
    return {
        "channel_id": channel_id,
        "local_date": local_date,
        "status": CLAIMED,
        "owner": owner,
        "lease_until": now + CLAIM_LEASE,
        "claimed_at": now,
    }


def _retake(
    session: Session, channel_id: int, local_date: date, owner: str, now: datetime
) -> Claim | None:
    """A "claimed" claim whose lease ran out (never one past "sending") changes hands."""
    row = session.execute(
        update(_CLAIMS)
        .where(
            _CLAIMS.c.channel_id == channel_id,
            _CLAIMS.c.local_date == local_date,
            _CLAIMS.c.status == CLAIMED,
            _CLAIMS.c.lease_until < now,
        )
        .values(owner=owner, lease_until=now + CLAIM_LEASE, claimed_at=now)
        .returning(_CLAIMS.c.id)
    ).first()
    if row is None:
        return None
    logger.warning(
        "retook the %s post of channel %s: its holder stopped before sending",
        local_date,
        channel_id,
    )
    return Claim(row[0], channel_id, local_date, owner)


def begin_sending(session: Session, claim: Claim, *, now: datetime) -> Papers | None:
    """Pick the papers and pass the point of no return, or settle the day as empty.

    Holds the channel's row lock, so `digest now` cannot pick the same papers meanwhile.
    Raises `ClaimLost` when another process retook the claim.
    """
    lock_channel(session, claim.channel_id)
    post = undelivered_post(
        session, claim.channel_id, exclude=in_flight_papers(session, claim.channel_id)
    )
    _pass(session, claim, post, now)
    return post


def _pass(session: Session, claim: Claim, post: Papers | None, now: datetime) -> None:
    """The claim passes to "sending" with the post's papers, or settles as empty."""
    if _pass_many(session, [(claim, post)], now):
        raise ClaimLost(f"claim {claim.id} of channel {claim.channel_id}")


def _pass_many(
    session: Session, passes: Sequence[tuple[Claim, Papers | None]], now: datetime
) -> set[int]:
    """`_pass` for several claims; returns the ids of the claims lost (held by another owner,
    or no longer "claimed"), which are left as they are.

    PostgreSQL: one UPDATE … FROM json_to_recordset(the batch) … RETURNING, which rechecks
    each row's owner and status once it holds the row's lock. SQLite: the claims still held
    are read first (the write transaction already excludes every other writer), then one
    executemany UPDATE passes them."""
    if not passes:
        return set()
    rows: list[dict[str, Any]] = [
        {
            "claim": claim.id,
            "holder": claim.owner,
            "to": EMPTY if post is None else SENDING,
            "ids": None if post is None else json.dumps(paper_ids(post)),
            "done": now if post is None else None,  # an empty day is settled now
        }
        for claim, post in passes
    ]
    until = now + CLAIM_LEASE
    ids = [claim.id for claim, _ in passes]
    if session.get_bind().dialect.name == "postgresql":
        batch = {
            "rows": json.dumps(rows, default=datetime.isoformat),
            "claims": ids,
            "until": until,
        }
        passed = set(session.execute(_PASS_MANY_PG, batch).scalars())
    else:
        owners = dict(session.execute(_HELD, {"claims": ids}).all())
        held = [r for r in rows if owners.get(r["claim"]) == r["holder"]]
        if held:
            session.execute(_PASS, [{**r, "until": until} for r in held])
        passed = {r["claim"] for r in held}
    return set(ids) - passed


def begin_sending_many(
    session: Session, claims: Sequence[Claim], *, now: datetime
) -> list[Papers | ClaimLost | None]:
    """`begin_sending` for several claims in one transaction (in channel order, one lock
    order everywhere); per claim, in the given order, its post, None, or the `ClaimLost`
    (a lost claim wrote nothing, so the others go ahead).

    The same as `begin_sending` claim after claim, in fewer statements: the channels are
    locked together (PostgreSQL only, see `lock_channels`), then one query reads the papers
    in flight of all of them, one their undelivered papers, and `_pass_many` passes them.
    A channel's second claim in the batch (a claim per day; not seen in practice) goes
    through `begin_sending` afterwards, so it sees the first one's papers as in flight."""
    ordered = sorted(claims, key=lambda c: c.channel_id)
    first: list[Claim] = []
    again: list[Claim] = []
    channel_ids: list[int] = []
    for claim in ordered:
        if channel_ids and channel_ids[-1] == claim.channel_id:
            again.append(claim)
        else:
            first.append(claim)
            channel_ids.append(claim.channel_id)
    lock_channels(session, channel_ids)
    groups = catalog.undelivered_groups_many(
        session, channel_ids, exclude=in_flight_papers_many(session, channel_ids)
    )
    results: dict[int, Papers | ClaimLost | None] = {}
    posts = [(claim, post_of(groups[claim.channel_id])) for claim in first]
    lost = _pass_many(session, posts, now)
    for claim, post in posts:
        results[claim.id] = (
            ClaimLost(f"claim {claim.id} of channel {claim.channel_id}")
            if claim.id in lost
            else post
        )
    for claim in again:
        try:
            results[claim.id] = begin_sending(session, claim, now=now)
        except ClaimLost as taken:
            results[claim.id] = taken
    return [results[claim.id] for claim in claims]


def record_sent(session: Session, claim: Claim, post: Papers, *, now: datetime) -> None:
    """The platform accepted the post: its papers are delivered, the failure count resets."""
    record_sent_many(session, [(claim, post)], now=now)


def record_sent_many(
    session: Session, items: Sequence[tuple[Claim, Papers]], *, now: datetime
) -> None:
    """`record_sent` for several accepted posts in one transaction (a few statements in all).

    Until this commits their claims stay "sending", which `recover_abandoned` and `digest now`
    already treat as delivered, so recording later never lets a post go out twice.
    """
    if not items:
        return
    items = sorted(items, key=lambda item: item[0].channel_id)  # one lock order everywhere
    delivered_at = utcnow()
    store.mark_delivered_rows(
        session,
        [
            {"channel_id": claim.channel_id, "paper_id": pid, "delivered_at": delivered_at}
            for claim, post in items
            for pid in paper_ids(post)
        ],
    )
    session.execute(
        _SETTLE, [{"claim": claim.id, "to": SENT, "done": now, "why": None} for claim, _ in items]
    )
    session.execute(_RESET_FAILURES, [{"channel": claim.channel_id} for claim, _ in items])


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
        session.execute(
            _SETTLE,
            {"claim": claim_id, "to": UNCERTAIN, "done": now, "why": "abandoned while sending"},
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


def prune_claims(session: Session, *, now: datetime) -> int:
    """Delete settled claims more than `CLAIMS_KEPT_DAYS` old (one row per channel per day
    otherwise piles up). Only the current day's claims, and those "claimed" or "sending",
    ever decide anything; those last two are never deleted here."""
    cutoff = now.astimezone(UTC).date() - timedelta(days=CLAIMS_KEPT_DAYS)
    result = session.execute(
        delete(_CLAIMS).where(
            _CLAIMS.c.local_date < cutoff, _CLAIMS.c.status.in_([SENT, EMPTY, FAILED, UNCERTAIN])
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _settle(
    session: Session, claim: Claim, status: str, now: datetime, detail: str | None = None
) -> None:
    why = detail[:500] if detail else None
    session.execute(_SETTLE, {"claim": claim.id, "to": status, "done": now, "why": why})


# Built once: these run for every channel every morning, and building a statement costs
# SQLAlchemy several times what SQLite takes to run it.
_HELD = select(_CLAIMS.c.id, _CLAIMS.c.owner).where(
    _CLAIMS.c.id.in_(bindparam("claims", expanding=True)), _CLAIMS.c.status == CLAIMED
)
_PASS = (
    update(_CLAIMS)
    .where(
        _CLAIMS.c.id == bindparam("claim"),
        _CLAIMS.c.owner == bindparam("holder"),
        _CLAIMS.c.status == CLAIMED,
    )
    .values(
        status=bindparam("to"),
        papers=bindparam("ids"),
        lease_until=bindparam("until"),
        finished_at=bindparam("done"),
    )
)
_DUE_DAYS = (
    func.json_to_recordset(cast(bindparam("days", type_=Text), JSON))
    .table_valued(column("channel_id", Integer), column("local_date", Date))
    .render_derived(with_types=True)
)
_CLAIM_MANY_PG = (
    postgresql.insert(_CLAIMS)
    .from_select(
        ["channel_id", "local_date", "status", "owner", "lease_until", "claimed_at"],
        sa_select(
            _DUE_DAYS.c.channel_id,
            _DUE_DAYS.c.local_date,
            literal(CLAIMED),
            bindparam("owner", type_=String),
            bindparam("until", type_=DateTime(timezone=True)),
            bindparam("now", type_=DateTime(timezone=True)),
        ),
    )
    .on_conflict_do_nothing(index_elements=["channel_id", "local_date"])
    .returning(_CLAIMS.c.id, _CLAIMS.c.channel_id)
)
# The batch travels as one JSON document: psycopg would escape every quote of the papers'
# JSON lists in a text array, element by element, in Python.
_PASSING = (
    func.json_to_recordset(cast(bindparam("rows", type_=Text), JSON))
    .table_valued(
        column("claim", Integer),
        column("holder", String),
        column("to", String),
        column("ids", Text),
        column("done", DateTime(timezone=True)),
    )
    .render_derived(with_types=True)
)
_PASS_MANY_PG = (
    update(_CLAIMS)
    .where(
        # The ids again as an array: the claims are found by primary key, not by hashing
        # every "claimed" row of the morning.
        _CLAIMS.c.id == any_(bindparam("claims", type_=ARRAY(Integer))),
        _CLAIMS.c.id == _PASSING.c.claim,
        _CLAIMS.c.owner == _PASSING.c.holder,
        _CLAIMS.c.status == CLAIMED,
    )
    .values(
        status=_PASSING.c.to,
        papers=_PASSING.c.ids,
        lease_until=bindparam("until"),
        finished_at=_PASSING.c.done,
    )
    .returning(_CLAIMS.c.id)
)
_SETTLE = (
    update(_CLAIMS)
    .where(_CLAIMS.c.id == bindparam("claim"))
    .values(status=bindparam("to"), finished_at=bindparam("done"), detail=bindparam("why"))
)
_RESET_FAILURES = (
    update(_CHANNELS)
    .where(_CHANNELS.c.id == bindparam("channel"), _CHANNELS.c.failed_days != 0)
    .values(failed_days=0)
)

"""Daily posts in the database: who is due, the exactly-once claim, and what a post holds.

A post moves through one claim row per (channel, local date):

    claimed ──> sending ──> sent | failed | uncertain
       └──────> empty (nothing new: no post)

"claimed" may be retaken by another process once its lease expires; "sending" never is:
from then on the platform may have the post, so a crash leaves it to `recover_abandoned`,
which counts its papers as delivered instead of posting them twice (at most once beats twice).
Every function here is synchronous and takes its session; `bot.runner` runs them in threads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    Table,
    any_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import NoResultFound
from sqlmodel import Session, col, select

from bot import catalog, store
from bot.config import Settings
from bot.models import Channel, DigestClaim, Keyword, Subscription, Workspace, utcnow
from bot.replies import PaperGroup, Papers
from bot.timeparse import parse_hhmm, parse_zone

logger = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=15)
PAUSE_AFTER_FAILED_DAYS = 3
CLAIMS_KEPT_DAYS = 30  # settled claims are history after a day; a month is kept to look into
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
    retake: bool = False  # its claim was taken by a process that died before sending


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


# -- the claim ----------------------------------------------------------------------------


def claim_due(
    session: Session, due: Sequence[DueChannel], *, owner: str, now: datetime
) -> dict[int, Claim]:
    """Take the day's claim of every due channel (INSERT … ON CONFLICT DO NOTHING … RETURNING,
    sent as multi-row batches by SQLAlchemy's "insertmanyvalues" from one cached statement),
    retaking those whose holder died before sending. Channel id -> claim."""
    claims: dict[int, Claim] = {}
    fresh = {d.channel_id: d.local_date for d in due if not d.retake}
    if fresh:
        insert = store.insert_for(session, DigestClaim)
        taken = session.connection().execute(
            insert.on_conflict_do_nothing(index_elements=["channel_id", "local_date"]).returning(
                _CLAIMS.c.id, _CLAIMS.c.channel_id
            ),
            [_claim_row(cid, day, owner, now) for cid, day in fresh.items()],
        )
        claims.update({cid: Claim(id_, cid, fresh[cid], owner) for id_, cid in taken})
    for d in due:
        if d.retake and (claim := _retake(session, d.channel_id, d.local_date, owner, now)):
            claims[d.channel_id] = claim
    return claims


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

    PostgreSQL: one UPDATE … FROM unnest(arrays) … RETURNING, which rechecks each row's
    owner and status once it holds the row's lock. SQLite: the claims still held are read
    first (the write transaction already excludes every other writer), then one executemany
    UPDATE passes them."""
    if not passes:
        return set()
    rows = [
        {
            "claim": claim.id,
            "holder": claim.owner,
            "to": EMPTY if post is None else SENDING,
            "ids": None if post is None else json.dumps(paper_ids(post)),
            "done": now if post is None else None,
        }
        for claim, post in passes
    ]
    until = now + CLAIM_LEASE
    if session.get_bind().dialect.name == "postgresql":
        columns = {key: [row[key] for row in rows] for key in rows[0]}
        passed = set(session.execute(_PASS_MANY_PG, {**columns, "until": until}).scalars())
    else:
        owners = dict(session.execute(_HELD, {"claims": [r["claim"] for r in rows]}).all())
        held = [r for r in rows if owners.get(r["claim"]) == r["holder"]]
        if held:
            session.execute(_PASS, [{**r, "until": until} for r in held])
        passed = {r["claim"] for r in held}
    return {claim.id for claim, _ in passes} - passed


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
    posts = [(claim, _post_of(groups[claim.channel_id])) for claim in first]
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
_PASSING = (
    func.unnest(
        bindparam("claim", type_=ARRAY(Integer)),
        bindparam("holder", type_=ARRAY(String)),
        bindparam("to", type_=ARRAY(String)),
        bindparam("ids", type_=ARRAY(String)),
        bindparam("done", type_=ARRAY(DateTime(timezone=True))),
    )
    .table_valued("claim", "holder", "to", "ids", "done")
    .render_derived()
)
_PASS_MANY_PG = (
    update(_CLAIMS)
    .where(
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


# -- what a post holds --------------------------------------------------------------------


def lock_channel(session: Session, channel_id: int) -> None:
    """Lock the channel's row until commit (PostgreSQL; SQLite's BEGIN IMMEDIATE already is)."""
    session.execute(_LOCK_CHANNEL, {"channel": channel_id}).one()


def lock_channels(session: Session, channel_ids: Sequence[int]) -> None:
    """`lock_channel` for several channels (ascending ids), in one statement on PostgreSQL.

    On PostgreSQL the row locks (SELECT … FOR UPDATE, taken in id order) keep a concurrent
    `digest now` or another process from picking the same undelivered papers until commit.
    On SQLite there are no row locks: the SELECT would lock nothing, as the write transactions
    begin IMMEDIATE (`bot.db`) and so already hold the database's only write lock, so the
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
    return _post_of(catalog.undelivered_groups(session, channel, exclude=exclude))


def _post_of(groups: Sequence[PaperGroup]) -> Papers | None:
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


def is_stale(keyword: Keyword, since: datetime) -> bool:
    return fetched_before(keyword.last_success_at, since)


def fetched_before(last_success_at: datetime | None, since: datetime) -> bool:
    """Not fetched successfully since `since` (or never)."""
    return last_success_at is None or store.as_utc(last_success_at) < since

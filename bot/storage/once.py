"""Commands that run once: a claim taken by one process for a while, across replicas."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlmodel import Session

from bot.storage.models import CommandClaim
from bot.storage.store import insert_for

# A platform's redelivery comes within minutes (Slack signs a request for five); a person who
# submits the same change twice does so within seconds.
REDELIVERY_WINDOW = timedelta(minutes=10)
REPEAT_WINDOW = timedelta(minutes=1)
_claims = CommandClaim.__table__.c  # type: ignore[attr-defined]


def received(
    session: Session,
    *,
    delivery: str | None,
    typist: str | None,
    typed: str,
    now: datetime,
) -> str:
    """ "new"; "redelivered" when this delivery was claimed before; "repeated" when `typist`'s
    last command, within REPEAT_WINDOW, was this same `typed` one. What is new is claimed."""
    session.execute(delete(CommandClaim).where(_claims.expires_at < now - timedelta(hours=1)))
    if delivery is not None and not claim(session, delivery, "", REDELIVERY_WINDOW, now=now):
        return "redelivered"
    if typist is not None and not claim(session, typist, typed, REPEAT_WINDOW, now=now):
        return "repeated"
    return "new"


def claim(session: Session, who: str, what: str, held_for: timedelta, *, now: datetime) -> bool:
    """Claim `who` for `what` until `held_for` from now; False while it is held for `what`.

    Insert the claim, or take over one that expired or was for something else: a claim still
    held for the same thing makes the upsert's condition false and it returns no row.
    Concurrent claims serialise on the primary key, so exactly one of them wins, in this
    process or another.
    """
    insert = insert_for(session, CommandClaim).values(
        key=_digest(who), command=_digest(what), expires_at=now + held_for
    )
    stmt = insert.on_conflict_do_update(
        index_elements=["key"],
        set_={"command": insert.excluded.command, "expires_at": insert.excluded.expires_at},
        where=or_(_claims.expires_at <= now, _claims.command != insert.excluded.command),
    ).returning(_claims.key)
    return session.execute(stmt).first() is not None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

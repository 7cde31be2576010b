"""The daily-refresh lease: one process a day runs the refresh, whatever the replicas."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import Session, select

from bot import store
from bot.core import RefreshOutcome
from bot.models import Lease

REFRESH_LEASE_NAME = "daily-refresh"
REFRESH_LEASE = timedelta(minutes=10)  # renewed after every keyword


def refresh_status(outcomes: Sequence[RefreshOutcome]) -> str:
    """What /healthz shows of a daily refresh: "ok: 12 keywords fetched, 1 failed"."""
    failed = sum(not o.ok for o in outcomes)
    fetched = f"{len(outcomes)} keyword{'s' if len(outcomes) != 1 else ''} fetched"
    return f"ok: {fetched}" + (f", {failed} failed" if failed else "")


# -- the daily-refresh lease ----------------------------------------------------------------

_LEASES = Lease.__table__  # type: ignore[attr-defined]


def refresh_done(session: Session, *, run_date: date) -> bool:
    lease = session.exec(select(Lease).where(Lease.name == REFRESH_LEASE_NAME)).first()
    return lease is not None and lease.last_run_date is not None and lease.last_run_date >= run_date


def take_refresh_lease(session: Session, *, owner: str, run_date: date, now: datetime) -> bool:
    """Hold the lease for `run_date`'s refresh unless it ran already or a live holder has it."""
    insert = store.insert_for(session, Lease).values(
        name=REFRESH_LEASE_NAME, owner=owner, lease_until=now + REFRESH_LEASE
    )
    if session.execute(
        insert.on_conflict_do_nothing(index_elements=["name"]).returning(_LEASES.c.name)
    ).first():
        return True
    taken = session.execute(
        update(_LEASES)
        .where(
            _LEASES.c.name == REFRESH_LEASE_NAME,
            _LEASES.c.lease_until < now,
            or_(_LEASES.c.last_run_date.is_(None), _LEASES.c.last_run_date < run_date),
        )
        .values(owner=owner, lease_until=now + REFRESH_LEASE)
        .returning(_LEASES.c.name)
    ).first()
    return taken is not None


def renew_refresh_lease(session: Session, *, owner: str, now: datetime) -> bool:
    renewed = session.execute(
        update(_LEASES)
        .where(_LEASES.c.name == REFRESH_LEASE_NAME, _LEASES.c.owner == owner)
        .values(lease_until=now + REFRESH_LEASE)
        .returning(_LEASES.c.name)
    ).first()
    return renewed is not None


def finish_refresh(
    session: Session, *, owner: str, run_date: date, status: str, now: datetime
) -> None:
    """Record the run (read by /healthz) and let the lease go."""
    session.execute(
        update(_LEASES)
        .where(_LEASES.c.name == REFRESH_LEASE_NAME, _LEASES.c.owner == owner)
        .values(last_run_date=run_date, last_run_at=now, last_status=status[:500], lease_until=now)
    )

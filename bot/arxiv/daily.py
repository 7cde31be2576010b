"""The daily refresh: once a day across every process (a lease in the database), and the
keywords a post finds stale, each refreshed once however many channels wait for it."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import or_, update
from sqlmodel import Session, select

from bot.arxiv.announced import AnnouncementRefresh
from bot.arxiv.refresh import Refresher, RefreshOutcome
from bot.keywords import keyword_key
from bot.storage import store
from bot.storage.db import read_session, write_session
from bot.storage.models import Keyword, Lease
from bot.timeparse import clock_of

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from bot.arxiv.gateway import ArxivGateway
    from bot.config import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")

REFRESH_LEASE_NAME = "daily-refresh"
REFRESH_LEASE = timedelta(minutes=10)  # renewed after every keyword


def refresh_status(outcomes: Sequence[RefreshOutcome]) -> str:
    """What /healthz shows of a daily refresh: "ok: 12 keywords fetched, 1 failed"."""
    skipped = sum(o.skipped for o in outcomes)
    failed = sum(not o.ok for o in outcomes) - skipped
    fetched = f"{len(outcomes)} keyword{'s' if len(outcomes) != 1 else ''} fetched"
    status = f"ok: {fetched}" + (f", {failed} failed" if failed else "")
    return status + (f", {skipped} skipped: arXiv unavailable" if skipped else "")


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


def postpone_refresh(
    session: Session, *, owner: str, status: str, now: datetime, until: datetime
) -> None:
    """arXiv was down: the day is not done; the lease lapses at `until`, when the scheduler's
    sweep takes it again (the pacer's backoff: 5, 15, then 60 minutes)."""
    session.execute(
        update(_LEASES)
        .where(_LEASES.c.name == REFRESH_LEASE_NAME, _LEASES.c.owner == owner)
        .values(last_run_at=now, last_status=status[:500], lease_until=until)
    )


def finish_refresh(
    session: Session, *, owner: str, run_date: date, status: str, now: datetime
) -> None:
    """Record the run (read by /healthz) and let the lease go."""
    session.execute(
        update(_LEASES)
        .where(_LEASES.c.name == REFRESH_LEASE_NAME, _LEASES.c.owner == owner)
        .values(last_run_date=run_date, last_run_at=now, last_status=status[:500], lease_until=now)
    )


def default_owner() -> str:
    """Who holds a claim or lease: host, process and a random part (unique per runner)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def last_refresh_slot(now: datetime, fetch_time: str) -> datetime:
    """The most recent daily refresh time (UTC) at or before `now`."""
    hour, minute = clock_of(fetch_time)
    slot = now.astimezone(UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return slot if slot <= now else slot - timedelta(days=1)


def is_stale(keyword: Keyword, since: datetime) -> bool:
    """Not fetched successfully since `since` (or never)."""
    last = keyword.last_success_at
    return last is None or store.as_utc(last) < since


class Deployment(Protocol):
    """The parts of a deployment the daily refresh uses (`bot.commands.core.Core` is one)."""

    settings: Settings
    engine: Engine
    gateway: ArxivGateway
    refresher: Refresher
    clock: Callable[[], datetime]


class DailyRefresh:
    """Refreshes every followed keyword once a day across processes, and stale keywords
    before a post."""

    def __init__(self, core: Deployment, *, owner: str | None = None) -> None:
        self.core = core
        self.owner = owner or default_owner()
        self._arxiv_turn = asyncio.Lock()
        self._refreshes: dict[tuple[str, datetime], asyncio.Future[RefreshOutcome]] = {}

    async def run(self, now: datetime | None = None) -> bool:
        """Refresh every followed keyword once per day across all processes (the
        "daily-refresh" lease); a keyword already fetched since the refresh time is skipped.
        True when this call did the refresh."""
        now = now or self.core.clock()
        slot = last_refresh_slot(now, self.core.settings.fetch_time)
        if not await asyncio.to_thread(self._take, slot.date(), now):
            return False
        outcomes: list[RefreshOutcome] = []
        try:
            outcomes = await asyncio.to_thread(self._refresh_followed, slot)
            status = refresh_status(outcomes)
        except Exception as exc:
            logger.exception("the daily refresh broke")
            status = f"failed: {type(exc).__name__}: {exc}"
        outage = (
            await asyncio.to_thread(self.core.gateway.outage)
            if any(o.skipped for o in outcomes)
            else None
        )
        now = self.core.clock()
        if outage is not None:
            until = max(outage.retry_at, now + timedelta(minutes=1))
            status += f"; next try at {until:%H:%M} UTC"
            await asyncio.to_thread(
                self._write, postpone_refresh, owner=self.owner, status=status, now=now, until=until
            )
            logger.warning("daily refresh for %s cut short: %s", slot.date(), status)
            return False
        await asyncio.to_thread(
            self._write,
            finish_refresh,
            owner=self.owner,
            run_date=slot.date(),
            status=status,
            now=now,
        )
        logger.info("daily refresh for %s: %s", slot.date(), status)
        return True

    async def refresh_stale(self, labels: list[str]) -> None:
        """Refresh keywords not fetched since the last daily refresh; each keyword once per
        refresh period in this process, however many channels wait for it."""
        if not labels:
            return
        since = last_refresh_slot(self.core.clock(), self.core.settings.fetch_time)
        waits = [asyncio.shield(self._refresh_once(label, since)) for label in labels]
        for label, result in zip(
            labels, await asyncio.gather(*waits, return_exceptions=True), strict=True
        ):
            if isinstance(result, Exception):
                logger.error("refreshing %r before a post broke", label, exc_info=result)

    def _refresh_once(self, label: str, since: datetime) -> asyncio.Future[RefreshOutcome]:
        key = (keyword_key(label), since)
        if key not in self._refreshes:
            self._refreshes = {k: f for k, f in self._refreshes.items() if k[1] == since}
            self._refreshes[key] = asyncio.ensure_future(self._refresh_in_turn(label))
        return self._refreshes[key]

    async def _refresh_in_turn(self, label: str) -> RefreshOutcome:
        # The gateway sends one request at a time anyway; queueing here rather than in the
        # gateway keeps the thread pool free for the database work of the posts.
        async with self._arxiv_turn:
            return await asyncio.to_thread(self.core.refresher.refresh, label)

    def _take(self, run_date: date, now: datetime) -> bool:
        with read_session(self.core.engine) as session:
            if refresh_done(session, run_date=run_date):
                return False
        return self._write(take_refresh_lease, owner=self.owner, run_date=run_date, now=now)

    def _refresh_followed(self, slot: datetime) -> list[RefreshOutcome]:
        renewed = [self.core.clock()]

        def renew(_outcome: RefreshOutcome) -> None:
            now = self.core.clock()
            if now - renewed[0] < REFRESH_LEASE / 10:
                return  # thousands of keywords answered by the harvest come at once
            renewed[0] = now
            if not self._write(renew_refresh_lease, owner=self.owner, now=now):
                raise RuntimeError("the daily-refresh lease was taken over")

        run = AnnouncementRefresh(self.core.refresher, clock=self.core.clock)
        return run.run(self._still_stale(slot), progress=renew)

    def _still_stale(self, slot: datetime) -> list[str]:
        """Followed keywords not refreshed since the slot (a post may have refreshed some)."""
        with read_session(self.core.engine) as session:
            labels = store.followed_phrases(session)
            found = {k.key: k for k in store.find_keywords(session, labels)}
        return [
            label
            for label in labels
            if (k := found.get(keyword_key(label))) is None or is_stale(k, slot)
        ]

    def _write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with write_session(self.core.engine) as session:
            return fn(session, *args, **kwargs)

"""One turn at arXiv per deployment: a lease row in the database that every process on
`DATABASE_URL` takes before a request (API and OAI-PMH alike).

At most one request is in flight, and the next starts at least `delay` seconds after the
previous one ended (counting from the end also spaces a request's own retries, and holds
even for a holder that died: its start counts). The row is taken and given back in short
transactions, never held open during the request (on SQLite that would block every other
writer); a holder renews its lease while its request runs, so a process that dies holding
it frees it within `lease` seconds. The row also counts requests failed in a row: after
`OUTAGE_AFTER` nobody asks until the next try (5, 15, then 60 minutes later).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Float, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from bot.arxiv.answers import ArxivUnavailable
from bot.storage import store
from bot.storage.db import read_session, write_session
from bot.storage.models import ArxivPacer

logger = logging.getLogger(__name__)

LEASE_SECONDS = 5.0
OUTAGE_AFTER = 3  # requests failed in a row (after their retries)
OUTAGE_BACKOFF = (300.0, 900.0, 3600.0)
_ROW = ArxivPacer.__table__  # type: ignore[attr-defined]


class _EpochNow(FunctionElement[float]):
    """The database's clock in epoch seconds: replicas on several machines share it."""

    type = Float()
    inherit_cache = True


@compiles(_EpochNow, "sqlite")
def _epoch_sqlite(_element: Any, _compiler: Any, **_kw: Any) -> str:
    return "((julianday('now') - 2440587.5) * 86400.0)"


@compiles(_EpochNow, "postgresql")
def _epoch_postgresql(_element: Any, _compiler: Any, **_kw: Any) -> str:
    return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"


@dataclass(frozen=True)
class Outage:
    """arXiv failed `failures` requests in a row; the next try is at `retry_at`."""

    failures: int
    retry_at: datetime
    reason: str

    def describe(self) -> str:
        return (
            f"arXiv is unavailable ({self.failures} requests failed in a row, last: "
            f"{self.reason}); next try at {self.retry_at:%H:%M} UTC"
        )


@dataclass
class Turn:
    """One holder's request; it says how the request went before giving the turn back."""

    holder: str
    failure: str | None = None

    def failed(self, reason: str) -> None:
        self.failure = reason


class Pacer:
    """The deployment's turn at arXiv, kept in the `arxiv_pacer` row named `name`."""

    def __init__(
        self,
        engine: Engine,
        *,
        delay: float,
        lease: float = LEASE_SECONDS,
        name: str = "arxiv",
        poll: float = 0.1,
    ) -> None:
        self.engine, self.delay, self.lease, self.name, self.poll = engine, delay, lease, name, poll
        self._local = threading.Lock()  # this process's threads queue here, not in the database
        self._created = False

    @contextmanager
    def turn(self) -> Iterator[Turn]:
        """Wait for the turn (or raise `ArxivUnavailable` during an outage), hold it while
        the block runs, then give it back with the block's outcome."""
        with self._local:
            turn = Turn(holder=f"{uuid.uuid4().hex[:12]}")
            self._acquire(turn.holder)
            stop = threading.Event()
            renewer = threading.Thread(
                target=self._renew, args=(turn.holder, stop), daemon=True, name="arxiv-pacer"
            )
            renewer.start()
            try:
                yield turn
            finally:
                stop.set()
                renewer.join()
                self._release(turn)

    def outage(self) -> Outage | None:
        """The current outage, if arXiv failed too often and the next try is still ahead."""
        with read_session(self.engine) as session:
            found = session.execute(select(_ROW, _EpochNow()).where(_ROW.c.name == self.name))
            row = found.first()
        if row is None or row.retry_at is None or row.retry_at <= row[-1]:
            return None
        return _outage(row)

    # -- the row ---------------------------------------------------------------------------

    def _acquire(self, holder: str) -> None:
        self._ensure_row()
        while True:
            with read_session(self.engine) as session:
                row = session.execute(
                    select(_ROW, _EpochNow()).where(_ROW.c.name == self.name)
                ).one()
            now = row[-1]
            if row.retry_at is not None and row.retry_at > now:
                raise ArxivUnavailable(_outage(row).describe())
            free = row.holder is None or row.held_until < now
            if free and row.not_before <= now and self._take(holder):
                return
            # Free: until it may start; held: a short poll (it may be given back any moment).
            wait = row.not_before - now if free else min(row.held_until - now, self.poll)
            time.sleep(max(wait, 0.005))

    def _take(self, holder: str) -> bool:
        now = _EpochNow()
        with write_session(self.engine) as session:
            taken = session.execute(
                update(_ROW)
                .where(
                    _ROW.c.name == self.name,
                    or_(_ROW.c.holder.is_(None), _ROW.c.held_until < now),
                    _ROW.c.not_before <= now,
                    or_(_ROW.c.retry_at.is_(None), _ROW.c.retry_at <= now),
                )
                .values(holder=holder, held_until=now + self.lease, not_before=now + self.delay)
                .returning(_ROW.c.name)
            ).first()
        return taken is not None

    def _renew(self, holder: str, stop: threading.Event) -> None:
        while not stop.wait(self.lease / 4):
            try:
                with write_session(self.engine) as session:
                    session.execute(
                        update(_ROW)
                        .where(_ROW.c.name == self.name, _ROW.c.holder == holder)
                        .values(held_until=_EpochNow() + self.lease)
                    )
            except SQLAlchemyError as exc:  # the database away: the request goes on
                logger.warning("could not renew the arXiv turn: %s", type(exc).__name__)
            except Exception:  # a bug: told with its traceback, and the request goes on
                logger.exception("renewing the arXiv turn broke")

    def _release(self, turn: Turn) -> None:
        with write_session(self.engine) as session:
            row = session.execute(
                select(_ROW, _EpochNow()).where(_ROW.c.name == self.name).with_for_update()
            ).one()
            now = row[-1]
            values: dict[str, Any] = {}
            if row.holder == turn.holder:
                values.update(holder=None, not_before=now + self.delay)
            if turn.failure is not None:
                values.update(_failure_values(row, now, turn.failure))
            elif row.failures or row.retry_at is not None:
                values.update(failures=0, outage_round=0, retry_at=None, last_failure=None)
            if values:
                session.execute(update(_ROW).where(_ROW.c.name == self.name).values(**values))
        if turn.failure is not None and values.get("retry_at"):
            logger.warning("%s", _outage_from(values, turn.failure).describe())

    def _ensure_row(self) -> None:
        if self._created:
            return
        with write_session(self.engine) as session:
            insert = store.insert_for(session, ArxivPacer).values(
                name=self.name, held_until=0.0, not_before=0.0, failures=0, outage_round=0
            )
            session.execute(insert.on_conflict_do_nothing(index_elements=["name"]))
        self._created = True


def _failure_values(row: Any, now: float, reason: str) -> dict[str, Any]:
    failures = row.failures + 1
    values: dict[str, Any] = {"failures": failures, "last_failure": reason[:300]}
    if failures >= OUTAGE_AFTER:
        backoff = OUTAGE_BACKOFF[min(row.outage_round, len(OUTAGE_BACKOFF) - 1)]
        values.update(outage_round=row.outage_round + 1, retry_at=now + backoff)
    return values


def _outage(row: Any) -> Outage:
    return Outage(
        failures=row.failures,
        retry_at=datetime.fromtimestamp(row.retry_at, UTC),
        reason=row.last_failure or "unknown",
    )


def _outage_from(values: dict[str, Any], reason: str) -> Outage:
    return Outage(values["failures"], datetime.fromtimestamp(values["retry_at"], UTC), reason)

"""The daily refresh by arXiv's announcements (SPEC 4): harvest what arXiv announced
(OAI-PMH), prefilter it against the keywords, and confirm each keyword that has candidates
with one API request. Keywords never fetched get their own query (the backfill of their 100
newest), and so does every keyword when the harvest fails.

The harvest's position (its `from` day and resumption token) is written with each page's
candidates, in one transaction: a restart resumes from there and loses no record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Engine, select
from sqlmodel import Session

from bot.arxiv.answers import ArxivFailure, ArxivUnavailable, ExpiredToken, HarvestPage
from bot.arxiv.gateway import CONFIRM_BATCH
from bot.arxiv.prefilter import KeywordIndex
from bot.arxiv.refresh import Progress, Refresher, RefreshOutcome
from bot.keywords import keyword_key
from bot.storage import categories, store
from bot.storage.db import read_session, write_session
from bot.storage.models import HarvestCandidate, HarvestState, Keyword

logger = logging.getLogger(__name__)
T = TypeVar("T")

HARVEST = "daily"
FIRST_HARVEST_DAYS = 3
_CANDIDATES = HarvestCandidate.__table__  # type: ignore[attr-defined]


class AnnouncementRefresh:
    """One run of the daily refresh over the given keywords."""

    def __init__(self, refresher: Refresher, *, clock: Callable[[], datetime]) -> None:
        self.refresher = refresher
        self.engine: Engine = refresher.engine
        self.clock = clock

    def run(
        self, labels: Sequence[str], *, progress: Progress | None = None
    ) -> list[RefreshOutcome]:
        keywords = self._read(_keywords, labels)
        index = KeywordIndex((k.id, k.spec) for k in keywords if k.last_success_at)  # type: ignore[misc]
        phrases = {k.id: k.phrase for k in keywords}
        own_query = [k.phrase for k in keywords if not k.last_success_at]
        own_query += [phrases[i] for i in index.unindexed]
        try:
            if index.keyword_ids:  # nothing to prefilter: no harvest
                self.harvest(index)
        except ArxivUnavailable as exc:
            return self.refresher.run_jobs(
                ((label, partial(self.refresher.skip, label, str(exc))) for label in labels),
                progress,
            )
        except ArxivFailure as exc:
            logger.warning("the harvest failed (%s): falling back to per-keyword queries", exc)
            self._write(_note_failure, reason=str(exc))
            return self.refresher.refresh_many(labels, progress=progress)
        pending = self._read(_pending, index.keyword_ids)
        quiet = [i for i in index.keyword_ids if i not in pending]
        self._write(store.record_fetch_many, keyword_ids=quiet, status="ok")
        outcomes = [RefreshOutcome(label=phrases[i], ok=True) for i in quiet]
        if progress is not None:
            for outcome in outcomes:
                progress(outcome)
        jobs = [
            (phrases[i], partial(self.refresher.confirm, i, phrases[i], ids))
            for i, ids in pending.items()
        ]
        jobs += [(label, partial(self.refresher.refresh, label)) for label in own_query]
        asked = self.refresher.run_jobs(jobs, progress)
        confirms = sum(
            -(-len(ids) // CONFIRM_BATCH)
            for ids, outcome in zip(pending.values(), asked, strict=False)
            if not outcome.skipped
        )
        self._write(_count_confirms, confirms=confirms)
        return outcomes + asked

    def harvest(self, index: KeywordIndex) -> None:
        """Harvest from where the last harvest stands, recording each page's candidates."""
        state = self._write(_begin, today=self.clock().date(), now=self.clock())
        for attempt in range(2):
            try:
                for page in self.refresher.gateway.harvest(
                    from_day=state.from_day, token=state.token
                ):
                    self._write(_record_page, page=page, pairs=index.match(page.papers))
                break
            except ExpiredToken:
                if attempt:
                    raise
                logger.warning("the harvest's token expired: harvesting from %s", state.from_day)
                state = self._write(_restart)
        self._write(_complete, now=self.clock())

    def _read(self, fn: Callable[..., T], *args: Any) -> T:
        with read_session(self.engine) as session:
            return fn(session, *args)

    def _write(self, fn: Callable[..., T], **kwargs: Any) -> T:
        with write_session(self.engine) as session:
            return fn(session, **kwargs)


# -- the store side ------------------------------------------------------------------------


def _keywords(session: Session, labels: Sequence[str]) -> list[Keyword]:
    found = {k.key: k for k in store.find_keywords(session, labels)}
    return [
        found[key] for key in dict.fromkeys(keyword_key(label) for label in labels) if key in found
    ]


def _pending(session: Session, keyword_ids: Sequence[int]) -> dict[int, list[str]]:
    """The candidates waiting for a confirm, per keyword (some may be from an earlier run)."""
    wanted = set(keyword_ids)
    pending: dict[int, list[str]] = {}
    rows = session.execute(
        select(_CANDIDATES.c.keyword_id, _CANDIDATES.c.paper_id).order_by(
            _CANDIDATES.c.keyword_id, _CANDIDATES.c.paper_id
        )
    )
    for keyword_id, paper_id in rows:
        if keyword_id in wanted:
            pending.setdefault(keyword_id, []).append(paper_id)
    return pending


def _state(session: Session) -> HarvestState | None:
    return session.get(HarvestState, HARVEST)


def _begin(session: Session, *, today: date, now: datetime) -> HarvestState:
    """The running harvest, or a new one from the day the last complete one began."""
    state = _state(session)
    if state is None:
        state = HarvestState(
            name=HARVEST, from_day=today - timedelta(days=FIRST_HARVEST_DAYS), started_at=now
        )
    elif state.status == "complete":
        state.from_day = state.next_from or today - timedelta(days=FIRST_HARVEST_DAYS)
        state.token, state.started_at, state.finished_at = None, now, None
        state.pages = state.records = state.confirms = 0
    state.status, state.fallback, state.error = "running", False, None
    session.add(state)
    return state


def _record_page(session: Session, *, page: HarvestPage, pairs: list[tuple[int, str]]) -> None:
    categories.record_harvested(session, page.papers)
    if pairs:
        rows = [{"keyword_id": k, "paper_id": p} for k, p in dict.fromkeys(pairs)]
        insert = store.insert_for(session, HarvestCandidate)
        session.execute(
            insert.on_conflict_do_nothing(index_elements=["keyword_id", "paper_id"]), rows
        )
    state = _state(session)
    assert state is not None
    state.token = page.token
    state.pages += 1
    state.records += len(page.papers)


def _restart(session: Session) -> HarvestState:
    state = _state(session)
    assert state is not None
    state.token = None
    return state


def _complete(session: Session, *, now: datetime) -> None:
    state = _state(session)
    assert state is not None
    state.status, state.token, state.finished_at = "complete", None, now
    state.next_from = store.as_utc(state.started_at).date()


def _note_failure(session: Session, *, reason: str) -> None:
    """The harvest stays where it stood (the next run resumes); the fallback is shown."""
    state = _state(session)
    if state is not None:
        state.fallback, state.error = True, reason[:500]


def _count_confirms(session: Session, *, confirms: int) -> None:
    state = _state(session)
    if state is not None:
        state.confirms += confirms


def last_harvest(session: Session) -> dict[str, Any] | None:
    """What `keywords` and /healthz show of the last harvest."""
    state = _state(session)
    if state is None:
        return None
    return {
        "at": store.as_utc(state.finished_at or state.started_at).isoformat(timespec="seconds"),
        "status": state.status,
        "from": state.from_day.isoformat(),
        "records": state.records,
        "requests": state.pages + state.confirms,
        "pages": state.pages,
        "confirms": state.confirms,
        "fallback": state.fallback,
        "error": state.error,
    }


def harvest_line(report: dict[str, Any] | None) -> str:
    """One line for `keywords`: "Last harvest 2026-11-29 01:02 UTC: 1512 records, …"."""
    if report is None:
        return ""
    when = datetime.fromisoformat(report["at"]).strftime("%Y-%m-%d %H:%M UTC")
    figures = (
        f"{report['records']} records, {report['requests']} requests "
        f"({report['pages']} pages, {report['confirms']} confirms)"
    )
    if report["fallback"]:
        return f"Last harvest {when} failed ({report['error']}): fell back to per-keyword queries."
    if report["status"] != "complete":
        return f"Harvest in progress since {when}: {figures}."
    return f"Last harvest {when}: {figures}."

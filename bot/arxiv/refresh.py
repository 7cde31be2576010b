"""Refreshing keywords: ask arXiv, store what came back, record the outcome on the keyword.
A failed or suspicious answer keeps the stored papers; during an outage nobody asks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import Engine, delete
from sqlmodel import Session

from bot.arxiv.answers import ArxivFailure, ArxivUnavailable, FetchResult, KeywordRejected
from bot.keywords import BadKeyword, KeywordSpec, parse_keyword
from bot.storage import catalog, store
from bot.storage.db import write_session
from bot.storage.models import HarvestCandidate
from bot.text import quoted

if TYPE_CHECKING:
    from bot.arxiv.gateway import ArxivGateway

logger = logging.getLogger(__name__)

UNAVAILABLE = "arXiv unavailable"
_CANDIDATES = HarvestCandidate.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RefreshOutcome:
    """What one keyword's refresh did."""

    label: str
    ok: bool
    found: int = 0
    new: int = 0
    reason: str | None = None
    rejected: bool = False
    skipped: bool = False  # not asked: arXiv was taken for down


Progress = Callable[[RefreshOutcome], None]


def describe(outcome: RefreshOutcome) -> str:
    """One line of `fetch`'s answer; the label is supplied text, quoted."""
    if outcome.ok:
        return f"{quoted(outcome.label)}: {outcome.found} papers, {outcome.new} new"
    if outcome.skipped:
        return f"{quoted(outcome.label)}: skipped ({outcome.reason})"
    return f"{quoted(outcome.label)}: failed ({outcome.reason})"


class Refresher:
    """Asks the gateway and records the answers in the store."""

    def __init__(self, engine: Engine, gateway: ArxivGateway) -> None:
        self.engine = engine
        self.gateway = gateway

    def refresh(self, label: str) -> RefreshOutcome:
        """Fetch one keyword (its 100 newest) and store what came back. `label`: keyword
        text, as typed or a keyword's `phrase` (rules included)."""
        return self._ask(label, self.gateway.fetch)

    def confirm(self, keyword_id: int, label: str, ids: Sequence[str]) -> RefreshOutcome:
        """Ask which harvested candidates arXiv matches; answered, the candidates go."""
        return self._ask(
            label, lambda spec: self.gateway.confirm(spec, ids), confirmed=(keyword_id, ids)
        )

    def refresh_many(
        self, labels: Iterable[str], *, progress: Progress | None = None
    ) -> list[RefreshOutcome]:
        """Each keyword in turn; once arXiv is taken for down, the rest are not asked."""
        return self.run_jobs(((label, partial(self.refresh, label)) for label in labels), progress)

    def run_jobs(
        self, jobs: Iterable[tuple[str, Callable[[], RefreshOutcome]]], progress: Progress | None
    ) -> list[RefreshOutcome]:
        """Run (label, job) pairs in turn; after a skipped one (an outage) the rest are
        recorded as skipped without asking arXiv."""
        outcomes: list[RefreshOutcome] = []
        stopped: str | None = None
        for label, job in jobs:
            outcome = self.skip(label, stopped) if stopped else job()
            stopped = stopped or (outcome.reason if outcome.skipped else None)
            outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
        return outcomes

    def skip(self, label: str, reason: str) -> RefreshOutcome:
        self.record_failure(label, UNAVAILABLE, status="skipped")
        return RefreshOutcome(label=label, ok=False, reason=reason, skipped=True)

    def _ask(
        self,
        label: str,
        ask: Callable[[KeywordSpec], FetchResult],
        confirmed: tuple[int, Sequence[str]] | None = None,
    ) -> RefreshOutcome:
        try:
            spec = parse_keyword(label)
        except BadKeyword as exc:  # a keyword stored before the rule grammar that no longer reads
            logger.warning("not asking arXiv for %r: %s", label, exc)
            self.record_failure(label, str(exc))
            return RefreshOutcome(label=label, ok=False, reason=str(exc), rejected=True)
        try:
            result = ask(spec)
        except ArxivUnavailable as exc:
            return self.skip(label, str(exc))
        except KeywordRejected as exc:
            self.record_failure(label, str(exc), drop=confirmed)
            return RefreshOutcome(label=label, ok=False, reason=str(exc), rejected=True)
        except ArxivFailure as exc:
            logger.warning("fetching %r failed: %s", label, exc)
            self.record_failure(label, str(exc))
            return RefreshOutcome(label=label, ok=False, reason=str(exc))
        return self.store_result(label, result, confirmed=confirmed)

    def store_result(
        self,
        label: str,
        result: FetchResult,
        *,
        confirmed: tuple[int, Sequence[str]] | None = None,
    ) -> RefreshOutcome:
        spec = store.spec_of(label)
        with write_session(self.engine, durable=False) as session:
            if not result.papers and confirmed is None:
                keyword = store.ensure_keyword(session, spec)
                assert keyword.id is not None  # a stored keyword
                had = catalog.match_count(session, keyword.id)
                if had:
                    reason = f"arXiv answered no papers for a keyword that had {had}"
                    store.record_fetch(session, spec, status="failed", error=reason)
                    return RefreshOutcome(label=label, ok=False, reason=reason)
            # Same transaction: the "ok" lands together with the papers, or not at all.
            keyword_id = store.record_fetch(session, spec, status="ok")
            if keyword_id is None:  # not stored yet: a keyword's first fetch
                store.ensure_keyword(session, spec)
                keyword_id = store.record_fetch(session, spec, status="ok")
            # Stored just above, in this transaction: never matches recorded for keyword 0.
            assert keyword_id is not None
            new = catalog.record_answer(session, keyword_id=keyword_id, papers=result.papers)
            # A keyword's own query answers for its harvested candidates too.
            _drop_candidates(session, confirmed or (keyword_id, None))
        return RefreshOutcome(label=label, ok=True, found=len(result.papers), new=new)

    def record_failure(
        self,
        label: str,
        reason: str,
        *,
        status: str = "failed",
        drop: tuple[int, Sequence[str]] | None = None,
    ) -> None:
        with write_session(self.engine) as session:
            store.record_fetch(session, label, status=status, error=reason)
            _drop_candidates(session, drop)


def _drop_candidates(session: Session, confirmed: tuple[int, Sequence[str] | None] | None) -> None:
    """Candidates answered for: those confirmed, or all of a keyword (ids None)."""
    if confirmed is None:
        return
    keyword_id, ids = confirmed
    answered = delete(_CANDIDATES).where(_CANDIDATES.c.keyword_id == keyword_id)
    if ids is not None:
        answered = answered.where(_CANDIDATES.c.paper_id.in_(list(ids)))
    session.execute(answered)

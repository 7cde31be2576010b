"""The papers' arXiv categories: as API answers give them, and from the daily harvest, whose
every record names them, so a stored paper's categories follow arXiv's (a cross-list added
later, a paper stored before the store kept categories) without an API request."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, select, update
from sqlmodel import Session

from bot.papers import FetchedPaper, HarvestedPaper
from bot.storage.models import Paper
from bot.storage.store import one_of

_PAPERS = Paper.__table__  # type: ignore[attr-defined]
_SET_CATEGORIES = (
    update(_PAPERS)
    .where(_PAPERS.c.arxiv_id == bindparam("b_id"))
    .values(primary_category=bindparam("b_primary"), categories=bindparam("b_categories"))
)


def category_columns(paper: FetchedPaper) -> tuple[str, str]:
    """(primary_category, categories) as stored from an API answer: the primary first."""
    primary = paper.primary_category or (paper.categories[0] if paper.categories else "")
    listed = dict.fromkeys((primary, *paper.categories) if primary else paper.categories)
    return primary, " ".join(listed)


def record_harvested(session: Session, papers: Sequence[HarvestedPaper]) -> int:
    """Store the categories the records name on the papers already stored; how many changed.
    Papers not stored are left alone (the harvest stores no paper: the confirm does)."""
    said = {
        p.arxiv_id: (p.listed_categories[0], " ".join(p.listed_categories))
        for p in papers
        if p.listed_categories
    }
    if not said:
        return 0
    c = _PAPERS.c
    stored = session.execute(
        select(c.arxiv_id, c.primary_category, c.categories).where(
            one_of(session, c.arxiv_id, list(said))
        )
    )
    changed = [
        {"b_id": pid, "b_primary": said[pid][0], "b_categories": said[pid][1]}
        for pid, primary, listed in stored
        if (primary, listed) != said[pid]
    ]
    if changed:
        session.execute(_SET_CATEGORIES, changed)
    return len(changed)

"""The newest papers of keywords, for `list`, `add`, `preview` and the README export."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, literal
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bot.replies import PaperView
from bot.storage.catalog.views import NEWEST, paper_columns, paper_view, row_view
from bot.storage.models import Match, Paper

# A channel with more keywords than this walks the store's newest papers (see newest_papers),
# those updated within RECENT of the newest: at most about a month of arXiv, ~25,000 papers.
FEW_KEYWORDS = 20
RECENT = timedelta(days=30)


def newest_papers(session: Session, keyword_ids: Sequence[int], *, limit: int) -> list[PaperView]:
    """The newest `limit` papers matching any of the keywords, each once.

    How they are found is chosen here, not left to the planner (PostgreSQL's guess under a
    LIMIT took 2 s for 500 keywords, issue 15). Few keywords: from their matches, a few hundred
    rows. Many: their newest papers are usually among the store's newest, so those are walked
    newest first, each checked for a match, back to RECENT before the newest; if that comes up
    short (a channel of old or unfetched keywords), from all their matches, sorted here.
    """
    if not keyword_ids:
        return []
    matched = sa_select(col(Match.paper_id)).where(col(Match.keyword_id).in_(keyword_ids))
    if len(keyword_ids) <= FEW_KEYWORDS:
        # DISTINCT: with it PostgreSQL reads these few keywords' matches first; without, it
        # walked the papers by date (3x slower at 20 keywords).
        where = col(Paper.arxiv_id).in_(matched.distinct())
    else:
        found = _newest_among_recent(session, keyword_ids, limit)
        where = col(Paper.arxiv_id).in_(found or _newest_of_all(session, matched, limit))
    papers = session.exec(select(Paper).where(where).order_by(*NEWEST).limit(limit))
    return [paper_view(p) for p in papers]


def _newest_among_recent(
    session: Session, keyword_ids: Sequence[int], limit: int
) -> list[str] | None:
    """Ids of the newest `limit` matches among the store's newest papers; None if fewer."""
    newest = session.execute(sa_select(func.max(col(Paper.updated)))).scalar()
    if newest is None:
        return None
    # `keyword_id + 0`: a paper's matches are found by paper (ix_matches_paper) and the
    # keywords checked among them, not one index probe per keyword and paper.
    matched = (
        sa_select(literal(1))
        .where(
            col(Match.paper_id) == col(Paper.arxiv_id),
            (col(Match.keyword_id) + 0).in_(keyword_ids),
        )
        .exists()
    )
    query = (
        sa_select(col(Paper.arxiv_id))
        .where(col(Paper.updated) >= newest - RECENT, matched)
        .order_by(*NEWEST)
        .limit(limit)
    )
    found = list(session.execute(query).scalars())
    return found if len(found) == limit else None


def _newest_of_all(session: Session, matched: Any, limit: int) -> list[str]:
    """Ids of the newest `limit` of the matched papers, sorted here: with no LIMIT in the SQL,
    no plan walks the papers by date hoping to stop early (they are not among the newest)."""
    query = sa_select(col(Paper.updated), col(Paper.arxiv_id)).where(
        col(Paper.arxiv_id).in_(matched)
    )
    return [arxiv_id for _, arxiv_id in heapq.nlargest(limit, session.execute(query))]


def newest_per_keyword(
    session: Session, keyword_ids: Sequence[int], *, limit: int, with_authors: bool = True
) -> dict[int, list[PaperView]]:
    """Each keyword's newest `limit` papers, in one query (a window over the matches)."""
    result: dict[int, list[PaperView]] = {k: [] for k in keyword_ids}
    if not keyword_ids:
        return result
    rank = func.row_number().over(partition_by=col(Match.keyword_id), order_by=NEWEST)
    authors = col(Paper.authors) if with_authors else literal("")
    # One pass over the keywords' matches joined to their papers; the paper columns ride along
    # so the ranked rows need no second join.
    ranked = (
        sa_select(
            col(Match.keyword_id).label("keyword_id"),
            *paper_columns(authors),
            rank.label("rank"),
        )
        .join(Paper, col(Paper.arxiv_id) == col(Match.paper_id))
        .where(col(Match.keyword_id).in_(keyword_ids))
        .subquery()
    )
    c = ranked.c
    rows = session.execute(
        sa_select(
            c.keyword_id,
            c.arxiv_id,
            c.version,
            c.title,
            c.updated,
            c.comment,
            c.abstract,
            c.authors,
        )
        .where(c.rank <= limit)
        .order_by(c.keyword_id, c.rank)
    )
    for keyword_id, *paper in rows:
        result[keyword_id].append(row_view(*paper))
    return result


def match_count(session: Session, keyword_id: int) -> int:
    return session.exec(
        select(func.count()).select_from(Match).where(Match.keyword_id == keyword_id)
    ).one()

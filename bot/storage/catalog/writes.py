"""Papers and matches written from arXiv answers: new or changed papers upserted, new
matches recorded, each answer in a query and at most two writes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, case, literal, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bot.papers import FetchedPaper
from bot.storage.categories import category_columns
from bot.storage.models import Match, Paper, utcnow
from bot.storage.sql import as_utc, insert_for, one_of


def record_answer(session: Session, *, keyword_id: int, papers: Sequence[FetchedPaper]) -> int:
    """Store one arXiv answer for a keyword: new or changed papers, new matches. Returns how
    many matches are new. One read tells both what is stored and what is matched, so a refresh
    of a keyword costs one query plus at most two writes."""
    latest = _latest_versions(papers)
    if not latest:
        return 0
    matched = (
        sa_select(literal(1))
        .where(col(Match.keyword_id) == keyword_id, col(Match.paper_id) == col(Paper.arxiv_id))
        .exists()
    )
    query = sa_select(*map(col, _COMPARED), matched).where(
        one_of(session, col(Paper.arxiv_id), list(latest))
    )
    stored = {row[0]: row for row in session.execute(query)}
    _write_papers(session, [p for p in latest.values() if not _same(stored.get(p.arxiv_id), p)])
    fresh = [pid for pid in latest if pid not in stored or not stored[pid][-1]]
    return _insert_matches(session, keyword_id, fresh)


def upsert_papers(session: Session, papers: Sequence[FetchedPaper]) -> None:
    """Insert new papers; a newer version (or the same one re-sent changed) updates its row."""
    latest = _latest_versions(papers)
    if not latest:
        return
    query = sa_select(*map(col, _COMPARED)).where(
        one_of(session, col(Paper.arxiv_id), list(latest))
    )
    stored = {row[0]: row for row in session.execute(query)}
    _write_papers(session, [p for p in latest.values() if not _same(stored.get(p.arxiv_id), p)])


def add_matches(session: Session, *, keyword_id: int, paper_ids: Iterable[str]) -> int:
    """Record keyword ↔ paper matches; returns how many are new."""
    wanted = list(dict.fromkeys(paper_ids))
    if not wanted:
        return 0
    known = select(Match.paper_id).where(
        Match.keyword_id == keyword_id, one_of(session, col(Match.paper_id), wanted)
    )
    present = set(session.exec(known).all())
    return _insert_matches(session, keyword_id, [pid for pid in wanted if pid not in present])


_COMPARED = (
    Paper.arxiv_id,
    Paper.version,
    Paper.updated,
    Paper.title,
    Paper.abstract,
    Paper.comment,
    Paper.primary_category,
    Paper.categories,
)


def _latest_versions(papers: Sequence[FetchedPaper]) -> dict[str, FetchedPaper]:
    latest: dict[str, FetchedPaper] = {}
    for paper in papers:
        known = latest.get(paper.arxiv_id)
        if known is None or paper.version > known.version:
            latest[paper.arxiv_id] = paper
    return latest


def _same(row: Any, paper: FetchedPaper) -> bool:
    """The stored row (in `_COMPARED` order) already says exactly what arXiv sent (an answer
    without categories leaves the stored ones as they are)."""
    same = row is not None and (row[1], as_utc(row[2]), row[3], row[4], row[5]) == (
        paper.version,
        as_utc(paper.updated),
        paper.title,
        paper.abstract,
        paper.comment,
    )
    return same and (not paper.categories or (row[6], row[7]) == category_columns(paper))


def _write_papers(session: Session, papers: Sequence[FetchedPaper]) -> None:
    """Upsert rows known to be new or changed. Unchanged ones are filtered out before: on
    PostgreSQL, ON CONFLICT DO UPDATE locks (writes) a row even when its WHERE declines."""
    if not papers:
        return
    now = utcnow()
    values = [
        {
            "arxiv_id": p.arxiv_id,
            "version": p.version,
            "title": p.title,
            "authors": json.dumps(list(p.authors), ensure_ascii=False),
            "abstract": p.abstract,
            "comment": p.comment,
            "published": as_utc(p.published),
            "updated": as_utc(p.updated),
            "stored_at": now,
            **dict(zip(("primary_category", "categories"), category_columns(p), strict=True)),
        }
        for p in papers
    ]
    # One statement compiled once and run as executemany: building a fresh multi-VALUES
    # statement per batch spent most of a refresh compiling SQL.
    stmt = insert_for(session, Paper)
    fresh = stmt.excluded
    table = Paper.__table__  # type: ignore[attr-defined]
    updated_columns = ("version", "title", "authors", "abstract", "comment", "published", "updated")
    # An answer that names no categories keeps the stored ones.
    kept = {
        name: case((fresh[name] == "", table.c[name]), else_=fresh[name])
        for name in ("primary_category", "categories")
    }
    upsert = stmt.on_conflict_do_update(
        index_elements=["arxiv_id"],
        set_={**{name: fresh[name] for name in updated_columns}, **kept},
        # A concurrent writer may have stored a newer version meanwhile: never go back.
        where=or_(
            table.c.version < fresh.version,
            and_(table.c.version == fresh.version, table.c.updated <= fresh.updated),
        ),
    )
    session.execute(upsert, values)


def _insert_matches(session: Session, keyword_id: int, paper_ids: Sequence[str]) -> int:
    if not paper_ids:
        return 0
    now = utcnow()
    rows = [{"keyword_id": keyword_id, "paper_id": pid, "first_seen_at": now} for pid in paper_ids]
    stmt = insert_for(session, Match).on_conflict_do_nothing(
        index_elements=["keyword_id", "paper_id"]
    )
    # RETURNING, not rowcount: psycopg reports -1 for an executemany.
    inserted = session.execute(stmt.returning(Match.__table__.c.paper_id), rows).all()  # type: ignore[attr-defined]
    return len(inserted)

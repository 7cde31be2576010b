"""Saved papers: paper ↔ person within a workspace; every read and write names the person."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from bot.replies import PaperView
from bot.storage.catalog import paper_view
from bot.storage.models import Paper, SavedPaper
from bot.storage.store import insert_for

_SAVED = SavedPaper.__table__  # type: ignore[attr-defined]


def save(
    session: Session, *, workspace_id: int, user_id: str, paper_id: str, now: datetime
) -> bool:
    """Save the paper for the person; False when it was saved already (kept as it was)."""
    stmt = insert_for(session, SavedPaper).values(
        workspace_id=workspace_id, user_id=user_id, paper_id=paper_id, saved_at=now
    )
    inserted = session.execute(
        stmt.on_conflict_do_nothing(
            index_elements=["workspace_id", "user_id", "paper_id"]
        ).returning(_SAVED.c.paper_id)
    ).first()
    return inserted is not None


def unsave(session: Session, *, workspace_id: int, user_id: str, paper_id: str) -> bool:
    """Forget one of the person's saves; False when it was not saved."""
    removed = session.execute(
        delete(_SAVED)
        .where(
            _SAVED.c.workspace_id == workspace_id,
            _SAVED.c.user_id == user_id,
            _SAVED.c.paper_id == paper_id,
        )
        .returning(_SAVED.c.paper_id)
    ).first()
    return removed is not None


def saved_papers(
    session: Session, *, workspace_id: int, user_id: str, limit: int | None = None
) -> list[tuple[PaperView, datetime]]:
    """The person's saved papers with when they were saved, newest saved first."""
    query = (
        select(Paper, SavedPaper.saved_at)
        .join(SavedPaper, col(SavedPaper.paper_id) == col(Paper.arxiv_id))
        .where(SavedPaper.workspace_id == workspace_id, SavedPaper.user_id == user_id)
        .order_by(col(SavedPaper.saved_at).desc(), col(Paper.arxiv_id).desc())
        .limit(limit)
    )
    return [(paper_view(paper), saved_at) for paper, saved_at in session.exec(query).all()]


def saved_count(session: Session, *, workspace_id: int, user_id: str) -> int:
    return session.exec(
        select(func.count())
        .select_from(SavedPaper)
        .where(SavedPaper.workspace_id == workspace_id, SavedPaper.user_id == user_id)
    ).one()

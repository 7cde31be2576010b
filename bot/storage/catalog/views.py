"""Stored papers as `PaperView`s, and the newest-first order every read of the catalogue uses."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from sqlmodel import col

from bot.replies import PaperView
from bot.storage.models import Paper
from bot.storage.sql import as_utc

# Newest first, ties broken by arXiv id descending (the README's order, SPEC 6).
NEWEST = (col(Paper.updated).desc(), col(Paper.arxiv_id).desc())


def row_view(
    arxiv_id: str, version: int, title: str, updated: Any, comment: str, abstract: str, names: str
) -> PaperView:
    """A paper read as plain columns (authors as stored: a JSON list, or "" when not read)."""
    return PaperView(
        arxiv_id=arxiv_id,
        version=version,
        title=title,
        authors=tuple(json.loads(names)) if names else (),
        updated=as_utc(updated),
        comment=comment,
        abstract=abstract,
    )


def paper_view(paper: Paper) -> PaperView:
    """A stored paper with everything it has (the windowed reads leave out the first
    version's date and the categories, which posts and lists do not show)."""
    p = paper
    view = row_view(p.arxiv_id, p.version, p.title, p.updated, p.comment, p.abstract, p.authors)
    return replace(
        view,
        published=as_utc(p.published),
        primary_category=p.primary_category,
        categories=tuple(p.categories.split()),
    )


def paper_columns(authors: Any) -> list[Any]:
    """The columns a PaperView is built from, labelled for a subquery (`authors` may be a
    literal "" when the caller does not show them)."""
    return [
        col(Paper.arxiv_id).label("arxiv_id"),
        col(Paper.version).label("version"),
        col(Paper.title).label("title"),
        col(Paper.updated).label("updated"),
        col(Paper.comment).label("comment"),
        col(Paper.abstract).label("abstract"),
        authors.label("authors"),
    ]

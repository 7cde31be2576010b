"""`catalog.newest_papers`: the same answer whichever way it is found (few keywords, a walk
over the store's newest papers, or all the keywords' matches when the walk comes up short)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from bot.arxiv.gateway import FetchedPaper
from bot.storage import catalog, store
from bot.storage.catalog import newest
from bot.storage.db import read_session, write_session

START = datetime(2025, 1, 1, tzinfo=UTC)


def _paper(n: int) -> FetchedPaper:
    moment = START + timedelta(hours=n // 2)  # pairs share a date: ties go by arxiv id
    return FetchedPaper(
        arxiv_id=f"2501.{n:05d}",
        version=1,
        title=f"Paper {n}",
        authors=("A",),
        abstract="An abstract.",
        comment="",
        published=moment,
        updated=moment,
    )


@pytest.fixture
def keywords(engine: Engine) -> list[int]:
    """Keyword k matches papers n with n % (k + 2) == 0, for n < 60; keyword 5 matches only the
    ten oldest papers; a paper matched by several keywords is still one paper."""
    ids = []
    with write_session(engine) as session:
        for k in range(6):
            keyword = store.ensure_keyword(session, f"keyword {k}")
            numbers = range(10) if k == 5 else [n for n in range(60) if n % (k + 2) == 0]
            catalog.record_answer(
                session, keyword_id=keyword.id or 0, papers=[_paper(n) for n in numbers]
            )
            ids.append(keyword.id or 0)
    return ids


def _expected(chosen: list[int], limit: int) -> list[str]:
    numbers = {
        n
        for index in chosen
        for n in (range(10) if index == 5 else range(0, 60, index + 2))
        if n < 60
    }
    ordered = sorted(numbers, key=lambda n: (START + timedelta(hours=n // 2), n), reverse=True)
    return [f"2501.{n:05d}" for n in ordered[:limit]]


@pytest.mark.parametrize(
    ("way", "few", "recent"),
    [
        ("few keywords", 20, timedelta(days=30)),
        ("walk", 1, timedelta(hours=15)),
        ("walk comes up short", 1, timedelta(hours=1)),
    ],
)
@pytest.mark.parametrize(
    ("chosen", "limit"), [([0, 1], 5), ([1, 2, 3], 20), ([4, 5], 3), ([5], 4), ([5, 4], 30)]
)
def test_the_answer_does_not_depend_on_the_way_it_is_found(
    engine: Engine,
    keywords: list[int],
    monkeypatch: pytest.MonkeyPatch,
    way: str,
    few: int,
    recent: timedelta,
    chosen: list[int],
    limit: int,
) -> None:
    monkeypatch.setattr(newest, "FEW_KEYWORDS", few)
    monkeypatch.setattr(newest, "RECENT", recent)
    with read_session(engine) as session:
        found = catalog.newest_papers(session, [keywords[i] for i in chosen], limit=limit)
    assert [p.arxiv_id for p in found] == _expected(chosen, limit)

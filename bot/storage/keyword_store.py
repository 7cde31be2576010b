"""Keywords in the store: found and created by their key (phrase plus sorted rules), and the
outcome of each fetch recorded on them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, update
from sqlmodel import Session, col, select

from bot.keywords import KeywordSpec, keyword_key, parse_keyword
from bot.storage.models import Channel, Keyword, Subscription, utcnow
from bot.storage.sql import insert_for, one_of

KeywordRef = str | KeywordSpec  # keyword text (as typed, or a keyword's `phrase`) or its spec


def spec_of(keyword: KeywordRef) -> KeywordSpec:
    return keyword if isinstance(keyword, KeywordSpec) else parse_keyword(keyword)


def key_of(keyword: KeywordRef) -> str:
    return keyword.key if isinstance(keyword, KeywordSpec) else keyword_key(keyword)


def find_keyword(session: Session, keyword: KeywordRef) -> Keyword | None:
    return session.exec(select(Keyword).where(Keyword.key == key_of(keyword))).first()


def find_keywords(session: Session, keywords: Sequence[KeywordRef]) -> list[Keyword]:
    keys = list(dict.fromkeys(key_of(k) for k in keywords))
    found: list[Keyword] = []
    for start in range(0, len(keys), 500):
        batch = keys[start : start + 500]
        found.extend(session.exec(select(Keyword).where(one_of(session, Keyword.key, batch))).all())
    return found


def ensure_keyword(session: Session, keyword: KeywordRef) -> Keyword:
    spec = spec_of(keyword)
    existing = find_keyword(session, spec)
    if existing is not None:
        return existing
    stmt = insert_for(session, Keyword).values(
        **keyword_columns(spec), fetch_status="never", created_at=utcnow()
    )
    session.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))
    found = find_keyword(session, spec)
    assert found is not None
    return found


def keyword_columns(spec: KeywordSpec) -> dict[str, Any]:
    """The columns that say what a keyword is (its key, its text and its parts)."""
    return {
        "key": spec.key,
        "phrase": spec.text,
        "words": spec.phrase,
        "exclude": json.dumps(list(spec.exclude), ensure_ascii=False),
        "categories": " ".join(spec.categories),
        "author": spec.author,
    }


def record_fetch(
    session: Session, keyword: KeywordRef, *, status: str, error: str | None = None
) -> int | None:
    """Record a fetch's outcome on the keyword; returns its id, or None if it is not stored.

    One prepared UPDATE … RETURNING: a daily refresh runs this for every keyword."""
    now = datetime.now(UTC)
    row = session.execute(
        _RECORD_FETCH,
        {
            "b_key": key_of(keyword),
            "b_status": status,
            "b_error": error[:500] if error else None,
            "b_at": now,
            "b_success": now if status == "ok" else None,
        },
    ).first()
    return None if row is None else int(row[0])


_KEYWORDS = Keyword.__table__  # type: ignore[attr-defined]
_RECORD_FETCH = (
    update(_KEYWORDS)
    .where(_KEYWORDS.c.key == bindparam("b_key"))
    .values(
        fetch_status=bindparam("b_status"),
        fetch_error=bindparam("b_error"),
        fetched_at=bindparam("b_at"),
        last_success_at=func.coalesce(
            bindparam("b_success", type_=_KEYWORDS.c.last_success_at.type),
            _KEYWORDS.c.last_success_at,
        ),
    )
    .returning(_KEYWORDS.c.id)
)


def record_fetch_many(session: Session, *, keyword_ids: Sequence[int], status: str) -> None:
    """Record the same outcome (no error) on many keywords: the harvest's keywords that had
    no candidates read `ok`, in a few statements rather than one per keyword."""
    now = datetime.now(UTC)
    success = {"last_success_at": now} if status == "ok" else {}
    for start in range(0, len(keyword_ids), 500):
        batch = list(keyword_ids[start : start + 500])
        session.execute(
            update(_KEYWORDS)
            .where(_KEYWORDS.c.id.in_(batch))
            .values(fetch_status=status, fetch_error=None, fetched_at=now, **success)
        )


def followed_phrases(session: Session) -> list[str]:
    """The phrase of every keyword an active channel follows, each once, oldest first."""
    rows = session.exec(
        select(Keyword.phrase)
        .where(
            col(Keyword.id).in_(
                select(Subscription.keyword_id)
                .join(Channel, Channel.id == Subscription.channel_id)  # type: ignore[arg-type]
                .where(Channel.active == True)  # noqa: E712
            )
        )
        .order_by(Keyword.id)  # type: ignore[arg-type]
    ).all()
    return list(rows)

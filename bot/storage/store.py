"""Store operations: every function takes the session and is scoped by workspace and channel."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ARRAY, String, Table, any_, bindparam, func, update
from sqlmodel import Session, col, select

from bot.replies import KeywordRow
from bot.storage.models import (
    Channel,
    Delivery,
    Keyword,
    Match,
    Paper,
    Subscription,
    Workspace,
    utcnow,
)
from bot.text import keyword_key

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def insert_for(session: Session, model: Any) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which knows ON CONFLICT. Each dialect is imported when used: a
    process on SQLite never loads PostgreSQL's (20-30 ms of start-up)."""
    table: Table = model.__table__
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def one_of(session: Session, column: Any, values: Sequence[str]) -> Any:
    """`column IN (values)`; on PostgreSQL `column = ANY(:array)`, whose SQL text does not change
    with the number of values, so the driver can keep it prepared (a refresh runs it 10,000 times)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam("one_of", value=list(values), type_=ARRAY(String)))
    return column.in_(values)


def ensure_workspace(
    session: Session, *, platform: str, external_id: str, name: str = ""
) -> Workspace:
    """The workspace, created on first use; a returning bot's workspace becomes active again."""
    workspace = find_workspace(session, platform=platform, external_id=external_id)
    if workspace is None:
        stmt = insert_for(session, Workspace).values(
            platform=platform, external_id=external_id, name=name, active=True, created_at=utcnow()
        )
        session.execute(stmt.on_conflict_do_nothing(index_elements=["platform", "external_id"]))
        workspace = find_workspace(session, platform=platform, external_id=external_id)
        assert workspace is not None
    if not workspace.active:
        workspace.active = True
    return workspace


def find_workspace(session: Session, *, platform: str, external_id: str) -> Workspace | None:
    return session.exec(
        select(Workspace).where(
            Workspace.platform == platform, Workspace.external_id == external_id
        )
    ).first()


def ensure_channel(session: Session, *, workspace: Workspace, external_id: str) -> Channel:
    """The channel, created on first use; a channel the bot had left becomes active again."""
    channel = find_channel(session, workspace=workspace, external_id=external_id)
    if channel is None:
        stmt = insert_for(session, Channel).values(
            workspace_id=workspace.id,
            external_id=external_id,
            active=True,
            digest_enabled=True,
            paused=False,
            failed_days=0,
            created_at=utcnow(),
        )
        session.execute(stmt.on_conflict_do_nothing(index_elements=["workspace_id", "external_id"]))
        channel = find_channel(session, workspace=workspace, external_id=external_id)
        assert channel is not None
    if not channel.active:
        channel.active = True
    return channel


def find_channel(session: Session, *, workspace: Workspace, external_id: str) -> Channel | None:
    return session.exec(
        select(Channel).where(
            Channel.workspace_id == workspace.id, Channel.external_id == external_id
        )
    ).first()


def deactivate_workspace(session: Session, *, platform: str, external_id: str) -> int:
    """The bot left (uninstalled, kicked): its channels stop; their data stays. Returns channels stopped."""
    workspace = find_workspace(session, platform=platform, external_id=external_id)
    if workspace is None:
        return 0
    workspace.active = False
    channels = session.exec(select(Channel).where(Channel.workspace_id == workspace.id)).all()
    for channel in channels:
        channel.active = False
    return len(channels)


def find_keyword(session: Session, label: str) -> Keyword | None:
    return session.exec(select(Keyword).where(Keyword.key == keyword_key(label))).first()


def ensure_keyword(session: Session, label: str) -> Keyword:
    existing = find_keyword(session, label)
    if existing is not None:
        return existing
    stmt = insert_for(session, Keyword).values(
        key=keyword_key(label), phrase=label, fetch_status="never", created_at=utcnow()
    )
    session.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))
    keyword = find_keyword(session, label)
    assert keyword is not None
    return keyword


def subscription_for(session: Session, *, channel: Channel, label: str) -> Subscription | None:
    return session.exec(
        select(Subscription)
        .join(Keyword, Keyword.id == Subscription.keyword_id)  # type: ignore[arg-type]
        .where(Subscription.channel_id == channel.id, Keyword.key == keyword_key(label))
    ).first()


def subscribe(session: Session, *, channel: Channel, keyword: Keyword, label: str) -> bool:
    """Follow `keyword` in `channel`; existing matches count as delivered. False if already followed."""
    stmt = insert_for(session, Subscription).values(
        channel_id=channel.id, keyword_id=keyword.id, label=label, created_at=utcnow()
    )
    inserted = session.execute(
        stmt.on_conflict_do_nothing(index_elements=["channel_id", "keyword_id"]).returning(
            Subscription.__table__.c.id  # type: ignore[attr-defined]
        )
    ).first()
    if inserted is None:
        return False
    mark_matches_delivered(session, channel_id=channel.id, keyword_id=keyword.id)  # type: ignore[arg-type]
    return True


def mark_matches_delivered(session: Session, *, channel_id: int, keyword_id: int) -> None:
    papers = select(Match.paper_id).where(Match.keyword_id == keyword_id)
    rows = [
        {"channel_id": channel_id, "paper_id": pid, "delivered_at": utcnow()}
        for pid in session.exec(papers).all()
    ]
    mark_delivered_rows(session, rows)


def mark_delivered(session: Session, *, channel_id: int, paper_ids: Iterable[str]) -> None:
    now = utcnow()
    mark_delivered_rows(
        session, [{"channel_id": channel_id, "paper_id": p, "delivered_at": now} for p in paper_ids]
    )


def mark_delivered_rows(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        stmt = insert_for(session, Delivery).on_conflict_do_nothing(
            index_elements=["channel_id", "paper_id"]
        )
        session.execute(stmt, rows)


def unsubscribe(session: Session, *, channel: Channel, label: str) -> Subscription | None:
    subscription = subscription_for(session, channel=channel, label=label)
    if subscription is not None:
        session.delete(subscription)
    return subscription


def channel_subscriptions(session: Session, channel: Channel) -> list[tuple[Subscription, Keyword]]:
    """The channel's keywords in the order they were added."""
    rows = session.exec(
        select(Subscription, Keyword)
        .join(Keyword, Keyword.id == Subscription.keyword_id)  # type: ignore[arg-type]
        .where(Subscription.channel_id == channel.id)
        .order_by(Subscription.created_at, Subscription.id)  # type: ignore[arg-type]
    ).all()
    return [(s, k) for s, k in rows]


def followed_keyword_ids(session: Session, channel: Channel) -> list[int]:
    """The ids of the channel's keywords."""
    query = select(Subscription.keyword_id).where(Subscription.channel_id == channel.id)
    return list(session.exec(query))


def workspace_subscriptions(session: Session, workspace: Workspace) -> list[tuple[str, int]]:
    """(label, keyword id) of every keyword followed anywhere in the workspace, first added first."""
    rows = session.exec(
        select(
            Subscription.label, Subscription.keyword_id, Subscription.created_at, Subscription.id
        )
        .join(Channel, Channel.id == Subscription.channel_id)  # type: ignore[arg-type]
        .where(Channel.workspace_id == workspace.id)
        .order_by(Subscription.created_at, Subscription.id)  # type: ignore[arg-type]
    ).all()
    seen: dict[int, str] = {}
    for label, keyword_id, _created, _id in rows:
        seen.setdefault(keyword_id, label)
    return [(label, keyword_id) for keyword_id, label in seen.items()]


def keyword_rows(session: Session, channel: Channel) -> list[KeywordRow]:
    followed = select(Subscription.keyword_id).where(Subscription.channel_id == channel.id)
    stats = (
        select(Match.keyword_id, func.count().label("n"), func.max(Paper.updated).label("newest"))
        .join(Paper, Paper.arxiv_id == Match.paper_id)  # type: ignore[arg-type]
        .where(col(Match.keyword_id).in_(followed))
        .group_by(col(Match.keyword_id))
        .subquery()
    )
    rows = session.exec(
        select(Subscription.label, Keyword, stats.c.n, stats.c.newest)
        .join(Keyword, Keyword.id == Subscription.keyword_id)  # type: ignore[arg-type]
        .outerjoin(stats, stats.c.keyword_id == Keyword.id)
        .where(Subscription.channel_id == channel.id)
        .order_by(Subscription.created_at, Subscription.id)  # type: ignore[arg-type]
    ).all()
    return [
        KeywordRow(
            label=label,
            papers=n or 0,
            newest=as_utc(newest).date() if newest else None,
            status=keyword.fetch_status,
            error=keyword.fetch_error,
        )
        for label, keyword, n, newest in rows
    ]


def record_fetch(
    session: Session, label: str, *, status: str, error: str | None = None
) -> int | None:
    """Record a fetch's outcome on the keyword; returns its id, or None if it is not stored.

    One prepared UPDATE … RETURNING: a daily refresh runs this for every keyword."""
    now = datetime.now(UTC)
    row = session.execute(
        _RECORD_FETCH,
        {
            "b_key": keyword_key(label),
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

"""Store operations: every function takes the session and is scoped by workspace and channel."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.keywords import keyword_key
from bot.replies import KeywordRow

# Keywords and SQL helpers live in their own modules; callers keep saying `store.…`.
from bot.storage.keyword_store import KeywordRef as KeywordRef
from bot.storage.keyword_store import ensure_keyword as ensure_keyword
from bot.storage.keyword_store import find_keyword as find_keyword
from bot.storage.keyword_store import find_keywords as find_keywords
from bot.storage.keyword_store import followed_phrases as followed_phrases
from bot.storage.keyword_store import key_of as key_of
from bot.storage.keyword_store import keyword_columns as keyword_columns
from bot.storage.keyword_store import record_fetch as record_fetch
from bot.storage.keyword_store import record_fetch_many as record_fetch_many
from bot.storage.keyword_store import spec_of as spec_of
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
from bot.storage.sql import as_utc as as_utc
from bot.storage.sql import insert_for as insert_for
from bot.storage.sql import one_of as one_of
from bot.text import squash


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


def subscription_for(session: Session, *, channel: Channel, label: str) -> Subscription | None:
    pair = followed(channel_subscriptions(session, channel), label)
    return pair[0] if pair else None


def followed(
    subscriptions: Sequence[tuple[Subscription, Keyword]], label: str
) -> tuple[Subscription, Keyword] | None:
    """The subscription `label` names: by the keyword's key, or else by the label shown, so
    that what `keywords` shows can always be removed (even a keyword stored before the rule
    grammar, whose label reads differently now)."""
    key = keyword_key(label)
    shown = squash(label).casefold()
    by_key = next((pair for pair in subscriptions if pair[1].key == key), None)
    return by_key or next((p for p in subscriptions if p[0].label.casefold() == shown), None)


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
            rules=keyword.spec.rules_text(),
        )
        for label, keyword, n, newest in rows
    ]

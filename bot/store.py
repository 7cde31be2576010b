"""Store operations: every function takes the session and is scoped by workspace and channel."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, and_, bindparam, func, literal, or_
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from bot.arxiv_gateway import FetchedPaper
from bot.models import Channel, Delivery, Keyword, Match, Paper, Subscription, Workspace, utcnow
from bot.replies import KeywordRow, PaperGroup, PaperView
from bot.text import keyword_key


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def insert_for(session: Session, model: Any) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which knows ON CONFLICT."""
    table: Table = model.__table__
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


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


def paper_view(paper: Paper) -> PaperView:
    return PaperView(
        arxiv_id=paper.arxiv_id,
        version=paper.version,
        title=paper.title,
        authors=tuple(json.loads(paper.authors)) if paper.authors else (),
        updated=as_utc(paper.updated),
        comment=paper.comment,
        abstract=paper.abstract,
    )


_NEWEST = (col(Paper.updated).desc(), col(Paper.arxiv_id).desc())


def newest_papers(session: Session, keyword_ids: Sequence[int], *, limit: int) -> list[PaperView]:
    """The newest `limit` papers matching any of the keywords, each once."""
    if not keyword_ids:
        return []
    matched = select(Match.paper_id).where(col(Match.keyword_id).in_(keyword_ids)).distinct()
    papers = session.exec(
        select(Paper).where(col(Paper.arxiv_id).in_(matched)).order_by(*_NEWEST).limit(limit)
    ).all()
    return [paper_view(p) for p in papers]


def newest_per_keyword(
    session: Session, keyword_ids: Sequence[int], *, limit: int, with_authors: bool = True
) -> dict[int, list[PaperView]]:
    """Each keyword's newest `limit` papers, in one query (a window over the matches)."""
    result: dict[int, list[PaperView]] = {k: [] for k in keyword_ids}
    if not keyword_ids:
        return result
    rank = (
        func.row_number().over(partition_by=col(Match.keyword_id), order_by=_NEWEST).label("rank")
    )
    ranked = (
        select(Match.keyword_id.label("keyword_id"), Paper.arxiv_id.label("arxiv_id"), rank)  # type: ignore[attr-defined]
        .join(Paper, Paper.arxiv_id == Match.paper_id)  # type: ignore[arg-type]
        .where(col(Match.keyword_id).in_(keyword_ids))
        .subquery()
    )
    columns = [
        col(Paper.arxiv_id),
        col(Paper.version),
        col(Paper.title),
        col(Paper.updated),
        col(Paper.comment),
        col(Paper.abstract),
    ]
    authors = col(Paper.authors) if with_authors else literal("")
    rows = session.execute(
        sa_select(ranked.c.keyword_id, *columns, authors)
        .join(Paper, col(Paper.arxiv_id) == ranked.c.arxiv_id)
        .where(ranked.c.rank <= limit)
        .order_by(ranked.c.keyword_id, ranked.c.rank)
    )
    for keyword_id, arxiv_id, version, title, updated, comment, abstract, names in rows:
        result[keyword_id].append(
            PaperView(
                arxiv_id=arxiv_id,
                version=version,
                title=title,
                authors=tuple(json.loads(names)) if names else (),
                updated=as_utc(updated),
                comment=comment,
                abstract=abstract,
            )
        )
    return result


def match_count(session: Session, keyword_id: int) -> int:
    return session.exec(
        select(func.count()).select_from(Match).where(Match.keyword_id == keyword_id)
    ).one()


def upsert_papers(session: Session, papers: Sequence[FetchedPaper]) -> None:
    """Insert new papers; a newer version (or the same one re-sent) updates its row."""
    if not papers:
        return
    latest: dict[str, FetchedPaper] = {}
    for paper in papers:
        known = latest.get(paper.arxiv_id)
        if known is None or paper.version > known.version:
            latest[paper.arxiv_id] = paper
    # Most of a daily answer is stored already, unchanged. Skipping those rows before the
    # upsert matters on PostgreSQL, where ON CONFLICT DO UPDATE locks (writes) a row even when
    # its WHERE says not to update it.
    for arxiv_id in _unchanged(session, list(latest.values())):
        del latest[arxiv_id]
    if not latest:
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
        }
        for p in latest.values()
    ]
    # One statement compiled once and run as executemany: building a fresh multi-VALUES
    # statement per batch spent most of a refresh compiling SQL.
    stmt = insert_for(session, Paper)
    fresh = stmt.excluded
    table = Paper.__table__  # type: ignore[attr-defined]
    updated_columns = ("version", "title", "authors", "abstract", "comment", "published", "updated")
    upsert = stmt.on_conflict_do_update(
        index_elements=["arxiv_id"],
        set_={name: fresh[name] for name in updated_columns},
        where=or_(
            table.c.version < fresh.version,
            and_(
                table.c.version == fresh.version,
                table.c.updated <= fresh.updated,
                or_(
                    table.c.updated < fresh.updated,
                    table.c.title != fresh.title,
                    table.c.abstract != fresh.abstract,
                    table.c.comment != fresh.comment,
                    table.c.authors != fresh.authors,
                ),
            ),
        ),
    )
    session.execute(upsert, values)


def _unchanged(session: Session, papers: Sequence[FetchedPaper]) -> list[str]:
    """Ids of the papers whose stored row already says exactly this."""
    fields = (
        Paper.arxiv_id,
        Paper.version,
        Paper.updated,
        Paper.title,
        Paper.abstract,
        Paper.comment,
    )
    query = sa_select(*map(col, fields)).where(
        col(Paper.arxiv_id).in_([p.arxiv_id for p in papers])
    )
    stored = {row[0]: row[1:] for row in session.execute(query)}
    return [
        p.arxiv_id
        for p in papers
        if (row := stored.get(p.arxiv_id)) is not None
        and (row[0], as_utc(row[1]), row[2], row[3], row[4])
        == (p.version, as_utc(p.updated), p.title, p.abstract, p.comment)
    ]


def add_matches(session: Session, *, keyword_id: int, paper_ids: Iterable[str]) -> int:
    """Record keyword ↔ paper matches; returns how many are new."""
    wanted = list(dict.fromkeys(paper_ids))
    if not wanted:
        return 0
    known = select(Match.paper_id).where(
        Match.keyword_id == keyword_id, col(Match.paper_id).in_(wanted)
    )
    present = set(session.exec(known).all())
    now = utcnow()
    rows = [
        {"keyword_id": keyword_id, "paper_id": pid, "first_seen_at": now}
        for pid in wanted
        if pid not in present
    ]
    if not rows:
        return 0
    stmt = insert_for(session, Match).on_conflict_do_nothing(
        index_elements=["keyword_id", "paper_id"]
    )
    # RETURNING, not rowcount: psycopg reports -1 for an executemany.
    inserted = session.execute(stmt.returning(Match.__table__.c.paper_id), rows).all()  # type: ignore[attr-defined]
    return len(inserted)


def record_fetch(
    session: Session, keyword: Keyword, *, status: str, error: str | None = None
) -> None:
    now = datetime.now(UTC)
    keyword.fetch_status = status
    keyword.fetch_error = error[:500] if error else None
    keyword.fetched_at = now
    if status == "ok":
        keyword.last_success_at = now
    session.add(keyword)


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


def undelivered_groups(
    session: Session,
    channel: Channel | int,
    *,
    per_keyword: int = 100,
    exclude: Iterable[str] = (),
) -> list[PaperGroup]:
    """The channel's undelivered papers grouped by keyword (added order), newest first, each paper once.

    One prepared query, as the daily posts run it for every channel every morning.
    `exclude`: papers to leave out as well (those of a post on its way, not yet recorded).
    """
    channel_id = channel if isinstance(channel, int) else channel.id
    rows = session.execute(_UNDELIVERED, {"channel": channel_id, "per_keyword": per_keyword})
    seen: set[str] = set(exclude)
    labels: dict[int, str] = {}
    grouped: dict[int, list[PaperView]] = {}
    for subscription, label, arxiv_id, version, title, names, updated, comment, abstract in rows:
        if arxiv_id in seen:
            continue
        seen.add(arxiv_id)
        labels[subscription] = label
        grouped.setdefault(subscription, []).append(
            PaperView(
                arxiv_id=arxiv_id,
                version=version,
                title=title,
                authors=tuple(json.loads(names)) if names else (),
                updated=as_utc(updated),
                comment=comment,
                abstract=abstract,
            )
        )
    return [PaperGroup(label=labels[s], papers=tuple(papers)) for s, papers in grouped.items()]


def _undelivered_query() -> Any:
    """A window over the channel's matches, ranked per keyword; built once (building it
    costs more than running it). NOT EXISTS, not NOT IN: PostgreSQL makes it an anti-join
    on the deliveries key instead of filtering a scan of every paper."""
    delivered = (
        sa_select(literal(1))
        .where(col(Delivery.channel_id) == bindparam("channel"))
        .where(col(Delivery.paper_id) == col(Match.paper_id))
        .exists()
    )
    rank = (
        func.row_number().over(partition_by=col(Match.keyword_id), order_by=_NEWEST).label("rank")
    )
    ranked = (
        sa_select(
            col(Subscription.label).label("label"),
            col(Subscription.created_at).label("added"),
            col(Subscription.id).label("subscription"),
            col(Match.paper_id).label("paper_id"),
            rank,
        )
        .join(Match, col(Match.keyword_id) == col(Subscription.keyword_id))
        .join(Paper, col(Paper.arxiv_id) == col(Match.paper_id))
        .where(col(Subscription.channel_id) == bindparam("channel"), ~delivered)
        .subquery()
    )
    return (
        sa_select(
            ranked.c.subscription,
            ranked.c.label,
            col(Paper.arxiv_id),
            col(Paper.version),
            col(Paper.title),
            col(Paper.authors),
            col(Paper.updated),
            col(Paper.comment),
            col(Paper.abstract),
        )
        .join(Paper, col(Paper.arxiv_id) == ranked.c.paper_id)
        .where(ranked.c.rank <= bindparam("per_keyword"))
        .order_by(ranked.c.added, ranked.c.subscription, ranked.c.rank)
    )


_UNDELIVERED = _undelivered_query()

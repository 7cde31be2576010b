"""The catalogue: papers and their keyword matches, written from arXiv answers and read
newest first for lists, the README and the daily posts."""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

# The generic ARRAY: on PostgreSQL it becomes the dialect's, and SQLite never imports that.
from sqlalchemy import ARRAY, Integer, and_, any_, bindparam, case, func, literal, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bot.arxiv.answers import FetchedPaper
from bot.replies import PaperGroup, PaperView
from bot.storage.categories import category_columns
from bot.storage.models import Channel, Delivery, Match, Paper, Subscription, utcnow
from bot.storage.store import as_utc, insert_for, one_of


def _view(
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
    """A stored paper with everything it has (the windowed reads below leave out the first
    version's date and the categories, which posts and lists do not show)."""
    p = paper
    view = _view(p.arxiv_id, p.version, p.title, p.updated, p.comment, p.abstract, p.authors)
    return replace(
        view,
        published=as_utc(p.published),
        primary_category=p.primary_category,
        categories=tuple(p.categories.split()),
    )


_NEWEST = (col(Paper.updated).desc(), col(Paper.arxiv_id).desc())


def _paper_columns(authors: Any) -> list[Any]:
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
    papers = session.exec(select(Paper).where(where).order_by(*_NEWEST).limit(limit))
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
        .order_by(*_NEWEST)
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
    rank = func.row_number().over(partition_by=col(Match.keyword_id), order_by=_NEWEST)
    authors = col(Paper.authors) if with_authors else literal("")
    # One pass over the keywords' matches joined to their papers; the paper columns ride along
    # so the ranked rows need no second join.
    ranked = (
        sa_select(
            col(Match.keyword_id).label("keyword_id"),
            *_paper_columns(authors),
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
        result[keyword_id].append(_view(*paper))
    return result


def match_count(session: Session, keyword_id: int) -> int:
    return session.exec(
        select(func.count()).select_from(Match).where(Match.keyword_id == keyword_id)
    ).one()


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
        paper = _view(arxiv_id, version, title, updated, comment, abstract, names)
        grouped.setdefault(subscription, []).append(paper)
    return [PaperGroup(label=labels[s], papers=tuple(papers)) for s, papers in grouped.items()]


def undelivered_groups_many(
    session: Session,
    channel_ids: Sequence[int],
    *,
    per_keyword: int = 100,
    exclude: Mapping[int, Iterable[str]] | None = None,
) -> dict[int, list[PaperGroup]]:
    """`undelivered_groups` of several channels with one query (the daily posts' batches):
    channel id -> its groups, exactly as `undelivered_groups` gives them (a channel with
    nothing undelivered maps to []). `exclude`: per channel, papers to leave out as well."""
    result: dict[int, list[PaperGroup]] = {cid: [] for cid in channel_ids}
    if not result:
        return result
    pg = session.get_bind().dialect.name == "postgresql"
    rows = session.execute(
        _UNDELIVERED_MANY_PG if pg else _UNDELIVERED_MANY,
        {"channels": list(result), "per_keyword": per_keyword},
    )
    exclude = exclude or {}
    current: int | None = None
    seen: set[str] = set()
    labels: dict[int, str] = {}
    grouped: dict[int, list[PaperView]] = {}
    for (
        channel_id,
        subscription,
        label,
        arxiv_id,
        version,
        title,
        names,
        updated,
        comment,
        abstract,
    ) in rows:
        if channel_id != current:  # rows come ordered by channel: one channel at a time
            if current is not None:
                result[current] = [
                    PaperGroup(label=labels[s], papers=tuple(p)) for s, p in grouped.items()
                ]
            current = channel_id
            seen = set(exclude.get(channel_id, ()))
            labels = {}
            grouped = {}
        if arxiv_id in seen:
            continue
        seen.add(arxiv_id)
        labels[subscription] = label
        paper = _view(arxiv_id, version, title, updated, comment, abstract, names)
        grouped.setdefault(subscription, []).append(paper)
    if current is not None:
        result[current] = [PaperGroup(label=labels[s], papers=tuple(p)) for s, p in grouped.items()]
    return result


def _undelivered_query(*, many: bool = False, pg: bool = False) -> Any:
    """A window over the channel's matches, ranked per keyword; built once (building it
    costs more than running it). NOT EXISTS, not NOT IN: PostgreSQL makes it an anti-join
    on the deliveries key instead of filtering a scan of every paper. The paper columns ride
    along in the ranked rows, so papers is joined once.

    `many`: for the channels of a list (`:channels`), each row led by its channel id, ordered
    by channel. The window is then partitioned per channel and keyword, as two channels may
    follow the same keyword with different deliveries; on PostgreSQL the list is one array
    parameter (`= ANY`), so the SQL text does not change with its length and stays prepared."""
    channel = col(Subscription.channel_id)
    if not many:
        of_channels = channel == bindparam("channel")
        delivered_to = col(Delivery.channel_id) == bindparam("channel")
        partition: Any = col(Match.keyword_id)
    else:
        delivered_to = col(Delivery.channel_id) == channel
        if pg:
            channels = any_(bindparam("channels", type_=ARRAY(Integer)))
            of_channels = channel == channels
            # Said again of the deliveries, so that a hash anti-join reads only the batch's
            # channels' deliveries rather than hashing every delivery ever made.
            delivered_to = and_(delivered_to, col(Delivery.channel_id) == channels)
        else:
            of_channels = channel.in_(bindparam("channels", expanding=True))
        partition = (channel, col(Match.keyword_id))
    delivered = (
        sa_select(literal(1))
        .where(delivered_to)
        .where(col(Delivery.paper_id) == col(Match.paper_id))
        .exists()
    )
    rank = func.row_number().over(partition_by=partition, order_by=_NEWEST)
    ranked = (
        sa_select(
            channel.label("channel_id"),
            col(Subscription.created_at).label("added"),
            col(Subscription.id).label("subscription"),
            col(Subscription.label).label("label"),
            *_paper_columns(col(Paper.authors)),
            rank.label("rank"),
        )
        .join(Match, col(Match.keyword_id) == col(Subscription.keyword_id))
        .join(Paper, col(Paper.arxiv_id) == col(Match.paper_id))
        .where(of_channels, ~delivered)
        .subquery()
    )
    c = ranked.c
    columns = [
        c.subscription,
        c.label,
        c.arxiv_id,
        c.version,
        c.title,
        c.authors,
        c.updated,
        c.comment,
        c.abstract,
    ]
    order = [c.added, c.subscription, c.rank]
    if many:
        columns.insert(0, c.channel_id)
        order.insert(0, c.channel_id)
    return sa_select(*columns).where(c.rank <= bindparam("per_keyword")).order_by(*order)


_UNDELIVERED = _undelivered_query()
_UNDELIVERED_MANY = _undelivered_query(many=True)
_UNDELIVERED_MANY_PG = _undelivered_query(many=True, pg=True)

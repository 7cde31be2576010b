"""Private feeds: a channel's feed tokens (kept as hashes) and the papers its feed shows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from bot.replies import PaperView
from bot.storage.catalog import paper_view
from bot.storage.models import Channel, FeedToken, Match, Paper, Subscription
from bot.storage.store import as_utc

_TOKENS = FeedToken.__table__  # type: ignore[attr-defined]


def add_token(session: Session, *, channel_id: int, token_hash: str, now: datetime) -> None:
    session.add(FeedToken(token_hash=token_hash, channel_id=channel_id, created_at=now))


def drop_tokens(session: Session, *, channel_id: int) -> int:
    """Every feed URL of the channel stops working; how many there were."""
    dropped = session.execute(
        delete(_TOKENS).where(_TOKENS.c.channel_id == channel_id).returning(_TOKENS.c.token_hash)
    )
    return len(dropped.all())


def token_count(session: Session, *, channel_id: int) -> int:
    return session.exec(
        select(func.count()).select_from(FeedToken).where(FeedToken.channel_id == channel_id)
    ).one()


def channel_of(session: Session, token_hash: str) -> Channel | None:
    """The active channel whose feed token has this hash (the lookup is by hash: the token
    itself is never stored or compared)."""
    return session.exec(
        select(Channel)
        .join(FeedToken, col(FeedToken.channel_id) == col(Channel.id))
        .where(FeedToken.token_hash == token_hash, Channel.active == True)  # noqa: E712
    ).first()


def feed_papers(
    session: Session, channel: Channel, *, limit: int
) -> list[tuple[PaperView, datetime]]:
    """The newest `limit` papers matched by the channel's keywords, each with when one of those
    keywords first matched it (so a newly matched older paper still moves the feed's date).
    The newest are picked along the papers' (updated, id) index, as `list` picks them; only
    theirs matches are then read."""
    followed = select(Subscription.keyword_id).where(Subscription.channel_id == channel.id)
    matched = select(Match.paper_id).where(col(Match.keyword_id).in_(followed))
    papers = session.exec(
        select(Paper)
        .where(col(Paper.arxiv_id).in_(matched))
        .order_by(col(Paper.updated).desc(), col(Paper.arxiv_id).desc())
        .limit(limit)
    ).all()
    ids = [paper.arxiv_id for paper in papers]
    seen = dict(
        session.exec(
            select(Match.paper_id, func.max(Match.first_seen_at))
            .where(col(Match.paper_id).in_(ids), col(Match.keyword_id).in_(followed))
            .group_by(col(Match.paper_id))
        ).all()
    )
    return [(paper_view(paper), as_utc(seen[paper.arxiv_id])) for paper in papers]


def channel_changed_at(session: Session, channel: Channel) -> datetime:
    """When the channel last started following a keyword (or was created)."""
    newest = session.exec(
        select(func.max(Subscription.created_at)).where(Subscription.channel_id == channel.id)
    ).one()
    return as_utc(newest or channel.created_at)


def channel_labels(session: Session, channel: Channel) -> list[str]:
    return list(
        session.exec(
            select(Subscription.label)
            .where(Subscription.channel_id == channel.id)
            .order_by(col(Subscription.created_at), col(Subscription.id))
        ).all()
    )

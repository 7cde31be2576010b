"""What the daily posts carry: a channel's papers not yet delivered to it, grouped by keyword."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any

# The generic ARRAY: on PostgreSQL it becomes the dialect's, and SQLite never imports that.
from sqlalchemy import ARRAY, Integer, and_, any_, bindparam, func, literal
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from bot.replies import PaperGroup, PaperView
from bot.storage.catalog.views import NEWEST, paper_columns, row_view
from bot.storage.models import Channel, Delivery, Match, Paper, Subscription


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
    return _grouped(rows, seen=set(exclude))


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
    # The rows come ordered by channel: one channel at a time.
    for channel_id, of_channel in groupby(rows, key=itemgetter(0)):
        seen = set(exclude.get(channel_id, ()))
        result[channel_id] = _grouped((row[1:] for row in of_channel), seen=seen)
    return result


def _grouped(rows: Iterable[Any], *, seen: set[str]) -> list[PaperGroup]:
    """Rows of (subscription, label, paper columns…) as groups in row order, each paper once
    (under its first keyword) and none of `seen`."""
    labels: dict[int, str] = {}
    grouped: dict[int, list[PaperView]] = {}
    for subscription, label, arxiv_id, version, title, names, updated, comment, abstract in rows:
        if arxiv_id in seen:
            continue
        seen.add(arxiv_id)
        labels[subscription] = label
        paper = row_view(arxiv_id, version, title, updated, comment, abstract, names)
        grouped.setdefault(subscription, []).append(paper)
    return [PaperGroup(label=labels[s], papers=tuple(papers)) for s, papers in grouped.items()]


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
    rank = func.row_number().over(partition_by=partition, order_by=NEWEST)
    ranked = (
        sa_select(
            channel.label("channel_id"),
            col(Subscription.created_at).label("added"),
            col(Subscription.id).label("subscription"),
            col(Subscription.label).label("label"),
            *paper_columns(col(Paper.authors)),
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

"""`preview <keyword>`: a keyword's paper count and newest papers, only for the person who
asked and without following it. Answered from the store when the deployment fetched that
keyword today; otherwise with one arXiv request through the deployment's pacer, at most one
such request per channel every `PREVIEW_COOLDOWN`. What that request brings is stored like any
fetch (the keyword, its papers and matches, no subscription), so asking again the same day,
or adding the keyword, costs no request."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.keywords import KeywordSpec
from bot.replies import PaperGroup, Papers, Reply, Text, error
from bot.storage import catalog, store
from bot.storage.db import read_session, write_session
from bot.storage.models import Keyword

if TYPE_CHECKING:
    from bot.commands.context import Context, Place

PREVIEW_COOLDOWN = timedelta(seconds=60)
SHOWN = 3


def preview(ctx: Context, place: Place, label: str) -> Reply:
    spec = store.spec_of(label)  # the grammar checked it
    answer = _from_store(ctx, spec, label, fetched_today=True)
    if answer is not None:
        return answer
    outage = ctx.gateway.outage()
    if outage is not None:  # said at once; the channel's cooldown is not used up
        return Text(outage.describe() + ".", ephemeral=True)
    wait = _take_turn(ctx, place)
    if wait is not None:
        return Text(
            f"A preview in this channel asked arXiv less than {_seconds(PREVIEW_COOLDOWN)} s "
            f"ago; try again in {wait} s.",
            ephemeral=True,
        )
    outcome = ctx.refresher.refresh(label)
    if outcome.rejected:
        return error(f"arXiv rejected the keyword “{label}”: {outcome.reason}. Try other words.")
    if not outcome.ok:
        return Text(
            f"arXiv could not be asked for “{label}” ({outcome.reason}); try again later.",
            ephemeral=True,
        )
    answer = _from_store(ctx, spec, label, fetched_today=False)
    assert answer is not None  # the refresh stored the keyword
    return answer


def _from_store(
    ctx: Context, spec: KeywordSpec, label: str, *, fetched_today: bool
) -> Reply | None:
    """The answer from what is stored, or None if the keyword is not stored (or, with
    `fetched_today`, was not fetched successfully today in TIMEZONE)."""
    with read_session(ctx.engine) as session:
        keyword = store.find_keyword(session, spec)
        if keyword is None or (fetched_today and not _fetched_on(keyword, ctx)):
            return None
        assert keyword.id is not None  # a stored keyword
        count = catalog.match_count(session, keyword.id)
        newest = catalog.newest_papers(session, [keyword.id], limit=SHOWN)
    if not newest:
        return Text(
            f"Nothing on arXiv matches “{label}” yet. Nothing was followed.", ephemeral=True
        )
    plural = "s" if count != 1 else ""
    return Papers(
        heading=f"Preview of “{label}” (not followed): {count} paper{plural} found. The newest:",
        groups=(PaperGroup(label="", papers=tuple(newest)),),
        ephemeral=True,
    )


def _fetched_on(keyword: Keyword, ctx: Context) -> bool:
    if keyword.last_success_at is None:
        return False
    zone = ZoneInfo(ctx.settings.timezone)
    return store.as_utc(keyword.last_success_at).astimezone(zone).date() == ctx.today()


def _take_turn(ctx: Context, place: Place) -> int | None:
    """Record this channel's preview request now, or the seconds it must wait."""
    now: datetime = ctx.clock()
    with write_session(ctx.engine) as session:
        channel = ctx.channel(session, place)
        last = channel.last_preview_request_at
        if last is not None and now - store.as_utc(last) < PREVIEW_COOLDOWN:
            return math.ceil((store.as_utc(last) + PREVIEW_COOLDOWN - now).total_seconds())
        channel.last_preview_request_at = now
        session.add(channel)
    return None


def _seconds(span: timedelta) -> int:
    return int(span.total_seconds())

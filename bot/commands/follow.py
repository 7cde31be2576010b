"""Following keywords in a channel: `add`, `remove`, `keywords`, `list` and `fetch`."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.arxiv.announced import harvest_line, last_harvest
from bot.arxiv.refresh import UNAVAILABLE, RefreshOutcome, describe
from bot.commands.context import TERMINAL, Context, Place
from bot.commands.grammar import BadInput
from bot.commands.posting import digest_text
from bot.replies import KeywordTable, PaperGroup, Papers, Reply, Text
from bot.storage import catalog, store
from bot.storage.db import read_session, write_session
from bot.text import quoted

NOTHING_FOLLOWED = "This channel follows no keywords yet. Start with `add <keyword>`."


def add(ctx: Context, place: Place, label: str) -> list[Reply]:
    """Follow `label` here; a keyword new to the deployment is fetched first. Papers it
    already has count as seen, so the next daily post carries only new ones."""
    with read_session(ctx.engine) as session:
        channel = ctx.existing_channel(session, place)
        following = channel and store.subscription_for(session, channel=channel, label=label)
        keyword = store.find_keyword(session, label)
        needs_fetch = keyword is None or keyword.last_success_at is None
    if following:
        with write_session(ctx.engine) as session:
            ctx.channel(session, place)  # reactivates a channel the bot had left
        # The label as first typed here, whatever spelling asked again.
        return [Text(f"This channel already follows “{following.label}”.", ephemeral=True)]
    outcome: RefreshOutcome | None = None
    if needs_fetch:
        outcome = ctx.refresher.refresh(label)
        if outcome.rejected:
            raise BadInput(
                f"arXiv rejected the keyword “{label}”: {outcome.reason}. Try other words.", "add"
            )
    with write_session(ctx.engine) as session:
        channel = ctx.channel(session, place)
        keyword = store.ensure_keyword(session, label)
        assert keyword.id is not None
        store.subscribe(session, channel=channel, keyword=keyword, label=label)
        if outcome is not None and not outcome.ok:
            # The failed fetch ran before the keyword had a row to record it on.
            status, reason = (
                ("skipped", UNAVAILABLE) if outcome.skipped else ("failed", outcome.reason)
            )
            store.record_fetch(session, label, status=status, error=reason)
        count = catalog.match_count(session, keyword.id)
        newest = catalog.newest_papers(session, [keyword.id], limit=3)
    if outcome is not None and not outcome.ok:
        note = (
            f"Now following “{label}”, but arXiv could not be asked ({outcome.reason}); "
            "it will be fetched at the next refresh."
        )
        return [Text(note, failed=True)]
    heading = f"Now following “{label}”: {count} paper{'s' if count != 1 else ''} found."
    if not newest:
        return [Text(heading)]
    return [Papers(heading=heading + " The newest:", groups=(PaperGroup("", tuple(newest)),))]


def remove(ctx: Context, place: Place, label: str) -> Reply:
    with write_session(ctx.engine) as session:
        channel = ctx.existing_channel(session, place)
        removed = store.unsubscribe(session, channel=channel, label=label) if channel else None
        if removed is None:
            raise BadInput(
                f"This channel does not follow “{label}”. `keywords` lists what it follows.",
                "remove",
            )
        shown = removed.label
    return Text(f"Stopped following “{shown}” here. Its papers stay stored.")


def keywords(ctx: Context, place: Place) -> Reply:
    with read_session(ctx.engine) as session:
        channel = ctx.existing_channel(session, place)
        schedule = digest_text(ctx, channel)
        if place.platform == TERMINAL.platform:
            schedule = "No daily post in the terminal; `papers digest now` shows what is new."
        if channel is None:
            return KeywordTable(rows=(), digest=schedule)
        return KeywordTable(
            rows=tuple(store.keyword_rows(session, channel)),
            digest=schedule,
            paused=channel.paused,
            harvest=harvest_line(last_harvest(session)),
        )


def newest(ctx: Context, place: Place, label: str | None, limit: int) -> Reply:
    """`list`: the newest papers of one keyword, or of all the channel's keywords."""
    with read_session(ctx.engine) as session:
        channel = ctx.existing_channel(session, place)
        if label is not None:
            subs = store.channel_subscriptions(session, channel) if channel else []
            named = store.followed(subs, label)
            if named is None:
                raise BadInput(f"This channel does not follow “{label}”.", "list")
            assert named[1].id is not None  # a stored keyword
            keyword_ids, name = [named[1].id], quoted(named[0].label)
        else:
            # Ids only: a channel of 500 keywords costs no 500 loaded rows here.
            keyword_ids = store.followed_keyword_ids(session, channel) if channel else []
            if not keyword_ids:
                return Text(NOTHING_FOLLOWED, ephemeral=True)
            name = "this channel's keywords"
        papers = catalog.newest_papers(session, keyword_ids, limit=limit)
    if not papers:
        return Text(f"No papers stored yet for {name}.")
    heading = f"Newest {len(papers)} paper{'s' if len(papers) != 1 else ''} for {name}"
    return Papers(heading=heading, groups=(PaperGroup(label="", papers=tuple(papers)),))


def fetch(ctx: Context, place: Place) -> Reply:
    """Refresh the channel's keywords now, at most once per FETCH_COOLDOWN_SECONDS."""
    outage = ctx.gateway.outage()
    if outage is not None:  # said at once, and the channel's cooldown is not used up
        return Text(outage.describe() + ".", ephemeral=True)
    now = ctx.clock()
    cooldown = timedelta(seconds=ctx.settings.fetch_cooldown_seconds)
    with write_session(ctx.engine) as session:
        channel = ctx.channel(session, place)
        last = channel.last_fetch_request_at
        last = store.as_utc(last) if last else None
        if last is not None and now - last < cooldown:
            minutes = int((now - last).total_seconds() // 60)
            wait = int((last + cooldown - now).total_seconds() // 60) + 1
            return Text(
                f"This channel's keywords were fetched {minutes} min ago; try again in {wait} min.",
                ephemeral=True,
            )
        channel.last_fetch_request_at = now
        session.add(channel)
        followed = [(s.label, k.phrase) for s, k in store.channel_subscriptions(session, channel)]
    if not followed:
        return Text(NOTHING_FOLLOWED, ephemeral=True)
    # Fetched by the deployment's phrase, shown under this channel's own label.
    fetched = ctx.refresher.refresh_many([phrase for _, phrase in followed])
    outcomes = [replace(o, label=label) for o, (label, _) in zip(fetched, followed, strict=True)]
    return Text("Fetched:\n" + "\n".join(describe(o) for o in outcomes))

"""Each platform's poster tells a thread that refuses a reply (`thread_gone`) from a channel
that refuses it, and a read-back skips a thread that is gone: the runner then sends the reply
into the channel (tests/test_shapes_unhappy.py), never loses the day over a thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.discord.bot import DiscordFrontEnd
from adapters.discord.poster import DiscordPoster
from adapters.slack.app import SlackFrontEnd
from adapters.slack.poster import ChannelPacer
from bot.commands.core import Core, Place
from bot.commands.grammar import Add, parse
from bot.posts.poster import PostFailed
from bot.replies import KeywordTable, PaperGroup, Papers
from tests.fakes.discord_server import DiscordStandIn
from tests.fakes.slack_server import SlackWebAPI
from tests.support.digest import add_paper, run_due_digests
from tests.support.slack import paper, papers_reply, slack_core

SLACK_WHERE = {"workspace": "T0TEST", "channel": "C0PAPERS"}


@pytest.fixture
def core(memory_core: Core) -> Core:
    return memory_core


# -- Slack ----------------------------------------------------------------------------------


@asynccontextmanager
async def slack_poster(core: Core, api: SlackWebAPI) -> AsyncIterator[SlackFrontEnd]:
    front = SlackFrontEnd(slack_core(core, slack_api_url=api.base_url))
    await front.start()
    front.poster.pacer = ChannelPacer(interval=0)
    try:
        yield front
    finally:
        await front.stop()


@pytest.mark.parametrize(
    "error", ["thread_not_found", "restricted_action_thread_locked", "thread_locked"]
)
async def test_slack_a_reply_to_a_deleted_parent_is_a_thread_refusal_not_a_retry(
    core: Core, error: str
) -> None:
    async with SlackWebAPI() as api, slack_poster(core, api) as front:
        parent, reply, *_ = front.poster.render(papers_reply(4, groups=2), claim=3, threads=True)
        ts = await front.poster.send(**SLACK_WHERE, part=parent)
        api.fail_next("chat.postMessage", error=error)
        with pytest.raises(PostFailed) as refused:
            await front.poster.send(**SLACK_WHERE, part=reply, thread=ts)
        into_channel = await front.poster.send(**SLACK_WHERE, part=reply)  # the runner's next
    assert refused.value.thread_gone and not refused.value.maybe_delivered
    assert error in refused.value.reason
    assert [m["ts"] for m in api.history["C0PAPERS"]] == [ts, into_channel]


async def test_slack_the_read_back_skips_a_thread_whose_parent_was_deleted(core: Core) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    async with SlackWebAPI() as api, slack_poster(core, api) as front:
        parent, reply, *_ = front.poster.render(papers_reply(4, groups=2), claim=3, threads=True)
        ts = await front.poster.send(**SLACK_WHERE, part=parent)
        api.history["C0PAPERS"].clear()  # the parent deleted (it had no replies yet)
        in_channel = await front.poster.send(**SLACK_WHERE, part=reply)  # the runner's fallback
        found = await front.poster.find(**SLACK_WHERE, claim=3, since=since, threads=[ts])
    assert found == {2: in_channel}  # no "thread_not_found" retried for the rest of the day


# -- Discord --------------------------------------------------------------------------------


def _post(count: int = 24) -> Papers:
    """Two keywords' papers: a parent and (at 10 embeds a message) three replies."""
    papers = tuple(paper(n) for n in range(count))
    half = count // 2
    groups = (PaperGroup("a", papers[:half]), PaperGroup("b", papers[half:]))
    return Papers(f"{count} new papers on arXiv", groups)


def _where(ds: DiscordStandIn) -> dict[str, str]:
    return {"workspace": ds.guild_id, "channel": ds.channel_id}


THREADS = r"^/channels/\d+/messages/\d+/threads$"


async def test_discord_no_create_threads_permission_is_a_thread_refusal_naming_it(
    ds: DiscordStandIn, fe: DiscordFrontEnd
) -> None:
    parent, reply, *_ = fe.poster.render(_post(), claim=4, threads=True)
    parent_id = await fe.poster.send(**_where(ds), part=parent)
    ds.fail_next("POST", THREADS, status=403, code=50013)  # the old invite's permissions
    with pytest.raises(PostFailed) as refused:
        await fe.poster.send(**_where(ds), part=reply, thread=parent_id)
    assert refused.value.thread_gone and "Create Public Threads" in refused.value.reason
    await fe.poster.send(**_where(ds), part=reply)  # the runner's next: into the channel
    assert len(ds.channel_messages(ds.channel_id)) == 2 and parent_id not in ds.threads


@pytest.mark.parametrize(
    ("status", "code"), [(400, 50083), (400, 160005), (403, 50001), (400, 160006), (404, 10003)]
)
async def test_discord_an_archived_locked_or_closed_thread_is_a_thread_refusal(
    ds: DiscordStandIn, fe: DiscordFrontEnd, status: int, code: int
) -> None:
    parent, first, second, *_ = fe.poster.render(_post(), claim=4, threads=True)
    parent_id = await fe.poster.send(**_where(ds), part=parent)
    await fe.poster.send(**_where(ds), part=first, thread=parent_id)
    ds.fail_next("POST", rf"^/channels/{parent_id}/messages$", status=status, code=code)
    with pytest.raises(PostFailed) as refused:
        await fe.poster.send(**_where(ds), part=second, thread=parent_id)
    assert refused.value.thread_gone and not refused.value.maybe_delivered


async def test_discord_the_read_back_skips_a_deleted_thread(
    ds: DiscordStandIn, fe: DiscordFrontEnd
) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    parent, first, *_ = fe.poster.render(_post(), claim=4, threads=True)
    parent_id = await fe.poster.send(**_where(ds), part=parent)
    await fe.poster.send(**_where(ds), part=first, thread=parent_id)
    del ds.threads[parent_id]  # a moderator deleted the thread
    restarted = DiscordPoster(fe.client, fe.logged_in)
    found = await restarted.find(**_where(ds), claim=4, since=since, threads=[parent_id])
    assert found == {1: parent_id}


async def test_discord_a_thread_started_but_answered_too_late_is_found_by_the_retry(
    ds: DiscordStandIn, fe: DiscordFrontEnd, monkeypatch: pytest.MonkeyPatch
) -> None:
    poster = DiscordPoster(fe.client, fe.logged_in, timeout_seconds=0.3)
    parent, reply, *_ = poster.render(_post(), claim=4, threads=True)
    parent_id = await poster.send(**_where(ds), part=parent)
    start = fe.client.http.start_thread_with_message

    async def late(*args: Any, **kwargs: Any) -> Any:
        answer = await start(*args, **kwargs)  # Discord started it ...
        await asyncio.sleep(1.0)  # ... and the answer came after our timeout
        return answer

    monkeypatch.setattr(fe.client.http, "start_thread_with_message", late)
    with pytest.raises(PostFailed) as lost:
        await poster.send(**_where(ds), part=reply, thread=parent_id)
    assert not (lost.value.permanent or lost.value.thread_gone or lost.value.maybe_delivered)
    monkeypatch.setattr(fe.client.http, "start_thread_with_message", start)
    await poster.send(**_where(ds), part=reply, thread=parent_id)  # the retry
    starts = ds.requests_to("POST", THREADS)
    assert [r.status for r in starts] == [200, 400]  # "already exists": used, not a loss
    assert len(ds.channel_messages(parent_id)) == 1
    assert len(ds.channel_messages(ds.channel_id)) == 1  # no second parent


async def test_discord_a_parent_whose_answer_was_lost_is_found_by_its_marker_and_threaded(
    ds: DiscordStandIn, fe: DiscordFrontEnd
) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    poster = DiscordPoster(fe.client, fe.logged_in, timeout_seconds=0.3)
    parent, reply, *_ = poster.render(_post(), claim=4, threads=True)
    ds.after_post = lambda channel, message: asyncio.sleep(1.0)  # taken, answered late
    with pytest.raises(PostFailed) as lost:
        await poster.send(**_where(ds), part=parent)
    assert lost.value.maybe_delivered
    ds.after_post = None
    restarted = DiscordPoster(fe.client, fe.logged_in)
    found = await restarted.find(**_where(ds), claim=4, since=since)
    [message] = ds.channel_messages(ds.channel_id)
    assert found == {1: message.message["id"]}
    await restarted.send(**_where(ds), part=reply, thread=found[1])
    assert len(ds.channel_messages(found[1])) == 1  # in the found parent's thread
    assert len(ds.channel_messages(ds.channel_id)) == 1


async def test_discord_end_to_end_no_thread_permission_delivers_every_paper_in_the_channel(
    ds: DiscordStandIn, fe: DiscordFrontEnd, core: Core
) -> None:
    """The runner with the real Discord poster: the old invite (no Create Public Threads)
    gets the parent and the papers in the channel, and `keywords` says why."""
    place = Place("discord", ds.guild_id, ds.channel_id)
    for label in ("Diffusion", "Retrieval"):
        core.execute(place, Add(label))
    core.execute(place, parse("digest 00:00 UTC"))
    core.execute(place, parse("digest threads on"))
    now = datetime.now(UTC)
    ids = [f"2401.{n:05d}" for n in range(1, 25)]
    for n, arxiv_id in enumerate(ids):
        add_paper(core, "Diffusion" if n % 2 else "Retrieval", arxiv_id, now - timedelta(hours=1))
    ds.fail_next("POST", THREADS, status=403, code=50013, count=10)
    outcomes = await run_due_digests(core, [fe.poster], now)
    assert [o.status for o in outcomes] == ["sent"]
    posted = ds.channel_messages(ds.channel_id)
    assert posted[0].content.startswith("24 new papers: Diffusion 12, Retrieval 12")
    assert len(posted) >= 4 and ds.threads == {}  # the parent, then the papers, in the channel
    shown = [e["url"].split("/abs/")[1][:-2] for m in posted for e in m.embeds]
    assert sorted(shown) == ids
    (table,) = core.execute(place, parse("keywords"))
    assert isinstance(table, KeywordTable) and "Create Public Threads" in table.digest


async def test_slack_end_to_end_a_parent_deleted_before_its_replies_loses_no_paper(
    core: Core,
) -> None:
    """The runner with the real Slack poster: the parent is deleted as soon as it is posted;
    the replies, refused by its thread, go into the channel; nothing is retried all day."""
    place = Place("slack", "T0TEST", "C0PAPERS")
    for label in ("Diffusion", "Retrieval"):
        core.execute(place, Add(label))
    core.execute(place, parse("digest 00:00 UTC"))
    core.execute(place, parse("digest threads on"))
    now = datetime.now(UTC)
    ids = [f"2401.{n:05d}" for n in range(1, 7)]
    for n, arxiv_id in enumerate(ids):
        add_paper(core, "Diffusion" if n % 2 else "Retrieval", arxiv_id, now - timedelta(hours=1))
    async with SlackWebAPI() as api, slack_poster(core, api) as front:

        def delete_the_parent(channel: str, message: dict[str, Any]) -> None:
            if not api.calls_to("chat.postMessage")[:-1]:  # the first message: the parent
                api.history[channel].remove(message)
                api.fail_next("chat.postMessage", error="thread_not_found")

        api.after_post = delete_the_parent
        outcomes = await run_due_digests(front.core, [front.poster], now)
        posts = api.accepted("chat.postMessage")
    assert [o.status for o in outcomes] == ["sent"], outcomes
    blocks = [b for m in api.history["C0PAPERS"] for b in m["blocks"]]
    shown = {b["accessory"]["value"] for b in blocks if "accessory" in b}
    assert sorted(shown) == ids
    assert all("thread_ts" not in m for m in api.history["C0PAPERS"])
    assert len(posts) == 1 + len(api.history["C0PAPERS"])  # the parent, then each reply once

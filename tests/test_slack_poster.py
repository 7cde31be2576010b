"""SlackPoster, the daily posts' way into Slack, against the Slack stand-in: parts as Block Kit
with message metadata, paced per channel, 429s retried after Retry-After, refusals as
PostFailed, and the read-back through conversations.history."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.slack.app import SlackFrontEnd
from adapters.slack.format import MAX_BLOCKS, MAX_HEADER, MAX_SECTION
from adapters.slack.poster import MARKER_EVENT, ChannelPacer
from bot.commands.core import Core
from bot.posts.poster import Part, PostFailed
from tests.fakes.slack_server import Call, SlackWebAPI
from tests.support.slack import (
    BOT_TOKEN,
    papers_reply,
    slack_core,
)

WHERE = {"workspace": "T0TEST", "channel": "C0PAPERS"}


@pytest.fixture
def core(memory_core: Core) -> Core:
    """The poster never reads the store in one-workspace mode: in-memory SQLite is enough
    (OAuth tokens from the database are tested on both backends in test_slack_oauth.py)."""
    return memory_core


@asynccontextmanager
async def poster_front(
    core: Core, api: SlackWebAPI, *, timeout: float = 30.0
) -> AsyncIterator[SlackFrontEnd]:
    front = SlackFrontEnd(slack_core(core, slack_api_url=api.base_url))
    front.api_timeout = timeout
    await front.start()
    try:
        yield front
    finally:
        await front.stop()


def _blocks(call: Call) -> list[dict[str, Any]]:
    return call.params["blocks"]


def one_part(text: str = "hello", claim: int = 1, number: int = 1) -> Part:
    metadata = {"event_type": MARKER_EVENT, "event_payload": {"claim": claim, "part": number}}
    return Part(number, {"text": text, "metadata": metadata})


async def test_a_post_renders_as_marked_parts_each_carrying_the_papers_it_shows(
    core: Core,
) -> None:
    reply = papers_reply(60, groups=3, comment="x" * 400)
    async with SlackWebAPI() as api, poster_front(core, api) as front:
        parts = front.poster.render(reply, claim=42)
    assert len(parts) >= 2 and [p.number for p in parts] == list(range(1, len(parts) + 1))
    for part in parts:
        assert part.body["metadata"] == {
            "event_type": MARKER_EVENT,
            "event_payload": {"claim": 42, "part": part.number},
        }
        shown = [b["accessory"]["value"] for b in part.body["blocks"] if "accessory" in b]
        assert list(part.papers) == shown  # delivered with the message that shows them
    assert [pid for p in parts for pid in p.papers] == [
        p.arxiv_id for g in reply.groups for p in g.papers
    ]


async def test_a_part_is_posted_as_block_kit_with_the_bot_token_and_its_ts_returned(
    core: Core,
) -> None:
    async with SlackWebAPI() as api, poster_front(core, api) as front:
        [part] = front.poster.render(papers_reply(3), claim=7)
        ts = await front.poster.send(**WHERE, part=part)
        [call] = api.accepted("chat.postMessage")

    assert ts == call.response["ts"]
    assert call.token == BOT_TOKEN
    assert call.params["channel"] == "C0PAPERS"
    assert call.params["text"] == "3 new papers on arXiv"
    assert call.params["unfurl_links"] is False
    assert call.params["metadata"]["event_payload"] == {"claim": 7, "part": 1}
    assert [b["type"] for b in _blocks(call)] == ["header", "section"] + ["section", "actions"] * 3


async def test_429_is_retried_after_retry_after_and_posted_once(core: Core) -> None:
    async with SlackWebAPI() as api, poster_front(core, api) as front:
        api.fail_next("chat.postMessage", status=429, retry_after=1)
        await front.poster.send(**WHERE, part=one_part())

    attempts = api.calls_to("chat.postMessage")
    assert [c.status for c in attempts] == [429, 200]
    assert len(api.accepted("chat.postMessage")) == 1
    assert attempts[1].at - attempts[0].at >= 1.0  # waited Retry-After


async def test_429_beyond_its_retries_is_transient_and_nothing_was_posted(core: Core) -> None:
    async with SlackWebAPI() as api, poster_front(core, api) as front:
        api.fail_next("chat.postMessage", status=429, retry_after=0, count=10)
        with pytest.raises(PostFailed) as failed:
            await front.poster.send(**WHERE, part=one_part())
    assert not failed.value.permanent and not failed.value.maybe_delivered


async def test_the_parts_of_a_post_are_paced_one_message_a_second(core: Core) -> None:
    async with SlackWebAPI() as api, poster_front(core, api) as front:
        api.enforce_rate_limit(per_channel_per_second=1)
        reply = papers_reply(60, groups=3, comment="x" * 400)
        for part in front.poster.render(reply, claim=1):
            await front.poster.send(**WHERE, part=part)

    posted = api.accepted("chat.postMessage")
    assert len(posted) >= 2
    assert api.rate_limited_count == 0  # paced by the poster, not by Slack's 429s
    for earlier, later in itertools.pairwise(posted):
        assert later.at - earlier.at >= 0.95
    for call in posted:
        blocks = _blocks(call)
        assert len(blocks) <= MAX_BLOCKS
        for block in blocks:
            if block["type"] == "actions":  # a paper's Save button
                continue
            limit = MAX_HEADER if block["type"] == "header" else MAX_SECTION
            assert len(block["text"]["text"]) <= limit


async def test_pacing_is_per_channel() -> None:
    pacer = ChannelPacer(interval=0.3)
    started = time.monotonic()
    await asyncio.gather(pacer.wait("T/C1"), pacer.wait("T/C2"), pacer.wait("T/C3"))
    assert time.monotonic() - started < 0.2  # other channels are not held up
    await pacer.wait("T/C1")
    assert time.monotonic() - started >= 0.28


@pytest.mark.parametrize(
    "error",
    [
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "restricted_action",
        "missing_scope",
    ],
)
async def test_refusals_that_need_a_person_are_permanent(core: Core, error: str) -> None:
    async with SlackWebAPI() as api, poster_front(core, api) as front:
        api.fail_next("chat.postMessage", error=error)
        with pytest.raises(PostFailed) as failed:
            await front.poster.send(**WHERE, part=one_part())

    assert failed.value.permanent is True
    assert failed.value.maybe_delivered is False
    assert error in failed.value.reason
    assert BOT_TOKEN not in failed.value.reason


async def test_a_server_error_may_have_posted_and_is_not_permanent(core: Core) -> None:
    async with SlackWebAPI() as api, poster_front(core, api) as front:
        api.fail_next("chat.postMessage", status=500)
        with pytest.raises(PostFailed) as failed:
            await front.poster.send(**WHERE, part=one_part())

    assert failed.value.permanent is False
    assert failed.value.maybe_delivered is True


async def test_a_timeout_after_sending_may_have_posted(core: Core) -> None:
    async with SlackWebAPI() as api, poster_front(core, api, timeout=0.3) as front:
        api.after_post = lambda channel, message: asyncio.sleep(1.0)  # taken, answered late
        with pytest.raises(PostFailed) as failed:
            await front.poster.send(**WHERE, part=one_part())
        assert len(api.history["C0PAPERS"]) == 1  # sent once, never retried

    assert failed.value.maybe_delivered is True
    assert failed.value.permanent is False


async def test_the_read_back_finds_the_claims_parts_by_their_metadata(core: Core) -> None:
    async with SlackWebAPI() as api, poster_front(core, api) as front:
        front.poster.pacer = ChannelPacer(interval=0)  # pacing is tested above
        await front.poster.send(**WHERE, part=one_part("before", claim=7, number=1))
        await asyncio.sleep(0.01)
        since = datetime.now(UTC)
        sent = {}
        for claim, number in ((7, 2), (8, 1), (7, 3)):
            part = one_part(f"{claim}.{number}", claim, number)
            sent[claim, number] = await front.poster.send(**WHERE, part=part)
        await front.poster.send(**WHERE, part=Part(1, {"text": "no metadata"}))
        found = await front.poster.find(**WHERE, claim=7, since=since)
        [history] = api.calls_to("conversations.history")

    assert found == {2: sent[7, 2], 3: sent[7, 3]}  # not claim 8's, not before `since`
    assert history.params["include_all_metadata"] in (True, "1", "true")


async def test_the_read_back_pages_through_a_busy_channel(core: Core) -> None:
    async with SlackWebAPI() as api, poster_front(core, api) as front:
        ts = await front.poster.send(**WHERE, part=one_part(claim=7, number=1))
        start = float(ts)
        api.history["C0PAPERS"] += [
            {"type": "message", "text": f"chatter {i}", "ts": f"{start + 1 + i:.6f}"}
            for i in range(450)
        ]
        since = datetime.fromtimestamp(start, UTC) - timedelta(seconds=1)
        found = await front.poster.find(**WHERE, claim=7, since=since)
        pages = len(api.calls_to("conversations.history"))
    assert found == {1: ts} and pages == 3


@pytest.mark.parametrize("error", ["missing_scope", "not_in_channel"])
async def test_a_refused_read_back_is_permanent(core: Core, error: str) -> None:
    async with SlackWebAPI() as api, poster_front(core, api) as front:
        api.fail_next("conversations.history", error=error)
        with pytest.raises(PostFailed) as failed:
            await front.poster.find(**WHERE, claim=1, since=datetime.now(UTC))
    assert failed.value.permanent and error in failed.value.reason


# -- threads (`digest threads on`) ----------------------------------------------------------


async def test_a_threaded_post_is_one_parent_and_its_replies_even_across_a_restart(
    core: Core,
) -> None:
    reply = papers_reply(30, groups=2)
    async with SlackWebAPI() as api:
        async with poster_front(core, api) as front:
            parent, *replies = front.poster.render(reply, claim=9, threads=True)
            assert parent.papers == () and parent.thread_of is None
            assert "30 new papers: Keyword 0 15, Keyword 1 15" in parent.body["text"]
            assert len(replies) >= 2 and {r.thread_of for r in replies} == {1}
            ts = await front.poster.send(**WHERE, part=parent)
        since = datetime.now(UTC) - timedelta(minutes=1)
        async with poster_front(core, api) as restarted:  # a new process, the parent stored
            restarted.poster.pacer = ChannelPacer(interval=0)
            assert await restarted.poster.find(**WHERE, claim=9, since=since, threads=[ts]) == {
                1: ts
            }
            sent = {1: ts}
            for part in replies:
                sent[part.number] = await restarted.poster.send(**WHERE, part=part, thread=ts)
            found = await restarted.poster.find(**WHERE, claim=9, since=since, threads=[ts])
            without_threads = await restarted.poster.find(**WHERE, claim=9, since=since)
        posts = api.accepted("chat.postMessage")

    assert found == sent  # every part once, the replies found in the parent's thread
    assert without_threads == {1: ts}  # conversations.history lists no replies
    assert [c.params.get("thread_ts") for c in posts] == [None] + [ts] * len(replies)
    assert [m["ts"] for m in api.history["C0PAPERS"] if m.get("thread_ts", m["ts"]) == m["ts"]] == [
        ts
    ]
    shown = [pid for part in replies for pid in part.papers]
    assert shown == [p.arxiv_id for g in reply.groups for p in g.papers]

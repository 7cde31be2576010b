"""SlackPoster, the daily posts' way into Slack: Block Kit within limits, paced per channel,
429s retried after Retry-After, refusals as PostFailed."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from adapters.slack.app import SlackFrontEnd
from adapters.slack.format import MAX_BLOCKS, MAX_HEADER, MAX_SECTION
from adapters.slack.poster import ChannelPacer
from bot.commands.core import Core
from bot.posts.poster import PostFailed
from bot.replies import File, Text
from tests.fakes.slack_server import Call, SlackWebAPI
from tests.test_slack_harness import (  # noqa: F401  (_no_proxy is an autouse fixture)
    BOT_TOKEN,
    _no_proxy,
    memory_core,
    papers_reply,
    slack_core,
)


@pytest.fixture
def core(memory_core: Core) -> Core:  # noqa: F811  (a fixture, imported from the harness)
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


async def test_poster_posts_block_kit_with_the_bot_token(core: Core) -> None:
    async with SlackWebAPI() as api, poster_front(core, api) as front:
        assert front.poster.platform == "slack"
        await front.poster.post(
            workspace_id="T0TEST", channel_id="C0PAPERS", replies=[papers_reply(3)]
        )
        [call] = api.accepted("chat.postMessage")

    assert call.token == BOT_TOKEN
    assert call.params["channel"] == "C0PAPERS"
    assert call.params["text"] == "3 new papers on arXiv"
    assert call.params["unfurl_links"] is False
    assert [b["type"] for b in _blocks(call)] == ["header", "section"] + ["section", "actions"] * 3


async def test_429_is_retried_after_retry_after_and_posted_once(core: Core) -> None:
    async with SlackWebAPI() as api, poster_front(core, api) as front:
        api.fail_next("chat.postMessage", status=429, retry_after=1)
        await front.poster.post(
            workspace_id="T0TEST", channel_id="C0PAPERS", replies=[papers_reply(2)]
        )

    attempts = api.calls_to("chat.postMessage")
    assert [c.status for c in attempts] == [429, 200]
    assert len(api.accepted("chat.postMessage")) == 1
    assert attempts[1].at - attempts[0].at >= 1.0  # waited Retry-After
    assert attempts[1].params["blocks"] == attempts[0].params["blocks"]


async def test_sixty_papers_are_split_and_paced_one_message_a_second(core: Core) -> None:
    async with SlackWebAPI() as api, poster_front(core, api) as front:
        api.enforce_rate_limit(per_channel_per_second=1)
        reply = papers_reply(60, groups=3, comment="x" * 400)
        await front.poster.post(workspace_id="T0TEST", channel_id="C0PAPERS", replies=[reply])

    posted = api.accepted("chat.postMessage")
    assert len(posted) >= 2
    assert api.rate_limited_count == 0  # paced by the poster, not by Slack's 429s
    for earlier, later in itertools.pairwise(posted):
        assert later.at - earlier.at >= 0.95
    values = []
    for call in posted:
        blocks = _blocks(call)
        assert len(blocks) <= MAX_BLOCKS
        for block in blocks:
            if block["type"] == "header":
                assert len(block["text"]["text"]) <= MAX_HEADER
            elif block["type"] == "section":
                assert len(block["text"]["text"]) <= MAX_SECTION
            if "accessory" in block:
                values.append(block["accessory"]["value"])
    assert values == [p.arxiv_id for g in reply.groups for p in g.papers]


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
        "missing_scope",
    ],
)
async def test_refusals_that_need_a_person_are_permanent(core: Core, error: str) -> None:
    async with SlackWebAPI() as api, poster_front(core, api) as front:
        api.fail_next("chat.postMessage", error=error)
        with pytest.raises(PostFailed) as failed:
            await front.poster.post(
                workspace_id="T0TEST", channel_id="C0GONE", replies=[Text("hello")]
            )

    assert failed.value.permanent is True
    assert failed.value.maybe_delivered is False
    assert error in failed.value.reason
    assert BOT_TOKEN not in failed.value.reason


async def test_a_server_error_is_not_permanent(core: Core) -> None:
    async with SlackWebAPI() as api, poster_front(core, api) as front:
        api.fail_next("chat.postMessage", status=500)
        with pytest.raises(PostFailed) as failed:
            await front.poster.post(
                workspace_id="T0TEST", channel_id="C0PAPERS", replies=[Text("hello")]
            )

    assert failed.value.permanent is False
    assert failed.value.maybe_delivered is False


async def test_a_timeout_after_sending_may_have_delivered(core: Core) -> None:
    async with SlackWebAPI() as api, poster_front(core, api, timeout=0.3) as front:
        api.fail_next("chat.postMessage", delay=1.0)
        with pytest.raises(PostFailed) as failed:
            await front.poster.post(
                workspace_id="T0TEST", channel_id="C0PAPERS", replies=[Text("hello")]
            )
        assert len(api.calls_to("chat.postMessage")) == 1  # sent once, never retried

    assert failed.value.maybe_delivered is True
    assert failed.value.permanent is False


async def test_a_failure_after_some_messages_went_out_may_have_delivered(core: Core) -> None:
    answers = iter([{"ok": True, "ts": "1.1"}, {"ok": False, "error": "is_archived"}])
    async with SlackWebAPI() as api, poster_front(core, api) as front:
        api.set_handler("chat.postMessage", lambda call: next(answers))
        with pytest.raises(PostFailed) as failed:
            await front.poster.post(
                workspace_id="T0TEST", channel_id="C0PAPERS", replies=[papers_reply(60)]
            )

    assert failed.value.maybe_delivered is True
    assert failed.value.permanent is True
    assert "after 1 of" in failed.value.reason


async def test_a_file_reply_is_uploaded(core: Core) -> None:
    readme = File(filename="README.md", content="# Daily Papers\n", comment="The README.")
    async with SlackWebAPI() as api, poster_front(core, api) as front:
        await front.poster.post(workspace_id="T0TEST", channel_id="C0PAPERS", replies=[readme])
        upload = await api.wait_for_upload()

    assert (upload.filename, upload.content, upload.channel_id) == (
        "README.md",
        b"# Daily Papers\n",
        "C0PAPERS",
    )
    assert upload.initial_comment == "The README."

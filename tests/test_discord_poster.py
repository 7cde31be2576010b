"""DiscordPoster: the daily posts into a channel, and Discord's refusals as `PostFailed`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import discord
import pytest
import pytest_asyncio

from adapters.discord.bot import DiscordFrontEnd
from adapters.discord.poster import DiscordPoster, failure
from bot.commands.core import Core
from bot.posts.poster import Poster, PostFailed
from bot.replies import PaperGroup, Papers, PaperView, Text
from tests.fakes.discord_server import DiscordStandIn
from tests.test_discord_bot import started


@pytest_asyncio.fixture
async def ds() -> AsyncIterator[DiscordStandIn]:
    async with DiscordStandIn(heartbeat_interval_ms=200) as standin:
        yield standin
        assert standin.server_errors == [] and standin.unknown_requests == []


@pytest_asyncio.fixture
async def fe(ds: DiscordStandIn, core: Core) -> AsyncIterator[DiscordFrontEnd]:
    front_end = await started(core, ds)
    yield front_end
    await front_end.stop()


def digest(count: int, abstract: str = "An abstract.") -> Papers:
    views = tuple(
        PaperView(
            arxiv_id=f"2401.{n:05d}",
            version=1,
            title=f"@everyone paper {n}",
            authors=("Ada Lovelace",),
            updated=datetime(2024, 1, 2, tzinfo=UTC),
            comment="",
            abstract=abstract,
        )
        for n in range(count)
    )
    return Papers(
        heading=f"{count} new papers on arXiv",
        groups=(
            PaperGroup("diffusion", views[: count // 2]),
            PaperGroup("retrieval", views[count // 2 :]),
        ),
    )


async def test_is_a_poster(fe: DiscordFrontEnd) -> None:
    poster: Poster = fe.poster
    assert isinstance(fe.poster, DiscordPoster) and poster.platform == "discord"


async def test_posts_embeds_within_limits(ds: DiscordStandIn, fe: DiscordFrontEnd) -> None:
    await fe.poster.post(
        workspace_id=ds.guild_id, channel_id=ds.channel_id, replies=[digest(14, "x" * 3000)]
    )
    posted = ds.channel_messages(ds.channel_id)
    assert posted[0].content == "14 new papers on arXiv"
    assert sum(len(p.embeds) for p in posted) == 14
    assert all(p.request.status == 200 and len(p.embeds) <= 10 for p in posted)
    assert all(p.allowed_mentions == {"parse": []} for p in posted)
    embeds = [e for p in posted for e in p.embeds]
    assert [e["author"]["name"] for e in embeds] == ["diffusion"] * 7 + ["retrieval"] * 7
    assert all("@\u200beveryone" in e["title"] for e in embeds)


async def test_unknown_channel_is_looked_up_and_refused(
    ds: DiscordStandIn, fe: DiscordFrontEnd
) -> None:
    with pytest.raises(PostFailed) as info:
        await fe.poster.post(
            workspace_id=ds.guild_id, channel_id="123456789012345678", replies=[Text("hi")]
        )
    assert info.value.permanent and not info.value.maybe_delivered
    assert ds.requests_to("GET", r"^/channels/123456789012345678$")[0].status == 404


async def test_forbidden_is_permanent(ds: DiscordStandIn, fe: DiscordFrontEnd) -> None:
    ds.fail_next("POST", r"^/channels/\d+/messages$", status=403)
    with pytest.raises(PostFailed) as info:
        await fe.poster.post(
            workspace_id=ds.guild_id, channel_id=ds.channel_id, replies=[digest(2)]
        )
    assert info.value.permanent and not info.value.maybe_delivered
    assert "403" in info.value.reason
    assert ds.channel_messages(ds.channel_id) == []


async def test_a_channel_of_another_guild_is_refused(
    ds: DiscordStandIn, fe: DiscordFrontEnd
) -> None:
    other = ds.add_guild(name="Other")
    with pytest.raises(PostFailed) as info:
        await fe.poster.post(
            workspace_id=other["id"], channel_id=ds.channel_id, replies=[digest(2)]
        )
    assert info.value.permanent
    assert ds.channel_messages(ds.channel_id) == []


async def test_rate_limit_is_waited_out(ds: DiscordStandIn, fe: DiscordFrontEnd) -> None:
    ds.fail_next("POST", r"^/channels/\d+/messages$", status=429, retry_after=0.2)
    await fe.poster.post(workspace_id=ds.guild_id, channel_id=ds.channel_id, replies=[digest(2)])
    attempts = ds.requests_to("POST", rf"^/channels/{ds.channel_id}/messages$")
    assert [r.status for r in attempts] == [429, 200]
    assert len(ds.channel_messages(ds.channel_id)) == 1


async def test_timeout_may_have_delivered(ds: DiscordStandIn, fe: DiscordFrontEnd) -> None:
    poster = DiscordPoster(fe.client, fe.logged_in, timeout_seconds=0.3)
    ds.fail_next("POST", r"^/channels/\d+/messages$", status=429, retry_after=5)
    with pytest.raises(PostFailed) as info:
        await poster.post(workspace_id=ds.guild_id, channel_id=ds.channel_id, replies=[digest(2)])
    assert info.value.maybe_delivered and not info.value.permanent


class _Response:
    """What discord.HTTPException reads from an aiohttp response."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.reason = "reason"


@pytest.mark.parametrize(
    ("exc", "permanent"),
    [
        (discord.Forbidden(_Response(403), {"message": "Missing Access", "code": 50001}), True),
        (discord.NotFound(_Response(404), {"message": "Unknown Channel", "code": 10003}), True),
        (discord.HTTPException(_Response(401), "401: Unauthorized"), True),
        (discord.DiscordServerError(_Response(502), "Bad Gateway"), False),
        (discord.HTTPException(_Response(400), "Invalid Form Body"), False),
    ],
)
def test_refusals_map_to_post_failed(exc: discord.HTTPException, permanent: bool) -> None:
    failed = failure(exc, sent_before=False)
    assert failed.permanent is permanent and not failed.maybe_delivered
    assert str(exc.status) in failed.reason
    # once part of a post went out, a retry could duplicate it
    assert failure(exc, sent_before=True).maybe_delivered

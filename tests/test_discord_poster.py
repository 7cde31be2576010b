"""DiscordPoster against the Discord stand-in: parts as embeds marked in the last footer and
sent with a nonce, Discord's refusals as `PostFailed`, and the read-back of channel messages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import discord
import pytest

from adapters.discord.bot import DiscordFrontEnd
from adapters.discord.format import EMBED_TOTAL, embed_size
from adapters.discord.poster import DiscordPoster, failure, read_marker
from bot.posts.poster import Poster, PostFailed
from bot.replies import PaperGroup, Papers, PaperView
from tests.fakes.discord_server import DiscordStandIn


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


def where(ds: DiscordStandIn) -> dict[str, str]:
    return {"workspace": ds.guild_id, "channel": ds.channel_id}


async def test_is_a_poster(fe: DiscordFrontEnd) -> None:
    poster: Poster = fe.poster
    assert isinstance(fe.poster, DiscordPoster) and poster.platform == "discord"


async def test_a_post_is_sent_as_marked_parts_within_the_limits(
    ds: DiscordStandIn, fe: DiscordFrontEnd
) -> None:
    reply = digest(14, "x" * 4000)  # every embed as long as a message allows
    parts = fe.poster.render(reply, claim=1234567)
    for part in parts:
        await fe.poster.send(**where(ds), part=part)
    posted = ds.channel_messages(ds.channel_id)
    assert len(posted) == len(parts) > 1
    assert posted[0].content == "14 new papers on arXiv"
    embeds = [e for p in posted for e in p.embeds]
    assert [e["author"]["name"] for e in embeds] == ["diffusion"] * 7 + ["retrieval"] * 7
    assert all("@\u200beveryone" in e["title"] for e in embeds)
    for number, (part, message) in enumerate(zip(parts, posted, strict=True), 1):
        assert message.request.status == 200 and message.allowed_mentions == {"parse": []}
        footer = message.embeds[-1]["footer"]["text"]
        assert read_marker(footer) == (1234567, number)
        assert message.body["nonce"] == f"p1234567.{number}" and message.body["enforce_nonce"]
        total = sum(embed_size(discord.Embed.from_dict(e)) for e in message.embeds)
        assert total <= EMBED_TOTAL
        assert list(part.papers) == [e["url"].split("/abs/")[1][:-2] for e in message.embeds]


async def test_the_same_part_sent_again_within_minutes_is_one_message(
    ds: DiscordStandIn, fe: DiscordFrontEnd
) -> None:
    [part] = fe.poster.render(digest(2), claim=5)
    first = await fe.poster.send(**where(ds), part=part)
    again = await fe.poster.send(**where(ds), part=part)
    assert first == again and len(ds.history[ds.channel_id]) == 1


async def test_the_read_back_finds_the_claims_parts_by_their_footer(
    ds: DiscordStandIn, fe: DiscordFrontEnd
) -> None:
    mine = fe.poster.render(digest(24), claim=7)
    await fe.poster.send(**where(ds), part=fe.poster.render(digest(2), claim=6)[0])
    await asyncio.sleep(0.01)
    since = datetime.now(UTC)
    sent = {p.number: await fe.poster.send(**where(ds), part=p) for p in mine[:2]}
    await fe.poster.send(**where(ds), part=fe.poster.render(digest(2), claim=8)[0])
    found = await fe.poster.find(**where(ds), claim=7, since=since)
    assert len(mine) > 2 and found == sent


async def test_unknown_channel_is_looked_up_and_refused(
    ds: DiscordStandIn, fe: DiscordFrontEnd
) -> None:
    [part] = fe.poster.render(digest(2), claim=1)
    with pytest.raises(PostFailed) as info:
        await fe.poster.send(workspace=ds.guild_id, channel="123456789012345678", part=part)
    assert info.value.permanent and not info.value.maybe_delivered
    assert ds.requests_to("GET", r"^/channels/123456789012345678$")[0].status == 404


@pytest.mark.parametrize(("status", "code"), [(403, 50001), (404, 10003), (400, 50083)])
async def test_refusals_that_need_a_person_are_permanent(
    ds: DiscordStandIn, fe: DiscordFrontEnd, status: int, code: int
) -> None:
    ds.fail_next("POST", r"^/channels/\d+/messages$", status=status, code=code)
    [part] = fe.poster.render(digest(2), claim=1)
    with pytest.raises(PostFailed) as info:
        await fe.poster.send(**where(ds), part=part)
    assert info.value.permanent and not info.value.maybe_delivered
    assert str(status) in info.value.reason
    assert ds.channel_messages(ds.channel_id) == []


async def test_a_refused_read_back_is_permanent(ds: DiscordStandIn, fe: DiscordFrontEnd) -> None:
    ds.fail_next("GET", r"^/channels/\d+/messages$", status=403, code=50001)
    with pytest.raises(PostFailed) as info:
        await fe.poster.find(**where(ds), claim=1, since=datetime.now(UTC))
    assert info.value.permanent


async def test_a_channel_of_another_guild_is_refused(
    ds: DiscordStandIn, fe: DiscordFrontEnd
) -> None:
    other = ds.add_guild(name="Other")
    [part] = fe.poster.render(digest(2), claim=1)
    with pytest.raises(PostFailed) as info:
        await fe.poster.send(workspace=other["id"], channel=ds.channel_id, part=part)
    assert info.value.permanent
    assert ds.channel_messages(ds.channel_id) == []


async def test_rate_limit_is_waited_out(ds: DiscordStandIn, fe: DiscordFrontEnd) -> None:
    ds.fail_next("POST", r"^/channels/\d+/messages$", status=429, retry_after=0.2)
    [part] = fe.poster.render(digest(2), claim=1)
    await fe.poster.send(**where(ds), part=part)
    attempts = ds.requests_to("POST", rf"^/channels/{ds.channel_id}/messages$")
    assert [r.status for r in attempts] == [429, 200]
    assert len(ds.channel_messages(ds.channel_id)) == 1


async def test_an_answer_that_never_comes_may_have_posted(
    ds: DiscordStandIn, fe: DiscordFrontEnd
) -> None:
    poster = DiscordPoster(fe.client, fe.logged_in, timeout_seconds=0.3)
    ds.after_post = lambda channel, message: asyncio.sleep(1.0)  # taken, answered late
    [part] = poster.render(digest(2), claim=1)
    with pytest.raises(PostFailed) as info:
        await poster.send(**where(ds), part=part)
    assert info.value.maybe_delivered and not info.value.permanent
    ds.after_post = None
    found = await poster.find(**where(ds), claim=1, since=datetime(2024, 1, 1, tzinfo=UTC))
    assert found == {1: ds.history[ds.channel_id][0]["id"]}


class _Response:
    """What discord.HTTPException reads from an aiohttp response."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.reason = "reason"


@pytest.mark.parametrize(
    ("exc", "permanent", "maybe_delivered"),
    [
        (discord.Forbidden(_Response(403), {"message": "Missing Access", "code": 50001}), 1, 0),
        (discord.NotFound(_Response(404), {"message": "Unknown Channel", "code": 10003}), 1, 0),
        (discord.HTTPException(_Response(400), {"message": "Archived", "code": 50083}), 1, 0),
        (discord.HTTPException(_Response(401), "401: Unauthorized"), 1, 0),
        (discord.DiscordServerError(_Response(502), "Bad Gateway"), 0, 1),
        (discord.HTTPException(_Response(400), "Invalid Form Body"), 0, 0),
    ],
)
def test_refusals_map_to_post_failed(
    exc: discord.HTTPException, permanent: int, maybe_delivered: int
) -> None:
    failed = failure(exc)
    assert (failed.permanent, failed.maybe_delivered) == (bool(permanent), bool(maybe_delivered))
    assert str(exc.status) in failed.reason
    assert not failure(exc, sending=False).maybe_delivered  # a lookup posts nothing


# -- threads (`digest threads on`) ----------------------------------------------------------


async def test_a_threaded_post_is_one_parent_and_its_replies_even_across_a_restart(
    ds: DiscordStandIn, fe: DiscordFrontEnd
) -> None:
    reply = digest(24)
    parent, *replies = fe.poster.render(reply, claim=9, threads=True)
    assert parent.papers == () and {r.thread_of for r in replies} == {1} and len(replies) >= 3
    since = datetime.now(UTC)
    parent_id = await fe.poster.send(**where(ds), part=parent)
    sent = {1: parent_id}
    sent[2] = await fe.poster.send(**where(ds), part=replies[0], thread=parent_id)

    restarted = DiscordPoster(fe.client, fe.logged_in)  # a new process: its thread unknown
    assert await restarted.find(**where(ds), claim=9, since=since, threads=[parent_id]) == sent
    for part in replies[1:]:
        sent[part.number] = await restarted.send(**where(ds), part=part, thread=parent_id)
    found = await restarted.find(**where(ds), claim=9, since=since, threads=[parent_id])

    assert found == sent  # every part once
    [message] = ds.channel_messages(ds.channel_id)  # one parent in the channel ...
    assert message.content.startswith("24 new papers: diffusion 12, retrieval 12")
    assert message.body["nonce"] == "p9.1"
    in_thread = ds.channel_messages(parent_id)  # ... the papers in its thread
    assert [m.message["id"] for m in in_thread] == [sent[n] for n in range(2, len(sent) + 1)]
    starts = ds.requests_to("POST", rf"^/channels/{ds.channel_id}/messages/{parent_id}/threads$")
    assert [r.status for r in starts] == [200, 400]  # the restart's start: "already exists"
    assert ds.threads[parent_id]["name"] == "24 new papers on arXiv"
    shown = [pid for part in replies for pid in part.papers]
    assert shown == [p.arxiv_id for g in reply.groups for p in g.papers]

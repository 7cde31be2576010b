"""SPEC section 8 for Discord, end to end against the stand-in (whose judge looks at every payload
for live links and unescaped echoes when each test ends): escaping, guild-only, the answer window,
follow-ups that fail, private answers without a public placeholder, deleted channels, and a
channel where the bot cannot post."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from adapters.command_service import CommandService
from adapters.discord import answers as discord_answers
from adapters.discord import interactions
from adapters.discord.bot import DiscordFrontEnd
from bot.commands.core import Core
from tests.fakes.arxiv_server import ArxivStandIn, hang, make_entry
from tests.fakes.discord_server import (
    EMBED_LINKS,
    EPHEMERAL,
    EVERYONE_PERMISSIONS,
    DiscordStandIn,
)
from tests.support.discord import (
    DEFERRED,
    MANAGER,
    MESSAGE,
    answers,
    channel_row,
    entries,
    follow,
    judge,
    live_links,
    rendered_texts,
    slow_core,
    started,
    subscriptions,
)

EVIL = "see [a](http://evil.example/1) and [b](http://evil.example/2) ||x||"
LABEL = "||spoiler|| **loud** [c](http://evil.example/3)"


async def test_masked_links_and_typed_labels_are_escaped_in_every_answer(
    ds: DiscordStandIn, fe: DiscordFrontEnd, core: Core, arxiv_api: ArxivStandIn
) -> None:
    # arXiv is asked for the label's searchable words (a term keeps letters, digits, - . + ')
    arxiv_api.add_entries(
        "spoiler loud c http evil.example 3", [make_entry(title=EVIL, summary=EVIL, comment=EVIL)]
    )
    shown = []
    for name, options in [
        ("add", {"keyword": LABEL}),
        ("list", {"limit": 3}),
        ("fetch", {}),
        ("remove", {"keyword": LABEL}),
    ]:
        sent = await ds.send_interaction(name, options, permissions=MANAGER)
        shown += await answers(ds, sent)

    texts = [text for p in shown for text in rendered_texts(p.data)]
    assert [link for text in texts for link in live_links(text)] == []
    assert shown[1].embeds[0]["title"].startswith("see \\[a](http://evil.example/1) and \\[b]")
    escaped = "“\\|\\|spoiler\\|\\| \\*\\*loud\\*\\* \\[c](http://evil.example/3)”"
    assert shown[0].content is not None and shown[0].content.startswith(f"Now following {escaped}")
    assert shown[2].content == f"Fetched:\n{escaped}: 1 papers, 0 new"
    assert shown[3].content == f"Stopped following {escaped} here. Its papers stay stored."
    assert judge(ds) == []


async def test_papers_is_offered_in_servers_only(ds: DiscordStandIn, fe: DiscordFrontEnd) -> None:
    (papers,) = ds.registered_commands(ds.guild_id)
    assert papers["dm_permission"] is False
    assert papers["contexts"] == [0]  # guild only: no bot DM, no private channel


async def test_a_private_answer_never_shows_a_public_placeholder(
    ds: DiscordStandIn, fe: DiscordFrontEnd, core: Core
) -> None:
    follow(core, ds, "diffusion")
    sent = await ds.send_interaction("add", {"keyword": "Diffusion"}, permissions=MANAGER)
    (answer,) = await answers(ds, sent)
    assert [c.type for c in ds.callbacks(sent)] == [MESSAGE]
    assert answer.flags & EPHEMERAL and "already follows" in (answer.content or "")
    assert ds.requests_to("DELETE", rf"/webhooks/\d+/{sent.token}/") == []


async def test_a_slow_private_answer_is_deferred_privately(
    ds: DiscordStandIn,
    fe: DiscordFrontEnd,
    arxiv_api: ArxivStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow_core(monkeypatch)  # preview asks arXiv: the deferral comes first
    arxiv_api.add_entries("diffusion", entries(2))
    sent = await ds.send_interaction("preview", {"keyword": "Diffusion"})
    (answer,) = await answers(ds, sent)
    (deferral,) = ds.callbacks(sent)
    assert deferral.type == DEFERRED and deferral.flags & EPHEMERAL
    assert answer.flags & EPHEMERAL
    assert ds.requests_to("DELETE", rf"/webhooks/\d+/{sent.token}/") == []


async def test_an_answer_past_the_interactions_window_goes_to_the_channel(
    ds: DiscordStandIn,
    fe: DiscordFrontEnd,
    core: Core,
    arxiv_api: ArxivStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow_core(monkeypatch)
    monkeypatch.setattr(interactions, "ANSWER_WINDOW", timedelta(seconds=0.2))
    arxiv_api.add_entries("diffusion", entries(2))
    follow(core, ds, "diffusion")
    arxiv_api.script([hang(0.5)])  # an arXiv that takes longer than the window
    sent = await ds.send_interaction("fetch", permissions=MANAGER)
    (late,) = await ds.wait_for(lambda: ds.channel_messages(ds.channel_id))

    assert [c.type for c in ds.callbacks(sent)] == [DEFERRED]
    assert ds.followups(sent) == []
    assert late.content == (
        f"<@{ds.user_id}>, the answer to your `/papers fetch` (too late for the command's "
        "reply):\nFetched:\n“diffusion”: 2 papers, 0 new"
    )
    assert late.allowed_mentions == {"parse": []}


async def test_a_failed_follow_up_is_retried(
    ds: DiscordStandIn,
    fe: DiscordFrontEnd,
    core: Core,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow_core(monkeypatch)
    monkeypatch.setattr(discord_answers, "RETRY_SECONDS", 0.0)
    follow(core, ds, "diffusion")
    ds.fail_next("POST", r"^/webhooks/\d+/[^/]+$", status=403, code=50001)
    sent = await ds.send_interaction("keywords")
    (followup,) = await answers(ds, sent)
    attempts = ds.requests_to("POST", rf"^/webhooks/\d+/{sent.token}$")
    assert [r.status for r in attempts] == [403, 200]
    assert followup.embeds[0]["description"].startswith("**diffusion**")
    assert ds.channel_messages(ds.channel_id) == []


async def test_a_follow_up_discord_keeps_refusing_goes_to_the_channel(
    ds: DiscordStandIn,
    fe: DiscordFrontEnd,
    core: Core,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow_core(monkeypatch)
    follow(core, ds, "diffusion")
    ds.fail_next("POST", r"^/webhooks/\d+/[^/]+$", status=404, code=10015, count=3)
    sent = await ds.send_interaction("keywords")
    (posted,) = await ds.wait_for(lambda: ds.channel_messages(ds.channel_id))
    assert len(ds.requests_to("POST", rf"^/webhooks/\d+/{sent.token}$")) == 1  # gone: no retry
    assert "Discord refused the command's reply" in (posted.content or "")
    assert posted.embeds[0]["description"].startswith("**diffusion**")


async def test_a_deleted_channel_stops_at_once(
    ds: DiscordStandIn, fe: DiscordFrontEnd, core: Core
) -> None:
    other = ds.add_text_channel(ds.guild_id, "other")
    follow(core, ds, "kept")
    follow(core, ds, "gone", channel_id=other["id"])
    await ds.send_dispatch("CHANNEL_CREATE", other)  # the bot's cache knows every channel
    await ds.send_dispatch("CHANNEL_DELETE", other)
    await ds.wait_for(lambda: not channel_row(core, ds, other["id"]).active)  # type: ignore[union-attr]
    assert channel_row(core, ds).active  # type: ignore[union-attr]
    assert core.followed_keywords() == ["kept"]


@pytest.mark.parametrize(
    ("granted", "missing"),
    [
        (EVERYONE_PERMISSIONS & ~EMBED_LINKS, "Embed Links"),
        (EVERYONE_PERMISSIONS & ~(1 << 11), "Send Messages"),
    ],
)
async def test_add_says_when_the_bot_cannot_post_in_the_channel(
    ds: DiscordStandIn,
    fe: DiscordFrontEnd,
    core: Core,
    arxiv_api: ArxivStandIn,
    granted: int,
    missing: str,
) -> None:
    sent = await ds.send_interaction(
        "add", {"keyword": "diffusion"}, permissions=MANAGER, app_permissions=granted
    )
    (refusal,) = await answers(ds, sent)
    assert refusal.flags & EPHEMERAL
    assert f"it lacks {missing} here" in (refusal.content or "")
    assert subscriptions(core) == [] and arxiv_api.requests == []


async def test_a_burst_of_adds_waiting_on_arxiv_leaves_the_default_executor_free(
    ds: DiscordStandIn, core: Core, arxiv_api: ArxivStandIn
) -> None:
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(2))  # what /healthz and the scheduler share
    service = CommandService(core, arxiv_threads=4)
    front_end = await started(core, ds, service=service)
    try:
        arxiv_api.always(hang(1.0))
        for i in range(4):
            await ds.send_interaction("add", {"keyword": f"topic {i}"}, permissions=MANAGER)
        await asyncio.sleep(0.2)  # every add is now waiting on arXiv
        answered = await asyncio.wait_for(loop.run_in_executor(None, lambda: "ok"), 0.5)
    finally:
        arxiv_api.normal()
        await front_end.stop()
        service.close()
    assert answered == "ok"

"""SPEC section 8 for Discord, interactions handed to the client directly (the direct fixture's
judge looks at every payload for live links and unescaped echoes when each test ends): escaping, guild-only, the answer window,
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
from bot.commands.core import Core
from tests.fakes.arxiv_server import ArxivStandIn, hang, make_entry
from tests.support.discord import (
    DEFERRED,
    MANAGER,
    MESSAGE,
    channel_row,
    entries,
    follow,
    judge,
    live_links,
    rendered_texts,
    slow_core,
    subscriptions,
)
from tests.support.discord_direct import (
    EMBED_LINKS,
    EPHEMERAL,
    EVERYONE,
    SEND,
    USER,
    Direct,
    front_end,
)

EVIL = "see [a](http://evil.example/1) and [b](http://evil.example/2) ||x||"
LABEL = "||spoiler|| **loud** [c](http://evil.example/3)"


async def test_masked_links_and_typed_labels_are_escaped_in_every_answer(
    direct: Direct, core: Core, arxiv_api: ArxivStandIn
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
        shown += direct.answers(await direct.command(name, options, permissions=MANAGER))
    texts = [text for p in shown for text in rendered_texts(p.data)]
    assert [link for text in texts for link in live_links(text)] == []
    assert shown[1].embeds[0]["title"].startswith("see \\[a](http://evil.example/1) and \\[b]")
    escaped = "“\\|\\|spoiler\\|\\| \\*\\*loud\\*\\* \\[c](http://evil.example/3)”"
    assert shown[0].content is not None and shown[0].content.startswith(f"Now following {escaped}")
    assert shown[2].content == f"Fetched:\n{escaped}: 1 papers, 0 new"
    assert shown[3].content == f"Stopped following {escaped} here. Its papers stay stored."
    assert judge(direct.recorder.sent, direct.typed) == []


async def test_papers_is_offered_in_servers_only(direct: Direct) -> None:
    papers = direct.fe.interactions.group.to_dict(direct.client.tree)  # what setup_hook syncs
    assert papers["dm_permission"] is False
    assert papers["contexts"] == [0]  # guild only: no bot DM, no private channel


async def test_a_private_answer_never_shows_a_public_placeholder(
    direct: Direct, core: Core
) -> None:
    follow(core, direct, "diffusion")
    sent = await direct.command("add", {"keyword": "Diffusion"}, permissions=MANAGER)
    (answer,) = direct.of(sent)
    assert answer.type == MESSAGE
    assert answer.flags & EPHEMERAL and "already follows" in (answer.content or "")


async def test_a_slow_private_answer_is_deferred_privately(
    direct: Direct, arxiv_api: ArxivStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_core(monkeypatch)  # preview asks arXiv: the deferral comes first
    arxiv_api.add_entries("diffusion", entries(2))
    deferral, answer = direct.of(await direct.command("preview", {"keyword": "Diffusion"}))
    assert deferral.type == DEFERRED and deferral.flags & EPHEMERAL
    assert answer.kind == "followup" and answer.flags & EPHEMERAL  # and nothing deleted


async def test_an_answer_past_the_interactions_window_goes_to_the_channel(
    direct: Direct, core: Core, arxiv_api: ArxivStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_core(monkeypatch)
    monkeypatch.setattr(interactions, "ANSWER_WINDOW", timedelta(seconds=0.2))
    arxiv_api.add_entries("diffusion", entries(2))
    follow(core, direct, "diffusion")
    arxiv_api.script([hang(0.5)])  # an arXiv that takes longer than the window
    sent = await direct.command("fetch", permissions=MANAGER)
    (late,) = direct.channel_messages()
    assert [c.type for c in direct.of(sent)] == [DEFERRED]  # no follow-up
    assert late.content == (
        f"<@{USER}>, the answer to your `/papers fetch` (too late for the command's "
        "reply):\nFetched:\n“diffusion”: 2 papers, 0 new"
    )
    assert late.data["allowed_mentions"] == {"parse": []}


async def test_a_failed_follow_up_is_retried(
    direct: Direct, core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_core(monkeypatch)
    monkeypatch.setattr(discord_answers, "RETRY_SECONDS", 0.0)
    follow(core, direct, "diffusion")
    direct.recorder.fail(r"^/webhooks/\d+/[^/]+$", status=403, code=50001)
    deferral, followup = direct.of(await direct.command("keywords"))  # the 403 one retried
    assert deferral.type == DEFERRED and followup.kind == "followup"
    assert direct.recorder.faults == []  # the refused attempt was made
    assert followup.embeds[0]["description"].startswith("**diffusion**")
    assert direct.channel_messages() == []


async def test_a_follow_up_discord_keeps_refusing_goes_to_the_channel(
    direct: Direct, core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_core(monkeypatch)
    follow(core, direct, "diffusion")
    direct.recorder.fail(r"^/webhooks/\d+/[^/]+$", status=404, code=10015, count=3)
    sent = await direct.command("keywords")
    (posted,) = direct.channel_messages()
    assert len(direct.recorder.faults) == 2  # gone: no retry
    assert [s.type for s in direct.of(sent)] == [DEFERRED]
    assert "Discord refused the command's reply" in (posted.content or "")
    assert posted.embeds[0]["description"].startswith("**diffusion**")


async def test_a_deleted_channel_stops_at_once(direct: Direct, core: Core) -> None:
    other = "810000000000000002"
    follow(core, direct, "kept")
    follow(core, direct, "gone", channel_id=other)
    guild = direct.guild(direct.guild_id, direct.channel_id, other)
    await direct.dispatch("GUILD_CREATE", guild)  # the bot's cache knows every channel
    await direct.dispatch("CHANNEL_DELETE", guild["channels"][1])
    assert not channel_row(core, direct, other).active  # type: ignore[union-attr]
    assert channel_row(core, direct).active  # type: ignore[union-attr]
    assert core.followed_keywords() == ["kept"]


@pytest.mark.parametrize(
    ("granted", "missing"),
    [
        (EVERYONE & ~EMBED_LINKS, "Embed Links"),
        (EVERYONE & ~SEND, "Send Messages"),
    ],
)
async def test_add_says_when_the_bot_cannot_post_in_the_channel(
    direct: Direct, core: Core, arxiv_api: ArxivStandIn, granted: int, missing: str
) -> None:
    sent = await direct.command(
        "add", {"keyword": "diffusion"}, permissions=MANAGER, app_permissions=granted
    )
    (refusal,) = direct.answers(sent)
    assert refusal.flags & EPHEMERAL
    assert f"it lacks {missing} here" in (refusal.content or "")
    assert subscriptions(core) == [] and arxiv_api.requests == []


async def test_a_burst_of_adds_waiting_on_arxiv_leaves_the_default_executor_free(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(2))  # what /healthz and the scheduler share
    service = CommandService(core, arxiv_threads=4)
    try:
        async with Direct(front_end(core, service)) as direct:
            arxiv_api.always(hang(1.0))
            for i in range(4):
                options = {"keyword": f"topic {i}"}
                await direct.command("add", options, permissions=MANAGER, wait=False)
            await asyncio.sleep(0.2)  # every add is now waiting on arXiv
            answered = await asyncio.wait_for(loop.run_in_executor(None, lambda: "ok"), 0.5)
            arxiv_api.normal()
    finally:
        arxiv_api.normal()
        service.close()
    assert answered == "ok"

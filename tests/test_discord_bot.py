"""The Discord front end end to end: the real discord.py client against the loopback stand-in."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio
from pydantic import SecretStr
from sqlmodel import select

from adapters import command_service
from adapters.command_service import CommandService
from adapters.discord.bot import DiscordFrontEnd
from adapters.discord.format import Attachment, Message
from adapters.discord.interactions import DM_REFUSAL, MANAGERS, within_upload_limit
from bot.commands.core import Core, Place
from bot.commands.grammar import Add
from bot.config import Settings
from bot.replies import Text
from bot.storage import store
from bot.storage.db import read_session
from bot.storage.models import Channel, Subscription, Workspace
from tests.fakes.arxiv_server import ArxivStandIn, hang, make_entry
from tests.fakes.discord_server import (
    EPHEMERAL,
    EVERYONE_PERMISSIONS,
    DiscordStandIn,
    Posted,
    SentInteraction,
)

MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
MANAGER = EVERYONE_PERMISSIONS | MANAGE_CHANNELS
MEMBER = EVERYONE_PERMISSIONS
DEFERRED, MESSAGE, AUTOCOMPLETE = 5, 4, 8
NOT_MANAGER = f"Only {MANAGERS} can do that here. Anyone can use `keywords`, `list`, `readme`, `preview`, `save`, `saved`, `unsave` and `help`."


async def _no_identify_wait(shard_id: int | None, *, initial: bool = False) -> None:
    return None  # discord.py sleeps 5 s before a re-IDENTIFY; pointless on loopback


def discord_settings(settings: Settings, ds: DiscordStandIn, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "discord_bot_token": SecretStr(ds.token),
        "discord_guild_id": int(ds.guild_id),
        "discord_api_url": ds.api_base,
        "discord_gateway_url": ds.gateway_url,
    }
    values.update(changes)
    return settings.model_copy(update=values)


async def started(
    core: Core, ds: DiscordStandIn, *, service: CommandService | None = None, **changes: Any
) -> DiscordFrontEnd:
    settings = discord_settings(core.settings, ds, **changes)
    core = Core(settings, core.engine, core.gateway, clock=core.clock)
    options = {"guild_ready_timeout": 0.05}
    front_end = DiscordFrontEnd(core, service=service, client_options=options)
    front_end.client.before_identify_hook = _no_identify_wait  # type: ignore[method-assign]
    await front_end.start()
    await ds.wait_until_ready(count=ds.ready_count + 1)
    await asyncio.wait_for(front_end.client.wait_until_ready(), 3)
    return front_end


@pytest_asyncio.fixture
async def ds() -> AsyncIterator[DiscordStandIn]:
    # patch=False: the front end reaches the stand-in through DISCORD_API_URL / _GATEWAY_URL
    async with DiscordStandIn(heartbeat_interval_ms=200, patch=False) as standin:
        yield standin
        assert standin.server_errors == []
        assert standin.unknown_requests == []
        assert standin.judge() == []  # no live link, no typed markdown in anything posted


@pytest_asyncio.fixture
async def fe(
    ds: DiscordStandIn, core: Core, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[DiscordFrontEnd]:
    caplog.set_level(logging.INFO)
    front_end = await started(core, ds)
    try:
        yield front_end
    finally:
        await front_end.stop()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    # everything that carried a message said "mention nobody"
    messages = [p for p in ds.posted if p.kind != "callback" or p.type == MESSAGE]
    assert all(p.allowed_mentions == {"parse": []} for p in messages)


# -- helpers ------------------------------------------------------------------


def entries(n: int, prefix: str = "2401", **fields: Any) -> list[bytes]:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    return [
        make_entry(
            arxiv_id=f"{prefix}.{i:05d}",
            title=fields.get("title", f"Paper {i}"),
            summary=fields.get("summary", f"Abstract {i}."),
            authors=("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"),
            updated=base + timedelta(days=i),
        )
        for i in range(1, n + 1)
    ]


async def answers(ds: DiscordStandIn, sent: SentInteraction, count: int = 1) -> list[Posted]:
    """The callback plus follow-ups once `count` messages with content have arrived."""

    def ready() -> list[Posted] | None:
        posted = [p for p in ds.callbacks(sent) + ds.followups(sent) if p.type != DEFERRED]
        return posted if len(posted) >= count else None

    return await ds.wait_for(ready)


def parts(ds: DiscordStandIn, sent: SentInteraction) -> list[Posted]:
    """Every message of the answer: the response (unless a deferral) and the follow-ups."""
    return [p for p in ds.callbacks(sent) + ds.followups(sent) if p.type != DEFERRED]


def subscriptions(core: Core) -> list[tuple[str, str, str]]:
    """(guild, channel, label) of every subscription."""
    with read_session(core.engine) as session:
        rows = session.exec(
            select(Workspace.external_id, Channel.external_id, Subscription.label)
            .join(Channel, Channel.workspace_id == Workspace.id)
            .join(Subscription, Subscription.channel_id == Channel.id)
        ).all()
    return sorted((str(g), str(c), str(label)) for g, c, label in rows)


def channel_row(core: Core, ds: DiscordStandIn, channel_id: str | None = None) -> Channel | None:
    with read_session(core.engine) as session:
        workspace = store.find_workspace(session, platform="discord", external_id=ds.guild_id)
        if workspace is None:
            return None
        return store.find_channel(
            session, workspace=workspace, external_id=channel_id or ds.channel_id
        )


def follow(
    core: Core,
    ds: DiscordStandIn,
    *labels: str,
    channel_id: str | None = None,
    guild_id: str | None = None,
) -> None:
    """Follow keywords through the core, as a manager of the channel would."""
    place = Place("discord", guild_id or ds.guild_id, channel_id or ds.channel_id)
    for label in labels:
        replies = core.execute(place, Add(label))
        assert not any(isinstance(r, Text) and r.error for r in replies), replies


def assert_nothing_public(ds: DiscordStandIn, sent: SentInteraction) -> None:
    """An ephemeral answer leaves no public message: either it was the first response, or the
    public "thinking" message of a deferral was deleted before the ephemeral follow-up (Discord
    makes the first follow-up after a deferral that very message, ephemeral flag or not)."""
    callbacks = ds.callbacks(sent)
    if callbacks[0].type == MESSAGE:
        assert callbacks[0].flags & EPHEMERAL
        return
    deletes = ds.requests_to("DELETE", rf"^/webhooks/\d+/{sent.token}/messages/@original$")
    (followup, *_) = ds.followups(sent)
    assert len(deletes) == 1 and deletes[0].time < followup.request.time
    assert ds.original_message(sent) is None


async def eventually(predicate: Callable[[], Any], timeout: float = 3.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := predicate()):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)
    return result


# -- connecting and registering -------------------------------------------------


async def test_connects_and_registers_the_group(ds: DiscordStandIn, fe: DiscordFrontEnd) -> None:
    assert ds.identify_count == 1
    identify = ds.ops(2)[0].d
    assert identify["token"] == ds.token
    assert identify["intents"] == 1  # guilds only: no privileged intents
    assert [d["t"] for d in ds.sent_dispatches[:2]] == ["READY", "GUILD_CREATE"]
    await ds.wait_for(lambda: ds.heartbeat_acks >= 1)
    # synced in setup_hook, i.e. during login, before the gateway was opened
    sync = ds.requests_to("PUT", r"/applications/\d+/guilds/\d+/commands$")
    assert len(sync) == 1 and sync[0].time < ds.gateway_ops[0].time

    (papers,) = ds.registered_commands(ds.guild_id)
    assert ds.registered_commands() == []  # DISCORD_GUILD_ID: nothing global
    assert papers["name"] == "papers" and papers["default_member_permissions"] is None
    subs = {o["name"]: o for o in papers["options"]}
    assert list(subs) == [
        *("add", "remove", "keywords", "list", "digest", "readme", "fetch", "preview"),
        *("save", "saved", "unsave", "feed", "help"),
    ]
    assert all(o["type"] == 1 and 1 <= len(o["description"]) <= 100 for o in subs.values())

    def options(name: str) -> list[tuple[Any, ...]]:
        return [
            (o["name"], o["type"], o["required"], o.get("autocomplete", False))
            for o in subs[name]["options"]
        ]

    assert options("add") == options("preview") == [("keyword", 3, True, True)]
    assert options("remove") == [("keyword", 3, True, True)]
    assert options("list") == [("keyword", 3, False, True), ("limit", 4, False, False)]
    limit = subs["list"]["options"][1]
    assert (limit["min_value"], limit["max_value"]) == (1, 20)
    assert options("digest") == [("time", 3, True, True), ("timezone", 3, False, True)]
    assert options("readme") == [("scope", 3, False, False)]
    assert subs["readme"]["options"][0]["choices"] == [
        {"name": "channel", "value": "channel"},
        {"name": "all", "value": "all"},
    ]
    assert options("keywords") == options("fetch") == options("help") == []


async def test_without_guild_id_registers_globally(ds: DiscordStandIn, core: Core) -> None:
    front_end = await started(core, ds, discord_guild_id=None)
    try:
        assert [c["name"] for c in ds.registered_commands()] == ["papers"]
        assert ds.registered_commands(ds.guild_id) == []
        sent = await ds.send_interaction("help")
        (callback,) = await answers(ds, sent)
        assert callback.flags & EPHEMERAL and "/papers add keyword" in str(callback.embeds)
    finally:
        await front_end.stop()


async def test_sharded_client(ds: DiscordStandIn, core: Core) -> None:
    front_end = await started(core, ds, discord_shard_ids=(0,), discord_shard_count=1)
    try:
        assert type(front_end.client).__name__ == "ShardedPapersClient"
        assert ds.ops(2)[0].d["shard"] == [0, 1]
        sent = await ds.send_interaction("help")
        await answers(ds, sent)
    finally:
        await front_end.stop()


# -- every subcommand ---------------------------------------------------------------


def slow_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command takes longer than the core's quick answer: it is deferred first."""
    monkeypatch.setattr(command_service, "QUICK_SECONDS", 0.0)


async def test_add_fetches_and_follows(
    ds: DiscordStandIn, fe: DiscordFrontEnd, core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("diffusion", entries(4))
    sent = await ds.send_interaction("add", {"keyword": "Diffusion"}, permissions=MANAGER)
    (answer,) = await answers(ds, sent)
    assert [c.type for c in ds.callbacks(sent)] == [MESSAGE]  # quick: answered at once
    assert_followed_diffusion(ds, core, answer)
    with read_session(core.engine) as session:
        workspace = store.find_workspace(session, platform="discord", external_id=ds.guild_id)
        assert workspace is not None and workspace.name == "Test Guild"


async def test_slow_add_is_deferred_publicly_then_followed_up(
    ds: DiscordStandIn,
    fe: DiscordFrontEnd,
    core: Core,
    arxiv_api: ArxivStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow_core(monkeypatch)
    arxiv_api.add_entries("diffusion", entries(4))
    sent = await ds.send_interaction("add", {"keyword": "Diffusion"}, permissions=MANAGER)
    (followup,) = await answers(ds, sent)
    assert [c.type for c in ds.callbacks(sent)] == [DEFERRED]
    assert ds.callbacks(sent)[0].flags == 0  # deferred publicly
    assert followup.kind == "followup"
    assert_followed_diffusion(ds, core, followup)
    assert ds.original_message(sent)["content"].startswith("Now following")  # type: ignore[index]


def assert_followed_diffusion(ds: DiscordStandIn, core: Core, answer: Posted) -> None:
    """The public answer to `add Diffusion` with four papers on arXiv, and the subscription."""
    assert answer.content == "Now following “Diffusion”: 4 papers found. The newest:"
    assert [e["title"] for e in answer.embeds] == ["Paper 4", "Paper 3", "Paper 2"]
    assert answer.embeds[0]["url"] == "https://arxiv.org/abs/2401.00004v1"
    fields = {f["name"]: f["value"] for f in answer.embeds[0]["fields"]}
    assert fields["Authors"] == "Ada Lovelace, Alan Turing, Grace Hopper et al."
    assert fields["Updated"] == "2024-01-05"
    assert answer.flags == 0
    assert subscriptions(core) == [(ds.guild_id, ds.channel_id, "Diffusion")]


async def test_remove_answers_at_once(ds: DiscordStandIn, fe: DiscordFrontEnd, core: Core) -> None:
    follow(core, ds, "diffusion", "retrieval")
    sent = await ds.send_interaction("remove", {"keyword": "DIFFUSION"}, permissions=MANAGER)
    (callback,) = await answers(ds, sent)
    assert callback.kind == "callback" and callback.type == MESSAGE and callback.flags == 0
    assert callback.content == "Stopped following “diffusion” here. Its papers stay stored."
    assert subscriptions(core) == [(ds.guild_id, ds.channel_id, "retrieval")]


async def test_keywords_table(
    ds: DiscordStandIn, fe: DiscordFrontEnd, core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("diffusion", entries(2))
    follow(core, ds, "diffusion")
    sent = await ds.send_interaction("keywords")  # anyone may
    (callback,) = await answers(ds, sent)
    assert callback.type == MESSAGE
    (embed,) = callback.embeds
    assert embed["description"] == "**diffusion**: 2 papers, newest 2024-01-03, last fetch ok"
    assert embed["footer"]["text"] == "Daily post at 09:00 UTC."


async def test_list_and_list_keyword_limit(
    ds: DiscordStandIn, fe: DiscordFrontEnd, core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("diffusion", entries(6))
    arxiv_api.add_entries("retrieval", entries(3, prefix="2402"))
    follow(core, ds, "diffusion", "retrieval")

    sent = await ds.send_interaction("list")
    (answer,) = await answers(ds, sent)
    assert [c.type for c in ds.callbacks(sent)] == [MESSAGE]
    assert answer.content == "Newest 5 papers for this channel's keywords"
    assert len(answer.embeds) == 5

    sent = await ds.send_interaction("list", {"keyword": "retrieval", "limit": 2})
    (followup,) = await answers(ds, sent)
    assert followup.content == "Newest 2 papers for “retrieval”"
    assert [e["url"] for e in followup.embeds] == [
        "https://arxiv.org/abs/2402.00003v1",
        "https://arxiv.org/abs/2402.00002v1",
    ]


async def test_list_twenty_long_papers_is_split(
    ds: DiscordStandIn, fe: DiscordFrontEnd, core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("diffusion", entries(20, summary="long abstract " * 200))
    follow(core, ds, "diffusion")
    sent = await ds.send_interaction("list", {"limit": 20})
    await answers(ds, sent)
    await ds.wait_for(lambda: sum(len(f.embeds) for f in parts(ds, sent)) == 20)
    answer = parts(ds, sent)
    assert len(answer) > 2 and all(len(f.embeds) <= 10 for f in answer)
    assert [f.request.status for f in answer] == [200] * len(answer)


async def test_digest_time_off_and_now(
    ds: DiscordStandIn, fe: DiscordFrontEnd, core: Core, arxiv_api: ArxivStandIn
) -> None:
    sent = await ds.send_interaction(
        "digest", {"time": "7:30", "timezone": "Europe/Berlin"}, permissions=MANAGER
    )
    (callback,) = await answers(ds, sent)
    assert callback.type == MESSAGE and callback.content == "Daily post at 07:30 Europe/Berlin."
    channel = channel_row(core, ds)
    assert channel is not None and (channel.digest_time, channel.digest_timezone) == (
        "07:30",
        "Europe/Berlin",
    )

    sent = await ds.send_interaction("digest", {"time": "off"}, permissions=MANAGER)
    (callback,) = await answers(ds, sent)
    assert callback.content == "Daily post: off."
    assert channel_row(core, ds).digest_enabled is False  # type: ignore[union-attr]

    sent = await ds.send_interaction("digest", {"time": "now"}, permissions=MANAGER)
    (nothing,) = await answers(ds, sent)
    assert nothing.content == "Nothing new since the last post."
    assert nothing.flags & EPHEMERAL  # for the one who asked, not the channel
    assert_nothing_public(ds, sent)


async def test_readme_uploads_a_file(
    ds: DiscordStandIn, fe: DiscordFrontEnd, core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("diffusion", entries(2))
    arxiv_api.add_entries("retrieval", entries(1, prefix="2402"))
    follow(core, ds, "diffusion")
    other = ds.add_text_channel(ds.guild_id, "other")["id"]
    follow(core, ds, "retrieval", channel_id=other)

    sent = await ds.send_interaction("readme")
    (followup,) = await answers(ds, sent)
    assert followup.content == "Daily Papers README of this channel."
    ((name, data),) = [(f.filename, f.text) for f in followup.files]
    assert name == "README.md" and data.startswith("# Daily Papers\n")
    assert "## diffusion\n" in data and "## retrieval" not in data

    sent = await ds.send_interaction("readme", {"scope": "all"})
    (followup,) = await answers(ds, sent)
    assert "## diffusion\n" in followup.files[0].text and "## retrieval\n" in followup.files[0].text


async def test_fetch(
    ds: DiscordStandIn, fe: DiscordFrontEnd, core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("diffusion", entries(2))
    follow(core, ds, "diffusion")
    arxiv_api.add_entries("diffusion", entries(3)[2:])
    sent = await ds.send_interaction("fetch", permissions=MANAGER)
    (fetched,) = await answers(ds, sent)
    assert fetched.content == "Fetched:\n“diffusion”: 3 papers, 1 new"
    assert not fetched.flags & EPHEMERAL

    # another manager, within the cooldown: rate-limited, said only to them
    again = await ds.send_interaction("fetch", user_id=ds.owner_id)
    (answer,) = await answers(ds, again)
    assert answer.flags & EPHEMERAL and "try again in" in answer.content
    assert_nothing_public(ds, again)


async def test_help(ds: DiscordStandIn, fe: DiscordFrontEnd) -> None:
    sent = await ds.send_interaction("help")
    (callback,) = await answers(ds, sent)
    assert callback.type == MESSAGE and callback.flags & EPHEMERAL
    description = callback.embeds[0]["description"]
    assert "`/papers list [keyword] [limit]`" in description
    assert (
        "`/papers digest time [timezone]`: when this channel gets its post (daily or weekly) and its shape (managers)"
        in (description)
    )
    assert callback.embeds[0]["footer"]["text"] == f"Managers here: {MANAGERS}."


# -- who may, and where ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("subcommand", "options"),
    [
        ("add", {"keyword": "diffusion"}),
        ("remove", {"keyword": "diffusion"}),
        ("digest", {"time": "08:00"}),
        ("digest", {"time": "now"}),
        ("fetch", {}),
    ],
)
async def test_members_without_permission_are_refused(
    ds: DiscordStandIn,
    fe: DiscordFrontEnd,
    core: Core,
    arxiv_api: ArxivStandIn,
    subcommand: str,
    options: dict[str, str],
) -> None:
    sent = await ds.send_interaction(subcommand, options, permissions=MEMBER)
    (callback,) = await answers(ds, sent)
    assert callback.type == MESSAGE and callback.flags & EPHEMERAL
    assert callback.content == NOT_MANAGER
    assert subscriptions(core) == [] and channel_row(core, ds) is None
    assert arxiv_api.requests == []


@pytest.mark.parametrize("permissions", [MANAGE_GUILD | MEMBER, MANAGE_CHANNELS | MEMBER, None])
async def test_managers_are_allowed(
    ds: DiscordStandIn, fe: DiscordFrontEnd, core: Core, permissions: int | None
) -> None:
    # None: the guild owner (every permission)
    user = ds.owner_id if permissions is None else None
    sent = await ds.send_interaction(
        "digest", {"time": "06:00"}, permissions=permissions, user_id=user
    )
    (callback,) = await answers(ds, sent)
    assert callback.content == "Daily post at 06:00 UTC."
    assert channel_row(core, ds).digest_time == "06:00"  # type: ignore[union-attr]


async def test_dm_is_refused(ds: DiscordStandIn, fe: DiscordFrontEnd, core: Core) -> None:
    sent = await ds.send_interaction("add", {"keyword": "diffusion"}, dm=True)
    (callback,) = await answers(ds, sent)
    assert callback.type == MESSAGE and callback.flags & EPHEMERAL
    assert callback.content == DM_REFUSAL
    completion = await ds.send_autocomplete("remove", {"keyword": ""}, focused="keyword", dm=True)
    (choices,) = await answers(ds, completion)
    assert choices.data["choices"] == []
    with read_session(core.engine) as session:
        assert session.exec(select(Workspace)).all() == []


# -- bad input --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subcommand", "options", "problem"),
    [
        ("add", {"keyword": ""}, "The keyword is empty.\nUsage: add <keyword>"),
        ("add", {"keyword": "   "}, "The keyword is empty."),
        ("add", {"keyword": "x" * 101}, "The keyword is 101 characters long; at most 100"),
        ("add", {"keyword": '"\\"“”'}, "Nothing is left of the keyword once quotes"),
        ("digest", {"time": "25:00"}, "“25:00” is not a time; write it as HH:MM"),
        ("digest", {"time": "noon"}, "“noon” is not a time"),
        (
            "digest",
            {"time": "08:00", "timezone": "Mars/Olympus"},
            "“Mars/Olympus” is not a timezone",
        ),
        ("list", {"limit": 0}, "The limit must be a number from 1 to 20, got “0”."),
        ("list", {"limit": 21}, "The limit must be a number from 1 to 20, got “21”."),
        ("list", {"keyword": "''"}, "Nothing is left of the keyword"),
        ("remove", {"keyword": "never followed"}, "This channel does not follow “never followed”."),
        ("list", {"keyword": "never followed"}, "This channel does not follow “never followed”."),
    ],
)
async def test_bad_input_is_ephemeral_and_changes_nothing(
    ds: DiscordStandIn,
    fe: DiscordFrontEnd,
    core: Core,
    arxiv_api: ArxivStandIn,
    subcommand: str,
    options: dict[str, Any],
    problem: str,
) -> None:
    sent = await ds.send_interaction(subcommand, options, permissions=MANAGER)
    (answer,) = await answers(ds, sent)
    assert answer.flags & EPHEMERAL
    assert problem in (answer.content or "")
    assert "Usage:" in (answer.content or "")
    assert_nothing_public(ds, sent)
    assert subscriptions(core) == [] and channel_row(core, ds) is None
    assert arxiv_api.requests == []


# -- what arXiv text cannot do ---------------------------------------------------------


async def test_hostile_title_and_huge_abstract(
    ds: DiscordStandIn, fe: DiscordFrontEnd, core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries(
        "mentions",
        entries(3, title="@everyone <@&123> **loud** " + "T" * 300, summary="A" * 10_000),
    )
    sent = await ds.send_interaction("add", {"keyword": "mentions"}, permissions=MANAGER)
    (followup,) = await answers(ds, sent)
    sent = await ds.send_interaction("list", {"limit": 3})
    await answers(ds, sent)
    await ds.wait_for(lambda: sum(len(f.embeds) for f in parts(ds, sent)) == 3)
    bodies = [*parts(ds, sent), followup]
    for body in bodies:
        assert body.allowed_mentions == {"parse": []}
        assert body.request.status == 200
        total = 0
        for embed in body.embeds:
            assert "@everyone" not in embed["title"] and "@\u200beveryone" in embed["title"]
            assert "\\*\\*loud\\*\\*" in embed["title"]
            assert len(embed["title"]) <= 256 and len(embed["description"]) <= 4096
            assert embed["description"].endswith("[more on arXiv](" + embed["url"] + ")")
            total += len(embed["title"]) + len(embed["description"])
            total += len(embed["footer"]["text"])
            total += sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
        assert total <= 6000 and len(body.embeds) <= 10


# -- autocomplete -----------------------------------------------------------------


async def test_remove_autocompletes_this_channels_keywords(
    ds: DiscordStandIn, fe: DiscordFrontEnd, core: Core
) -> None:
    follow(core, ds, "Diffusion Models", "video diffusion", "retrieval")
    other = ds.add_text_channel(ds.guild_id, "other")["id"]
    follow(core, ds, "diffusion elsewhere", channel_id=other)

    sent = await ds.send_autocomplete("remove", {"keyword": "diff"}, focused="keyword")
    (callback,) = await answers(ds, sent)
    assert callback.type == AUTOCOMPLETE
    assert [c["value"] for c in callback.data["choices"]] == ["Diffusion Models", "video diffusion"]

    sent = await ds.send_autocomplete("remove", {"keyword": ""}, focused="keyword")
    (callback,) = await answers(ds, sent)
    assert [c["name"] for c in callback.data["choices"]] == [
        "Diffusion Models",
        "video diffusion",
        "retrieval",
    ]

    sent = await ds.send_autocomplete("list", {"keyword": "RET"}, focused="keyword")
    (callback,) = await answers(ds, sent)
    assert [c["value"] for c in callback.data["choices"]] == ["retrieval"]

    sent = await ds.send_autocomplete(
        "digest", {"time": "08:00", "timezone": "berl"}, focused="timezone"
    )
    (callback,) = await answers(ds, sent)
    assert [c["value"] for c in callback.data["choices"]] == ["Europe/Berlin"]


async def test_digest_time_autocompletes_the_whole_digest_grammar_and_each_reaches_the_core(
    ds: DiscordStandIn, fe: DiscordFrontEnd, core: Core
) -> None:
    async def offered(typed: str) -> list[str]:
        sent = await ds.send_autocomplete("digest", {"time": typed}, focused="time")
        (callback,) = await answers(ds, sent)
        assert callback.type == AUTOCOMPLETE
        return [c["value"] for c in callback.data["choices"]]

    everything = await offered("")
    assert everything[:3] == ["09:00", "off", "now"] and "weekly mon 09:00" in everything
    assert {"threads on", "style compact", "max 50"} <= set(everything) and len(everything) <= 25
    assert await offered("thr") == ["thr", "threads on", "threads off"]
    assert (await offered("weekly"))[1:3] == ["weekly mon 09:00", "weekly tue 09:00"]
    assert await offered("compact") == ["compact", "style compact"]

    for typed, line in (
        ("weekly mon 09:00", "Weekly post on Monday at 09:00 UTC."),
        ("threads on", "Weekly post on Monday at 09:00 UTC · threads."),
        ("style compact", "Weekly post on Monday at 09:00 UTC · threads · compact."),
        ("max 50", "Weekly post on Monday at 09:00 UTC · threads · compact · max 50."),
    ):
        sent = await ds.send_interaction("digest", {"time": typed}, permissions=MANAGER)
        (callback,) = await answers(ds, sent)
        assert callback.type == MESSAGE and callback.content == line
    channel = channel_row(core, ds)
    assert channel is not None
    shape = (channel.digest_weekday, channel.digest_threads, channel.digest_style)
    assert (*shape, channel.digest_max) == (0, True, "compact", 50)

    sent = await ds.send_interaction("digest", {"time": "max 500"}, permissions=MANAGER)
    (refused,) = await answers(ds, sent)
    assert refused.flags & EPHEMERAL and "from 1 to 200" in refused.content
    assert channel_row(core, ds).digest_max == 50  # type: ignore[union-attr]


# -- the wire: rate limits, reconnects, leaving -----------------------------------------------


async def test_followup_429_is_retried_and_sent_once(
    ds: DiscordStandIn,
    fe: DiscordFrontEnd,
    core: Core,
    arxiv_api: ArxivStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow_core(monkeypatch)
    arxiv_api.add_entries("diffusion", entries(2))
    follow(core, ds, "diffusion")
    ds.fail_next("POST", r"^/webhooks/\d+/[^/]+$", status=429, retry_after=0.2)
    sent = await ds.send_interaction("list")
    await answers(ds, sent)
    attempts = ds.requests_to("POST", rf"^/webhooks/\d+/{sent.token}$")
    assert [r.status for r in attempts] == [429, 200]
    assert attempts[1].time - attempts[0].time >= 0.19
    await asyncio.sleep(0.3)
    (followup,) = ds.followups(sent)
    assert len(followup.embeds) == 2


@pytest.mark.parametrize("invalidate", [False, True])
async def test_reconnects_after_the_gateway_drops(
    ds: DiscordStandIn, fe: DiscordFrontEnd, core: Core, invalidate: bool
) -> None:
    await ds.drop_gateway(4000, invalidate=invalidate)
    await ds.wait_until_ready(count=2)
    # a dropped session is resumed; a forgotten one is refused (op 9) and identified anew
    assert ds.connection_count == (3 if invalidate else 2)
    assert (ds.resume_count, ds.identify_count) == ((1, 2) if invalidate else (1, 1))
    sent = await ds.send_interaction("digest", {"time": "10:15"}, permissions=MANAGER)
    (callback,) = await answers(ds, sent)
    assert callback.content == "Daily post at 10:15 UTC."
    assert channel_row(core, ds).digest_time == "10:15"  # type: ignore[union-attr]


async def test_guild_delete_deactivates_its_channels(
    ds: DiscordStandIn, fe: DiscordFrontEnd, core: Core
) -> None:
    follow(core, ds, "diffusion")
    other = ds.add_text_channel(ds.guild_id, "other")["id"]
    follow(core, ds, "retrieval", channel_id=other)
    elsewhere = ds.add_guild(name="Elsewhere")
    follow(
        core, ds, "diffusion", guild_id=elsewhere["id"], channel_id=elsewhere["channels"][0]["id"]
    )

    await ds.send_dispatch("GUILD_DELETE", {"id": ds.guild_id})

    def deactivated() -> bool:
        with read_session(core.engine) as session:
            rows = session.exec(select(Workspace.external_id, Workspace.active)).all()
            channels = session.exec(select(Channel.workspace_id, Channel.active)).all()
        return dict(rows) == {ds.guild_id: False, elsewhere["id"]: True} and sorted(
            a for _, a in channels
        ) == [False, False, True]

    await eventually(deactivated)
    assert core.followed_keywords() == ["diffusion"]  # only the other guild's keyword
    # the data stays
    assert len(subscriptions(core)) == 3


def test_a_file_over_the_upload_limit_becomes_an_ephemeral_note() -> None:
    interaction = SimpleNamespace(filesize_limit=10 * 1024 * 1024)
    big = Message(content="README", file=Attachment("README.md", b"x" * (11 * 1024 * 1024)))
    note = within_upload_limit(interaction, big)  # type: ignore[arg-type]
    assert note.file is None and note.ephemeral
    assert note.content is not None and "README.md is 11.5 MB" in note.content
    small = Message(file=Attachment("README.md", b"x"))
    assert within_upload_limit(interaction, small) is small  # type: ignore[arg-type]


async def test_stop_lets_commands_in_flight_answer(
    ds: DiscordStandIn,
    fe: DiscordFrontEnd,
    core: Core,
    arxiv_api: ArxivStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow_core(monkeypatch)
    arxiv_api.add_entries("diffusion", entries(3))
    follow(core, ds, "diffusion")
    arxiv_api.script([hang(0.5)])  # the fetch is still running when the process stops
    sent = await ds.send_interaction("fetch", permissions=MANAGER)
    await ds.wait_for(lambda: ds.callbacks(sent))
    await fe.stop()
    (followup,) = ds.followups(sent)
    assert followup.content == "Fetched:\n“diffusion”: 3 papers, 0 new"
    assert fe.client.is_closed()


async def test_papers_serve_runs_the_discord_front_end(
    ds: DiscordStandIn, core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    from adapters import serve

    settings = discord_settings(core.settings, ds, port=0)
    stop = asyncio.Event()
    task = asyncio.create_task(serve.run(Core(settings, core.engine, core.gateway), stop=stop))
    try:
        await ds.wait_until_ready()
        sent = await ds.send_interaction("digest", {"time": "08:15"}, permissions=MANAGER)
        (callback,) = await answers(ds, sent)
        assert callback.content == "Daily post at 08:15 UTC."
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert ds.connections[-1].closed  # stopped cleanly: the gateway socket was closed
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_quick_command_is_deferred_when_the_core_is_slow(
    ds: DiscordStandIn, fe: DiscordFrontEnd, core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    follow(core, ds, "diffusion")
    slow_core(monkeypatch)
    sent = await ds.send_interaction("keywords")
    (followup,) = await answers(ds, sent)
    assert [c.type for c in ds.callbacks(sent)] == [DEFERRED]
    assert followup.embeds[0]["description"].startswith("**diffusion**: 0 papers")


async def test_a_refused_deferral_sends_the_answer_to_the_channel(
    ds: DiscordStandIn,
    fe: DiscordFrontEnd,
    core: Core,
    arxiv_api: ArxivStandIn,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow_core(monkeypatch)
    arxiv_api.add_entries("diffusion", entries(2))
    # the interaction is gone: neither the deferral nor a response gets through
    ds.fail_next("POST", r"^/interactions/\d+/[^/]+/callback$", status=404, code=10062, count=2)
    sent = await ds.send_interaction("add", {"keyword": "diffusion"}, permissions=MANAGER)
    (posted,) = await ds.wait_for(lambda: ds.channel_messages(ds.channel_id))
    assert "could not defer /papers" in caplog.text
    assert posted.content is not None
    assert posted.content.startswith(f"<@{ds.user_id}>, the answer to your `/papers add`")
    assert "Now following “diffusion”: 2 papers found." in posted.content
    assert len(posted.embeds) == 2 and posted.allowed_mentions == {"parse": []}
    assert ds.followups(sent) == []
    assert subscriptions(core) == [(ds.guild_id, ds.channel_id, "diffusion")]

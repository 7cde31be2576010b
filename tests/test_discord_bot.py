"""The Discord front end's own part: typed options to the core's commands and who is a manager
(the handlers and permissions called directly); interactions handed to the real client directly
(tests/support/discord_direct.py): deferral, ephemeral or public answers, files, autocomplete,
DMs, guild events; and end to end with the real discord.py client against the loopback stand-in:
login, registration in setup_hook, one command answered, sharding, reconnects, stopping, `papers
serve`. What each command does is the core's (tests/test_commands.py)."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import discord
import pytest
from discord import app_commands
from sqlmodel import select

from adapters.discord.bot import DiscordFrontEnd
from adapters.discord.commands import papers_group
from adapters.discord.format import Attachment, Message
from adapters.discord.interactions import DM_REFUSAL, MANAGERS, is_manager, within_upload_limit
from bot.commands.core import Core
from bot.commands.grammar import (
    DEFAULT_LIMIT,
    Add,
    DigestAt,
    DigestNow,
    DigestOff,
    Fetch,
    Help,
    Keywords,
    List,
    Preview,
    Readme,
    Remove,
)
from bot.commands.saves_grammar import Feed, Saved
from bot.commands.usage import BadInput
from bot.storage import store
from bot.storage.db import read_session
from bot.storage.models import Channel, Workspace
from tests.fakes.arxiv_server import ArxivStandIn, hang
from tests.fakes.discord_server import DiscordStandIn
from tests.support.discord import (
    DEFERRED,
    MANAGE_CHANNELS,
    MANAGE_GUILD,
    MANAGER,
    MEMBER,
    MESSAGE,
    NOT_MANAGER,
    CommandRecorder,
    answers,
    channel_row,
    discord_settings,
    entries,
    follow,
    slow_core,
    started,
    subscriptions,
)
from tests.support.discord_direct import (
    EPHEMERAL,
    USER,
    Direct,
    Sent,
    assert_nothing_public,
)

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


async def test_add_fetches_and_follows(direct: Direct, core: Core, arxiv_api: ArxivStandIn) -> None:
    arxiv_api.add_entries("diffusion", entries(4))
    sent = await direct.command("add", {"keyword": "Diffusion"}, permissions=MANAGER)
    (answer,) = direct.answers(sent)
    assert [c.type for c in direct.of(sent)] == [MESSAGE]  # quick: answered at once
    assert_followed_diffusion(direct, core, answer)
    with read_session(core.engine) as session:
        workspace = store.find_workspace(session, platform="discord", external_id=direct.guild_id)
        assert workspace is not None and workspace.name == "Test Guild"


async def test_slow_add_is_deferred_publicly_then_followed_up(
    direct: Direct, core: Core, arxiv_api: ArxivStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_core(monkeypatch)
    arxiv_api.add_entries("diffusion", entries(4))
    sent = await direct.command("add", {"keyword": "Diffusion"}, permissions=MANAGER)
    deferral, followup = direct.of(sent)
    assert deferral.type == DEFERRED and deferral.flags == 0  # deferred publicly
    assert followup.kind == "followup"
    assert_followed_diffusion(direct, core, followup)


async def test_a_slow_public_command_answered_privately_removes_the_public_thinking_message(
    direct: Direct, core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deferred publicly (most answers are public), the answer turns out to be for the asker
    only: the channel's "thinking" message goes, and the answer follows ephemerally."""
    slow_core(monkeypatch)
    sent = await direct.command("digest", {"time": "now"}, permissions=MANAGER)
    deferral, removal, answer = direct.of(sent)
    assert deferral.type == DEFERRED and deferral.flags == 0
    assert removal.kind == "delete" and removal.path.endswith("/messages/@original")
    assert answer.kind == "followup" and answer.flags & EPHEMERAL
    assert answer.content == "Nothing new since the last post."


def assert_followed_diffusion(direct: Direct, core: Core, answer: Sent) -> None:
    """The public answer to `add Diffusion` with four papers on arXiv, and the subscription."""
    assert answer.content == "Now following “Diffusion”: 4 papers found. The newest:"
    assert [e["title"] for e in answer.embeds] == ["Paper 4", "Paper 3", "Paper 2"]
    assert answer.embeds[0]["url"] == "https://arxiv.org/abs/2401.00004v1"
    fields = {f["name"]: f["value"] for f in answer.embeds[0]["fields"]}
    assert fields["Authors"] == "Ada Lovelace, Alan Turing, Grace Hopper et al."
    assert fields["Updated"] == "2024-01-05"
    assert answer.flags == 0
    assert subscriptions(core) == [(direct.guild_id, direct.channel_id, "Diffusion")]


# -- options to commands: each subcommand's typed options become the core's command --------------


@pytest.mark.parametrize(
    ("subcommand", "options", "command"),
    [
        ("add", {"keyword": "  Diffusion "}, Add("Diffusion")),
        ("remove", {"keyword": "DIFFUSION"}, Remove("DIFFUSION")),
        ("keywords", {}, Keywords()),
        ("list", {}, List(None, DEFAULT_LIMIT)),
        ("list", {"keyword": "retrieval", "limit": 2}, List("retrieval", 2)),
        (
            "digest",
            {"time": "7:30", "timezone": "Europe/Berlin"},
            DigestAt("07:30", "Europe/Berlin"),
        ),
        ("digest", {"time": "off"}, DigestOff()),
        ("digest", {"time": "now"}, DigestNow()),
        ("readme", {}, Readme(whole_workspace=False)),
        ("readme", {"scope": "all"}, Readme(whole_workspace=True)),
        ("fetch", {}, Fetch()),
        ("preview", {"keyword": "diffusion"}, Preview("diffusion")),
        ("saved", {"format": "bibtex"}, Saved(bibtex=True)),
        ("feed", {"reset": True}, Feed(reset=True)),
        ("help", {}, Help()),
    ],
)
async def test_each_subcommand_builds_the_cores_command_from_its_options(
    subcommand: str, options: dict[str, Any], command: object
) -> None:
    recorder = CommandRecorder()
    handler = papers_group(recorder).get_command(subcommand)
    assert isinstance(handler, app_commands.Command)
    await handler.callback(SimpleNamespace(), **options)  # type: ignore[arg-type]
    assert recorder.commands == [command]


async def test_readme_uploads_a_file(direct: Direct, core: Core, arxiv_api: ArxivStandIn) -> None:
    arxiv_api.add_entries("diffusion", entries(2))
    arxiv_api.add_entries("retrieval", entries(1, prefix="2402"))
    follow(core, direct, "diffusion")
    follow(core, direct, "retrieval", channel_id="810000000000000002")

    (answer,) = direct.answers(await direct.command("readme"))
    assert answer.content == "Daily Papers README of this channel."
    ((name, data),) = answer.files
    assert name == "README.md" and data.startswith(b"# Daily Papers\n")
    assert b"## diffusion\n" in data and b"## retrieval" not in data

    (answer,) = direct.answers(await direct.command("readme", {"scope": "all"}))
    ((_, data),) = answer.files
    assert b"## diffusion\n" in data and b"## retrieval\n" in data


async def test_help(direct: Direct) -> None:
    (callback,) = direct.answers(await direct.command("help"))
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
    ("permissions", "manager"),
    [
        (discord.Permissions(MEMBER), False),
        (discord.Permissions(MEMBER | MANAGE_CHANNELS), True),
        (discord.Permissions(MEMBER | MANAGE_GUILD), True),
        (discord.Permissions.all(), True),  # the guild owner, or Administrator
    ],
)
def test_managers_are_who_may_manage_the_channel_or_server(
    permissions: discord.Permissions, manager: bool
) -> None:
    """Which commands need a manager is the core's (test_commands); who is one is Discord's."""
    assert is_manager(SimpleNamespace(permissions=permissions)) is manager  # type: ignore[arg-type]


async def test_a_member_is_refused_privately_and_a_manager_is_not(
    direct: Direct, core: Core
) -> None:
    sent = await direct.command("digest", {"time": "08:00"}, permissions=MEMBER)
    (callback,) = direct.answers(sent)
    assert callback.type == MESSAGE and callback.flags & EPHEMERAL
    assert callback.content == NOT_MANAGER
    assert subscriptions(core) == [] and channel_row(core, direct) is None
    owner = discord.Permissions.all().value
    sent = await direct.command("digest", {"time": "06:00"}, permissions=owner)
    (callback,) = direct.answers(sent)
    assert callback.content == "Daily post at 06:00 UTC."
    assert channel_row(core, direct).digest_time == "06:00"  # type: ignore[union-attr]


async def test_dm_is_refused(direct: Direct, core: Core) -> None:
    sent = await direct.command("add", {"keyword": "diffusion"}, dm=True)
    (callback,) = direct.answers(sent)
    assert callback.type == MESSAGE and callback.flags & EPHEMERAL
    assert callback.content == DM_REFUSAL
    assert await direct.autocomplete("remove", {"keyword": ""}, "keyword", dm=True) == []
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
    ],
)
async def test_bad_options_are_refused_with_the_usage(
    subcommand: str, options: dict[str, Any], problem: str
) -> None:
    handler = papers_group(CommandRecorder()).get_command(subcommand)
    assert isinstance(handler, app_commands.Command)
    with pytest.raises(BadInput) as refused:
        await handler.callback(SimpleNamespace(), **options)  # type: ignore[arg-type]
    assert problem in str(refused.value) and "Usage:" in str(refused.value)


@pytest.mark.parametrize(
    ("subcommand", "options", "problem"),
    [
        ("add", {"keyword": "   "}, "The keyword is empty."),  # refused by the handler
        ("remove", {"keyword": "never followed"}, "This channel does not follow “never followed”."),
    ],
)
async def test_bad_input_is_ephemeral_and_changes_nothing(
    direct: Direct,
    core: Core,
    arxiv_api: ArxivStandIn,
    subcommand: str,
    options: dict[str, Any],
    problem: str,
) -> None:
    sent = await direct.command(subcommand, options, permissions=MANAGER)
    (answer,) = direct.answers(sent)
    assert answer.flags & EPHEMERAL
    assert problem in (answer.content or "")
    assert "Usage:" in (answer.content or "")
    assert_nothing_public(direct, sent)
    assert subscriptions(core) == [] and channel_row(core, direct) is None
    assert arxiv_api.requests == []


# -- what arXiv text cannot do ---------------------------------------------------------


async def test_hostile_title_and_huge_abstract(
    direct: Direct, core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries(
        "mentions",
        entries(3, title="@everyone <@&123> **loud** " + "T" * 300, summary="A" * 10_000),
    )
    sent = await direct.command("add", {"keyword": "mentions"}, permissions=MANAGER)
    added = direct.answers(sent)
    listed = direct.answers(await direct.command("list", {"limit": 3}))
    assert sum(len(body.embeds) for body in listed) == 3
    for body in [*added, *listed]:
        assert body.data["allowed_mentions"] == {"parse": []}
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


async def test_remove_autocompletes_this_channels_keywords(direct: Direct, core: Core) -> None:
    follow(core, direct, "Diffusion Models", "video diffusion", "retrieval")
    follow(core, direct, "diffusion elsewhere", channel_id="810000000000000002")

    async def offered(subcommand: str, options: dict[str, str], focused: str) -> list[str]:
        choices = await direct.autocomplete(subcommand, options, focused)
        assert all(c["name"] == c["value"] for c in choices)
        return [c["value"] for c in choices]

    assert await offered("remove", {"keyword": "diff"}, "keyword") == [
        "Diffusion Models",
        "video diffusion",
    ]
    assert await offered("remove", {"keyword": ""}, "keyword") == [
        "Diffusion Models",
        "video diffusion",
        "retrieval",
    ]
    assert await offered("list", {"keyword": "RET"}, "keyword") == ["retrieval"]
    timezone = {"time": "08:00", "timezone": "berl"}
    assert await offered("digest", timezone, "timezone") == ["Europe/Berlin"]


async def test_digest_time_autocompletes_the_whole_digest_grammar_and_each_reaches_the_core(
    direct: Direct, core: Core
) -> None:
    async def offered(typed: str) -> list[str]:
        choices = await direct.autocomplete("digest", {"time": typed}, "time")
        assert len(choices) <= 25 and all(1 <= len(c["name"]) <= 100 for c in choices)
        return [c["value"] for c in choices]

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
        sent = await direct.command("digest", {"time": typed}, permissions=MANAGER)
        (callback,) = direct.answers(sent)
        assert callback.type == MESSAGE and callback.content == line
    channel = channel_row(core, direct)
    assert channel is not None
    shape = (channel.digest_weekday, channel.digest_threads, channel.digest_style)
    assert (*shape, channel.digest_max) == (0, True, "compact", 50)

    sent = await direct.command("digest", {"time": "max 500"}, permissions=MANAGER)
    (refused,) = direct.answers(sent)
    assert refused.flags & EPHEMERAL and "from 1 to 200" in (refused.content or "")
    assert channel_row(core, direct).digest_max == 50  # type: ignore[union-attr]


# -- the wire: rate limits, reconnects, leaving -----------------------------------------------


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


async def test_guild_delete_deactivates_its_channels(direct: Direct, core: Core) -> None:
    guild, other, elsewhere = direct.guild_id, "810000000000000002", "800000000000000009"
    follow(core, direct, "diffusion")
    follow(core, direct, "retrieval", channel_id=other)
    follow(core, direct, "diffusion", guild_id=elsewhere, channel_id="810000000000000009")
    await direct.dispatch("GUILD_CREATE", direct.guild(guild, direct.channel_id, other))

    await direct.dispatch("GUILD_DELETE", {"id": guild})

    with read_session(core.engine) as session:
        rows = session.exec(select(Workspace.external_id, Workspace.active)).all()
        channels = session.exec(select(Channel.workspace_id, Channel.active)).all()
    assert dict(rows) == {guild: False, elsewhere: True}
    assert sorted(a for _, a in channels) == [False, False, True]
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
    direct: Direct, core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    follow(core, direct, "diffusion")
    slow_core(monkeypatch)
    deferral, followup = direct.of(await direct.command("keywords"))
    assert deferral.type == DEFERRED and followup.kind == "followup"
    assert followup.embeds[0]["description"].startswith("**diffusion**: 0 papers")


async def test_a_refused_deferral_sends_the_answer_to_the_channel(
    direct: Direct,
    core: Core,
    arxiv_api: ArxivStandIn,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow_core(monkeypatch)
    arxiv_api.add_entries("diffusion", entries(2))
    # the interaction is gone: neither the deferral nor a response gets through
    direct.recorder.fail(r"^/interactions/\d+/[^/]+/callback$", status=404, code=10062, count=2)
    sent = await direct.command("add", {"keyword": "diffusion"}, permissions=MANAGER)
    (posted,) = direct.channel_messages()
    assert "could not defer /papers" in caplog.text
    assert posted.content is not None
    assert posted.content.startswith(f"<@{USER}>, the answer to your `/papers add`")
    assert "Now following “diffusion”: 2 papers found." in posted.content
    assert len(posted.embeds) == 2 and posted.data["allowed_mentions"] == {"parse": []}
    assert direct.of(sent) == []
    assert subscriptions(core) == [(direct.guild_id, direct.channel_id, "diffusion")]

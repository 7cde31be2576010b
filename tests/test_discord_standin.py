"""The Discord stand-in drives the real discord.py client end to end (no mocks, loopback)."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator

import discord
import pytest
import pytest_asyncio
from discord import app_commands

from tests.fakes.discord_server import DiscordStandIn

EXPORT_BYTES = b"diffusion\nvirtual try-on\n"


class PapersClient(discord.Client):
    """A minimal bot: /papers add|list|export|remove synced to one guild in setup_hook."""

    def __init__(self, guild_id: int) -> None:
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.1)
        self.guild_id = guild_id
        self.tree = app_commands.CommandTree(self)
        self.synced: list[app_commands.AppCommand] = []
        self.seen_errors: list[BaseException] = []
        self.responses: list[discord.InteractionCallbackResponse] = []
        self.edited: list[discord.InteractionMessage] = []
        papers = app_commands.Group(name="papers", description="Follow arXiv keywords")

        @papers.command(name="add", description="Follow a keyword")
        @app_commands.describe(keyword="Keyword or phrase")
        async def add(interaction: discord.Interaction, keyword: str) -> None:
            await interaction.response.defer(thinking=True)
            await interaction.followup.send(f"Now following **{keyword}**")

        @papers.command(name="list", description="List followed keywords")
        async def list_(interaction: discord.Interaction) -> None:
            response = await interaction.response.send_message(
                "You follow: @everyone diffusion",
                ephemeral=True,
                allowed_mentions=discord.AllowedMentions.none(),
            )
            self.responses.append(response)

        @papers.command(name="count", description="Count followed keywords")
        async def count(interaction: discord.Interaction) -> None:
            await interaction.response.defer(ephemeral=True)
            message = await interaction.edit_original_response(content="You follow 2 keywords")
            self.edited.append(message)

        @papers.command(name="export", description="Export keywords as a file")
        async def export(interaction: discord.Interaction) -> None:
            await interaction.response.defer()
            await interaction.followup.send(
                "Your keywords", file=discord.File(io.BytesIO(EXPORT_BYTES), "keywords.txt")
            )

        @papers.command(name="remove", description="Stop following a keyword")
        async def remove(interaction: discord.Interaction, keyword: str) -> None:
            await interaction.response.send_message(f"Removed {keyword}", ephemeral=True)

        @remove.autocomplete("keyword")
        async def remove_complete(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            known = ["diffusion", "diffusion models", "virtual try-on"]
            return [app_commands.Choice(name=k, value=k) for k in known if k.startswith(current)]

        self.tree.add_command(papers, guild=discord.Object(guild_id))

        @self.tree.error
        async def on_tree_error(interaction: discord.Interaction, error: Exception) -> None:
            self.seen_errors.append(error)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py sleeps 5 s before every non-initial IDENTIFY; not needed on loopback
        return None

    async def setup_hook(self) -> None:
        self.synced = await self.tree.sync(guild=discord.Object(self.guild_id))


@pytest_asyncio.fixture
async def ds() -> AsyncIterator[DiscordStandIn]:
    async with DiscordStandIn(heartbeat_interval_ms=200) as standin:
        yield standin
        assert standin.server_errors == []
        assert standin.unknown_requests == []


@pytest_asyncio.fixture
async def bot(ds: DiscordStandIn, caplog: pytest.LogCaptureFixture) -> AsyncIterator[PapersClient]:
    caplog.set_level(logging.WARNING, logger="discord")
    client = PapersClient(int(ds.guild_id))
    await client.login(ds.token)
    task = asyncio.create_task(client.connect())
    try:
        await ds.wait_until_ready()
        await asyncio.wait_for(client.wait_until_ready(), 3)
        await asyncio.sleep(0)
        assert not task.done(), "discord.py's gateway loop died (payload rejected?)"
        yield client
    finally:
        await client.close()
        await asyncio.wait_for(task, 3)
    assert client.seen_errors == []
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []  # e.g. "Ignoring exception in ..." from a payload discord.py rejected


@pytest.mark.asyncio
async def test_connects_and_syncs_papers_group(ds: DiscordStandIn, bot: PapersClient) -> None:
    ops = [g.op for g in ds.gateway_ops]
    assert 2 in ops and ops.count(2) == 1  # one IDENTIFY
    identify = ds.ops(2)[0].d
    assert identify["token"] == ds.token
    assert identify["intents"] == discord.Intents.default().value
    assert ds.connections[0].query["encoding"] == "json"
    assert ds.connections[0].query["v"] == "10"
    assert [d["t"] for d in ds.sent_dispatches[:2]] == ["READY", "GUILD_CREATE"]
    await ds.wait_for(lambda: ds.heartbeat_acks >= 1)
    assert ds.heartbeat_count >= 1

    assert bot.user is not None and str(bot.user.id) == ds.application_id
    assert bot.application_id == int(ds.application_id)
    guild = bot.get_guild(int(ds.guild_id))
    assert guild is not None and guild.name == "Test Guild"
    assert guild.get_channel(int(ds.channel_id)).name == "general"

    commands = ds.registered_commands(ds.guild_id)
    assert [c["name"] for c in commands] == ["papers"]
    papers = commands[0]
    assert papers["guild_id"] == ds.guild_id
    subs = {o["name"]: o for o in papers["options"]}
    assert set(subs) == {"add", "list", "export", "remove", "count"}
    assert all(o["type"] == 1 for o in subs.values())
    keyword = subs["add"]["options"][0]
    assert (keyword["name"], keyword["type"], keyword["required"]) == ("keyword", 3, True)
    assert subs["remove"]["options"][0]["autocomplete"] is True
    assert ds.registered_commands() == []  # nothing global
    # discord.py parsed our response: ids round-trip
    assert [c.id for c in bot.synced] == [int(papers["id"])]


@pytest.mark.asyncio
async def test_add_defers_then_follows_up(ds: DiscordStandIn, bot: PapersClient) -> None:
    sent = await ds.send_interaction("add", {"keyword": "Gaussian splatting"})
    followups = await ds.wait_for(lambda: ds.followups(sent))
    callbacks = ds.callbacks(sent)
    assert [c.type for c in callbacks] == [5]
    assert callbacks[0].request.query.get("with_response") == "1"
    assert len(followups) == 1
    assert "Gaussian splatting" in followups[0].content
    assert followups[0].request.query.get("wait") == "1"
    # the first follow-up replaced the "thinking" message
    original = ds.original_message(sent)
    assert original is not None and "Gaussian splatting" in original["content"]


@pytest.mark.asyncio
async def test_ephemeral_reply_flags_and_mentions(ds: DiscordStandIn, bot: PapersClient) -> None:
    sent = await ds.send_interaction("list")
    (callback,) = await ds.wait_for(lambda: ds.callbacks(sent))
    assert callback.type == 4
    assert callback.flags & 64
    assert callback.allowed_mentions == {"parse": []}
    assert callback.content.startswith("You follow")
    # discord.py parsed the with_response body (needs Content-Type exactly application/json)
    (response,) = bot.responses
    assert response.message_id == int(callback.message["id"])
    assert response.is_ephemeral() and not response.is_thinking()


@pytest.mark.asyncio
async def test_deferred_then_edit_original(ds: DiscordStandIn, bot: PapersClient) -> None:
    sent = await ds.send_interaction("count")
    (edit,) = await ds.wait_for(lambda: ds.edits(sent))
    assert edit.request.method == "PATCH" and edit.request.path.endswith("/messages/@original")
    assert [c.type for c in ds.callbacks(sent)] == [5]
    assert ds.callbacks(sent)[0].flags == 64
    original = ds.original_message(sent)
    assert original["content"] == "You follow 2 keywords"
    assert original["flags"] == 64  # loading flag cleared, still ephemeral
    await ds.wait_for(lambda: bot.edited)
    assert bot.edited[0].id == int(original["id"])


@pytest.mark.asyncio
async def test_followup_429_is_retried_once(ds: DiscordStandIn, bot: PapersClient) -> None:
    ds.fail_next("POST", r"^/webhooks/\d+/[^/]+$", status=429, retry_after=0.2)
    sent = await ds.send_interaction("add", {"keyword": "retrieval"})
    await ds.wait_for(lambda: ds.followups(sent))
    attempts = ds.requests_to("POST", rf"^/webhooks/\d+/{sent.token}$")
    assert [r.status for r in attempts] == [429, 200]
    assert attempts[1].time - attempts[0].time >= 0.19  # honoured retry_after
    await asyncio.sleep(0.3)  # nothing else sneaks in
    assert len(ds.followups(sent)) == 1
    assert "retrieval" in ds.followups(sent)[0].content


@pytest.mark.asyncio
async def test_reconnects_after_drop(ds: DiscordStandIn, bot: PapersClient) -> None:
    resumed = asyncio.ensure_future(bot.wait_for("resumed", timeout=3))
    await ds.drop_gateway(4000)
    await ds.wait_until_ready(count=2)
    assert ds.connection_count == 2
    assert ds.resume_count == 1 and ds.identify_count == 1
    assert ds.connections[1].path == "/gateway/resume"  # used resume_gateway_url
    await resumed  # discord.py dispatched on_resumed

    sent = await ds.send_interaction("add", {"keyword": "after reconnect"})
    followups = await ds.wait_for(lambda: ds.followups(sent))
    assert "after reconnect" in followups[0].content


@pytest.mark.asyncio
async def test_invalidated_session_reidentifies(ds: DiscordStandIn, bot: PapersClient) -> None:
    await ds.drop_gateway(1000, invalidate=True)
    await ds.wait_until_ready(count=2, timeout=3)
    assert ds.identify_count == 2
    assert ds.resume_count == 1  # tried, got op 9, identified again
    sent = await ds.send_interaction("list")
    await ds.wait_for(lambda: ds.callbacks(sent))


@pytest.mark.asyncio
async def test_multipart_followup_records_file(ds: DiscordStandIn, bot: PapersClient) -> None:
    sent = await ds.send_interaction("export")
    (followup,) = await ds.wait_for(lambda: ds.followups(sent))
    assert followup.content == "Your keywords"
    assert [(f.field, f.filename, f.data) for f in followup.files] == [
        ("files[0]", "keywords.txt", EXPORT_BYTES)
    ]
    assert followup.request.headers["Content-Type"].startswith("multipart/form-data")
    attachment = followup.message["attachments"][0]
    assert attachment["filename"] == "keywords.txt" and attachment["size"] == len(EXPORT_BYTES)


@pytest.mark.asyncio
async def test_autocomplete_and_dm(ds: DiscordStandIn, bot: PapersClient) -> None:
    sent = await ds.send_autocomplete("remove", {"keyword": "diff"}, focused="keyword")
    (callback,) = await ds.wait_for(lambda: ds.callbacks(sent))
    assert callback.type == 8
    assert [c["value"] for c in callback.data["choices"]] == ["diffusion", "diffusion models"]

    # the command is guild-only, so a DM invocation is not found by the tree
    dm = await ds.send_interaction("list", dm=True)
    assert "member" not in dm.payload and dm.payload["user"]["id"] == ds.user_id
    await ds.wait_for(lambda: bot.seen_errors)
    assert isinstance(bot.seen_errors[0], app_commands.CommandNotFound)
    bot.seen_errors.clear()


@pytest.mark.asyncio
async def test_rest_faults_and_rules(ds: DiscordStandIn, bot: PapersClient) -> None:
    channel = bot.get_channel(int(ds.channel_id))
    assert isinstance(channel, discord.TextChannel)
    msg = await channel.send("digest", embed=discord.Embed(title="t", description="d"))
    assert msg.id == int(ds.channel_messages(ds.channel_id)[0].message["id"])

    ds.fail_next("POST", r"/channels/\d+/messages", status=403)
    with pytest.raises(discord.Forbidden) as info:
        await channel.send("nope")
    assert info.value.code == 50001

    ds.fail_next(None, r"/channels/", status=429, retry_after=0.1)
    await channel.send("after 429")
    assert [p.content for p in ds.channel_messages(ds.channel_id)] == ["digest", "after 429"]

    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send(embed=discord.Embed(title="x" * 300))
    assert too_long.value.code == 50035

    with pytest.raises(discord.NotFound):
        await bot.http.request(discord.http.Route("GET", "/nowhere"))
    assert [r.path for r in ds.unknown_requests] == ["/nowhere"]
    ds.unknown_requests.clear()


@pytest.mark.asyncio
async def test_guild_delete_removes_guild(ds: DiscordStandIn, bot: PapersClient) -> None:
    removed = asyncio.ensure_future(bot.wait_for("guild_remove", timeout=3))
    await ds.send_dispatch("GUILD_DELETE", {"id": ds.guild_id})
    guild = await removed
    assert guild.id == int(ds.guild_id)
    assert bot.get_guild(int(ds.guild_id)) is None
    with pytest.raises(discord.Forbidden):  # no longer in the guild: 50001 Missing Access
        await bot.tree.sync(guild=discord.Object(int(ds.guild_id)))


@pytest.mark.asyncio
async def test_compressed_gateway() -> None:
    async with DiscordStandIn(compress=True) as ds:
        client = PapersClient(int(ds.guild_id))
        await client.login(ds.token)
        task = asyncio.create_task(client.connect())
        try:
            await asyncio.wait_for(client.wait_until_ready(), 3)
            assert ds.connections[0].query["compress"] == "zlib-stream"
            assert ds.connections[0].compressor is not None
            assert client.get_guild(int(ds.guild_id)) is not None
        finally:
            await client.close()
            await asyncio.wait_for(task, 3)


@pytest.mark.asyncio
async def test_patch_is_restored() -> None:
    before = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    async with DiscordStandIn() as ds:
        assert ds.api_base == discord.http.Route.BASE
        assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == ds.gateway_url
    after = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    assert after == before

"""The stand-ins keep the platforms' contracts our code depends on, checked with the platforms'
own clients (the `arxiv` library, slack_sdk / slack_bolt, discord.py) and no code of ours."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import arxiv
import discord
import pytest
import pytest_asyncio
import yarl
from discord import app_commands
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.arxiv_server import ArxivStandIn, empty, error400
from tests.fakes.discord_server import DiscordStandIn
from tests.fakes.slack_server import SignedSlackClient, SlackWebAPI, Tamper, serve_web_app

QUERY = 'ti:"Virtual Try-On" OR abs:"Virtual Try-On"'


def _search(server: ArxivStandIn, page_size: int = 100) -> list[arxiv.Result]:
    client = arxiv.Client(page_size=page_size, delay_seconds=0, num_retries=0)
    client.query_url_format = server.url + "?{}"
    by = arxiv.SortCriterion.LastUpdatedDate
    return list(client.results(arxiv.Search(query=QUERY, max_results=100, sort_by=by)))


def test_arxiv_pages_with_true_totals_and_answers_errors_as_arxiv_does() -> None:
    with ArxivStandIn() as server:
        server.load_dailyarxiv()
        results = _search(server, page_size=30)
        assert len(results) == 100 and len({r.entry_id for r in results}) == 100
        assert [r.params["start"] for r in server.requests] == ["0", "30", "60", "90"]
        server.script([error400()])
        with pytest.raises(arxiv.HTTPError) as refused:
            _search(server)
        assert refused.value.status == 400
        server.script([empty()])
        assert _search(server) == []
    assert server.errors == []


async def test_slack_signs_as_slack_and_answers_what_slack_sdk_and_bolt_expect() -> None:
    app_client = AsyncWebClient(token="xoxb-test-token", base_url="")
    async with SlackWebAPI() as api:
        app_client.base_url = api.base_url
        app_client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
        app = AsyncApp(signing_secret="secret", client=app_client)

        @app.command("/papers")
        async def papers(ack, command, respond, client) -> None:  # type: ignore[no-untyped-def]
            await ack()
            await respond(text=f"searching {command['text']}", response_type="ephemeral")
            await client.chat_postMessage(channel=command["channel_id"], text="posted")
            await client.files_upload_v2(channel="C0TEST", filename="a.bib", content=b"@x{}")

        api.fail_next("chat.postMessage", status=429, retry_after=1)
        async with serve_web_app(app.web_app()) as url, SignedSlackClient(url, "secret") as slack:
            headers = slack.build_headers("body")
            verifier = SignatureVerifier("secret")
            assert verifier.is_valid(
                "body", headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
            )
            assert (await slack.send_slash_command("x", tamper=Tamper.BAD_SIGNATURE)).status == 401
            answer = await slack.send_slash_command("hi", response_url=api.response_url("r"))
            assert answer.status == 200
            assert (await api.wait_for_response("r"))["text"] == "searching hi"
            upload = await api.wait_for_upload()
        assert upload.content == b"@x{}" and upload.channel_id == "C0TEST"
        assert [c.status for c in api.calls_to("chat.postMessage")] == [429, 200]  # retried
        assert api.accepted("auth.test")  # Bolt's authorization


class _Client(discord.Client):
    """A minimal bot: `/papers add` deferred then followed up, synced in setup_hook."""

    def __init__(self, guild_id: int) -> None:
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.05)
        self.tree = app_commands.CommandTree(self)
        self.guild = discord.Object(guild_id)
        papers = app_commands.Group(name="papers", description="Follow arXiv keywords")

        @papers.command(name="add", description="Follow a keyword")
        async def add(interaction: discord.Interaction, keyword: str) -> None:
            await interaction.response.defer(thinking=True)
            await interaction.followup.send(f"Now following {keyword}")

        self.tree.add_command(papers, guild=self.guild)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None  # discord.py waits 5 s before a re-IDENTIFY; pointless on loopback

    async def setup_hook(self) -> None:
        await self.tree.sync(guild=self.guild)


@pytest_asyncio.fixture
async def bot(ds: DiscordStandIn, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[_Client]:
    # discord.py's own globals point it at the stand-in (our front end has settings for that)
    monkeypatch.setattr(discord.http.Route, "BASE", ds.api_base)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(ds.gateway_url)
    )
    client = _Client(int(ds.guild_id))
    await client.login(ds.token)
    task = asyncio.create_task(client.connect())
    try:
        await ds.wait_until_ready()
        yield client
    finally:
        await client.close()
        await asyncio.wait_for(task, 3)


async def test_discord_plays_the_gateway_and_interactions_for_discord_py(
    ds: DiscordStandIn, bot: _Client
) -> None:
    assert [d["t"] for d in ds.sent_dispatches[:2]] == ["READY", "GUILD_CREATE"]
    assert [c["name"] for c in ds.registered_commands(ds.guild_id)] == ["papers"]
    ds.fail_next("POST", r"^/webhooks/\d+/[^/]+$", status=429, retry_after=0.2)
    sent = await ds.send_interaction("add", {"keyword": "diffusion"})
    (followup,) = await ds.wait_for(lambda: ds.followups(sent))
    assert followup.content == "Now following diffusion"
    attempts = ds.requests_to("POST", rf"^/webhooks/\d+/{sent.token}$")
    assert [r.status for r in attempts] == [429, 200]  # discord.py honoured retry_after

    await ds.drop_gateway(4000)
    await ds.wait_until_ready(count=2)
    assert (ds.resume_count, ds.identify_count) == (1, 1)
    await ds.drop_gateway(4000, invalidate=True)
    await ds.wait_until_ready(count=3)
    assert ds.identify_count == 2  # op 9: identified again

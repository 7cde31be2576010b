"""`papers serve` with every front end at once: Slack, Discord, the scheduler and /healthz share
one process and one event loop, and each platform keeps its own tenants."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from adapters.serve import run
from bot.commands.core import Core
from tests.fakes.discord_server import DiscordStandIn
from tests.fakes.slack_server import SignedSlackClient, SlackWebAPI
from tests.test_discord_bot import MANAGER, answers, discord_settings
from tests.test_slack_harness import SECRET, slack_core


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_slack_discord_and_health_in_one_loop(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    port = _free_port()
    async with SlackWebAPI() as api, DiscordStandIn(heartbeat_interval_ms=200) as ds:
        slack = slack_core(core, slack_api_url=api.base_url, port=port)
        settings = discord_settings(slack.settings, ds)
        served = Core(settings, core.engine, core.gateway, clock=core.clock)
        stop = asyncio.Event()
        server = asyncio.create_task(run(served, stop=stop))
        base = f"http://127.0.0.1:{port}"
        try:
            await ds.wait_until_ready()
            async with aiohttp.ClientSession() as http:
                for _ in range(200):
                    try:
                        async with http.get(f"{base}/healthz") as health:
                            status = health.status
                            break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
            async with SignedSlackClient(f"{base}/slack/events", SECRET) as client:
                ack = await client.send_slash_command(
                    "digest 07:45", response_url=api.response_url("d"), channel_id="C1"
                )
                slack_answer = await api.wait_for_response("d")
                sent = await ds.send_interaction("digest", {"time": "18:10"}, permissions=MANAGER)
                (discord_answer,) = await answers(ds, sent)
                await client.send_slash_command(
                    "keywords", response_url=api.response_url("k"), channel_id="C1"
                )
                keywords_answer = await api.wait_for_response("k")
        finally:
            stop.set()
            await asyncio.wait_for(server, 15)
    assert status == 200
    assert ack.status == 200
    assert "Daily post at 07:45 UTC." in str(slack_answer)
    assert discord_answer.content == "Daily post at 18:10 UTC."
    assert "07:45" in str(keywords_answer) and "18:10" not in str(keywords_answer)
    assert ds.connections[-1].closed

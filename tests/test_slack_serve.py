"""`papers serve` with Slack configured: /slack/events beside /healthz on the one listener."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import yaml

from adapters.serve import run
from adapters.slack.app import BOT_SCOPES
from adapters.slack.listeners import COMMAND
from adapters.slack.routes import EVENTS_PATH
from bot.commands.core import Core
from tests.fakes.arxiv_server import ArxivStandIn
from tests.fakes.slack_server import SignedSlackClient, SlackWebAPI
from tests.support.slack import (
    SECRET,
    eventually,
    slack_core,
)

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_serve_mounts_slack_on_the_shared_listener(core: Core, arxiv_api: ArxivStandIn):
    port = _free_port()
    async with SlackWebAPI() as api:
        served = slack_core(core, slack_api_url=api.base_url, host="127.0.0.1", port=port)
        stop = asyncio.Event()
        server = asyncio.create_task(run(served, stop=stop))
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:

                async def healthy() -> bool:
                    try:
                        async with http.get(f"{base}/healthz") as answer:
                            return answer.status == 200
                    except aiohttp.ClientConnectionError:
                        return False

                await eventually(healthy)
            async with SignedSlackClient(f"{base}/slack/events", SECRET) as slack:
                ack = await slack.send_slash_command("help")
                refused = await slack.send_slash_command("help", tamper="bad_signature")
        finally:
            stop.set()
            await asyncio.wait_for(server, 15)

    assert ack.status == 200 and "`/papers list [keyword] [limit]`" in ack.json()["text"]
    assert refused.status == 401


def test_manifest_declares_what_the_front_end_uses() -> None:
    manifest = yaml.safe_load((ROOT / "slack-manifest.yml").read_text())
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == COMMAND
    assert command["url"].endswith(EVENTS_PATH)
    assert "add <keyword>" in command["usage_hint"]
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == set(BOT_SCOPES)
    assert manifest["oauth_config"]["redirect_urls"][0].endswith("/slack/oauth_redirect")
    settings = manifest["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == {
        "app_uninstalled",
        "tokens_revoked",
    }
    assert settings["event_subscriptions"]["request_url"].endswith(EVENTS_PATH)
    assert settings["interactivity"] == {
        "is_enabled": True,
        "request_url": command["url"],
    }
    assert settings["socket_mode_enabled"] is False

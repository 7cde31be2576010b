"""`papers serve` with every front end at once: Slack, Discord, the scheduler and /healthz share
one process and one event loop, and each platform keeps its own tenants."""

from __future__ import annotations

import ast
import asyncio
import re
import socket
from pathlib import Path

import aiohttp
import pytest

from adapters.serve import run
from bot.commands.core import Core
from tests.fakes.discord_server import DiscordStandIn
from tests.fakes.slack_server import SignedSlackClient, SlackWebAPI
from tests.support.discord import MANAGER, answers, discord_settings
from tests.support.slack import SECRET, slack_core

ROOT = Path(__file__).resolve().parents[1]


def _imports() -> dict[str, set[str]]:
    """Each module of bot/ and adapters/ with the project modules it imports (at the top or
    inside a function: a deferred import is still a dependency)."""
    paths = [*ROOT.glob("bot/**/*.py"), *ROOT.glob("adapters/**/*.py")]
    paths = [p for p in paths if "migrations" not in p.parts]
    names = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for p in paths
    }
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.update([node.module, *(f"{node.module}.{a.name}" for a in node.names)])
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        graph[name] = (found & names.keys()) - {name}
    return graph


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = _imports()

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            module = todo.pop()
            if module == goal:
                return True
            if module not in seen:
                seen.add(module)
                todo.extend(graph[module])
        return False

    cycles = [(a, b) for a in graph for b in graph[a] if reaches(b, a)]
    assert cycles == []


def test_only_the_composition_root_builds_the_parts() -> None:
    built = re.compile(
        r"\b(SlackFrontEnd|DiscordFrontEnd|ArxivGateway|DigestScheduler|make_engine)\("
    )
    builders = {
        path.name for path in (ROOT / "adapters").glob("*.py") if built.search(path.read_text())
    }
    assert builders == {"composition.py"}


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
                for _ in range(200):  # 503 while the front ends connect, then 200
                    try:
                        async with http.get(f"{base}/healthz") as health:
                            status = health.status
                    except aiohttp.ClientConnectionError:
                        status = None
                    if status == 200:
                        break
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

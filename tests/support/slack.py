"""The Slack front end running on 127.0.0.1 against the loopback Slack Web API stand-in, and
readers of what it sent (helpers of the Slack tests)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import Engine

from adapters.slack.app import SlackFrontEnd
from bot.arxiv.gateway import ArxivGateway
from bot.commands.core import Core
from bot.replies import PaperGroup, Papers, PaperView
from bot.storage import store
from bot.storage.db import read_session
from tests.fakes.slack_server import SignedSlackClient, SlackWebAPI, serve_web_app

SECRET = "signing-secret-test"
BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-1-test"
CLIENT_ID = "111.222"
CLIENT_SECRET = "client-secret-test"


@dataclass
class Running:
    """A SlackFrontEnd serving on 127.0.0.1, and Slack's side of the conversation."""

    front: SlackFrontEnd
    api: SlackWebAPI
    slack: SignedSlackClient
    url: str
    core: Core

    async def command(self, text: str, name: str = "r", **fields: Any) -> Any:
        """A signed `/papers <text>`; returns the HTTP answer (the ack)."""
        return await self.slack.send_slash_command(
            text, response_url=self.api.response_url(name), **fields
        )

    async def answer(self, text: str, name: str = "r", *, timeout: float = 10.0, **fields: Any):
        """A command that must be acknowledged empty-handed or with a note, then answered."""
        ack = await self.command(text, name, **fields)
        assert ack.status == 200, ack.text
        return await self.api.wait_for_response(name, timeout=timeout)

    async def reply(self, text: str, name: str = "r", **fields: Any) -> Any:
        """The answer wherever it comes: in the ack (a quick answer only the asker sees),
        else through response_url."""
        ack = await self.command(text, name, **fields)
        assert ack.status == 200, ack.text
        if ack.text:
            assert self.api.responses(name) == []
            return ack.json()
        return await self.api.wait_for_response(name)


def slack_core(core: Core, *, gateway: ArxivGateway | None = None, **overrides: Any) -> Core:
    """`core` with Slack configured against the stand-in (single workspace unless overridden)."""
    values: dict[str, Any] = {
        "slack_bot_token": SecretStr(BOT_TOKEN),
        "slack_signing_secret": SecretStr(SECRET),
    }
    values.update(overrides)
    settings = core.settings.model_copy(update=values)
    return Core(settings, core.engine, gateway or core.gateway, clock=core.clock)


@asynccontextmanager
async def running(core: Core, api: SlackWebAPI, **overrides: Any) -> AsyncIterator[Running]:
    """The front end mounted on its own aiohttp application, as `papers serve` mounts it."""
    configured = slack_core(core, slack_api_url=api.base_url, **overrides)
    front = SlackFrontEnd(configured)
    web_app = web.Application()
    front.mount(web_app)
    async with (
        serve_web_app(web_app) as url,
        SignedSlackClient(url, SECRET) as slack,
    ):
        await front.start()
        try:
            yield Running(front, api, slack, url, configured)
        finally:
            await front.stop()


async def eventually(check: Callable[[], Awaitable[bool] | bool], timeout: float = 5.0) -> None:
    """Wait until `check()` holds (work that runs after Slack got its ack, such as events)."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = check()
        if await outcome if inspect.isawaitable(outcome) else outcome:
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def workspace_active(engine: Engine, workspace: str) -> bool:
    with read_session(engine) as session:
        ws = store.find_workspace(session, platform="slack", external_id=workspace)
        return bool(ws and ws.active)


def labels(engine: Engine, workspace: str, channel: str = "C0TEST") -> list[str]:
    """The labels a Slack channel follows, from the store."""
    with read_session(engine) as session:
        ws = store.find_workspace(session, platform="slack", external_id=workspace)
        if ws is None:
            return []
        ch = store.find_channel(session, workspace=ws, external_id=channel)
        return [s.label for s, _ in store.channel_subscriptions(session, ch)] if ch else []


def block_texts(body: dict[str, Any]) -> str:
    """All text of a message's blocks, joined by newlines."""
    out = []
    for block in body.get("blocks") or []:
        if "text" in block:
            out.append(block["text"]["text"])
        for element in block.get("elements", ()):
            text = element.get("text", "")
            out.append(text["text"] if isinstance(text, dict) else text)  # a button's label
    return "\n".join(out)


def mrkdwn_texts(body: dict[str, Any]) -> str:
    """Everything Slack parses as mrkdwn (the fallback text too), where `<!channel>` would ping."""
    out = [body.get("text") or ""]
    for block in body.get("blocks") or []:
        for part in (block.get("text"), *block.get("elements", ())):
            if isinstance(part, dict) and part.get("type") == "mrkdwn":
                out.append(part["text"])
    return "\n".join(out)


def paper(i: int, **fields: Any) -> PaperView:
    values: dict[str, Any] = {
        "arxiv_id": f"2501.{i:05d}",
        "version": 1,
        "title": f"Paper number {i}",
        "authors": ("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"),
        "updated": datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=i),
        "comment": "10 pages, 4 figures",
        "abstract": f"Abstract {i}. " * 40,
    }
    values.update(fields)
    return PaperView(**values)


def papers_reply(n: int, groups: int = 1, **fields: Any) -> Papers:
    per = n // groups
    return Papers(
        heading=f"{n} new papers on arXiv",
        groups=tuple(
            PaperGroup(
                label=f"Keyword {g}",
                papers=tuple(paper(g * per + i, **fields) for i in range(per)),
            )
            for g in range(groups)
        ),
    )

"""A morning's daily posts to many channels, made by child processes that run the real
scheduler and the real Slack and Discord posters against the loopback stand-ins (which run
in the parent), so that a test or a benchmark can kill them mid-way and count what arrived.

    world = populate(engine, slack_api, discord_standin, channels=1000)
    child = await spawn(config(url, slack_api, discord_standin, owner="a"))
    ...
    copies(slack_api, discord_standin)  # (channel, claim, part) -> messages that carry it

Run as `python -m tests.fanout '<config json>'` it is the child: it posts until SIGTERM or
SIGINT, then stops as `papers serve` does (the scheduler's graceful stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from asyncio.subprocess import PIPE
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Engine, insert, text

from bot.arxiv.daily import REFRESH_LEASE_NAME, last_refresh_slot
from bot.storage.models import (
    Channel,
    Delivery,
    Keyword,
    Lease,
    Match,
    Paper,
    Subscription,
    Workspace,
)
from tests.fakes.discord_server import DiscordStandIn
from tests.fakes.slack_server import SlackWebAPI

PROFILE = ["-m", "cProfile", "-o", os.environ["PROF"]] if os.environ.get("PROF") else []
SLACK_TOKEN = "xoxb-fanout"
SLACK_TEAM = "T0TEST"  # the stand-in's default workspace
OLD = 2  # papers per keyword already delivered
BIG = 10  # every 10th channel gets a post of several parts (long comments, two keywords)


def shape(c: int) -> tuple[int, int, str]:
    """Channel number c's post: keywords, new papers per keyword, the papers' comment."""
    return (2, 7, "c" * 900) if c % BIG == 0 else (1, 3, "")


@dataclass(frozen=True)
class World:
    """Who should get what: channel (the platform's id) -> the new papers of its post, and
    the number of messages all the posts take."""

    papers: dict[str, set[str]]
    parts: int


def populate(engine: Engine, slack: SlackWebAPI, discord: DiscordStandIn, channels: int) -> World:
    """Channels, half on Slack and half in the stand-in's Discord guild, all due now (00:00
    UTC), with fresh keywords (no arXiv request) and the day's refresh already done."""
    now = datetime.now(UTC)
    names = [f"C{n:05d}" for n in range(channels // 2)]
    guild = discord.guild_id
    names += [
        discord.add_text_channel(guild, f"papers-{n}")["id"] for n in range(channels - len(names))
    ]
    papers: dict[str, set[str]] = {}
    parts = 0
    tables = (Channel, Keyword, Paper, Match, Subscription, Delivery)
    rows: dict[Any, list[dict[str, Any]]] = {t: [] for t in tables}
    keyword = 0
    for c, name in enumerate(names, 1):
        keywords, new, comment = shape(c)
        parts += parts_per_post(keywords, new, comment)["slack" if name[0] == "C" else "discord"]
        papers[name] = set()
        rows[Channel].append(
            {"id": c, "workspace_id": 1 if name[0] == "C" else 2, "external_id": name}
            | {"active": True, "digest_enabled": True, "digest_time": "00:00", "paused": False}
            | {"digest_timezone": "UTC", "failed_days": 0, "created_at": now}
        )
        for _ in range(keywords):
            keyword += 1
            rows[Keyword].append(
                {"id": keyword, "key": f"topic {keyword}", "phrase": f"topic {keyword}"}
                | {"words": f"topic {keyword}", "exclude": "[]", "categories": ""}
                | {"fetch_status": "ok", "last_success_at": now, "fetched_at": now}
                | {"created_at": now}
            )
            rows[Subscription].append(
                {"channel_id": c, "keyword_id": keyword, "label": f"Topic {keyword}"}
                | {"created_at": now}
            )
            for i in range(new + OLD):
                paper, updated = f"{2600 + i:04d}.{keyword:05d}", now - timedelta(days=20 - i)
                rows[Paper].append(
                    {"arxiv_id": paper, "version": 1, "title": f"Paper {paper}", "abstract": "A."}
                    | {"authors": '["A. Author"]', "comment": comment, "stored_at": now}
                    | {"published": updated, "updated": updated}
                )
                rows[Match].append({"keyword_id": keyword, "paper_id": paper, "first_seen_at": now})
                if i < OLD:
                    rows[Delivery].append({"channel_id": c, "paper_id": paper, "delivered_at": now})
                else:
                    papers[name].add(paper)
    workspace = {"name": "", "active": True, "created_at": now}
    with engine.begin() as conn:
        conn.execute(
            insert(Workspace),
            [
                {"id": 1, "platform": "slack", "external_id": SLACK_TEAM} | workspace,
                {"id": 2, "platform": "discord", "external_id": guild} | workspace,
            ],
        )
        for table, values in rows.items():
            conn.execute(insert(table), values)
        done = last_refresh_slot(now, "01:00").date()
        lease = {"owner": "", "lease_until": now, "last_run_date": done}
        conn.execute(insert(Lease).values(name=REFRESH_LEASE_NAME, **lease))
    return World(papers, parts)


@cache
def parts_per_post(keywords: int, new: int, comment: str) -> dict[str, int]:
    """How many messages a channel's post takes on each platform (the real formatters)."""
    from adapters.discord.format import papers_messages
    from adapters.discord.poster import MARKER_ROOM
    from adapters.slack.format import to_messages
    from bot.replies import PaperGroup, Papers, PaperView

    day = datetime(2026, 1, 1, tzinfo=UTC)
    view = PaperView("2600.00001", 1, "Paper 2600.00001", ("A. Author",), day, comment, "A.")
    group = PaperGroup("Topic 1", (view,) * new)
    post = Papers(heading=f"{keywords * new} new papers on arXiv", groups=(group,) * keywords)
    return {
        "slack": len(to_messages(post)),
        "discord": len(papers_messages(post, reserve=MARKER_ROOM)),
    }


def config(
    url: str, slack: SlackWebAPI, discord: DiscordStandIn, *, owner: str, **runner: Any
) -> dict[str, Any]:
    """What a child needs: the database, the stand-ins, and the scheduler's options."""
    options = {"lease_seconds": 2.0, "renew_seconds": 0.5, "sweep_seconds": 0.25} | runner
    return {
        "database_url": url,
        "slack_api_url": slack.base_url,
        "discord_token": discord.token,
        "discord_api_url": discord.api_base,
        "discord_gateway_url": discord.gateway_url,
        "owner": owner,
        "grace": 5.0,
        "options": options,
    }


async def spawn(child_config: dict[str, Any]) -> asyncio.subprocess.Process:
    """A child, returned once it handles SIGTERM and SIGINT (a signal sent earlier would kill
    it before its graceful stop exists: not what a deploy does to a running process)."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fanout", json.dumps(child_config), stdout=PIPE
    )
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), 60)
    assert line == b"ready\n", f"the child did not start: {line!r}"
    return child


def copies(slack: SlackWebAPI, discord: DiscordStandIn) -> Counter[tuple[str, int, int]]:
    """(channel, claim, part) -> how many messages in the channel carry that part's marker."""
    from adapters.discord.poster import read_marker
    from adapters.slack.poster import MARKER_EVENT

    found: Counter[tuple[str, int, int]] = Counter()
    for channel, messages in slack.history.items():
        for message in messages:
            metadata = message.get("metadata") or {}
            if metadata.get("event_type") == MARKER_EVENT:
                payload = metadata["event_payload"]
                found[channel, payload["claim"], payload["part"]] += 1
    for channel, messages in discord.history.items():
        for message in messages:
            mark = (
                read_marker(message["embeds"][-1]["footer"]["text"]) if message["embeds"] else None
            )
            if mark is not None:
                found[channel, *mark] += 1
    return found


def shown(slack: SlackWebAPI, discord: DiscordStandIn) -> Counter[tuple[str, str]]:
    """(channel, arXiv id) -> how many messages in the channel show that paper."""
    found: Counter[tuple[str, str]] = Counter()
    for channel, messages in slack.history.items():
        for message in messages:
            for block in message.get("blocks") or []:
                if "accessory" in block:
                    found[channel, block["accessory"]["value"]] += 1
    for channel, messages in discord.history.items():
        for message in messages:
            for embed in message["embeds"]:
                found[channel, embed["url"].rsplit("/", 1)[1].rsplit("v", 1)[0]] += 1
    return found


def open_claims(engine: Engine) -> tuple[int, int]:
    """(claims not settled, claims settled as sent)."""
    with engine.connect() as conn:
        rows = dict(
            conn.execute(text("SELECT status, count(*) FROM digest_claims GROUP BY status")).all()
        )
    return sum(n for s, n in rows.items() if s != "sent"), rows.get("sent", 0)


# -- the child ------------------------------------------------------------------------------


async def child(cfg: dict[str, Any]) -> None:
    """Slack and Discord front ends and the scheduler, as `papers serve` starts them, until
    SIGTERM or SIGINT; then the scheduler's graceful stop."""
    from pydantic import SecretStr

    from adapters.discord.bot import DiscordFrontEnd
    from bot.arxiv.gateway import ArxivGateway
    from bot.commands.core import Core
    from bot.config import Settings
    from bot.posts.schedule import start_scheduler
    from bot.storage.db import make_engine

    settings = Settings(
        database_url=cfg["database_url"],
        arxiv_api_url="http://127.0.0.1:9/api/query",
        slack_bot_token=SecretStr(SLACK_TOKEN),
        slack_signing_secret=SecretStr("s" * 32),
        slack_api_url=cfg["slack_api_url"],
        discord_bot_token=SecretStr(cfg["discord_token"]),
        discord_api_url=cfg["discord_api_url"],
        discord_gateway_url=cfg["discord_gateway_url"],
    )
    engine = make_engine(settings.database_url)
    core = Core(settings, engine, ArxivGateway(settings, engine))
    from adapters.slack.app import SlackFrontEnd

    slack = SlackFrontEnd(core)
    discord = DiscordFrontEnd(core, client_options={"guild_ready_timeout": 0.05})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)  # `spawn` returns now
    for front in (slack, discord):
        await front.start()
    scheduler = await start_scheduler(
        core, [slack.poster, discord.poster], owner=cfg["owner"], startup_delay=0, **cfg["options"]
    )
    await stop.wait()
    await scheduler.stop(grace=cfg["grace"])
    for front in (discord, slack):
        with contextlib.suppress(Exception):
            await front.stop()
    core.engine.dispose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    asyncio.run(child(json.loads(sys.argv[1])))

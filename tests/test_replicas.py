"""Replicas and restarts on one database: two `papers serve` replicas with Slack in front of
both (commands to either work, each channel gets one daily post), and a 1,000-channel fan-out
whose process is killed or stopped part-way, then restarted or covered by a second replica
(child processes running the real scheduler and posters against the loopback stand-ins)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from bot.arxiv.gateway import ArxivGateway
from bot.commands.core import Core
from bot.config import Settings
from bot.storage.db import ensure_schema, make_engine
from tests import fanout
from tests.fakes.arxiv_server import ArxivStandIn, make_entry
from tests.fakes.discord_server import DiscordStandIn
from tests.fakes.slack_server import SlackWebAPI
from tests.support.common import test_settings
from tests.support.digest import run_due_digests
from tests.support.slack import (
    block_texts,
    running,
)


def _replica(settings: Settings) -> Core:
    """A process of its own: its own engine (pool) and its own arXiv gateway."""
    engine = make_engine(settings.database_url)
    ensure_schema(engine)
    return Core(settings, engine, ArxivGateway(settings, engine))


async def test_two_replicas_share_commands_and_post_each_digest_once(
    pg_url: str, arxiv_api: ArxivStandIn
) -> None:
    settings = test_settings(arxiv_api, pg_url)
    first, second = _replica(settings), _replica(settings)
    now = datetime.now(UTC)
    arxiv_api.add_entries(
        "Neural Fields",
        [
            make_entry(
                arxiv_id=f"2611.0000{i}",
                title=f"Field {i}",
                updated=now - timedelta(days=3, hours=i),
            )
            for i in range(3)
        ],
    )
    async with SlackWebAPI() as api, running(first, api) as a, running(second, api) as b:
        added = await a.answer("add Neural Fields", "add", channel_id="C1")
        assert "Now following" in block_texts(added)
        await b.answer("add Neural Fields", "add2", channel_id="C2")
        listed = await b.answer("list Neural Fields 2", "list", channel_id="C1")
        assert "Field 0" in block_texts(listed) and "Field 1" in block_texts(listed)
        removed = await a.answer("remove Neural Fields", "remove", channel_id="C2")
        assert "Stopped following" in block_texts(removed)
        await b.answer("add Neural Fields", "readd", channel_id="C2")

        # New papers arrive; both replicas reach the digest time together.
        arxiv_api.add_entries(
            "Neural Fields", [make_entry(arxiv_id="2611.00100", title="Fresh Field", updated=now)]
        )
        assert first.refresh("Neural Fields").ok
        due = now.replace(hour=9, minute=5, second=0, microsecond=0)
        if due < now - timedelta(hours=12):
            due += timedelta(days=1)
        posted_before = len(api.accepted("chat.postMessage"))
        outcomes = await asyncio.gather(
            run_due_digests(a.core, [a.front.poster], due),
            run_due_digests(b.core, [b.front.poster], due),
        )
        posts = api.accepted("chat.postMessage")[posted_before:]
        assert sorted(p.params["channel"] for p in posts) == ["C1", "C2"]
        assert all("Fresh Field" in str(p.params.get("blocks")) for p in posts)
        assert sum(len(o) for o in outcomes) >= 2

        # A second pass on either replica the same day posts nothing more.
        await run_due_digests(b.core, [b.front.poster], due + timedelta(minutes=30))
        assert len(api.accepted("chat.postMessage")) == posted_before + 2
    for core in (first, second):
        core.engine.dispose()


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# -- a fan-out stopped part-way --------------------------------------------------------------

SIGNALS = {"kill-9": (signal.SIGKILL, -9), "sigterm": (signal.SIGTERM, 0)}


async def until(check: Any, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await asyncio.to_thread(check):
        assert asyncio.get_running_loop().time() < deadline, "the fan-out did not finish"
        await asyncio.sleep(0.2)


@dataclass(frozen=True)
class Ending:
    """How a stopped fan-out ended: the stops made (of those planned), the seconds from the
    last start to every claim settled, what the database stored and what the channels got."""

    stops: int
    planned: int
    took: float
    stored: set[tuple[str, int, int]]  # (channel, claim, part) of the stored parts
    statuses: set[str]  # of the stored parts
    copies: Counter[tuple[str, int, int]]  # (channel, claim, part) -> messages carrying it
    parts: int  # messages the posts take
    shown: Counter[tuple[str, str]]  # (channel, paper) -> messages showing it
    expected: set[tuple[str, str]]  # (channel, paper) of every post
    delivered: set[tuple[str, str]]  # recorded as delivered


async def stopped_fan_out(url: str, channels: int, sig: str, then: str) -> Ending:
    """`channels` due at once, posted by child processes. "restart": the process posting
    gets `sig` when the stand-ins have taken the first part, then a restart gets it half-way,
    then another at the last part, and a last restart finishes. "replica": the process gets
    `sig` half-way while a second replica runs beside it, which finishes."""
    engine = make_engine(url)
    ensure_schema(engine)
    signum, exit_code = SIGNALS[sig]
    async with SlackWebAPI() as slack, DiscordStandIn(heartbeat_interval_ms=1000) as ds:
        world = fanout.populate(engine, slack, ds, channels)
        points = [1, world.parts // 2, world.parts - 1] if then == "restart" else [world.parts // 2]
        taken, stops = 0, 0
        running: list[asyncio.subprocess.Process] = []  # the one to stop next comes first
        stopped: set[int] = set()

        # "replica": nothing is taken until both processes run, so the stop finds both up.
        both_up = asyncio.Event()

        async def count(_channel: str, _message: dict[str, Any]) -> None:
            nonlocal taken, stops
            await both_up.wait()
            taken += 1
            late = stops < len(points) and taken >= points[stops]
            if late and running[0].pid not in stopped:  # this part is in, its answer not out
                os.kill(running[0].pid, signum)
                stopped.add(running[0].pid)
                stops += 1

        slack.after_post = ds.after_post = count
        try:
            if then == "replica":
                running.append(await fanout.spawn(fanout.config(url, slack, ds, owner="replica")))
            for n in range(len(points)):
                running.insert(0, await fanout.spawn(fanout.config(url, slack, ds, owner=f"p{n}")))
                both_up.set()
                assert await asyncio.wait_for(running[0].wait(), 60) == exit_code
                running.pop(0)
            if then == "restart":
                running.append(await fanout.spawn(fanout.config(url, slack, ds, owner="last")))
            began = asyncio.get_running_loop().time()
            await until(lambda: fanout.open_claims(engine) == (0, channels), timeout=120)
            took = asyncio.get_running_loop().time() - began
        finally:
            for process in running:
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), 30)
        copies, shown = fanout.copies(slack, ds), fanout.shown(slack, ds)
    with engine.connect() as conn:
        parts = conn.execute(
            text(
                "SELECT c.external_id, p.claim_id, p.number, p.status FROM digest_parts p "
                "JOIN digest_claims d ON d.id = p.claim_id JOIN channels c ON c.id = d.channel_id"
            )
        ).all()
        delivered = conn.execute(
            text(
                "SELECT c.external_id, d.paper_id FROM deliveries d JOIN channels c ON c.id = d.channel_id"
            )
        ).all()
    engine.dispose()
    return Ending(
        stops=stops,
        planned=len(points),
        took=took,
        stored={(ch, claim, n) for ch, claim, n, _ in parts},
        statuses={status for *_, status in parts},
        copies=copies,
        parts=world.parts,
        shown=shown,
        expected={(ch, paper) for ch, papers in world.papers.items() for paper in papers},
        delivered=set(map(tuple, delivered)),
    )


# PostgreSQL: 1,000 channels, every signal and what follows; SQLite (one process at a time
# writes): 200 channels, two of them.
CASES = [("postgresql", 1000, sig, then) for then in ("restart", "replica") for sig in SIGNALS]
CASES += [("sqlite", 200, "kill-9", "restart"), ("sqlite", 200, "sigterm", "replica")]


@pytest.mark.parametrize(("backend", "channels", "sig", "then"), CASES)
async def test_a_fan_out_stopped_part_way_ends_with_each_part_once_and_every_paper_delivered(
    request: pytest.FixtureRequest, backend: str, channels: int, sig: str, then: str
) -> None:
    url = request.getfixturevalue("pg_url" if backend == "postgresql" else "sqlite_url")
    end = await stopped_fan_out(url, channels, sig, then)
    assert end.stops == end.planned and end.took < 120  # taken over within 2 minutes
    assert end.stored == set(end.copies) and end.statuses == {"sent"}
    assert sum(end.copies.values()) == end.parts and set(end.copies.values()) == {1}
    assert set(end.shown) == end.expected and set(end.shown.values()) == {1}
    assert end.expected <= end.delivered

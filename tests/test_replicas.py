"""Two `papers serve` replicas on one PostgreSQL database, with Slack in front of both:
commands to either replica work, and each channel still gets one daily post."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.arxiv.gateway import ArxivGateway
from bot.commands.core import Core
from bot.config import Settings
from bot.posts.runner import run_due_digests
from bot.storage.db import ensure_schema, make_engine
from tests.conftest import test_settings
from tests.fakes.arxiv_server import ArxivStandIn, make_entry
from tests.fakes.slack_server import SlackWebAPI
from tests.test_slack_harness import (  # noqa: F401  (_no_proxy is an autouse fixture)
    _no_proxy,
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

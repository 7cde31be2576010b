"""Discord interaction latency over loopback: `/papers list` against a large store.

Run: `python -m bench.bench_discord_latency` (`--quick` for a small run; `--database-url
postgresql+psycopg://…` to use PostgreSQL, in a schema of its own that is dropped afterwards).

The real discord.py client runs `DiscordFrontEnd` against the loopback Discord stand-in, in one
event loop. For each interaction it measures, from just before the stand-in sends
INTERACTION_CREATE to the stand-in receiving: the first response (the interaction callback,
i.e. the deferral), the first follow-up (the first papers) and the last follow-up (all papers;
differs with `--limit` over 10). Target: first response p99 < 250 ms.
The store is bulk-inserted with SQL: 1,000 keywords and 100,000 papers by default, the
benchmark channel following `--followed` of the keywords and the rest followed elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, text

from adapters.discord.bot import DiscordFrontEnd
from adapters.discord.client import make_client
from bench.common import percentile, scratch_database
from bot.arxiv_gateway import ArxivGateway
from bot.config import Secret, Settings
from bot.core import Core
from bot.db import ensure_schema, make_engine
from bot.models import Channel, Keyword, Match, Paper, Subscription, Workspace
from tests.fakes.discord_server import DiscordStandIn, SentInteraction

ABSTRACT = (
    "We propose a diffusion-based method for virtual try-on that preserves garment detail "
    "under large pose changes, trained on paired and unpaired images. "
) * 8
BATCH = 5000


def _batches(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), BATCH):
        yield rows[start : start + BATCH]


def fill_store(
    engine: Engine, *, guild_id: str, channel_id: str, keywords: int, papers: int, followed: int
) -> None:
    """Bulk SQL: one guild, a channel following `followed` keywords, others following the rest."""
    now = datetime.now(UTC)
    base = datetime(2020, 1, 1, tzinfo=UTC)
    others = max(1, (keywords - followed) // 10)
    channel_ids = [channel_id] + [str(10**17 + i) for i in range(others)]
    with engine.begin() as conn:
        conn.execute(
            insert(Workspace.__table__),  # type: ignore[attr-defined]
            [
                {
                    "id": 1,
                    "platform": "discord",
                    "external_id": guild_id,
                    "name": "Bench",
                    "active": True,
                    "created_at": now,
                }
            ],
        )
        conn.execute(
            insert(Channel.__table__),  # type: ignore[attr-defined]
            [
                {
                    "id": i + 1,
                    "workspace_id": 1,
                    "external_id": cid,
                    "active": True,
                    "digest_enabled": True,
                    "paused": False,
                    "failed_days": 0,
                    "created_at": now,
                }
                for i, cid in enumerate(channel_ids)
            ],
        )
        conn.execute(
            insert(Keyword.__table__),  # type: ignore[attr-defined]
            [
                {
                    "id": k + 1,
                    "key": f"keyword {k}",
                    "phrase": f"Keyword {k}",
                    "fetch_status": "ok",
                    "fetched_at": now,
                    "last_success_at": now,
                    "created_at": now,
                }
                for k in range(keywords)
            ],
        )
        subscriptions = [
            {
                "channel_id": 1 if k < followed else 2 + (k - followed) % others,
                "keyword_id": k + 1,
                "label": f"Keyword {k}",
                "created_at": now + timedelta(microseconds=k),
            }
            for k in range(keywords)
        ]
        conn.execute(insert(Subscription.__table__), subscriptions)  # type: ignore[attr-defined]
        authors = json.dumps(["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"])
        rows = [
            {
                "arxiv_id": f"{2000 + p // 100000:04d}.{p % 100000:05d}",
                "version": 1 + p % 3,
                "title": f"Paper {p}: diffusion models for virtual try-on at scale",
                "authors": authors,
                "abstract": ABSTRACT,
                "comment": "Accepted at CVPR" if p % 2 else "",
                "published": base + timedelta(minutes=p),
                "updated": base + timedelta(minutes=p, seconds=p % 60),
                "stored_at": now,
            }
            for p in range(papers)
        ]
        for batch in _batches(rows):
            conn.execute(insert(Paper.__table__), batch)  # type: ignore[attr-defined]
        # each paper matches one keyword, every fifth a second one
        matches = [
            {"keyword_id": p % keywords + 1, "paper_id": r["arxiv_id"], "first_seen_at": now}
            for p, r in enumerate(rows)
        ]
        matches += [
            {
                "keyword_id": (p * 7 + 3) % keywords + 1,
                "paper_id": r["arxiv_id"],
                "first_seen_at": now,
            }
            for p, r in enumerate(rows)
            if p % 5 == 0 and (p * 7 + 3) % keywords != p % keywords
        ]
        for batch in _batches(matches):
            conn.execute(insert(Match.__table__), batch)  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))  # planner statistics, as a long-running store would have


async def measure(
    core: Core, ds: DiscordStandIn, args: argparse.Namespace
) -> dict[str, list[float]]:
    settings = core.settings
    front_end = DiscordFrontEnd(core, client=make_client(settings, guild_ready_timeout=0.05))
    await front_end.start()
    await ds.wait_until_ready()
    await front_end.client.wait_until_ready()
    first: list[float] = []
    answer: list[float] = []
    complete: list[float] = []
    options: dict[str, Any] = {"limit": args.limit}
    if args.keyword:
        options["keyword"] = "Keyword 0"
    try:

        def answered(sent: SentInteraction) -> bool:
            return sum(len(m.embeds) for m in ds.followups(sent)) >= int(args.limit)

        for _ in range(args.warmup):
            warm = await ds.send_interaction("list", options)
            await ds.wait_for(functools.partial(answered, warm), timeout=30)

        async def one() -> None:
            start = time.monotonic()
            sent = await ds.send_interaction("list", options)
            (callback, *_) = await ds.wait_for(lambda: ds.callbacks(sent), timeout=30)
            await ds.wait_for(lambda: answered(sent), timeout=30)
            followups = ds.followups(sent)
            first.append(callback.request.time - start)
            answer.append(followups[0].request.time - start)
            complete.append(followups[-1].request.time - start)

        remaining = args.interactions
        while remaining:
            burst = min(args.concurrency, remaining)
            await asyncio.gather(*(one() for _ in range(burst)))
            remaining -= burst
    finally:
        await front_end.stop()
    return {"first response": first, "first papers": answer, "all papers": complete}


async def run(args: argparse.Namespace, url: str) -> dict[str, list[float]]:
    async with DiscordStandIn() as ds:
        settings = Settings(
            database_url=url,
            discord_bot_token=Secret(ds.token),
            discord_guild_id=int(ds.guild_id),
            discord_api_url=ds.api_base,
            discord_gateway_url=ds.gateway_url,
        )
        engine = make_engine(url)
        ensure_schema(engine)
        started = time.perf_counter()
        fill_store(
            engine,
            guild_id=ds.guild_id,
            channel_id=ds.channel_id,
            keywords=args.keywords,
            papers=args.papers,
            followed=args.followed,
        )
        print(
            f"store: {args.keywords:,} keywords, {args.papers:,} papers on {engine.dialect.name} "
            f"(filled in {time.perf_counter() - started:.1f} s); channel follows {args.followed}"
        )
        core = Core(settings, engine, ArxivGateway(settings))
        try:
            return await measure(core, ds, args)
        finally:
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 keywords, 5,000 papers, 50 runs")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: a temp SQLite file)")
    parser.add_argument("--keywords", type=int, default=1000)
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--followed", type=int, default=10, help="keywords the channel follows")
    parser.add_argument("--interactions", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1, help="interactions in flight")
    parser.add_argument("--limit", type=int, default=5, help="the list command's limit")
    parser.add_argument("--keyword", action="store_true", help="list one keyword, not all")
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    if args.quick:
        args.keywords, args.papers, args.interactions = 100, 5_000, 50
    args.followed = min(args.followed, args.keywords)
    logging.basicConfig(level=logging.WARNING)
    with scratch_database(args.database_url) as url:
        results = asyncio.run(run(args, url))
    print(
        f"{args.interactions} x /papers list (limit {args.limit}), concurrency {args.concurrency}:"
    )
    for name, values in results.items():
        ms = [v * 1000 for v in values]
        print(
            f"  {name:<15} p50 {statistics.median(ms):7.1f} ms   p99 {percentile(ms, 99):7.1f} ms"
            f"   max {max(ms):7.1f} ms"
            + ("   (target p99 < 250 ms)" if name == "first response" else "")
        )


if __name__ == "__main__":
    main()

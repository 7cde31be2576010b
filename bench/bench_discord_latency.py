"""Discord `/papers list` over loopback against a large store: the time to the first papers is
the headline, the deferral (the interaction's first response) second.

Run: `python -m bench.bench_discord_latency` (`--quick` for a small run; `--database-url
postgresql+psycopg://…` to use PostgreSQL, in a schema of its own that is dropped afterwards).

What it includes: the real discord.py client running `DiscordFrontEnd` against the loopback
Discord stand-in (gateway and REST), in one event loop: the interaction arriving over the
gateway, the handler's defer(), the core's `list` query in a thread, the embeds, and the
follow-up webhook request. For each interaction it measures, from just before the stand-in sends
INTERACTION_CREATE to the stand-in receiving: the *first papers* (the first follow-up, what the
person waits for; the headline), the *first response* (the interaction callback: the answer itself
when the core is quick, else the deferral; it must come within Discord's 3 s; target p99 <
250 ms) and *all papers* (the last follow-up; differs with
`--limit` over 10). What it stands in for: Discord's servers, with no internet in between (add
the real round trips), and one `papers serve` process. The store is bulk-inserted with SQL:
1,000 keywords and 100,000 papers by default, the benchmark channel following `--followed` of
the keywords and the rest followed elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import statistics
import time
from typing import Any

from pydantic import SecretStr

from adapters.discord.bot import DiscordFrontEnd
from bench import scale_data
from bench.common import percentile, scratch_database
from bot.arxiv.gateway import ArxivGateway
from bot.commands.core import Core, Place
from bot.config import Settings
from bot.storage.db import make_engine
from tests.fakes.discord_server import DiscordStandIn, SentInteraction


async def measure(
    core: Core, ds: DiscordStandIn, args: argparse.Namespace
) -> dict[str, list[float]]:
    front_end = DiscordFrontEnd(core, client_options={"guild_ready_timeout": 0.05})
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

        def messages(sent: SentInteraction) -> list[Any]:
            """The answer's messages: a quick response itself, or a deferral's follow-ups."""
            return [m for m in ds.callbacks(sent) + ds.followups(sent) if m.type != 5]

        def answered(sent: SentInteraction) -> bool:
            return sum(len(m.embeds) for m in messages(sent)) >= int(args.limit)

        for _ in range(args.warmup):
            warm = await ds.send_interaction("list", options)
            await ds.wait_for(functools.partial(answered, warm), timeout=30)

        async def one() -> None:
            start = time.monotonic()
            sent = await ds.send_interaction("list", options)
            (callback, *_) = await ds.wait_for(lambda: ds.callbacks(sent), timeout=30)
            await ds.wait_for(lambda: answered(sent), timeout=30)
            parts = messages(sent)
            first.append(callback.request.time - start)
            answer.append(parts[0].request.time - start)
            complete.append(parts[-1].request.time - start)

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
            discord_bot_token=SecretStr(ds.token),
            discord_guild_id=int(ds.guild_id),
            discord_api_url=ds.api_base,
            discord_gateway_url=ds.gateway_url,
        )
        engine = make_engine(url)
        # The stand-in's channel follows `followed` keywords; the rest are dealt among other
        # channels of the guild, about ten each. Every fifth paper matches a second keyword.
        others = max(1, (args.keywords - args.followed) // 10)
        filled = scale_data.load(
            engine,
            keywords=args.keywords,
            papers=args.papers,
            channel=Place(platform="discord", workspace=ds.guild_id, channel=ds.channel_id),
            followed=args.followed,
            others=[
                Place(platform="discord", workspace=ds.guild_id, channel=str(10**17 + i))
                for i in range(others)
            ],
            second_match_every=5,
        )
        print(
            f"store: {args.keywords:,} keywords, {args.papers:,} papers on {engine.dialect.name} "
            f"(filled in {filled:.1f} s); channel follows {args.followed}"
        )
        core = Core(settings, engine, ArxivGateway(settings, engine))
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
    for name in ("first papers", "first response", "all papers"):
        ms = [v * 1000 for v in results[name]]
        print(
            f"  {name:<15} p50 {statistics.median(ms):7.1f} ms   p99 {percentile(ms, 99):7.1f} ms"
            f"   max {max(ms):7.1f} ms"
            + ("   (the headline: what the person waits for)" if name == "first papers" else "")
            + ("   (the deferral; target p99 < 250 ms)" if name == "first response" else "")
        )


if __name__ == "__main__":
    main()

"""Scale benchmark: a research institute's store on SQLite and PostgreSQL.

Run: `python -m bench.bench_scale` (SQLite) or
`python -m bench.bench_scale --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test`
(uses a fresh schema and drops it). `--keywords/--papers/--channels` shrink it for a quick run.
Defaults are the issue's: 10,000 keywords, 1,000,000 papers, 5,000 channels of 20 keywords.
Prints `list` latency (p50, p99) in random 20-keyword channels and in two channels of 500
keywords (issue 15), the README export of a 20-keyword channel, a full refresh's database time
(every keyword answered by a canned gateway with no network; only the time spent in our
database transactions is counted), and the peak memory of the process.
`list` is `Core.execute` in this process: the store's queries and building the reply, no front
end and no network; it stands in for the database part of a chat `list` answer.
The 500-keyword channels: one follows every 20th keyword, so its papers interleave in time as
real keywords' do; the other follows 500 consecutive synthetic keywords, which publish in one
burst every `--keywords` papers (paper n matches keyword n % k), the worst case for the walk
over the newest papers that `catalog.newest_papers` does for channels of many keywords.
Targets: list p99 < 250 ms (20 keywords) and < 50 ms (500 keywords), export < 1 s, refresh
database time < 60 s, memory < 300 MB.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any

from bench import scale_data
from bench.common import peak_rss_mb, percentile, scratch_database
from bot.arxiv.gateway import FetchedPaper, FetchResult
from bot.commands.core import Core, Place
from bot.commands.grammar import List
from bot.config import Settings
from bot.keywords import KeywordSpec
from bot.replies import Papers
from bot.storage.db import make_engine


class CannedGateway:
    """Answers each keyword with 100 papers (90 known, 10 new), as a day's refresh would see;
    it stands in for the arXiv gateway (the same `fetch`), with no network."""

    def __init__(self, keywords: int, papers: int) -> None:
        self.keywords, self.papers, self.day = keywords, papers, 0

    def fetch(self, spec: KeywordSpec, *, limit: int = 100) -> FetchResult:
        k = int(spec.phrase.rsplit(" ", 1)[1])
        known = [n for n in range(k, self.papers, self.keywords)][-90:]
        fresh = [self.papers + self.day * self.keywords * 10 + k * 10 + i for i in range(10)]
        items = [
            FetchedPaper(authors=scale_data.AUTHORS, **scale_data.paper_fields(n))  # type: ignore[arg-type]
            for n in known + fresh
        ]
        return FetchResult(papers=tuple(items), total_results=len(items))


def list_latencies(core: Core, places: list[Place], requests: int) -> list[float]:
    """`list` of all a channel's keywords, limit 5 or 20, in channels drawn at random."""
    rng = random.Random(7)
    latencies = []
    for _ in range(requests):
        place = places[rng.randrange(len(places))]
        limit = rng.choice([5, 20])
        start = time.perf_counter()
        replies = core.execute(place, List(keyword=None, limit=limit))
        latencies.append(time.perf_counter() - start)
        assert isinstance(replies[0], Papers) and replies[0].count == limit, replies
    return latencies


def _ms(latencies: list[float], q: float) -> str:
    return f"{percentile(latencies, q) * 1000:.1f} ms"


def timed_db_time(core: Core) -> list[float]:
    """Wraps the refresher's store step so only database time is summed."""
    spent: list[float] = []
    original = core.refresher.store_result

    def store_result(label: str, result: FetchResult, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(label, result, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    core.refresher.store_result = store_result  # type: ignore[method-assign]
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url")
    parser.add_argument("--keywords", type=int, default=10_000)
    parser.add_argument("--papers", type=int, default=1_000_000)
    parser.add_argument("--channels", type=int, default=5_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with scratch_database(args.database_url) as url:
        engine = make_engine(url)
        # 20 keywords a channel, alternately on Slack and Discord; the terminal channel follows
        # keywords 0-19 and has been sent every paper but each keyword's newest ten (at most
        # 100,000 deliveries).
        platforms = ("slack", "discord")
        places = [
            Place(
                platform=platforms[c % 2],
                workspace=f"{platforms[c % 2]}-W{c % 2}",
                channel=f"C{c}",
            )
            for c in range(args.channels)
        ]
        terminal = Place(platform="terminal", workspace="local", channel="terminal")
        load_seconds = scale_data.load(
            engine,
            keywords=args.keywords,
            papers=args.papers,
            channel=terminal,
            followed=20,
            others=places,
            per_other=20,
            delivered=max(0, min(args.papers - 10 * args.keywords, 100_000)),
        )
        print(
            f"store: {args.keywords} keywords, {args.papers} papers, {args.channels} channels on {engine.dialect.name} (loaded in {load_seconds:.0f} s)"
        )
        wide = min(500, args.keywords)
        spread = Place(platform="slack", workspace="slack-W0", channel="C-spread")
        burst = Place(platform="slack", workspace="slack-W0", channel="C-burst")
        scale_data.follow(engine, spread, range(0, args.keywords, args.keywords // wide)[:wide])
        scale_data.follow(engine, burst, range(wide))
        settings = Settings(database_url=url, arxiv_delay_seconds=0)
        gateway = CannedGateway(args.keywords, args.papers)
        core = Core(settings, engine, gateway)  # type: ignore[arg-type]
        latencies = list_latencies(core, places, args.requests)
        print(
            f"list (all keywords of a 20-keyword channel): p50 {_ms(latencies, 50)}, p99 {_ms(latencies, 99)}  (target p99 < 250 ms)"
        )
        for name, place in (("every 20th", spread), ("consecutive", burst)):
            latencies = list_latencies(core, [place], args.requests)
            print(
                f"list (a channel of {wide} keywords, {name}): p50 {_ms(latencies, 50)}, p99 {_ms(latencies, 99)}  (target p99 < 50 ms)"
            )
        exports = []
        for _ in range(5):
            start = time.perf_counter()
            readme = core.readme(terminal)
            exports.append(time.perf_counter() - start)
        assert readme.count("## ") == 20
        print(
            f"readme export, 20-keyword channel: median {statistics.median(exports) * 1000:.0f} ms  (target < 1000 ms)"
        )
        spent = timed_db_time(core)
        start = time.perf_counter()
        # Every keyword by its own query (the path of a harvest that failed).
        outcomes = core.refresher.refresh_many(core.followed_keywords())
        wall = time.perf_counter() - start
        assert all(o.ok for o in outcomes), [o for o in outcomes if not o.ok][:3]
        print(
            f"full refresh of {len(outcomes)} keywords: database time {sum(spent):.1f} s (wall {wall:.1f} s)  (target < 60 s)"
        )
        print(f"peak memory of this process: {peak_rss_mb():.0f} MB  (target < 300 MB)")
        engine.dispose()


if __name__ == "__main__":
    main()

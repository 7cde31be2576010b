"""Slack `/papers list` over loopback HTTP against a large store: the answer (the first papers
reaching the channel) is the headline, the 3-second ack second.

Run: `python -m bench.bench_slack_ack` (`--quick` for a small run; `--database-url
postgresql+psycopg://…` to use PostgreSQL, in a schema of its own that is dropped afterwards).

What it includes: `SlackFrontEnd` serving /slack/events on 127.0.0.1 (aiohttp, as `papers serve`
mounts it), Bolt's signature check and dispatch, the core's `list` query in a thread against the
store, Block Kit, and `respond()` posting the answer to a response_url on the loopback Slack
stand-in, all in one event loop; a signing client sends `--requests` signed slash commands,
`--concurrency` in flight. Per request it measures the *answer*: from sending the command to the
papers arriving at the response_url (what the person waits for), and the *ack*: the HTTP answer
to the command, which Bolt sends before the query runs, so the store's size does not reach it.
What it stands in for: Slack's servers (no internet between them and us: add the real round
trips to every figure), and one `papers serve` process. 20 in flight saturate one process (the
GIL): answers queue behind acks by design, so `--unloaded` requests sent one at a time give the
answer time without the queue. The store is bulk-inserted with SQL: 1,000 keywords and 100,000
papers by default, the benchmark channel following `--followed`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import statistics
import time

from aiohttp import web
from pydantic import SecretStr

from adapters.slack.app import SlackFrontEnd
from bench import scale_data
from bench.common import percentile, scratch_database
from bot.arxiv.gateway import ArxivGateway
from bot.commands.core import Core, Place
from bot.config import Settings
from bot.storage.db import make_engine
from tests.fakes.slack_server import SignedSlackClient, SlackWebAPI, serve_web_app

SECRET = "bench-signing-secret"
TEAM, CHANNEL = "T0BENCH", "C0BENCH"


@dataclasses.dataclass
class Figures:
    ack_ms: list[float]
    answer_ms: list[float]
    seconds: float
    failures: int

    def summary(self) -> dict[str, float]:
        def stats(name: str, values: list[float]) -> dict[str, float]:
            return {
                f"{name}_p50_ms": statistics.median(values),
                f"{name}_p90_ms": percentile(values, 90),
                f"{name}_p99_ms": percentile(values, 99),
                f"{name}_max_ms": max(values),
            }

        return {
            **stats("ack", self.ack_ms),
            **stats("answer", self.answer_ms),
            "requests_per_s": len(self.ack_ms) / self.seconds,
            "failures": self.failures,
        }


async def measure(
    slack: SignedSlackClient,
    api: SlackWebAPI,
    *,
    requests: int,
    concurrency: int,
    text: str,
    tag: str,
) -> Figures:
    """`requests` signed slash commands, `concurrency` in flight; ack and answer times in ms."""
    gate = asyncio.Semaphore(concurrency)
    sent_at: dict[str, float] = {}
    acks: list[float] = []
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        name = f"{tag}-{i}"
        async with gate:
            sent_at[name] = time.monotonic()
            answer = await slack.send_slash_command(
                text, response_url=api.response_url(name), channel_id=CHANNEL, team_id=TEAM
            )
            acks.append((time.monotonic() - sent_at[name]) * 1000)
            failures += answer.status != 200

    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(requests)))
    if text.strip() in ("", "help"):  # answered in the ack itself
        return Figures(acks, acks, time.monotonic() - started, failures)
    names = set(sent_at)
    deadline = time.monotonic() + 120
    while sum(1 for p in api.response_posts if p.name in names) < requests:
        if time.monotonic() > deadline:
            raise TimeoutError("not every command was answered through its response_url")
        await asyncio.sleep(0.005)
    answered = {p.name: p.at for p in api.response_posts if p.name in names}
    seconds = max(answered.values()) - started
    answers = [(answered[n] - sent_at[n]) * 1000 for n in names]
    return Figures(acks, answers, seconds, failures)


async def run(args: argparse.Namespace, url: str) -> list[Figures]:
    engine = make_engine(url, pool_size=30) if not url.startswith("sqlite") else make_engine(url)
    # The benchmark channel follows `followed` keywords; one channel of another team the rest.
    loaded = scale_data.load(
        engine,
        keywords=args.keywords,
        papers=args.papers,
        channel=Place(platform="slack", workspace=TEAM, channel=CHANNEL),
        followed=args.followed,
        others=[Place(platform="slack", workspace="T0OTHER", channel="C0OTHER")],
        analyze=False,  # as measured so far: planner statistics left to the database
    )
    print(
        f"store: {args.keywords} keywords, {args.papers} papers, loaded in {loaded:.1f}s ({engine.dialect.name})"
    )
    async with SlackWebAPI() as api:
        settings = Settings(
            database_url=url,
            slack_bot_token=SecretStr("xoxb-bench-token"),
            slack_signing_secret=SecretStr(SECRET),
            slack_api_url=api.base_url,
        )
        api.add_token("xoxb-bench-token", team_id=TEAM)
        front = SlackFrontEnd(Core(settings, engine, ArxivGateway(settings, engine)))
        web_app = web.Application()
        front.mount(web_app)
        async with (
            serve_web_app(web_app) as events_url,
            SignedSlackClient(events_url, SECRET) as slack,
        ):
            await front.start()
            try:
                await measure(slack, api, requests=10, concurrency=5, text=args.text, tag="warm")
                results = []
                for number in range(1, args.runs + 1):
                    figures = await measure(
                        slack,
                        api,
                        requests=args.requests,
                        concurrency=args.concurrency,
                        text=args.text,
                        tag=f"run{number}",
                    )
                    results.append(figures)
                    print(f"run {number}: " + _line(figures.summary()))
                    api.clear()
                if args.unloaded:
                    alone = await measure(
                        slack, api, requests=args.unloaded, concurrency=1, text=args.text, tag="one"
                    )
                    print(f"one in flight ({args.unloaded} requests): " + _line(alone.summary()))
            finally:
                await front.stop()
    engine.dispose()
    return results


def _line(summary: dict[str, float]) -> str:
    return ", ".join(
        f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--keywords", type=int, default=1000)
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--followed", type=int, default=10, help="keywords the channel follows")
    parser.add_argument("--text", default="list", help="the command text (default: list)")
    parser.add_argument("--runs", type=int, default=3, help="measurement runs (median reported)")
    parser.add_argument(
        "--unloaded", type=int, default=50, help="then this many requests one at a time"
    )
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument(
        "--quick", action="store_true", help="100 requests, 100 keywords, 5,000 papers, 1 run"
    )
    args = parser.parse_args()
    if args.quick:
        args.requests, args.keywords, args.papers, args.runs = 100, 100, 5000, 1
    logging.basicConfig(level=logging.WARNING)
    with scratch_database(args.database_url) as url:
        results = asyncio.run(run(args, url))
    summaries = [r.summary() for r in results]
    median = {k: statistics.median(s[k] for s in summaries) for k in summaries[0]}
    print(
        f"median of {len(results)} run(s), {args.requests} requests, {args.concurrency} in flight:"
    )
    print("  " + _line(median))
    print(
        f"  answer (first papers at the response_url): p50 {median['answer_p50_ms']:.1f} ms, "
        f"p99 {median['answer_p99_ms']:.1f} ms"
    )
    target = "met" if median["ack_p99_ms"] < 250 else "MISSED"
    print(
        f"  ack (before the query runs) p99 {median['ack_p99_ms']:.1f} ms: target < 250 ms {target}"
    )


if __name__ == "__main__":
    main()

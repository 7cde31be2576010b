"""Fan-out benchmark: one morning's daily posts to 1,000 channels through rate-limited posters.

Run: `python -m bench.bench_fanout` (SQLite file in a temp directory), `--channels 100` for a
quick run, `--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test` for PostgreSQL
(a fresh schema, dropped afterwards), `--processes 2` for two schedulers ("processes", each
with its own engine and owner) racing for the same channels, `--concurrency N` to change the
bound on channels posted at once, `--reactive` for posters that do not pace themselves and
only sleep Retry-After on 429s.

Half the channels are in Slack workspaces, half in Discord guilds; each follows 5 keywords
and has 10 new papers (plus 40 already delivered). Every channel is due at once and the
keywords are fresh, so no arXiv request is made. The platforms are in-process fakes (the
Slack stand-in enforces rates but Discord's does not, and neither is meant for 1,000
channels): each accepts one message per second per channel and answers 429 with Retry-After
otherwise, after 20 ms of "network". The posters split a post with the adapters' real
formatters (Slack Block Kit, Discord embeds) and keep to the limit like the adapters do:
the Slack one paces each channel at 1.1 s (adapters/slack/poster.py's ChannelPacer) and the
Discord one waits out the reset the platform announced (discord.py's buckets); both sleep
Retry-After on a 429.

Prints: wall time, posts and messages sent, duplicates (a second post to a channel or a
paper twice), 429s, the minimum wall time the rate limits allow (the longest channel's
messages at one per second) and the ratio to it, and per-channel completion p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, text

from bench.common import scratch_database
from bot.arxiv.gateway import ArxivGateway
from bot.commands.core import Core
from bot.config import Settings
from bot.posts.runner import MAX_CONCURRENT_CHANNELS, DigestRunner
from bot.replies import Papers, Reply
from bot.storage.db import ensure_schema, make_engine
from bot.storage.models import Channel, Delivery, Keyword, Match, Paper, Subscription, Workspace

KEYWORDS_PER_CHANNEL = 5
NEW_PER_KEYWORD = 2
OLD_PER_KEYWORD = 8
INTERVAL = 1.0  # the platforms' limit: one message per second per channel
LATENCY = 0.02
ABSTRACT = " ".join(["We study a representative problem with a representative method."] * 20)


# -- the platforms: one message per second per channel, 429 otherwise ----------------------


class TooFast(Exception):
    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after


class RateLimitedPlatform:
    """Accepts a message into a channel at most once per `INTERVAL`; remembers everything."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.last: dict[str, float] = {}
        self.messages: Counter[str] = Counter()
        self.posts: Counter[str] = Counter()
        self.papers: Counter[tuple[str, str]] = Counter()
        self.rejected = 0
        self.finished: list[float] = []

    async def send(self, channel: str) -> float:
        """One message; returns seconds until the next is allowed (the reset header)."""
        await asyncio.sleep(LATENCY)
        now = time.monotonic()
        last = self.last.get(channel)
        if last is not None and now - last < INTERVAL:
            self.rejected += 1
            raise TooFast(INTERVAL - (now - last))
        self.last[channel] = now
        self.messages[channel] += 1
        return INTERVAL


class FakePoster:
    """A `Poster` for one platform: real splitting, the adapter's way of pacing, 429 retries."""

    def __init__(
        self, platform: str, target: RateLimitedPlatform, start: float, *, paced: bool = True
    ) -> None:
        self.platform = platform
        self.target = target
        self.start = start
        self.paced = paced
        self.next_allowed: dict[str, float] = {}

    async def post(self, *, workspace_id: str, channel_id: str, replies: list[Reply]) -> None:
        key = f"{workspace_id}/{channel_id}"
        for _ in range(count_messages(self.platform, replies)):
            await self._send_one(key)
        self.target.posts[key] += 1
        for reply in replies:
            if isinstance(reply, Papers):
                for group in reply.groups:
                    for paper in group.papers:
                        self.target.papers[(key, paper.arxiv_id)] += 1
        self.target.finished.append(time.monotonic() - self.start)

    async def _send_one(self, key: str) -> None:
        while True:
            wait = self.next_allowed.get(key, 0.0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                reset = await self.target.send(key)
            except TooFast as exc:
                # Slack sends whole seconds; discord.py sleeps the exact float.
                await asyncio.sleep(
                    math.ceil(exc.retry_after) if self.platform == "slack" else exc.retry_after
                )
                continue
            if self.paced:
                gap = 1.1 if self.platform == "slack" else reset
                self.next_allowed[key] = time.monotonic() + gap - LATENCY
            return


def count_messages(platform: str, replies: list[Reply]) -> int:
    """How many messages the adapter would send for `replies`."""
    if FORMATTERS_NOTE:
        return sum(len(r.groups) if isinstance(r, Papers) else 1 for r in replies)
    if platform == "slack":
        from adapters.slack.format import to_messages

        return sum(len(to_messages(r)) for r in replies)
    from adapters.discord.format import format_replies

    return len(format_replies(replies))


def _formatters_note() -> str:
    try:
        import adapters.discord.format
        import adapters.slack.format  # noqa: F401
    except Exception as exc:  # the adapters are someone else's moving target
        return f"adapters' formatters not importable ({exc!r}): one message per keyword group"
    return ""


FORMATTERS_NOTE = _formatters_note()


# -- the data -------------------------------------------------------------------------------


def populate(engine: Engine, channels: int) -> None:
    """Channels (half Slack, half Discord), 5 keywords each, 10 new + 40 delivered papers each."""
    now = datetime.now(UTC)
    keywords = max(KEYWORDS_PER_CHANNEL, channels)
    stride = max(1, keywords // KEYWORDS_PER_CHANNEL)
    with engine.begin() as conn:
        workspaces = [
            {
                "id": w + 1,
                "platform": "slack" if w < 10 else "discord",
                "external_id": f"{w:018d}",
                "name": "",
                "active": True,
                "created_at": now,
            }
            for w in range(20)
        ]
        conn.execute(insert(Workspace), workspaces)
        conn.execute(
            insert(Channel),
            [
                {
                    "id": c + 1,
                    "workspace_id": (c % 2) * 10 + (c // 2) % 10 + 1,
                    "external_id": f"{c + 1:018d}",
                    "active": True,
                    "digest_enabled": True,
                    "digest_time": "00:00",
                    "digest_timezone": "UTC",
                    "paused": False,
                    "failed_days": 0,
                    "created_at": now,
                }
                for c in range(channels)
            ],
        )
        conn.execute(
            insert(Keyword),
            [
                {
                    "id": k + 1,
                    "key": f"topic {k}",
                    "phrase": f"topic {k}",
                    "words": f"topic {k}",
                    "fetch_status": "ok",
                    "last_success_at": now,
                    "fetched_at": now,
                    "created_at": now,
                }
                for k in range(keywords)
            ],
        )
        per_keyword = OLD_PER_KEYWORD + NEW_PER_KEYWORD
        conn.execute(
            insert(Paper),
            [
                {
                    "arxiv_id": paper_id(k, i),
                    "version": 1,
                    "title": f"Paper {i} on topic {k}",
                    "authors": '["A. Author", "B. Author", "C. Author", "D. Author"]',
                    "abstract": ABSTRACT,
                    "comment": "12 pages",
                    "published": now - timedelta(days=30 - i),
                    "updated": now - timedelta(days=30 - i),
                    "stored_at": now,
                }
                for k in range(keywords)
                for i in range(per_keyword)
            ],
        )
        conn.execute(
            insert(Match),
            [
                {"keyword_id": k + 1, "paper_id": paper_id(k, i), "first_seen_at": now}
                for k in range(keywords)
                for i in range(per_keyword)
            ],
        )
        subscriptions, deliveries = [], []
        for c in range(channels):
            for j in range(KEYWORDS_PER_CHANNEL):
                k = (c + j * stride) % keywords
                subscriptions.append(
                    {
                        "channel_id": c + 1,
                        "keyword_id": k + 1,
                        "label": f"Topic {k}",
                        "created_at": now,
                    }
                )
                deliveries += [
                    {"channel_id": c + 1, "paper_id": paper_id(k, i), "delivered_at": now}
                    for i in range(OLD_PER_KEYWORD)
                ]
        conn.execute(insert(Subscription), subscriptions)
        conn.execute(insert(Delivery), deliveries)


def paper_id(keyword: int, i: int) -> str:
    return f"{2600 + i:04d}.{keyword:05d}"


# -- the run --------------------------------------------------------------------------------


async def fan_out(url: str, processes: int, concurrency: int, paced: bool) -> dict[str, Any]:
    settings = Settings(database_url=url, arxiv_api_url="http://127.0.0.1:9/api/query")
    platforms = {p: RateLimitedPlatform(p) for p in ("slack", "discord")}
    start = time.monotonic()
    runners = []
    for n in range(processes):
        engine = make_engine(url)
        core = Core(settings, engine, ArxivGateway(settings, engine))
        posters = [FakePoster(p, target, start, paced=paced) for p, target in platforms.items()]
        runners.append(DigestRunner(core, posters, owner=f"bench-{n}", max_concurrent=concurrency))
    outcomes = await asyncio.gather(*(r.run_due() for r in runners))
    wall = time.monotonic() - start
    with runners[0].core.engine.connect() as conn:
        claims = Counter(conn.execute(text("SELECT status FROM digest_claims")).scalars())
    for runner in runners:
        runner.close()
        runner.core.engine.dispose()
    return {"wall": wall, "platforms": platforms, "outcomes": outcomes, "claims": claims}


def report(result: dict[str, Any], channels: int) -> None:
    platforms: dict[str, RateLimitedPlatform] = result["platforms"]
    messages = Counter[str]()
    posts = Counter[str]()
    papers = Counter[tuple[str, str]]()
    for platform in platforms.values():
        messages.update(platform.messages)
        posts.update(platform.posts)
        papers.update(platform.papers)
    duplicates = sum(n - 1 for n in posts.values() if n > 1) + sum(
        n - 1 for n in papers.values() if n > 1
    )
    most = max(messages.values(), default=0)
    minimum = (most - 1) * INTERVAL + LATENCY * most
    finished = sorted(t for p in platforms.values() for t in p.finished)
    print(
        f"channels: {channels} ({', '.join(f'{p}: {len(t.posts)}' for p, t in platforms.items())})"
    )
    if FORMATTERS_NOTE:
        print(f"note: {FORMATTERS_NOTE}")
    print("platforms: in-process fakes, 1 message/s/channel, 429 + Retry-After otherwise")
    print(f"wall time: {result['wall']:.2f} s")
    print(f"posts sent: {sum(posts.values())} (claims: {dict(result['claims'])})")
    per = {p: Counter(t.messages.values()) for p, t in platforms.items()}
    print(f"messages sent: {sum(messages.values())} (messages per channel: {per})")
    print(
        f"papers delivered: {len(papers)} (expected {channels * KEYWORDS_PER_CHANNEL * NEW_PER_KEYWORD})"
    )
    print(f"duplicates: {duplicates}")
    print(f"429s received: {sum(p.rejected for p in platforms.values())}")
    print(f"minimum the rate limits allow: {minimum:.2f} s; ratio: {result['wall'] / minimum:.2f}")
    if finished:
        p50 = statistics.median(finished)
        p99 = finished[min(len(finished) - 1, round(0.99 * (len(finished) - 1)))]
        print(f"channel done after: p50 {p50:.2f} s, p99 {p99:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=MAX_CONCURRENT_CHANNELS)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--reactive", action="store_true", help="posters do not pace; they only obey 429s"
    )
    args = parser.parse_args()
    with scratch_database(args.database_url) as url:
        engine = make_engine(url)
        ensure_schema(engine)
        began = time.monotonic()
        populate(engine, args.channels)
        engine.dispose()
        print(
            f"set-up: {time.monotonic() - began:.1f} s; database: {url.split('?')[0].split('://')[0]}, "
            f"{args.processes} process(es), concurrency {args.concurrency}"
        )
        result = asyncio.run(
            fan_out(url, args.processes, args.concurrency, paced=not args.reactive)
        )
    report(result, args.channels)


if __name__ == "__main__":
    main()

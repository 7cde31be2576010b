"""Saved papers and feeds: what a feed reader's poll, `saved bibtex` and the harvest's category
writes cost.

Run: `python -m bench.bench_feeds [--database-url URL] [--keywords K] [--papers N] [--saves S]`.
Prints medians (and p90) of several runs:

- a feed request over HTTP (the real aiohttp route on 127.0.0.1) for a channel of K keywords with
  N papers each: a full answer (200, 50 entries written by feedgen) and a conditional one (304);
  an unknown token (404) beside them, whose time is one hash and one indexed lookup;
- `saved bibtex` for a person with S saves (one query, bibtexparser with LaTeX encoding);
- `categories.record_harvested` for a 1,000-record harvest page, when none of its papers is
  stored (the usual day) and when all are (the worst day).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import aiohttp
from aiohttp import web

from adapters import feeds as feed_routes
from bench.common import median_seconds, percentile, scratch_database
from bot.arxiv.answers import FetchedPaper, HarvestedPaper
from bot.arxiv.gateway import ArxivGateway
from bot.commands.core import Core, Place
from bot.commands.grammar import Feed, Saved
from bot.config import Settings
from bot.storage import catalog, categories, saves, store
from bot.storage.db import ensure_schema, make_engine, write_session

PLACE = Place("slack", "T1", "C1", user_id="U1")


def synthetic_papers(keyword: int, count: int) -> list[FetchedPaper]:
    base = datetime(2025, 1, 1, tzinfo=UTC)
    return [
        FetchedPaper(
            arxiv_id=f"{2000 + keyword // 100:04d}.{(keyword % 100) * 1000 + i:05d}",
            version=1 + i % 3,
            title=f"Paper {i} of keyword {keyword}: {{braces}}, 100% R&D, café",
            authors=tuple(f"Author {a} Müller" for a in range(12)),
            abstract="We study virtual try-on with diffusion transformers and more. " * 20,
            comment="Accepted at CVPR 2025" if i % 2 else "",
            published=base + timedelta(hours=i),
            updated=base + timedelta(hours=i, minutes=keyword),
            primary_category="cs.CV",
            categories=("cs.CV", "cs.LG", "eess.IV"),
        )
        for i in range(count)
    ]


def build(url: str, keywords: int, papers: int, saved: int) -> tuple[Core, list[str]]:
    engine = make_engine(url)
    ensure_schema(engine)
    settings = Settings(database_url=url)
    core = Core(settings, engine, ArxivGateway(settings, engine))
    ids: list[str] = []
    with write_session(engine) as session:
        workspace = store.ensure_workspace(session, platform="slack", external_id="T1")
        channel = store.ensure_channel(session, workspace=workspace, external_id="C1")
        for k in range(keywords):
            keyword = store.ensure_keyword(session, f"Keyword {k}")
            store.subscribe(session, channel=channel, keyword=keyword, label=f"Keyword {k}")
            batch = synthetic_papers(k, papers)
            catalog.record_answer(session, keyword_id=keyword.id or 0, papers=batch)
            ids += [p.arxiv_id for p in batch]
        now = datetime.now(UTC)
        for n, arxiv_id in enumerate(ids[:saved]):
            saves.save(
                session,
                workspace_id=workspace.id or 0,
                user_id="U1",
                paper_id=arxiv_id,
                now=now + timedelta(seconds=n),
            )
    return core, ids


async def time_requests(core: Core, runs: int) -> dict[str, list[float]]:
    (reply,) = core.execute(PLACE, Feed())
    token = reply.text.split("/feeds/", 1)[1].split(".atom", 1)[0]  # type: ignore[union-attr]
    app = web.Application()
    feed_routes.mount(app, core)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}/feeds/"
    times: dict[str, list[float]] = {"200": [], "304": [], "404": []}
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}{token}.atom") as first:
                etag = first.headers["ETag"]
            for _ in range(runs):
                for kind, url, headers in (
                    ("200", f"{base}{token}.atom", {}),
                    ("304", f"{base}{token}.atom", {"If-None-Match": etag}),
                    ("404", f"{base}{'x' * len(token)}.atom", {}),
                ):
                    start = time.perf_counter()
                    async with http.get(url, headers=headers) as response:
                        await response.read()
                        assert str(response.status) == kind, (kind, response.status)
                    times[kind].append(time.perf_counter() - start)
    finally:
        await runner.cleanup()
    return times


def harvest_page(ids: list[str], stored: bool, run: int) -> list[HarvestedPaper]:
    """1,000 records; each run names other categories, so stored papers are written each time."""
    listed = ("cs.LG", "cs.CV") if run % 2 else ("cs.CV", "cs.LG")
    chosen = ids[:1000] if stored else [f"2999.{i:05d}" for i in range(1000)]
    return [
        HarvestedPaper(i, "t", "a", frozenset(listed), listed_categories=listed) for i in chosen
    ]


def timed(fn: Callable[[], object], runs: int) -> str:
    return f"{median_seconds(fn, runs) * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: SQLite)")
    parser.add_argument("--keywords", type=int, default=20)
    parser.add_argument("--papers", type=int, default=100)
    parser.add_argument("--saves", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with scratch_database(args.database_url) as url:
        core, ids = build(url, args.keywords, args.papers, args.saves)
        kind = url.split(":", 1)[0]
        print(f"{kind}: {args.keywords} keywords x {args.papers} papers, {args.saves} saves")
        times = asyncio.run(time_requests(core, args.runs))
        for status, values in times.items():
            ms = [v * 1000 for v in values]
            print(
                f"  GET feed ({status}): median {statistics.median(ms):.1f} ms, "
                f"p90 {percentile(ms, 90):.1f} ms over {len(ms)} requests"
            )
        print(
            f"  saved bibtex, {args.saves} papers: {timed(lambda: core.execute(PLACE, Saved(bibtex=True)), 5)}"
        )
        for stored in (False, True):
            pages = (harvest_page(ids, stored, run) for run in range(1_000_000))

            def write(pages: Iterator[list[HarvestedPaper]] = pages) -> None:
                with write_session(core.engine) as session:
                    categories.record_harvested(session, next(pages))

            label = "all stored, all changed" if stored else "none stored"
            print(f"  harvest categories, 1000-record page ({label}): {timed(write, 5)}")
        core.engine.dispose()


if __name__ == "__main__":
    main()

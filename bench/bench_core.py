"""Core benchmarks: README export, Atom ingest, and the peak memory of `papers readme`.

Run: `python -m bench.bench_core` (add `--quick` for a smaller run). Prints medians of several runs.
What each includes: the export is `Core.readme` in this process (the query and the rendering,
no process start-up: bench_startup measures whole `papers readme` processes); the ingest parses
copies of the 100-paper fixture feed with the arxiv library's parser and stores them (no HTTP:
it stands in for the answers of a refresh); the memory is the peak resident set of a whole
`papers readme -o FILE` process on a SQLite store of 7 keywords x 100 papers.
Targets (issue 2): 7 × 100 export < 50 ms; 1,000 × 100 export < 3 s; ingest > 2,000 papers/s;
`papers readme` on the 7 × 100 store < 120 MB peak RSS.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from bench.common import median_seconds
from bot.arxiv.answers import FetchedPaper
from bot.arxiv.api import to_fetched
from bot.arxiv.gateway import ArxivGateway
from bot.commands.core import TERMINAL, Core
from bot.config import Settings
from bot.storage import catalog, store
from bot.storage.db import ensure_schema, make_engine, write_session

FEED = (
    Path(__file__).resolve().parents[1]
    / "tests"
    / "fixtures"
    / "dailyarxiv"
    / "feeds"
    / "virtual-try-on.atom.xml"
)


def synthetic_papers(keyword: int, count: int) -> list[FetchedPaper]:
    base = datetime(2025, 1, 1, tzinfo=UTC)
    abstract = "We study virtual try-on with diffusion transformers | and more. " * 12
    return [
        FetchedPaper(
            arxiv_id=f"{2000 + keyword // 100:04d}.{(keyword % 100) * 1000 + i:05d}",
            version=1 + i % 3,
            title=f"Paper {i} of keyword {keyword}: a study of things",
            authors=("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"),
            abstract=abstract,
            comment="Accepted at CVPR 2025, project page: https://example.org" if i % 2 else "",
            published=base + timedelta(hours=i),
            updated=base + timedelta(hours=i, minutes=keyword),
        )
        for i in range(count)
    ]


def build_store(url: str, keywords: int, papers: int) -> Core:
    engine = make_engine(url)
    ensure_schema(engine)
    settings = Settings(database_url=url)
    core = Core(settings, engine, ArxivGateway(settings, engine))
    with write_session(engine) as session:
        workspace = store.ensure_workspace(session, platform="terminal", external_id="local")
        channel = store.ensure_channel(session, workspace=workspace, external_id="terminal")
        for k in range(keywords):
            keyword = store.ensure_keyword(session, f"Keyword {k}")
            store.subscribe(session, channel=channel, keyword=keyword, label=f"Keyword {k}")
            batch = synthetic_papers(k, papers)
            catalog.upsert_papers(session, batch)
            catalog.add_matches(
                session, keyword_id=keyword.id, paper_ids=[p.arxiv_id for p in batch]
            )  # type: ignore[arg-type]
    return core


def bench_export(tmp: Path, keywords: int, runs: int) -> float:
    core = build_store(f"sqlite:///{tmp / f'export-{keywords}.db'}", keywords, 100)
    readme = core.readme(TERMINAL)
    assert readme.count("\n## ") + readme.startswith("## ") == keywords
    return median_seconds(lambda: core.readme(TERMINAL), runs)


def feed_copies(copies: int) -> list[bytes]:
    """Copies of the 100-paper fixture feed, each with its own arXiv ids."""
    raw = FEED.read_bytes()
    pattern = re.compile(rb"abs/(\d{4})\.(\d{4,5})")

    def renumber(n: int) -> bytes:
        def new_id(m: re.Match[bytes]) -> bytes:
            return b"abs/%s.%05d" % (m.group(1), (int(m.group(2)) + n * 7919) % 100000)

        return pattern.sub(new_id, raw)

    return [renumber(n) for n in range(copies)]


def bench_ingest(tmp: Path, copies: int, runs: int) -> float:
    from arxiv import _feed

    feeds = feed_copies(copies)

    def ingest(engine: Engine) -> int:
        count = 0
        with write_session(engine) as session:
            keyword = store.ensure_keyword(session, "Virtual Try-On")
            for body in feeds:
                papers = [to_fetched(r) for r in _feed.parse(body).results]
                catalog.upsert_papers(session, papers)
                catalog.add_matches(
                    session, keyword_id=keyword.id or 0, paper_ids=[p.arxiv_id for p in papers]
                )
                count += len(papers)
        return count

    rates = []
    for run in range(runs):
        engine = make_engine(f"sqlite:///{tmp / f'ingest-{run}.db'}")
        ensure_schema(engine)
        start = time.perf_counter()
        count = ingest(engine)
        rates.append(count / (time.perf_counter() - start))
        engine.dispose()
    return statistics.median(rates)


def bench_readme_memory(tmp: Path, runs: int) -> float:
    url = f"sqlite:///{tmp / 'memory.db'}"
    build_store(url, 7, 100).engine.dispose()
    peaks = []
    for _ in range(runs):
        env = {**os.environ, "DATABASE_URL": url}
        # VmHWM, not ru_maxrss: the latter keeps the forking parent's high-water mark across exec.
        code = (
            "import sys\nfrom adapters.cli import main\nmain(['readme', '-o', sys.argv[1]])\n"
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(tmp / "README.md")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        peaks.append(int(out.stdout.strip().splitlines()[-1]) / 1024)
    return statistics.median(peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="fewer runs and a 100-keyword large export"
    )
    args = parser.parse_args()
    runs = 3 if args.quick else 7
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        small = bench_export(tmp, 7, runs * 3)
        print(f"export 7 x 100 papers:        median {small * 1000:8.1f} ms   (target < 50 ms)")
        big_keywords = 100 if args.quick else 1000
        big = bench_export(tmp, big_keywords, max(3, runs // 2))
        print(
            f"export {big_keywords} x 100 papers:  median {big * 1000:8.1f} ms   (target < 3000 ms for 1,000)"
        )
        rate = bench_ingest(tmp, 10 if args.quick else 50, runs)
        print(f"ingest (parse + upsert):      median {rate:8.0f} papers/s (target > 2,000)")
        peak = bench_readme_memory(tmp, 3)
        print(f"papers readme peak RSS:       median {peak:8.1f} MB   (target < 120 MB)")
    print(
        f"(max RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)"
    )


if __name__ == "__main__":
    main()

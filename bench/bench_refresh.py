"""Daily refresh benchmark: harvest → prefilter → confirm against one query per keyword.

Run: `python -m bench.bench_refresh` (SQLite; `--database-url postgresql+psycopg://…` for
PostgreSQL, a fresh schema dropped afterwards). 10,000 keywords (the 7 seed keywords of
DailyArXiv plus synthetic phrases of 2-3 words of six letters or more drawn from real titles
in tests/fixtures), and an
announcement day of about 1,500 new papers (real titles, abstracts recombined from real
sentences) served by the loopback OAI-PMH and API stand-ins with ARXIV_DELAY_SECONDS=0. arXiv's
own matching is played by the API stand-in: a keyword's papers are those whose title or
abstract holds its phrase word for word (stricter than the prefilter, as arXiv is).
Prints the requests sent against today's 10,000, their time at 3 s each, the local prefilter
time (median of 5; target < 2 s) and the peak memory of the process.

The fixtures hold one field (virtual try-on, person re-identification), so by default every
keyword and every paper of the day share one vocabulary: the worst case, where most keywords
find a candidate. A real day spreads over about 150 categories (cs.CV alone gets some 150-200
papers). `--fields N` models that: keywords and papers are dealt into N fields, each written in
its own copy of the vocabulary (every word prefixed with the field's tag, which keeps Snowball
stems apart between fields and together within one), so a keyword can only find candidates among
its own field's share of the day.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
from datetime import UTC, datetime, timedelta

import requests
from lxml import etree
from sqlalchemy import insert

from bench.common import peak_rss_mb, scratch_database
from bot.arxiv.gateway import ArxivGateway
from bot.arxiv.harvest import parse_file
from bot.arxiv.prefilter import KeywordIndex
from bot.commands.core import TERMINAL, Core
from bot.commands.grammar import parse
from bot.config import Settings
from bot.keywords import keyword_key, parse_keyword
from bot.storage.db import ensure_schema, make_engine, write_session
from bot.storage.models import Keyword, Subscription
from bot.storage.store import keyword_columns
from tests.fakes.arxiv_server import ArxivStandIn, make_entry
from tests.support.common import FIXTURES

SEEDS = (
    "Clothes Changing Person ReID",
    "Virtual Try-On",
    "Gaussian Splatting",
    "Diffusion Models",
    "Image Editing",
    "Neural Radiance Fields",
    "Vision Language Models",
)
A = "{http://www.w3.org/2005/Atom}"
PER_KEYWORD_SECONDS = 3.0


def real_texts() -> list[tuple[str, str]]:
    """(title, abstract) of every real paper in the fixtures."""
    texts = []
    for path in [*FIXTURES.glob("dailyarxiv/feeds/*.xml"), *FIXTURES.glob("arxiv-api/*query*")]:
        for entry in etree.parse(str(path)).getroot().iterfind(f"{A}entry"):
            title, summary = entry.findtext(f"{A}title") or "", entry.findtext(f"{A}summary") or ""
            texts.append((" ".join(title.split()), " ".join(summary.split())))
    return texts


def in_field(text: str, field: int) -> str:
    """`text` in field `field`'s own vocabulary (field 0: as it is)."""
    if field == 0:
        return text
    tag = "zq" + "".join(chr(ord("a") + int(digit)) for digit in str(field))
    return re.sub(r"[A-Za-z]+", lambda m: f"{tag}{m.group(0)}", text)


def keywords(
    texts: list[tuple[str, str]], count: int, rng: random.Random, *, seeds: tuple[str, ...]
) -> list[str]:
    """The seeds, then phrases of 2-3 words drawn from different real titles."""
    words = sorted({w for t, _ in texts for w in re.findall(r"[A-Za-z][A-Za-z-]{5,}", t)})
    chosen = {keyword_key(seed): seed for seed in seeds}
    while len(chosen) < count:
        phrase = " ".join(rng.sample(words, rng.choice((2, 2, 3))))
        chosen.setdefault(keyword_key(phrase), phrase)
    return list(chosen.values())


def day_papers(
    texts: list[tuple[str, str]], count: int, rng: random.Random, *, first: int = 0
) -> list[bytes]:
    sentences = [s for _, a in texts for s in re.split(r"(?<=\.) ", a) if len(s) > 20]
    now = datetime.now(UTC)
    return [
        make_entry(
            f"2601.{n:05d}",
            title=rng.choice(texts)[0],
            summary=" ".join(rng.sample(sentences, 6)),
            updated=now - timedelta(minutes=n),
        )
        for n in range(first, first + count)
    ]


def load_keywords(core: Core, labels: list[str]) -> None:
    """Every keyword followed by the terminal channel and fetched yesterday (a backfill)."""
    core.execute(TERMINAL, parse(f"add {labels[0]}"))
    yesterday = datetime.now(UTC) - timedelta(days=1)
    rows = [
        {
            **keyword_columns(parse_keyword(label)),
            "fetch_status": "ok",
            "created_at": yesterday,
            "last_success_at": yesterday,
        }
        for label in labels[1:]
    ]
    with write_session(core.engine) as session:
        session.execute(insert(Keyword), rows)
        ids = session.execute(Keyword.__table__.select()).all()  # type: ignore[attr-defined]
        channel_id = session.execute(Subscription.__table__.select()).first().channel_id  # type: ignore[attr-defined,union-attr]
        subs = [
            {
                "channel_id": channel_id,
                "keyword_id": row.id,
                "label": row.phrase,
                "created_at": yesterday,
            }
            for row in ids[1:]
        ]
        session.execute(insert(Subscription), subs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url")
    parser.add_argument("--keywords", type=int, default=10_000)
    parser.add_argument("--papers", type=int, default=1_500)
    parser.add_argument("--fields", type=int, default=1, help="fields the day spreads over")
    args = parser.parse_args()
    rng = random.Random(11)
    texts = real_texts()
    labels: list[str] = []
    papers: list[bytes] = []
    for field in range(args.fields):
        local = [(in_field(t, field), in_field(a, field)) for t, a in texts]
        share = args.keywords // args.fields + (field < args.keywords % args.fields)
        labels += keywords(local, share, rng, seeds=SEEDS if field == 0 else ())
        count = args.papers // args.fields + (field < args.papers % args.fields)
        papers += day_papers(local, count, rng, first=len(papers))
    harvested = parse_file(_oai_page(papers))
    with ArxivStandIn() as arxiv, scratch_database(args.database_url) as url:
        elements = [etree.fromstring(p) for p in papers]
        grams = [_ngrams(f"{h.title} {h.abstract}") for h in harvested]
        truth = 0
        for label in labels:
            wanted = " ".join(label.lower().split())
            found = [e for e, g in zip(elements, grams, strict=True) if wanted in g]
            arxiv.add_entries(label, found)
            truth += len(found)
        settings = Settings(
            database_url=url,
            arxiv_api_url=arxiv.url,
            arxiv_oai_url=arxiv.oai_url,
            arxiv_delay_seconds=0,
        )
        engine = make_engine(url)
        ensure_schema(engine)
        core = Core(settings, engine, ArxivGateway(settings, engine))
        load_keywords(core, labels)
        arxiv.announce(elements)
        before = len(arxiv.requests)
        start = time.perf_counter()
        outcomes = core.refresh_all()
        wall = time.perf_counter() - start
        sent = arxiv.requests[before:]
        pages = sum(r.path == "/oai" for r in sent)
        confirms = len(sent) - pages
        assert all(o.ok for o in outcomes), [o for o in outcomes if not o.ok][:3]
        matched = sum(o.found for o in outcomes)
        prefilter, parsing = [], []
        for _ in range(5):
            t0 = time.perf_counter()
            specs = [parse_keyword(label) for label in labels]
            parsing.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            index = KeywordIndex(enumerate(specs))
            candidates = index.match(harvested)
            prefilter.append(time.perf_counter() - t0)
        engine.dispose()
    requests = pages + confirms
    print(
        f"{len(labels)} keywords, an announcement day of {len(papers)} papers in {args.fields} "
        f"field(s) on {engine.dialect.name}"
    )
    print(
        f"candidates: {len(candidates)} (keyword, paper) pairs for {len({k for k, _ in candidates})} keywords; arXiv (stand-in) confirmed {matched} matches (expected {truth})"
    )
    print(
        f"requests: {requests} ({pages} harvest pages + {confirms} confirm requests) against {len(labels)} per-keyword requests today: {len(labels) / requests:.1f}x fewer"
    )
    print(
        f"at {PER_KEYWORD_SECONDS:.0f} s a request: {requests * PER_KEYWORD_SECONDS / 60:.1f} min against {len(labels) * PER_KEYWORD_SECONDS / 3600:.1f} h"
    )
    print(
        f"prefilter (index {len(labels)} keywords + match {len(harvested)} papers): median {statistics.median(prefilter):.2f} s of 5 (target < 2 s)"
    )
    print(
        f"parsing the {len(labels)} keywords' text (rule grammar): median {statistics.median(parsing) * 1000:.0f} ms of 5"
    )
    print(f"whole refresh through the stand-ins, no delay: {wall:.1f} s wall")
    print(f"peak memory of this process: {peak_rss_mb():.0f} MB")


def _ngrams(text: str) -> set[str]:
    """Every run of 1-5 words of `text`, lower-cased (a phrase "occurs word for word")."""
    words = re.findall(r"[\w-]+", text.lower())
    return {" ".join(words[i : i + n]) for n in range(1, 6) for i in range(len(words) - n + 1)}


def _oai_page(papers: list[bytes]) -> bytes:
    """The day's records as one ListRecords answer (what the harvest parses)."""
    with ArxivStandIn(oai_page_size=len(papers) + 1) as server:
        server.announce(papers)
        return requests.get(
            server.oai_url,
            params={"verb": "ListRecords", "metadataPrefix": "arXivRaw", "from": "2000-01-01"},
            timeout=60,
        ).content


if __name__ == "__main__":
    main()

"""Bulk-loads the synthetic stores the benchmarks run against (fast SQL, not the services).

Every store has keywords "Keyword 0" … "Keyword k-1" and papers 0 … n-1 (`paper_fields`), paper
n matching keyword n % k. One measured channel follows the first `followed` keywords; the other
channels follow keywords as `load` describes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import Engine, insert, text

from bot.commands.core import Place
from bot.storage.db import ensure_schema
from bot.storage.models import Channel, Delivery, Keyword, Match, Paper, Subscription, Workspace

# About 1,200 characters, a real abstract's length: it sets the size of the paper rows, and
# five such papers fill more than the 6,000 characters of one Discord message.
ABSTRACT = (
    "We propose a diffusion-based method for virtual try-on that preserves garment detail "
    "under large pose changes, trained on paired and unpaired images. "
) * 8
BASE = datetime(2024, 1, 1, tzinfo=UTC)  # paper n was published n minutes later
NOW = datetime(2026, 11, 1, tzinfo=UTC)  # when the store was filled and every keyword fetched
AUTHORS = ("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra")
CHUNK = 5_000  # rows an INSERT

T = TypeVar("T")


def batches(rows: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """The rows in lists of at most `size`, so a large store is never all in memory."""
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


def paper_id(n: int) -> str:
    return f"{2400 + n // 100_000:04d}.{n % 100_000:05d}"


def paper_fields(n: int) -> dict[str, object]:
    """Paper number n as the store holds it (and as arXiv would send it again)."""
    moment = BASE + timedelta(minutes=n)
    return {
        "arxiv_id": paper_id(n),
        "version": 1 + n % 3,
        "title": f"Paper {n}: garment-preserving virtual try-on <with> & without poses",
        "abstract": ABSTRACT,
        "comment": "CVPR 2026, 12 pages" if n % 2 else "",
        "published": moment,
        "updated": moment,
    }


def load(
    engine: Engine,
    *,
    keywords: int,
    papers: int,
    channel: Place,
    followed: int,
    others: Sequence[Place],
    per_other: int | None = None,
    second_match_every: int = 0,
    delivered: int = 0,
    analyze: bool = True,
) -> float:
    """Fill an empty store with SQL; returns the seconds taken.

    `channel` (the measured one) follows keywords 0 … followed-1 and has been sent papers
    0 … delivered-1. Each of `others` follows `per_other` keywords, a window sliding over all
    keywords (other c: keywords c·per_other, c·per_other+1, … modulo k); with `per_other` None
    the keywords `channel` does not follow are dealt round-robin among `others` instead. The
    workspaces are the places' distinct (platform, workspace). With `second_match_every` m,
    every m-th paper also matches keyword (7n + 3) % k. `analyze` ends with ANALYZE (planner
    statistics, as a long-running store would have).
    """
    ensure_schema(engine)
    start = time.perf_counter()
    places = [channel, *others]
    workspaces = list(dict.fromkeys((p.platform, p.workspace) for p in places))
    with engine.begin() as conn:
        conn.execute(
            insert(Workspace),
            [
                {
                    "platform": platform,
                    "external_id": external_id,
                    "name": "",
                    "active": True,
                    "created_at": NOW,
                }
                for platform, external_id in workspaces
            ],
        )
        conn.execute(
            insert(Keyword),
            [
                {
                    "key": f"keyword {k}",
                    "phrase": f"Keyword {k}",
                    "words": f"Keyword {k}",
                    "fetch_status": "ok",
                    "fetched_at": NOW,
                    "last_success_at": NOW,
                    "created_at": NOW,
                }
                for k in range(keywords)
            ],
        )
        # Fresh tables: workspaces, keywords and channels get ids 1, 2, … in insertion order.
        conn.execute(
            insert(Channel),
            [
                {
                    "workspace_id": 1 + workspaces.index((p.platform, p.workspace)),
                    "external_id": p.channel,
                    "active": True,
                    "digest_enabled": True,
                    "paused": False,
                    "failed_days": 0,
                    "created_at": NOW,
                }
                for p in places
            ],
        )
        follows = _follows(keywords, followed, len(others), per_other)
        for rows in batches(follows):
            conn.execute(insert(Subscription), rows)
    authors = json.dumps(list(AUTHORS))
    for numbers in batches(range(papers)):
        with engine.begin() as conn:
            conn.execute(
                insert(Paper),
                [{**paper_fields(n), "authors": authors, "stored_at": NOW} for n in numbers],
            )
            conn.execute(insert(Match), _matches(numbers, keywords, second_match_every))
    with engine.begin() as conn:
        for numbers in batches(range(delivered)):
            conn.execute(
                insert(Delivery),
                [{"channel_id": 1, "paper_id": paper_id(n), "delivered_at": NOW} for n in numbers],
            )
    if analyze:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return time.perf_counter() - start


def _follows(
    keywords: int, followed: int, others: int, per_other: int | None
) -> Iterator[dict[str, Any]]:
    """Subscription rows: channel 1 (the measured one), then the others, channels 2 … others+1."""
    for channel_id in range(1, others + 2):
        c = channel_id - 2
        chosen: Iterable[int]
        if channel_id == 1:
            chosen = range(followed)
        elif per_other is None:
            chosen = range(followed + c, keywords, others)
        else:
            chosen = [(c * per_other + j) % keywords for j in range(per_other)]
        for position, k in enumerate(chosen):
            yield {
                "channel_id": channel_id,
                "keyword_id": 1 + k,
                "label": f"Keyword {k}",
                "created_at": NOW + timedelta(seconds=position),
            }


def _matches(numbers: list[int], keywords: int, second_every: int) -> list[dict[str, Any]]:
    rows = [
        {"keyword_id": 1 + n % keywords, "paper_id": paper_id(n), "first_seen_at": NOW}
        for n in numbers
    ]
    if second_every:
        rows += [
            {"keyword_id": 1 + second, "paper_id": paper_id(n), "first_seen_at": NOW}
            for n in numbers
            if n % second_every == 0 and (second := (n * 7 + 3) % keywords) != n % keywords
        ]
    return rows


def follow(engine: Engine, place: Place, numbers: Sequence[int]) -> None:
    """Add a channel (in the place's existing workspace) following keywords `numbers`."""
    with engine.begin() as conn:
        workspace = conn.execute(
            text("SELECT id FROM workspaces WHERE platform = :p AND external_id = :w"),
            {"p": place.platform, "w": place.workspace},
        ).scalar_one()
        conn.execute(
            insert(Channel),
            [
                {
                    "workspace_id": workspace,
                    "external_id": place.channel,
                    "active": True,
                    "digest_enabled": True,
                    "paused": False,
                    "failed_days": 0,
                    "created_at": NOW,
                }
            ],
        )
        channel = conn.execute(
            text("SELECT id FROM channels WHERE workspace_id = :w AND external_id = :c"),
            {"w": workspace, "c": place.channel},
        ).scalar_one()
        conn.execute(
            insert(Subscription),
            [
                {
                    "channel_id": channel,
                    "keyword_id": 1 + k,
                    "label": f"Keyword {k}",
                    "created_at": NOW + timedelta(seconds=position),
                }
                for position, k in enumerate(numbers)
            ],
        )

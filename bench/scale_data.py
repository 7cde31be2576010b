"""Bulk-loads a large synthetic store for the scale benchmarks (fast SQL, not the services)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, text

from bot.db import ensure_schema
from bot.models import Channel, Delivery, Keyword, Match, Paper, Subscription, Workspace

ABSTRACT = (
    "We propose a method for virtual try-on that keeps garment details under large pose changes, "
    "using a diffusion transformer conditioned on body parsing; experiments on two datasets show "
    "gains in FID and user preference over strong baselines."
)


BASE = datetime(2024, 1, 1, tzinfo=UTC)
AUTHORS = ("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra")


def paper_id(n: int) -> str:
    return f"{2400 + n // 100_000:04d}.{n % 100_000:05d}"


def paper_fields(n: int) -> dict[str, object]:
    """Paper number n as the store holds it (and as arXiv would send it again)."""
    moment = BASE + timedelta(minutes=n)
    return {
        "arxiv_id": paper_id(n),
        "version": 1 + n % 3,
        "title": f"Paper {n}: a study of virtual try-on",
        "abstract": ABSTRACT,
        "comment": "CVPR 2026" if n % 2 else "",
        "published": moment,
        "updated": moment,
    }


def load(
    engine: Engine,
    *,
    keywords: int,
    papers: int,
    channels: int,
    per_channel: int = 20,
    chunk: int = 20_000,
) -> float:
    """Fill an empty store; returns seconds taken. Papers are spread evenly over keywords."""
    ensure_schema(engine)
    start = time.perf_counter()
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(Workspace),
            [
                {
                    "platform": p,
                    "external_id": f"{p}-W{i}",
                    "name": "",
                    "active": True,
                    "created_at": now,
                }
                for i, p in enumerate(("slack", "discord"))
            ]
            + [
                {
                    "platform": "terminal",
                    "external_id": "local",
                    "name": "",
                    "active": True,
                    "created_at": now,
                }
            ],
        )
        conn.execute(
            insert(Keyword),
            [
                {
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
        conn.execute(
            insert(Channel),
            [
                {
                    "workspace_id": 1 + c % 2,
                    "external_id": f"C{c}",
                    "active": True,
                    "digest_enabled": True,
                    "paused": False,
                    "failed_days": 0,
                    "created_at": now,
                }
                for c in range(channels)
            ]
            + [
                {
                    "workspace_id": 3,
                    "external_id": "terminal",
                    "active": True,
                    "digest_enabled": True,
                    "paused": False,
                    "failed_days": 0,
                    "created_at": now,
                }
            ],
        )
        subs = [
            {
                "channel_id": c + 1,
                "keyword_id": 1 + (c * per_channel + j) % keywords,
                "label": f"Keyword {(c * per_channel + j) % keywords}",
                "created_at": now + timedelta(seconds=j),
            }
            for c in range(channels)
            for j in range(per_channel)
        ]
        subs += [
            {
                "channel_id": channels + 1,
                "keyword_id": 1 + j,
                "label": f"Keyword {j}",
                "created_at": now + timedelta(seconds=j),
            }
            for j in range(per_channel)
        ]
        for i in range(0, len(subs), chunk):
            conn.execute(insert(Subscription), subs[i : i + chunk])
    authors = json.dumps(list(AUTHORS))
    for i in range(0, papers, chunk):
        rows = [
            {**paper_fields(n), "authors": authors, "stored_at": now}
            for n in range(i, min(papers, i + chunk))
        ]
        matches = [
            {"keyword_id": 1 + n % keywords, "paper_id": paper_id(n), "first_seen_at": now}
            for n in range(i, min(papers, i + chunk))
        ]
        with engine.begin() as conn:
            conn.execute(insert(Paper), rows)
            conn.execute(insert(Match), matches)
    # Every channel has seen every paper but the newest ten of each keyword.
    seen_limit = papers - 10 * keywords
    with engine.begin() as conn:
        rows = [
            {"channel_id": channels + 1, "paper_id": paper_id(n), "delivered_at": now}
            for n in range(0, max(0, min(seen_limit, 100_000)))
        ]
        for i in range(0, len(rows), chunk):
            conn.execute(insert(Delivery), rows[i : i + chunk])
    with engine.begin() as conn:
        conn.execute(
            text("ANALYZE")
        )  # planner statistics, as autovacuum keeps them on a live store
    return time.perf_counter() - start

"""Fan-out benchmark: one morning's daily posts to 1,000 channels through the real posters.

    python -m bench.bench_fanout --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    python -m bench.bench_fanout            # SQLite file in a temp directory; --channels, --runs

Half the channels are Slack channels, half Discord channels; every 10th gets a post of several
parts (1,000 channels: 1,150 messages). A child process runs the real scheduler, front ends
and posters (`tests/fanout.py`, as `papers serve` starts them) against the loopback Slack and
Discord stand-ins in this process; the Slack stand-in answers 429 to a second message into a
channel within a second. Two runs, each on a fresh database, `--runs` times:

- straight: one process posts everything;
- kill -9 half-way: the process is killed when half the messages are in, a new one is started
  at once and finishes (it takes the dead process's claims when their lease runs out).

Prints, per run (medians): posts and messages expected, messages sent, duplicated and lost
(both must be 0), papers lost, 429s, wall time from the start of the first process and from
its first message, and the minimum the rate limits allow (Slack: the parts of one channel's
post one second apart; Discord's buckets allow a post's parts at once).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import time
from collections import Counter
from typing import Any

from bench.common import scratch_database
from bot.storage.db import ensure_schema, make_engine
from tests import fanout
from tests.fakes.discord_server import DiscordStandIn
from tests.fakes.slack_server import SlackWebAPI

INTEGERS = ("posts", "messages", "sent", "duplicated", "lost", "papers lost", "429s")
RUNNER = {"lease_seconds": 5.0, "renew_seconds": 1.0, "sweep_seconds": 1.0}


async def run(url: str, channels: int, kill: bool) -> dict[str, float]:
    engine = make_engine(url)
    ensure_schema(engine)
    async with SlackWebAPI() as slack, DiscordStandIn(heartbeat_interval_ms=5000) as ds:
        slack.enforce_rate_limit(per_channel_per_second=1)
        world = fanout.populate(engine, slack, ds, channels)
        arrivals: list[float] = []
        process: list[asyncio.subprocess.Process] = []

        def arrived(_channel: str, _message: dict[str, Any]) -> None:
            arrivals.append(time.monotonic())
            if kill and len(arrivals) == world.parts // 2:
                os.kill(process[0].pid, signal.SIGKILL)

        slack.after_post = ds.after_post = arrived
        began = time.monotonic()
        process.append(await fanout.spawn(fanout.config(url, slack, ds, owner="a", **RUNNER)))
        if kill:
            await process[0].wait()
            process[0] = await fanout.spawn(fanout.config(url, slack, ds, owner="b", **RUNNER))
        while await asyncio.to_thread(fanout.open_claims, engine) != (0, channels):
            await asyncio.sleep(0.1)
        done = time.monotonic()
        process[0].send_signal(signal.SIGTERM)
        await process[0].wait()
        copies, shown = fanout.copies(slack, ds), fanout.shown(slack, ds)
        rate_limited = slack.rate_limited_count
    engine.dispose()
    expected = {(ch, p) for ch, papers in world.papers.items() for p in papers}
    slack_parts = Counter(channel for channel, _claim, _part in copies if channel[0] == "C")
    return {
        "posts": channels,
        "messages": world.parts,
        "sent": sum(copies.values()),
        "duplicated": sum(n - 1 for n in copies.values()),
        "lost": world.parts - len(copies),
        "papers lost": len(expected - set(shown)),
        "429s": rate_limited,
        "wall": done - began,
        "from first message": done - arrivals[0],
        "minimum": float(max(slack_parts.values(), default=1) - 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    print(
        f"{args.channels} channels, {args.runs} runs each; lease {RUNNER['lease_seconds']:g} s "
        f"(production: 60 s), sweep {RUNNER['sweep_seconds']:g} s (production: 30 s)"
    )
    for name, kill in (("straight", False), ("kill -9 half-way, restart", True)):
        results = []
        for _ in range(args.runs):
            with scratch_database(args.database_url) as url:
                results.append(asyncio.run(run(url, args.channels, kill)))
        medians = {k: statistics.median(r[k] for r in results) for k in results[0]}
        print(f"\n{name}:")
        for key, value in medians.items():
            print(f"  {key}: {value:g}" if key in INTEGERS else f"  {key}: {value:.2f} s")
        ratio = medians["from first message"] / max(medians["minimum"], 1.0)
        print(f"  ratio to the rate limits' minimum (from the first message): {ratio:.1f}")


if __name__ == "__main__":
    main()

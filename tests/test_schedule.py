"""The scheduler of `papers serve`: its sweep posting a channel at its time, start-up catch-up
across restarts, the once-a-day refresh, a graceful stop, and two processes on one database
(SQLite file and, with TEST_DATABASE_URL, PostgreSQL)."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import select

from bot.arxiv.daily import REFRESH_LEASE_NAME, DailyRefresh, last_refresh_slot
from bot.arxiv.gateway import ArxivGateway
from bot.commands.core import Core, Place
from bot.commands.grammar import Add
from bot.config import Settings
from bot.health import health_report
from bot.posts.runner import DigestRunner
from bot.posts.schedule import start_scheduler
from bot.storage.db import make_engine, read_session, write_session
from bot.storage.models import DigestClaim, Lease
from tests.fakes.arxiv_server import ArxivStandIn, make_entry
from tests.support.digest import (
    SLACK,
    FakePoster,
    add_paper,
    channel_of,
    claims,
    entry,
    follow,
    parts,
    utc,
)


async def wait_for_posts(poster: FakePoster, count: int, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while len(poster.messages) < count and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)


async def test_the_sweep_posts_a_channel_at_its_time(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 2, 7))
    time_machine.move_to(utc(2026, 3, 2, 8, 59, 59), tick=True)
    poster = FakePoster()
    scheduler = await start_scheduler(core, [poster], startup_delay=0, sweep_seconds=0.2)
    try:
        await scheduler.idle()
        assert poster.messages == []  # start-up: not due yet
        await wait_for_posts(poster, 1)
        assert poster.to("C1") == [["2603.00100"]]
        assert utc(2026, 3, 2, 9) <= poster.messages[0].at < utc(2026, 3, 2, 9, 0, 1)
    finally:
        await scheduler.stop()
    assert [c.status for c in claims(core)] == ["sent"]


async def test_arestart_after_the_post_time_posts_once_at_start_up_and_again_never(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 2, 7))
    time_machine.move_to(utc(2026, 3, 2, 10), tick=True)
    poster = FakePoster()
    for restart in range(3):
        scheduler = await start_scheduler(core, [poster], startup_delay=0)
        await scheduler.idle()
        await scheduler.stop()
        add_paper(core, "Diffusion", f"2603.0020{restart}", utc(2026, 3, 2, 9, 30))
    assert poster.to("C1") == [["2603.00100"]]


async def test_stopping_the_scheduler_gives_parts_in_flight_the_grace_then_hands_back(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 2, 7))
    time_machine.move_to(utc(2026, 3, 2, 10), tick=True)
    poster = FakePoster(slow={"C1": 30})
    scheduler = await start_scheduler(core, [poster], startup_delay=0)
    while not poster.attempts:
        await asyncio.sleep(0.01)
    began = asyncio.get_running_loop().time()
    await scheduler.stop(grace=0.2)
    assert asyncio.get_running_loop().time() - began < 5
    (claim,) = claims(core)
    assert (claim.status, claim.owner) == ("open", "")  # free for the next process at once
    assert parts(core) == [(1, "sending")]  # it will look for it before sending again


async def test_the_daily_refresh_runs_once_per_day_and_is_reported_for_health(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 0, 30), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    follow(core, arxiv_api, SLACK, "Virtual Try-On")
    runner = DigestRunner(core, [FakePoster()])
    asked = len(arxiv_api.requests)
    # Both keywords were fetched by `add` after the last refresh time (yesterday 01:00).
    assert await runner.refresher.run() is True
    assert len(arxiv_api.requests) == asked
    assert await runner.refresher.run() is False
    time_machine.move_to(utc(2026, 3, 2, 1, 0), tick=False)
    assert await runner.refresher.run() is True
    assert [r.path for r in arxiv_api.requests[asked:]] == ["/oai"]  # an empty day: no confirm
    time_machine.move_to(utc(2026, 3, 2, 13), tick=False)
    assert await DailyRefresh(core).run() is False
    report = health_report(core)
    assert report["last_refresh"]["status"] == "ok: 2 keywords fetched"
    assert report["last_refresh"]["at"].startswith("2026-03-02T01:00")


async def test_the_daily_refresh_prunes_settled_claims_older_than_a_month(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    channel = channel_of(core, SLACK).id
    statuses = {31: "sent", 32: "empty", 40: "uncertain", 35: "open", 33: "failed", 30: "sent"}
    with write_session(core.engine) as session:
        for days_ago, status in statuses.items():
            session.add(
                DigestClaim(
                    channel_id=channel,  # type: ignore[arg-type]
                    local_date=date(2026, 3, 2) - timedelta(days=days_ago),
                    status=status,
                    owner="old",
                    lease_until=utc(2026, 1, 1),
                )
            )
    runner = DigestRunner(core, [FakePoster()])
    assert await runner.refresher.run() is True
    await runner.prune()
    kept = {(date(2026, 3, 2) - c.local_date).days: c.status for c in claims(core)}
    assert kept == {30: "sent"}


async def test_a_refresh_lease_of_a_dead_process_is_taken_over_when_it_expires(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 0, 59), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    with write_session(core.engine) as session:
        session.add(Lease(name=REFRESH_LEASE_NAME, owner="dead", lease_until=utc(2026, 3, 2, 1, 5)))
    runner = DigestRunner(core, [FakePoster()])
    time_machine.move_to(utc(2026, 3, 2, 1, 2), tick=False)
    assert await runner.refresher.run() is False
    time_machine.move_to(utc(2026, 3, 2, 1, 6), tick=False)
    assert await runner.refresher.run() is True
    with read_session(core.engine) as session:
        lease = session.exec(select(Lease)).one()
    assert lease.owner == runner.owner and lease.last_status == "ok: 1 keyword fetched"


def _process(settings: Settings, name: str, start: threading.Barrier, out: dict[str, Any]) -> None:
    """One `papers serve` process: its own engine, core, posters and event loop."""
    engine = make_engine(settings.database_url)
    core = Core(settings, engine, ArxivGateway(settings, engine))
    posters = [FakePoster(), FakePoster(platform="discord")]
    runner = DigestRunner(core, posters, owner=name)

    async def main() -> None:
        start.wait()
        out["refreshed"] = await runner.refresher.run()
        start.wait()
        out["outcomes"] = await runner.run_due()

    try:
        asyncio.run(main())
    finally:
        out["sent"] = [m for p in posters for m in p.messages]
        runner.close()
        engine.dispose()


async def test_two_processes_on_one_database_post_once_per_channel_and_refresh_once(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 0, 0), tick=False)
    places = [Place(platform="slack", workspace="T1", channel=f"C{i}") for i in range(4)]
    places += [Place(platform="discord", workspace="G1", channel=f"D{i}") for i in range(4)]
    for place in places:
        core.execute(place, Add("Diffusion"))
    arxiv_api.add_entries("Diffusion", [entry("2603.00100", utc(2026, 3, 2, 0, 30))])
    arxiv_api.announce(
        [make_entry("2603.00100", title="Diffusion", summary="Diffusion.")],
        day=utc(2026, 3, 2).date(),
    )
    asked = len(arxiv_api.requests)
    time_machine.move_to(utc(2026, 3, 2, 9), tick=True)
    start = threading.Barrier(2)
    results: dict[str, dict[str, Any]] = {"a": {}, "b": {}}
    threads = [
        threading.Thread(target=_process, args=(core.settings, n, start, results[n]))
        for n in results
    ]
    for thread in threads:
        thread.start()
    await asyncio.to_thread(lambda: [t.join(30) for t in threads])
    sent = results["a"]["sent"] + results["b"]["sent"]
    assert sorted(m.channel for m in sent) == sorted(p.channel for p in places)
    assert all(m.papers == ("2603.00100",) for m in sent)
    assert sorted([results["a"]["refreshed"], results["b"]["refreshed"]]) == [False, True]
    assert [r.path for r in arxiv_api.requests[asked:]] == ["/oai", "/api/query"]  # + confirm
    assert sorted(c.status for c in claims(core)) == ["sent"] * 8
    assert {c.owner for c in claims(core)} <= {"a", "b"}
    assert timedelta(0) <= sent[0].at - utc(2026, 3, 2, 9) < timedelta(seconds=30)


def test_the_refresh_slot_is_the_last_fetch_time_and_a_broken_time_is_an_error() -> None:
    now = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    assert last_refresh_slot(now, "05:30") == datetime(2026, 3, 2, 5, 30, tzinfo=UTC)
    assert last_refresh_slot(now, "06:30") == datetime(2026, 3, 1, 6, 30, tzinfo=UTC)
    # FETCH_TIME is validated at start-up: one that does not parse here is a bug, not 01:00.
    with pytest.raises(ValueError, match="HH:MM"):
        last_refresh_slot(now, "25:00")


async def test_a_refresh_before_a_post_that_breaks_is_logged_with_its_traceback(
    core: Core, arxiv_api: ArxivStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    arxiv_api.add_entries("Alpha", [make_entry(arxiv_id="2501.00001")])
    with write_session(core.engine) as session:  # arXiv answers; storing it fails
        session.execute(text("DROP TABLE matches"))
    with caplog.at_level(logging.ERROR, logger="bot.arxiv.daily"):
        await DailyRefresh(core).refresh_stale(["Alpha"])
    (record,) = [r for r in caplog.records if "before a post broke" in r.getMessage()]
    assert record.exc_info is not None and record.exc_info[1] is not None  # with its traceback

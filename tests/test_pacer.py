"""One pacer per deployment: real processes on one database take turns at arXiv; a holder
that dies frees the turn within seconds; failures in a row make an outage with backoff."""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text, update

from bot.arxiv.daily import REFRESH_LEASE_NAME, DailyRefresh
from bot.arxiv.pacer import Pacer
from bot.commands.core import TERMINAL, Core
from bot.commands.grammar import parse
from bot.storage.db import read_session, write_session
from bot.storage.models import ArxivPacer, Keyword, Lease
from bot.storage.store import as_utc
from tests.fakes.arxiv_server import ArxivStandIn, hang, make_entry, status
from tests.support.cli import start_papers

DELAY = 0.2
LABELS = ("Neural Fields", "Point Clouds", "Optical Flow", "Scene Graphs")
SERVE_LIKE = """
import asyncio, sys
from adapters.composition import build_core, build_settings
from bot.arxiv.daily import DailyRefresh
core = build_core(build_settings())
# What a `papers serve` does before a daily post: refresh the stale keywords.
asyncio.run(DailyRefresh(core).refresh_stale(sys.argv[1:]))
"""


def _env(core: Core, arxiv_api: ArxivStandIn) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": core.settings.database_url,
        "ARXIV_API_URL": arxiv_api.url,
        "ARXIV_OAI_URL": arxiv_api.oai_url,
        "ARXIV_DELAY_SECONDS": str(DELAY),
        "ARXIV_CONTACT": "tests@example.org",
    }


def test_two_serve_processes_and_a_cli_fetch_take_turns(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    now = datetime.now(UTC)
    for n, label in enumerate(LABELS):
        arxiv_api.add_entries(label, [make_entry(f"2601.{n:05d}", title=label, updated=now)])
        core.execute(TERMINAL, parse(f"add {label}"))
    fresh = [
        make_entry(f"2601.{10 + n:05d}", title=f"{label} again") for n, label in enumerate(LABELS)
    ]
    for label, entry in zip(LABELS, fresh, strict=True):
        arxiv_api.add_entries(label, [entry])
    arxiv_api.announce(fresh)
    arxiv_api.script([hang(0.15)] * 6)  # slow answers: overlapping requests would show
    before = len(arxiv_api.requests)
    env = _env(core, arxiv_api)
    children = [
        subprocess.Popen([sys.executable, "-c", SERVE_LIKE, *LABELS], env=env),
        subprocess.Popen([sys.executable, "-c", SERVE_LIKE, *LABELS[::-1]], env=env),
        start_papers(env, "fetch", stderr=subprocess.DEVNULL),
    ]
    assert [child.wait(timeout=60) for child in children] == [0, 0, 0]

    seen = sorted(arxiv_api.requests[before:], key=lambda r: r.time)
    # Each serve asks once per keyword; the fetch harvests (and confirms what the serves have
    # not answered for by then).
    assert len(seen) >= 2 * len(LABELS) + 1 and "/oai" in {r.path for r in seen}
    assert {r.headers["User-Agent"] for r in seen} == {
        "daily-papers-bot/0.1 (chat bot following arXiv keywords; tests@example.org)"
    }
    for earlier, later in itertools.pairwise(seen):
        assert earlier.done is not None and later.time >= earlier.done, "two requests overlapped"
        assert later.time - earlier.time >= DELAY, "two starts closer than the delay"


HOLDER = """
import sys, time
from bot.arxiv.pacer import Pacer
from bot.storage.db import make_engine
with Pacer(make_engine(sys.argv[1]), delay=0, lease=1.0).turn():
    print("holding", flush=True)
    time.sleep(60)
"""


def test_a_process_that_dies_holding_the_turn_frees_it_within_seconds(
    engine: Engine, database_url: str
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLDER), database_url], stdout=subprocess.PIPE
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == b"holding"
    holder.kill()  # kill -9: no release
    holder.wait()
    died = time.monotonic()
    with Pacer(engine, delay=0).turn():
        waited = time.monotonic() - died
    assert 0.2 < waited < 3.0, waited


def _rename(engine: Engine, old: str, new: str) -> None:
    with write_session(engine) as session:
        session.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


def test_a_renewal_the_database_refuses_is_a_warning_and_the_request_goes_on(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """The database away is expected now and then: one line each time, no traceback (a
    renewal that breaks otherwise is a bug, logged with its traceback)."""
    pacer = Pacer(engine, delay=0, lease=0.2)  # renewed every 0.05 s
    with caplog.at_level(logging.WARNING, logger="bot.arxiv.pacer"), pacer.turn():
        _rename(engine, "arxiv_pacer", "arxiv_pacer_away")
        deadline = time.monotonic() + 3
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.01)
        _rename(engine, "arxiv_pacer_away", "arxiv_pacer")
    warned = caplog.records[0]
    assert warned.getMessage().startswith("could not renew the arXiv turn: ")
    assert warned.levelno == logging.WARNING and warned.exc_info is None
    with Pacer(engine, delay=0).turn():  # given back as usual
        pass


def test_three_failures_make_an_outage_with_5_15_60_minute_backoff(engine: Engine) -> None:
    pacer = Pacer(engine, delay=0)
    retries = []
    for round_ in range(4):
        for _ in range(3 if round_ == 0 else 1):  # then each probe after the backoff fails
            with pacer.turn() as turn:
                turn.failed("HTTP 503")
        outage = pacer.outage()
        assert outage is not None and "HTTP 503" in outage.describe()
        retries.append(round((outage.retry_at - datetime.now(UTC)).total_seconds() / 60))
        with write_session(engine) as session:  # the backoff elapses
            session.execute(update(ArxivPacer).values(retry_at=0.0))
    assert retries == [5, 15, 60, 60]
    with pacer.turn():
        pass  # a success ends the outage
    assert pacer.outage() is None


async def test_an_outage_postpones_the_daily_refresh_to_the_next_try(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    for label in LABELS:
        core.execute(TERMINAL, parse(f"add {label}"))
    with write_session(core.engine) as session:  # fetched two days ago: stale now
        session.execute(
            update(Keyword).values(last_success_at=datetime.now(UTC) - timedelta(days=2))
        )
    arxiv_api.always(status(503))
    assert await DailyRefresh(core).run() is False
    with read_session(core.engine) as session:
        lease = session.get(Lease, REFRESH_LEASE_NAME)
    assert lease is not None and lease.last_run_date is None
    assert "skipped: arXiv unavailable" in (lease.last_status or "")
    retry = as_utc(lease.lease_until) - datetime.now(UTC)
    assert timedelta(minutes=4) < retry <= timedelta(minutes=5)
    asked = len(arxiv_api.requests)
    assert await DailyRefresh(core).run() is False  # not before the next try
    assert len(arxiv_api.requests) == asked

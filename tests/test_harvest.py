"""The daily refresh by announcements: harvest (OAI-PMH stand-in) → prefilter → confirm (API
stand-in answering search_query + id_list as a filter), resumption, fallback and fail fast."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from bot.arxiv.gateway import ArxivGateway
from bot.commands.core import TERMINAL, Core
from bot.commands.grammar import parse
from bot.config import Settings
from bot.health import health_report
from bot.replies import KeywordTable, Text
from bot.storage.db import ensure_schema, make_engine
from tests.fakes.arxiv_server import ArxivStandIn, hang, make_entry, ok, status
from tests.support.cli import start_papers
from tests.support.common import snapshot, test_settings

KEYWORDS = (
    "Virtual Try-On",
    "Gaussian Splatting",
    "Protein Folding",
    "Quantum Error Correction",
    "Graph Neural Networks",
)
NOW = datetime.now(UTC)


def _paper(n: int, title: str, summary: str = "A method.", version: int = 1) -> bytes:
    when = NOW - timedelta(hours=n % 24)
    return make_entry(f"2601.{n:05d}", version, title=title, summary=summary, updated=when)


def _follow_all(core: Core, arxiv_api: ArxivStandIn) -> None:
    """Each keyword followed, with one old paper arXiv knows (its backfill)."""
    for n, label in enumerate(KEYWORDS):
        arxiv_api.add_entries(label, [_paper(900 + n, f"Earlier {label} work")])
        core.execute(TERMINAL, parse(f"add {label}"))


def _announce_day(arxiv_api: ArxivStandIn) -> None:
    """A day with new papers for 2 of the 5 keywords, among unrelated ones."""
    vton = [_paper(1, "Virtual Try-On with diffusion"), _paper(2, "Garments", "A virtual try-on.")]
    splat = [_paper(3, "Gaussian Splatting for cities")]
    arxiv_api.add_entries("Virtual Try-On", vton)
    arxiv_api.add_entries("Gaussian Splatting", splat)
    unrelated = [_paper(10 + i, f"Unrelated topic {i}", "Nothing to see.") for i in range(5)]
    arxiv_api.announce(vton + splat + unrelated)


def _content(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Papers and matches as arXiv's answers made them (no storage timestamps)."""
    with engine.connect() as conn:
        papers = conn.execute(
            text("SELECT arxiv_id, version, title, abstract, comment, authors FROM papers")
        ).all()
        matches = conn.execute(
            text("SELECT k.key, m.paper_id FROM matches m JOIN keywords k ON k.id = m.keyword_id")
        ).all()
    return {"papers": sorted(map(tuple, papers)), "matches": sorted(map(tuple, matches))}


def test_a_day_for_2_of_5_keywords_costs_the_pages_and_2_confirms_and_stores_the_same(
    core: Core, arxiv_api: ArxivStandIn, tmp_path: object
) -> None:
    arxiv_api.oai_page_size = 3
    _follow_all(core, arxiv_api)
    other = Core(core.settings, make_engine(f"sqlite:///{tmp_path}/per-keyword.db"), core.gateway)
    ensure_schema(other.engine)
    _follow_all(other, arxiv_api)
    _announce_day(arxiv_api)
    before = len(arxiv_api.requests)

    outcomes = core.refresh_all()

    sent = arxiv_api.requests[before:]
    pages = [r for r in sent if r.path == "/oai"]
    confirms = [r for r in sent if r.path == "/api/query"]
    assert len(pages) == 3, "8 records in pages of 3"
    assert len(confirms) == 2 and all(r.params["id_list"] for r in confirms)
    assert all(o.ok for o in outcomes) and len(outcomes) == 5
    other.refresher.refresh_many(list(KEYWORDS))  # today's way: one query per keyword
    assert _content(core.engine) == _content(other.engine)
    assert len(_content(core.engine)["matches"]) == 5 + 3
    table = core.execute(TERMINAL, parse("keywords"))[0]
    assert isinstance(table, KeywordTable) and {r.status for r in table.rows} == {"ok"}
    assert "8 records, 5 requests (3 pages, 2 confirms)" in table.harvest
    harvest = health_report(core)["last_harvest"]
    assert harvest["records"] == 8 and harvest["requests"] == 5 and harvest["fallback"] is False
    other.engine.dispose()


def test_an_empty_day_is_no_records_match_and_costs_no_confirm(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    _follow_all(core, arxiv_api)
    before = len(arxiv_api.requests)
    outcomes = core.refresh_all()
    assert [r.path for r in arxiv_api.requests[before:]] == ["/oai"]
    assert all(o.ok for o in outcomes)


def test_the_next_harvest_starts_from_the_day_the_last_complete_one_began(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    _follow_all(core, arxiv_api)
    core.refresh_all()
    core.refresh_all()
    first, second = [r.params for r in arxiv_api.requests if r.path == "/oai"]
    assert first["from"] == (NOW - timedelta(days=3)).date().isoformat()
    assert second["from"] == NOW.date().isoformat()


def test_503_with_retry_after_is_waited_out(core: Core, arxiv_api: ArxivStandIn) -> None:
    _follow_all(core, arxiv_api)
    _announce_day(arxiv_api)
    arxiv_api.script([status(503, retry_after=1)])
    outcomes = core.refresh_all()
    pages = [r for r in arxiv_api.requests if r.path == "/oai"]
    assert [r.status for r in pages] == [503, 200]
    assert pages[1].time - pages[0].time >= 1.0
    assert all(o.ok for o in outcomes) and sum(o.found for o in outcomes) == 3


def test_a_failed_harvest_falls_back_to_per_keyword_queries_and_says_so(
    core: Core, arxiv_api: ArxivStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    _follow_all(core, arxiv_api)
    _announce_day(arxiv_api)
    arxiv_api.script([status(500)] * 3)  # the harvest's request and its 2 retries
    before = len(arxiv_api.requests)
    outcomes = core.refresh_all()
    api = [r for r in arxiv_api.requests[before:] if r.path == "/api/query"]
    assert len(api) == 5 and not any(r.params.get("id_list") for r in api)
    assert all(o.ok for o in outcomes) and sum(o.new for o in outcomes) == 3
    assert "falling back to per-keyword queries" in caplog.text
    assert health_report(core)["last_harvest"]["fallback"] is True
    table = core.execute(TERMINAL, parse("keywords"))[0]
    assert isinstance(table, KeywordTable) and "fell back to per-keyword" in table.harvest


def test_an_expired_token_harvests_again_from_the_day(core: Core, arxiv_api: ArxivStandIn) -> None:
    arxiv_api.oai_page_size = 3
    _follow_all(core, arxiv_api)
    _announce_day(arxiv_api)
    original = core.gateway.harvest

    def expiring(**kwargs: object):  # tokens expire after the first page went through
        for n, page in enumerate(original(**kwargs)):  # type: ignore[arg-type]
            yield page
            if n == 0 and kwargs["token"] is None:
                arxiv_api.expire_tokens()

    core.gateway.harvest = expiring  # type: ignore[method-assign]
    outcomes = core.refresh_all()
    pages = [r.params for r in arxiv_api.requests if r.path == "/oai"]
    assert "from" in pages[0] and "resumptionToken" in pages[1] and "from" in pages[2]
    assert sum(o.new for o in outcomes) == 3, "no record lost"


def test_a_harvest_killed_between_pages_resumes_from_its_token(
    database_url: str, engine: Engine, arxiv_api: ArxivStandIn
) -> None:
    """A real `papers fetch` is killed while its second page is in flight; the next run
    asks for that page with the recorded token and loses no record."""
    arxiv_api.oai_page_size = 3
    settings = test_settings(arxiv_api, database_url)
    core = Core(settings, engine, ArxivGateway(settings, engine))
    _follow_all(core, arxiv_api)
    _announce_day(arxiv_api)
    held = len(arxiv_api.requests)
    arxiv_api.script([ok(), hang(30)])  # the first page, then one that never comes back
    child = _papers_fetch(settings)
    _wait_for(lambda: len([r for r in arxiv_api.requests[held:] if r.path == "/oai"]) == 2)
    child.kill()
    child.wait(timeout=10)
    arxiv_api.normal()
    token = arxiv_api.requests[-1].params["resumptionToken"]

    outcomes = core.refresh_all()
    pages = [r.params for r in arxiv_api.requests[held:] if r.path == "/oai"]
    assert pages[2] == {"verb": "ListRecords", "resumptionToken": token}
    assert len(pages) == 4 and sum(o.new for o in outcomes) == 3


def _papers_fetch(settings: Settings) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "ARXIV_API_URL": settings.arxiv_api_url,
        "ARXIV_OAI_URL": settings.arxiv_oai_url,
        "ARXIV_DELAY_SECONDS": "0",
        "ARXIV_TIMEOUT_SECONDS": "60",
    }
    return start_papers(env, "fetch", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_for(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_three_failures_in_a_row_stop_the_refresh_and_commands_say_so_at_once(
    core: Core, arxiv_api: ArxivStandIn, engine: Engine
) -> None:
    _follow_all(core, arxiv_api)
    before = snapshot(engine)["papers"]
    arxiv_api.always(status(503))
    outcomes = core.refresher.refresh_many(list(KEYWORDS))
    assert [o.skipped for o in outcomes] == [False, False, False, True, True]
    assert len(arxiv_api.requests) == 5 + 3 * 3, "3 keywords × (1 try + 2 retries), then none"
    table = core.execute(TERMINAL, parse("keywords"))[0]
    assert isinstance(table, KeywordTable)
    assert [r.status_text for r in table.rows][3:] == ["skipped: arXiv unavailable"] * 2
    asked = len(arxiv_api.requests)
    started = time.monotonic()
    added = core.execute(TERMINAL, parse("add Brand New Topic"))[0]
    fetched = core.execute(TERMINAL, parse("fetch"))[0]
    assert time.monotonic() - started < 1.0 and len(arxiv_api.requests) == asked
    assert isinstance(added, Text) and "arXiv is unavailable" in added.text
    assert isinstance(fetched, Text) and fetched.text.startswith("arXiv is unavailable")
    assert "next try at" in fetched.text
    assert snapshot(engine)["papers"] == before


@pytest.mark.parametrize("empty_field", ["title", "summary"])
def test_entries_with_an_empty_title_or_abstract_change_nothing(
    core: Core, arxiv_api: ArxivStandIn, engine: Engine, empty_field: str
) -> None:
    _follow_all(core, arxiv_api)
    before = snapshot(engine)["papers"]
    broken = make_entry("2601.00900", 2, **{empty_field: ""})  # a new version of a stored paper
    arxiv_api.add_entries("Virtual Try-On", [broken])
    outcome = core.refresh("Virtual Try-On")
    assert not outcome.ok and "empty" in (outcome.reason or "")
    assert snapshot(engine)["papers"] == before
    table = core.execute(TERMINAL, parse("keywords"))[0]
    assert isinstance(table, KeywordTable)
    assert table.rows[0].status_text.startswith("failed: arXiv answered suspicious entries")


def test_an_id_that_does_not_parse_is_refused(core: Core, arxiv_api: ArxivStandIn) -> None:
    arxiv_api.add_entries("Odd Ids", [make_entry("not-an-id")])
    outcome = core.refresh("Odd Ids")
    assert not outcome.ok and "unreadable id" in (outcome.reason or "")

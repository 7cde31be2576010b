"""The arXiv gateway against the loopback stand-in: pacing, retries, failures, query safety."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from bot.arxiv import api
from bot.arxiv.gateway import ArxivFailure, ArxivGateway, KeywordRejected, MalformedFeed
from bot.commands.core import TERMINAL, Core
from bot.commands.grammar import parse
from bot.config import Settings
from bot.keywords import parse_keyword
from bot.replies import KeywordTable, Text
from bot.storage.db import read_session
from bot.storage.models import Keyword, Match, Paper
from tests.fakes.arxiv_server import (
    ArxivStandIn,
    empty,
    error400,
    hang,
    make_entry,
    malformed,
    ok,
    status,
)
from tests.support.common import test_settings


def _entries(n: int, *, start: int = 0, version: int = 1) -> list[bytes]:
    base = datetime(2025, 1, 1, tzinfo=UTC)
    return [
        make_entry(
            arxiv_id=f"2501.{i:05d}",
            version=version,
            title=f"Paper {i}",
            summary=f"Abstract {i}",
            updated=base + timedelta(hours=i),
        )
        for i in range(start, start + n)
    ]


def _stored(engine: Engine) -> dict[str, Paper]:
    with read_session(engine) as session:
        return {p.arxiv_id: p for p in session.exec(select(Paper)).all()}


def _keyword(engine: Engine, key: str) -> Keyword:
    with read_session(engine) as session:
        return session.exec(select(Keyword).where(Keyword.key == key)).one()


def test_requests_start_at_least_the_configured_gap_apart(
    arxiv_api: ArxivStandIn, engine: Engine
) -> None:
    arxiv_api.add_entries("spaced", _entries(3))
    gateway = ArxivGateway(test_settings(arxiv_api, arxiv_delay_seconds=0.3), engine)
    for _ in range(3):
        gateway.fetch(parse_keyword("spaced"))
    gaps = [b - a for a, b in zip(arxiv_api.arrivals, arxiv_api.arrivals[1:], strict=False)]
    assert len(gaps) == 2
    assert min(gaps) >= 0.29


def test_one_request_in_flight_across_threads(arxiv_api: ArxivStandIn, engine: Engine) -> None:
    import threading

    arxiv_api.add_entries("threads", _entries(2))
    arxiv_api.script([hang(0.3), hang(0.3)])
    gateway_a = ArxivGateway(test_settings(arxiv_api), engine)
    gateway_b = ArxivGateway(test_settings(arxiv_api), engine)
    threads = [
        threading.Thread(target=g.fetch, args=(parse_keyword("threads"),))
        for g in (gateway_a, gateway_b)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first, second = arxiv_api.arrivals[:2]
    assert second - first >= 0.29, "the second request started while the first was in flight"


def test_headers_identify_the_bot(arxiv_api: ArxivStandIn, engine: Engine) -> None:
    ArxivGateway(test_settings(arxiv_api), engine).fetch(parse_keyword("anything"))
    headers = {k.lower(): v for k, v in arxiv_api.requests[0].headers.items()}
    assert headers["accept"] == "application/atom+xml"
    assert headers["user-agent"].startswith("daily-papers-bot/")


def test_503_then_200_succeeds(arxiv_api: ArxivStandIn, engine: Engine) -> None:
    arxiv_api.add_entries("flaky", _entries(4))
    arxiv_api.script([status(503), ok()])
    result = ArxivGateway(test_settings(arxiv_api), engine).fetch(parse_keyword("flaky"))
    assert len(result.papers) == 4
    assert [r.status for r in arxiv_api.requests] == [503, 200]


def test_repeated_503_fails_after_bounded_retries_and_keeps_papers(
    core: Core, arxiv_api: ArxivStandIn, engine: Engine
) -> None:
    arxiv_api.add_entries("Solid Keyword", _entries(5))
    core.execute(TERMINAL, parse("add Solid Keyword"))
    before = _stored(engine)
    arxiv_api.always(status(503))
    outcome = core.refresh("Solid Keyword")
    assert not outcome.ok and "503" in (outcome.reason or "")
    assert len(arxiv_api.requests) == 1 + 3, "one success, then one try plus two retries"
    assert _stored(engine).keys() == before.keys()
    keyword = _keyword(engine, "solid keyword")
    assert keyword.fetch_status == "failed" and "503" in (keyword.fetch_error or "")
    table = core.execute(TERMINAL, parse("keywords"))[0]
    assert isinstance(table, KeywordTable)
    assert table.rows[0].papers == 5 and table.rows[0].status_text.startswith("failed: ")


def test_400_error_feed_is_not_retried_and_the_keyword_is_rejected(
    core: Core, arxiv_api: ArxivStandIn, engine: Engine
) -> None:
    arxiv_api.always(error400())
    with pytest.raises(KeywordRejected):
        ArxivGateway(core.settings, engine).fetch(parse_keyword("whatever"))
    assert len(arxiv_api.requests) == 1
    replies = core.execute(TERMINAL, parse("add Rejected Words"))
    assert isinstance(replies[0], Text) and replies[0].error
    assert "rejected" in replies[0].text
    with read_session(engine) as session:
        assert session.exec(select(Keyword)).all() == []


def test_hung_server_times_out(arxiv_api: ArxivStandIn, engine: Engine) -> None:
    arxiv_api.always(hang(5))
    gateway = ArxivGateway(
        test_settings(arxiv_api, arxiv_timeout_seconds=0.2, arxiv_retries=1), engine
    )
    with pytest.raises(ArxivFailure, match="in time"):
        gateway.fetch(parse_keyword("slow"))
    assert len(arxiv_api.requests) == 2


def test_malformed_xml_is_a_failure_not_nothing_new(
    core: Core, arxiv_api: ArxivStandIn, engine: Engine
) -> None:
    arxiv_api.add_entries("Malformed Case", _entries(3))
    core.execute(TERMINAL, parse("add Malformed Case"))
    arxiv_api.always(malformed())
    with pytest.raises(MalformedFeed):
        ArxivGateway(core.settings, engine).fetch(parse_keyword("Malformed Case"))
    outcome = core.refresh("Malformed Case")
    assert not outcome.ok and "malformed" in (outcome.reason or "")
    assert len(_stored(engine)) == 3
    assert _keyword(engine, "malformed case").fetch_status == "failed"


def test_empty_answer_for_a_keyword_with_papers_is_a_failure(
    core: Core, arxiv_api: ArxivStandIn, engine: Engine
) -> None:
    arxiv_api.add_entries("Vanishing", _entries(3))
    core.execute(TERMINAL, parse("add Vanishing"))
    arxiv_api.always(empty())
    outcome = core.refresh("Vanishing")
    assert not outcome.ok and "no papers" in (outcome.reason or "")
    assert len(_stored(engine)) == 3
    assert _keyword(engine, "vanishing").fetch_status == "failed"


def test_empty_answer_for_a_new_keyword_is_just_nothing(core: Core, engine: Engine) -> None:
    outcome = core.refresh("Never Seen Before")
    assert outcome.ok and outcome.found == 0


def test_paging_across_several_pages(
    arxiv_api: ArxivStandIn, settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    arxiv_api.add_entries("paged", _entries(250))
    monkeypatch.setattr(api, "PAGE_SIZE", 40)
    gateway = ArxivGateway(settings, engine)
    result = gateway.fetch(parse_keyword("paged"))
    assert len(result.papers) == 100
    assert [r.params["start"] for r in arxiv_api.requests] == ["0", "40", "80"]
    assert result.papers[0].arxiv_id == "2501.00249", "newest first"


@pytest.mark.parametrize(
    "typed",
    ['foo") OR ("bar', 'foo\\" OR ti:\\"bar', "foo' OR 'bar", 'x" AND all:"*', "“smart” quotes"],
)
def test_quotes_cannot_change_the_query(core: Core, arxiv_api: ArxivStandIn, typed: str) -> None:
    core.execute(TERMINAL, parse(f"add {typed}"))
    query = arxiv_api.requests[-1].params["search_query"]
    phrase = query.split('"')[1]
    assert query in (f'ti:"{phrase}" OR abs:"{phrase}"', f'ti:"{phrase}" AND abs:"{phrase}"')
    assert query.count('"') == 4, query


def test_a_newer_version_updates_one_row(
    core: Core, arxiv_api: ArxivStandIn, engine: Engine
) -> None:
    arxiv_api.add_entries("Versioned", _entries(2))
    core.execute(TERMINAL, parse("add Versioned"))
    arxiv_api.normal()
    later = datetime(2025, 6, 1, tzinfo=UTC)
    v2 = make_entry(
        arxiv_id="2501.00000",
        version=2,
        title="Paper 0, revised",
        summary="New abstract",
        comment="CVPR 2025",
        updated=later,
    )
    arxiv_api.add_entries("Versioned", [v2])
    assert core.refresh("Versioned").ok
    papers = _stored(engine)
    assert len(papers) == 2
    assert papers["2501.00000"].version == 2
    assert papers["2501.00000"].title == "Paper 0, revised"
    assert papers["2501.00000"].comment == "CVPR 2025"
    with read_session(engine) as session:
        assert len(session.exec(select(Match)).all()) == 2


def test_two_keywords_matching_one_paper_store_it_once(
    core: Core, arxiv_api: ArxivStandIn, engine: Engine
) -> None:
    shared = _entries(1)
    arxiv_api.add_entries("First Topic", shared + _entries(1, start=10))
    arxiv_api.add_entries("Second Topic", shared)
    core.execute(TERMINAL, parse("add First Topic"))
    core.execute(TERMINAL, parse("add Second Topic"))
    assert len(_stored(engine)) == 2
    with read_session(engine) as session:
        assert len(session.exec(select(Match)).all()) == 3


def test_a_failed_first_fetch_shows_in_keywords(core: Core, arxiv_api: ArxivStandIn) -> None:
    arxiv_api.always(status(503))
    reply = core.execute(TERMINAL, parse("add Unlucky Start"))[0]
    assert isinstance(reply, Text) and "could not be asked" in reply.text
    table = core.execute(TERMINAL, parse("keywords"))[0]
    assert isinstance(table, KeywordTable)
    assert table.rows[0].status == "failed" and "503" in (table.rows[0].error or "")

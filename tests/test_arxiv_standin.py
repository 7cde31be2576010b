"""The arXiv stand-in server, exercised with the real ``arxiv`` library."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import arxiv
import pytest
import requests
from lxml import etree

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
from tests.support.common import FIXTURES

VTON_FEED = FIXTURES / "dailyarxiv" / "feeds" / "virtual-try-on.atom.xml"
ERROR_FEED = FIXTURES / "arxiv-api" / "arxiv_error_http400_bad_id.atom.xml"
ATOM = "{http://www.w3.org/2005/Atom}"
OS = "{http://a9.com/-/spec/opensearch/1.1/}"
VTON_QUERY = 'ti:"Virtual Try-On" OR abs:"Virtual Try-On"'


def fixture_ids(path: Path) -> list[str]:
    root = etree.parse(str(path)).getroot()
    return [e.findtext(f"{ATOM}id") for e in root.findall(f"{ATOM}entry")]


def client_for(server: ArxivStandIn, page_size: int = 100, num_retries: int = 0) -> arxiv.Client:
    client = arxiv.Client(page_size=page_size, delay_seconds=0, num_retries=num_retries)
    client.query_url_format = server.url + "?{}"
    return client


def search(
    query: str = VTON_QUERY, order: arxiv.SortOrder = arxiv.SortOrder.Descending
) -> arxiv.Search:
    return arxiv.Search(
        query=query,
        max_results=100,
        sort_by=arxiv.SortCriterion.LastUpdatedDate,
        sort_order=order,
    )


@pytest.fixture
def arxiv_api():
    with ArxivStandIn() as server:
        server.load_dailyarxiv()
        yield server
    assert server.errors == []


def test_virtual_try_on_feed_in_fixture_order(arxiv_api):
    results = list(client_for(arxiv_api).results(search()))
    expected = fixture_ids(VTON_FEED)
    assert len(expected) == 100
    assert [r.entry_id for r in results] == expected
    assert results[0].title.startswith("Voost: A Unified and Scalable Diffusion Transformer")
    assert "\n" not in results[0].title  # the real client whitespace-normalises titles
    (req,) = arxiv_api.requests
    assert req.path == "/api/query"
    assert req.params["search_query"] == VTON_QUERY
    assert req.params["sortBy"] == "lastUpdatedDate"
    assert req.params["start"] == "0" and req.params["max_results"] == "100"
    assert req.headers["user-agent"].startswith("arxiv.py")
    assert req.status == 200 and req.behaviour == "ok"
    assert arxiv_api.arrivals == [req.time]


def test_paging_reports_true_totals(arxiv_api):
    results = list(client_for(arxiv_api, page_size=30).results(search()))
    assert [r.entry_id for r in results] == fixture_ids(VTON_FEED)
    assert [r.params["start"] for r in arxiv_api.requests] == ["0", "30", "60", "90"]
    assert {r.params["max_results"] for r in arxiv_api.requests} == {"30"}
    assert arxiv_api.arrivals == sorted(arxiv_api.arrivals) and len(arxiv_api.arrivals) == 4

    # The last page, fetched directly: the total is the whole match, not the page.
    params = dict(arxiv_api.requests[-1].params)
    resp = requests.get(arxiv_api.url, params=params, timeout=5)
    assert resp.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    root = etree.fromstring(resp.content)
    assert root.findtext(f"{OS}totalResults") == "100"
    assert root.findtext(f"{OS}startIndex") == "90"
    assert root.findtext(f"{OS}itemsPerPage") == "30"
    assert len(root.findall(f"{ATOM}entry")) == 10


def test_ascending_order_and_unknown_phrase(arxiv_api):
    client = client_for(arxiv_api)
    ascending = [r.entry_id for r in client.results(search(order=arxiv.SortOrder.Ascending))]
    assert ascending == fixture_ids(VTON_FEED)[::-1]
    assert arxiv_api.requests[-1].params["sortOrder"] == "ascending"

    # Phrase matching is case-insensitive; the single-word query shape is understood too.
    lower = list(client.results(search('ti:"clothes changing person reid" OR abs:"x"')))
    assert len(lower) == 45

    assert list(client.results(search('ti:"Nonexistent Topic" OR abs:"Nonexistent Topic"'))) == []
    resp = requests.get(
        arxiv_api.url, params={"search_query": 'ti:"nope" AND abs:"nope"'}, timeout=5
    )
    root = etree.fromstring(resp.content)
    assert root.findtext(f"{OS}totalResults") == "0"
    assert root.findall(f"{ATOM}entry") == []


def test_added_entries_and_submitted_date_sort():
    old = datetime(2023, 5, 1, tzinfo=UTC)
    new = datetime(2024, 2, 1, tzinfo=UTC)
    with ArxivStandIn() as server:
        server.add_entries(
            "Gaussian",
            [
                make_entry("2401.00001", 2, title="Later submitted", published=new, updated=new),
                make_entry(
                    "2301.00002", 1, title="Earlier", comment="5 pages", published=old, updated=new
                ),
            ],
        )
        client = client_for(server)
        query = 'ti:"Gaussian" AND abs:"Gaussian"'
        by_submitted = arxiv.Search(
            query=query,
            sort_by=arxiv.SortCriterion.SubmittedDate,
            sort_order=arxiv.SortOrder.Ascending,
        )
        results = list(client.results(by_submitted))
    assert [r.get_short_id() for r in results] == ["2301.00002v1", "2401.00001v2"]
    assert results[0].comment == "5 pages" and results[1].comment is None
    assert results[0].authors[0].name == "A" and results[0].primary_category == "cs.CV"
    assert results[1].pdf_url == "https://arxiv.org/pdf/2401.00001v2"


def test_scripted_503_then_ok(arxiv_api):
    arxiv_api.script([status(503, retry_after=7), ok()])
    with pytest.raises(arxiv.HTTPError) as info:
        list(client_for(arxiv_api).results(search()))
    assert info.value.status == 503
    assert arxiv_api.requests[0].status == 503

    arxiv_api.normal()  # drops the unused ok() left in the queue
    arxiv_api.script([status(503), ok()])
    results = list(client_for(arxiv_api, num_retries=1).results(search()))
    assert len(results) == 100
    assert [r.status for r in arxiv_api.requests] == [503, 503, 200]
    assert arxiv_api.requests[1].params == arxiv_api.requests[2].params  # a retry of the same page


def test_status_sets_retry_after(arxiv_api):
    arxiv_api.script([status(429, retry_after=7)])
    resp = requests.get(arxiv_api.url, timeout=5)
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "7"
    assert requests.get(arxiv_api.url, timeout=5).status_code == 200


def test_error400_malformed_empty(arxiv_api):
    params = {"search_query": VTON_QUERY, "max_results": "100"}
    arxiv_api.script([error400(), malformed(), empty()])

    resp = requests.get(arxiv_api.url, params=params, timeout=5)
    assert resp.status_code == 400
    assert resp.content == ERROR_FEED.read_bytes()

    resp = requests.get(arxiv_api.url, params=params, timeout=5)
    assert resp.status_code == 200
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(resp.content)
    assert len(resp.content) > 10_000  # a truncated real feed, not a stub

    resp = requests.get(arxiv_api.url, params=params, timeout=5)
    root = etree.fromstring(resp.content)
    assert root.findtext(f"{OS}totalResults") == "0" and root.findall(f"{ATOM}entry") == []

    assert [r.behaviour for r in arxiv_api.requests] == ["error400", "malformed", "empty"]
    assert len(requests.get(arxiv_api.url, params=params, timeout=5).content) > 100_000


def test_error400_and_empty_through_arxiv_client(arxiv_api):
    client = client_for(arxiv_api)
    arxiv_api.script([error400()])
    with pytest.raises(arxiv.HTTPError) as info:
        list(client.results(search()))
    assert info.value.status == 400
    arxiv_api.always(empty())
    assert list(client.results(search())) == []
    assert list(client.results(search())) == []
    arxiv_api.normal()
    assert len(list(client.results(search()))) == 100


def test_hang_is_a_read_timeout(arxiv_api):
    arxiv_api.script([hang(2)])
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(arxiv_api.url, params={"search_query": VTON_QUERY}, timeout=0.3)
    assert time.monotonic() - started < 1.5
    # A held request does not block others.
    assert (
        requests.get(arxiv_api.url, params={"search_query": VTON_QUERY}, timeout=2).status_code
        == 200
    )


def test_hang_then_answers_normally():
    with ArxivStandIn() as server:
        server.load_dailyarxiv()
        server.script([hang(0.2)])
        started = time.monotonic()
        results = list(client_for(server).results(search()))
        assert time.monotonic() - started >= 0.2
        assert len(results) == 100


def test_close_while_request_hangs_returns_fast():
    server = ArxivStandIn()
    server.load_dailyarxiv()
    server.always(hang(30))
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(requests.get(server.url, timeout=10).status_code)
        except requests.RequestException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    deadline = time.monotonic() + 2
    while not server.arrivals and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.arrivals, "request never reached the server"

    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 1.0
    worker.join(timeout=2)
    assert not worker.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], requests.RequestException)
    server.close()  # idempotent

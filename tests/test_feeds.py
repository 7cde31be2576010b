"""Private Atom feeds (SPEC 10): `feed` and `feed reset` in the core, and the listener's
/feeds/<token>.atom read back with feedparser, conditional GETs, and tokens it does not know."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.utils import format_datetime

import aiohttp
import feedparser
import pytest
from aiohttp import web

from adapters import feeds as feed_routes
from adapters.serve import run
from bot.commands.core import Core, Place
from bot.commands.feeds import FEED_PAPERS, MAX_URLS, token_hash
from bot.commands.grammar import Feed, parse
from bot.replies import Text
from tests.fakes.arxiv_server import ArxivStandIn, make_entry
from tests.fakes.slack_server import serve_web_app
from tests.support.common import snapshot

A = Place("slack", "T1", "CA", user_id="U1")
B = Place("slack", "T1", "CB", user_id="U1")
URL = re.compile(r"(https?://\S+/feeds/(\S+)\.atom)")


def _entries(prefix: str, n: int, **fields: object) -> list[bytes]:
    return [
        make_entry(
            arxiv_id=f"{prefix}.{i:05d}",
            version=3,
            title=f"{prefix} paper {i}",
            summary=f"Abstract {i} of {prefix}.",
            authors=("Ada Lovelace", "Alan Turing"),
            updated=datetime(2025, 2, 1, tzinfo=UTC).replace(day=1 + i % 28, hour=i % 24),
            categories=("cs.CV", "eess.IV"),
            **fields,  # type: ignore[arg-type]
        )
        for i in range(1, n + 1)
    ]


def _feed_url(core: Core, place: Place, typed: str = "feed") -> tuple[str, str]:
    (reply,) = core.execute(place, parse(typed))
    assert isinstance(reply, Text) and reply.ephemeral and not reply.error, reply
    found = URL.search(reply.text)
    assert found is not None, reply.text
    return found[1], found[2]


@asynccontextmanager
async def listener(core: Core) -> AsyncIterator[str]:
    """The feed route mounted on an application of its own, served on 127.0.0.1."""
    app = web.Application()
    feed_routes.mount(app, core)
    async with serve_web_app(app, path="") as base:
        yield base


def _local(url: str, base: str) -> str:
    """The feed URL as the listener under test serves it (PUBLIC_URL is the public address)."""
    return base + url[url.index("/feeds/") :]


# -- the command ----------------------------------------------------------------------------


def test_feed_answers_a_private_url_whose_token_is_stored_hashed(core: Core) -> None:
    public = core.settings.model_copy(update={"public_url": "https://papers.example.org/"})
    core = Core(public, core.engine, core.gateway)
    url, token = _feed_url(core, A)
    assert url.startswith("https://papers.example.org/feeds/")
    assert len(token) >= 22 and re.fullmatch(r"[A-Za-z0-9_-]+", token)  # ≥ 128 random bits
    stored = str(snapshot(core.engine))
    assert token not in stored and token_hash(token) in stored
    assert _feed_url(core, A)[1] != token


def test_a_channel_keeps_at_most_20_urls_until_reset(core: Core) -> None:
    for _ in range(MAX_URLS):
        _feed_url(core, A)
    (refusal,) = core.execute(A, Feed())
    assert isinstance(refusal, Text) and refusal.error and "`feed reset`" in refusal.text
    _feed_url(core, A, "feed reset")
    _feed_url(core, A)


def test_feed_is_for_managers(core: Core) -> None:
    member = dataclasses.replace(A, is_manager=False)
    before = snapshot(core.engine)
    (refusal,) = core.execute(member, Feed())
    assert isinstance(refusal, Text) and refusal.error and refusal.ephemeral
    assert snapshot(core.engine) == before


# -- the listener ---------------------------------------------------------------------------


async def test_the_feed_parses_with_feedparser_with_the_expected_entries(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("Diffusion", _entries("2502", 60))
    core.execute(A, parse("add Diffusion"))
    url, _token = _feed_url(core, A)
    async with (
        listener(core) as base,
        aiohttp.ClientSession() as http,
        http.get(_local(url, base)) as response,
    ):
        assert response.status == 200
        assert response.content_type == "application/atom+xml"
        body = await response.read()
    feed = feedparser.parse(body)
    assert not feed.bozo and feed.version == "atom10"
    assert len(feed.entries) == FEED_PAPERS
    updated = [entry.updated_parsed for entry in feed.entries]
    assert updated == sorted(updated, reverse=True)  # the 50 newest, newest first
    first = feed.entries[0]
    newest = max(range(1, 61), key=lambda i: (1 + i % 28, i % 24, i))
    assert first.id == first.link == f"https://arxiv.org/abs/2502.{newest:05d}v3"
    assert first.title == f"2502 paper {newest}"
    assert [a.name for a in first.authors] == ["Ada Lovelace", "Alan Turing"]
    assert first.summary == f"Abstract {newest} of 2502."
    assert [t.term for t in first.tags] == ["cs.CV", "eess.IV"]
    assert feed.feed.title == "Daily Papers: Diffusion"


async def test_a_repeated_conditional_get_is_304_until_the_feed_changes(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("Diffusion", _entries("2502", 3))
    core.execute(A, parse("add Diffusion"))
    url, _token = _feed_url(core, A)
    async with listener(core) as base, aiohttp.ClientSession() as http:
        url = _local(url, base)
        async with http.get(url) as first:
            etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        async with http.get(url, headers={"If-None-Match": etag}) as again:
            assert again.status == 304 and await again.read() == b""
            assert again.headers["ETag"] == etag
        async with http.get(url, headers={"If-Modified-Since": modified}) as since:
            assert since.status == 304
        arxiv_api.add_entries("Diffusion", _entries("2503", 1))
        core.refresh("Diffusion")
        async with http.get(url, headers={"If-None-Match": etag}) as changed:
            assert changed.status == 200 and changed.headers["ETag"] != etag
            assert b"2503.00001v3" in await changed.read()


async def test_a_reset_token_gets_404_and_the_new_one_works(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("Diffusion", _entries("2502", 2))
    core.execute(A, parse("add Diffusion"))
    old, _ = _feed_url(core, A)
    second, _ = _feed_url(core, A)
    new, _ = _feed_url(core, A, "feed reset")
    async with listener(core) as base, aiohttp.ClientSession() as http:
        statuses = []
        for url in (old, second, new):
            async with http.get(_local(url, base)) as response:
                statuses.append(response.status)
    assert statuses == [404, 404, 200]


async def test_an_unknown_token_gets_404_and_reveals_nothing(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("Diffusion", _entries("2502", 2))
    core.execute(A, parse("add Diffusion"))
    known, token = _feed_url(core, A)
    reset, _ = _feed_url(core, B)
    _feed_url(core, B, "feed reset")
    async with listener(core) as base, aiohttp.ClientSession() as http:
        answers = []
        for path in (
            "/feeds/" + token[:-1] + ("A" if token[-1] != "A" else "B") + ".atom",  # one off
            "/feeds/" + "x" * 300 + ".atom",
            "/feeds/%E2%80%AE.atom",
            reset[reset.index("/feeds/") :],
            "/no-such-page",  # what any unknown path gets
        ):
            async with http.get(base + path) as response:
                headers = {k: v for k, v in response.headers.items() if k not in ("Date",)}
                answers.append((response.status, headers, await response.read()))
        async with http.get(_local(known, base)) as ok:
            assert ok.status == 200
    assert all(answer == answers[-1] for answer in answers), answers
    status, headers, body = answers[0]
    assert status == 404 and "ETag" not in headers and b"feed" not in body.lower()


async def test_the_feed_of_one_channel_never_holds_anothers_papers(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("Diffusion", _entries("2502", 3))
    arxiv_api.add_entries("Splatting", _entries("2503", 3))
    core.execute(A, parse("add Diffusion"))
    core.execute(B, parse("add Splatting"))
    url_a, _ = _feed_url(core, A)
    url_b, _ = _feed_url(core, B)
    async with (
        listener(core) as base,
        aiohttp.ClientSession() as http,
        http.get(_local(url_a, base)) as a,
        http.get(_local(url_b, base)) as b,
    ):
        feed_a, feed_b = feedparser.parse(await a.read()), feedparser.parse(await b.read())
    ids_a = {entry.id for entry in feed_a.entries}
    ids_b = {entry.id for entry in feed_b.entries}
    assert ids_a == {f"https://arxiv.org/abs/2502.{i:05d}v3" for i in (1, 2, 3)}
    assert ids_b == {f"https://arxiv.org/abs/2503.{i:05d}v3" for i in (1, 2, 3)}


async def test_a_channel_the_bot_left_serves_no_feed(core: Core, arxiv_api: ArxivStandIn) -> None:
    arxiv_api.add_entries("Diffusion", _entries("2502", 1))
    core.execute(A, parse("add Diffusion"))
    url, _ = _feed_url(core, A)
    core.leave_workspace("slack", "T1")
    async with (
        listener(core) as base,
        aiohttp.ClientSession() as http,
        http.get(_local(url, base)) as response,
    ):
        assert response.status == 404


async def test_if_modified_since_before_the_change_gets_the_feed(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("Diffusion", _entries("2502", 1))
    core.execute(A, parse("add Diffusion"))
    url, _ = _feed_url(core, A)
    long_ago = format_datetime(datetime(2001, 1, 1, tzinfo=UTC), usegmt=True)
    async with (
        listener(core) as base,
        aiohttp.ClientSession() as http,
        http.get(_local(url, base), headers={"If-Modified-Since": long_ago}) as r,
    ):
        assert r.status == 200 and b"2502.00001v3" in await r.read()


# -- wiring: `papers serve` mounts the route ------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_papers_serve_serves_the_feeds(
    core: Core, arxiv_api: ArxivStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    arxiv_api.add_entries("Diffusion", _entries("2502", 1))
    port = _free_port()
    served = Core(core.settings.model_copy(update={"port": port}), core.engine, core.gateway)
    served.execute(A, parse("add Diffusion"))
    url, _ = _feed_url(served, A)
    assert url.startswith(f"http://127.0.0.1:{port}/feeds/")  # PUBLIC_URL unset: HOST:PORT
    stop = asyncio.Event()
    server = asyncio.create_task(run(served, stop=stop))
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(url) as response:
                        status, body = response.status, await response.read()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(server, 15)
    assert status == 200 and b"2502.00001v3" in body

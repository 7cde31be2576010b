"""The one arXiv gateway of a process: pacing, timeout, retries, and honest failures."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import arxiv
import requests
from lxml import etree

from bot.config import Settings
from bot.text import arxiv_query, squash

logger = logging.getLogger(__name__)

USER_AGENT = "daily-papers-bot/0.1 (chat bot following arXiv keywords; +https://github.com/)"
RESULTS_PER_KEYWORD = 100
_RETRY_STATUS = frozenset({406, 429, 500, 502, 503, 504})
_ATOM_FEED = "{http://www.w3.org/2005/Atom}feed"


class ArxivFailure(Exception):
    """arXiv could not be asked or answered badly; stored papers stay as they are."""


class KeywordRejected(ArxivFailure):
    """arXiv answered its 400 error feed: the query itself is refused."""


class MalformedFeed(ArxivFailure):
    """The answer was not a well-formed Atom feed."""


@dataclass(frozen=True)
class FetchedPaper:
    """One arXiv entry, reduced to what the store keeps."""

    arxiv_id: str
    version: int
    title: str
    authors: tuple[str, ...]
    abstract: str
    comment: str
    published: datetime
    updated: datetime


@dataclass(frozen=True)
class FetchResult:
    papers: tuple[FetchedPaper, ...]
    total_results: int


def split_entry_id(entry_id: str) -> tuple[str, int]:
    """`http://arxiv.org/abs/2303.08597v2` -> ("2303.08597", 2); old-style ids keep their slash."""
    short = entry_id.split("/abs/", 1)[-1]
    head, sep, tail = short.rpartition("v")
    if sep and tail.isdigit() and head:
        return head, int(tail)
    return short, 1


def to_fetched(result: arxiv.Result) -> FetchedPaper:
    arxiv_id, version = split_entry_id(result.entry_id)
    return FetchedPaper(
        arxiv_id=arxiv_id,
        version=version,
        title=squash(result.title),
        authors=tuple(squash(a.name) for a in result.authors),
        abstract=squash(result.summary),
        comment=squash(result.comment),
        published=result.published,
        updated=result.updated,
    )


class _Pacer:
    """At most one request in flight and at least `gap` seconds between request starts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_start = float("-inf")

    def run(self, gap: float, send: Callable[[], requests.Response]) -> requests.Response:
        with self._lock:
            wait = self._last_start + gap - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_start = time.monotonic()
            return send()


# One per process, whatever asks: every gateway instance shares it.
_PACER = _Pacer()


class _GatewaySession(requests.Session):
    """The `requests` session the arxiv client uses: paced, timed out, retried, validated."""

    def __init__(self, settings: Settings, sleep: Callable[[float], None]) -> None:
        super().__init__()
        self._settings = settings
        self._sleep = sleep

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs["timeout"] = self._settings.arxiv_timeout_seconds
        kwargs["headers"] = {"User-Agent": USER_AGENT, "Accept": "application/atom+xml"}
        attempts = self._settings.arxiv_retries + 1
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                response = _PACER.run(
                    self._settings.arxiv_delay_seconds,
                    lambda: super(_GatewaySession, self).request(method, url, *args, **kwargs),
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                if last:
                    raise ArxivFailure(_describe_exception(exc)) from exc
                self._back_off(attempt, None, type(exc).__name__)
                continue
            if response.status_code in _RETRY_STATUS and not last:
                self._back_off(
                    attempt, response.headers.get("Retry-After"), f"HTTP {response.status_code}"
                )
                continue
            if response.status_code == 200 and not _is_atom_feed(response.content):
                if last:
                    raise MalformedFeed("arXiv answered with a malformed feed")
                self._back_off(attempt, None, "malformed feed")
                continue
            return response
        raise AssertionError("unreachable")

    def _back_off(self, attempt: int, retry_after: str | None, reason: str) -> None:
        base = self._settings.arxiv_backoff_seconds * 2 ** (attempt - 1)
        delay = base + random.uniform(0, base / 2)
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, float(retry_after))
        logger.warning("arXiv request failed (%s); retry %d in %.1fs", reason, attempt, delay)
        self._sleep(delay)


def _describe_exception(exc: Exception) -> str:
    if isinstance(exc, requests.Timeout):
        return "arXiv did not answer in time"
    return "arXiv could not be reached"


def _is_atom_feed(content: bytes) -> bool:
    try:
        root = etree.fromstring(content, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return False
    return root is not None and root.tag == _ATOM_FEED


class ArxivGateway:
    """Fetches the newest papers of a keyword through the `arxiv` library."""

    def __init__(self, settings: Settings, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = arxiv.Client(page_size=RESULTS_PER_KEYWORD, delay_seconds=0, num_retries=0)
        self._client.query_url_format = settings.arxiv_api_url + "?{}"
        self._client._session = _GatewaySession(settings, sleep)

    def fetch(self, phrase: str, *, limit: int = RESULTS_PER_KEYWORD) -> FetchResult:
        """The `limit` most recently updated papers matching `phrase`, newest first."""
        search = arxiv.Search(
            query=arxiv_query(phrase),
            max_results=limit,
            sort_by=arxiv.SortCriterion.LastUpdatedDate,
            sort_order=arxiv.SortOrder.Descending,
        )
        try:
            results = list(self._client.results(search))
        except arxiv.HTTPError as exc:
            if exc.status == 400:
                raise KeywordRejected(f"arXiv rejected the query for {phrase!r}") from exc
            raise ArxivFailure(f"arXiv answered HTTP {exc.status}") from exc
        except arxiv.UnexpectedEmptyPageError as exc:
            raise ArxivFailure("arXiv answered an empty page in the middle of the results") from exc
        papers = tuple(to_fetched(r) for r in results)
        return FetchResult(papers=papers, total_results=len(papers))

"""The one arXiv gateway of a process: keyword searches (API) and the daily harvest
(OAI-PMH), every request through the deployment's pacer.

The HTTP stack (requests, urllib3, lxml, arxiv, sickle) is imported on the first request, not
with this module: commands that never ask arXiv start without it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from bot.arxiv.answers import (  # noqa: F401  (re-exported: the gateway's vocabulary)
    ArxivFailure,
    ArxivUnavailable,
    ExpiredToken,
    FetchResult,
    HarvestPage,
    KeywordRejected,
    MalformedFeed,
    SuspiciousAnswer,
    split_entry_id,
)
from bot.arxiv.pacer import Outage, Pacer
from bot.arxiv.query import arxiv_query
from bot.config import Settings
from bot.keywords import KeywordSpec
from bot.papers import FetchedPaper

if TYPE_CHECKING:
    import arxiv
    import requests

RESULTS_PER_KEYWORD = 100
CONFIRM_BATCH = 100  # ids per confirm request: one page of answers, a URL of about 1.2 kB


class ArxivGateway:
    """Asks arXiv for a keyword's newest papers, confirms harvested candidates, and pages
    through a harvest; one request at a time across the deployment (`pacer`)."""

    def __init__(self, settings: Settings, engine: Engine, *, pacer: Pacer | None = None) -> None:
        self.settings = settings
        self.pacer = pacer or Pacer(engine, delay=settings.arxiv_delay_seconds)
        self._lock = threading.Lock()
        self._session: requests.Session | None = None
        self._client: arxiv.Client | None = None

    def fetch(self, keyword: KeywordSpec, *, limit: int = RESULTS_PER_KEYWORD) -> FetchResult:
        """The `limit` most recently updated papers matching `keyword`, newest first."""
        from bot.arxiv import api

        return api.search(self._api(), arxiv_query(keyword), limit=limit)

    def confirm(self, keyword: KeywordSpec, ids: Sequence[str]) -> FetchResult:
        """Which of the harvested `ids` arXiv's own search matches for `keyword` (its usual
        query with `id_list`: arXiv answers only the listed papers that match)."""
        from bot.arxiv import api

        found: list[FetchedPaper] = []
        for start in range(0, len(ids), CONFIRM_BATCH):
            batch = ids[start : start + CONFIRM_BATCH]
            answer = api.search(self._api(), arxiv_query(keyword), limit=len(batch), id_list=batch)
            found.extend(answer.papers)
        return FetchResult(papers=tuple(found), total_results=len(found))

    def harvest(self, *, from_day: date, token: str | None) -> Iterator[HarvestPage]:
        """The pages of arXiv's announcements since `from_day`, or from `token` on."""
        from bot.arxiv import harvest

        return harvest.pages(
            self._http(), self.settings.arxiv_oai_url, from_day=from_day, token=token
        )

    def outage(self) -> Outage | None:
        """Set while arXiv is taken for down (several requests failed in a row)."""
        return self.pacer.outage()

    def _http(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                from bot.arxiv.http import paced_session

                self._session = paced_session(self.settings, self.pacer)
            return self._session

    def _api(self) -> arxiv.Client:
        session = self._http()
        with self._lock:
            if self._client is None:
                from bot.arxiv.api import PacedClient

                self._client = PacedClient(session, self.settings.arxiv_api_url)
            return self._client

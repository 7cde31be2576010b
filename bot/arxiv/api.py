"""arXiv API searches through the `arxiv` library, on the paced session."""

from __future__ import annotations

from collections.abc import Sequence

import arxiv
import requests

from bot.arxiv.answers import (
    ArxivFailure,
    FetchResult,
    KeywordRejected,
    refuse_suspicious,
    split_entry_id,
)
from bot.papers import FetchedPaper
from bot.text import squash

PAGE_SIZE = 100


class PacedClient(arxiv.Client):  # type: ignore[misc]
    """An `arxiv.Client` that owns its session: ours, paced, timed out and retried.

    arxiv 4.0.2 builds a plain `requests.Session()` in its constructor and offers no
    parameter or hook for another one, so this subclass sets its own in its constructor; the
    client's own delay and retries are off (the session does both, deployment-wide)."""

    def __init__(self, session: requests.Session, api_url: str) -> None:
        super().__init__(page_size=PAGE_SIZE, delay_seconds=0, num_retries=0)
        self._session = session
        self.query_url_format = api_url + "?{}"  # documented: where the client sends queries


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
        primary_category=squash(result.primary_category),
        categories=tuple(squash(c) for c in result.categories if squash(c)),
    )


def search(
    client: arxiv.Client, query: str, *, limit: int, id_list: Sequence[str] = ()
) -> FetchResult:
    """The newest `limit` papers matching `query` (only those of `id_list`, if given)."""
    wanted = arxiv.Search(
        query=query,
        id_list=list(id_list),
        max_results=limit,
        sort_by=arxiv.SortCriterion.LastUpdatedDate,
        sort_order=arxiv.SortOrder.Descending,
    )
    try:
        results = list(client.results(wanted))
    except arxiv.HTTPError as exc:
        if exc.status == 400:
            raise KeywordRejected(f"arXiv rejected the query {query!r}") from exc
        raise ArxivFailure(f"arXiv answered HTTP {exc.status}") from exc
    except arxiv.UnexpectedEmptyPageError as exc:
        raise ArxivFailure("arXiv answered an empty page in the middle of the results") from exc
    papers = tuple(to_fetched(r) for r in results)
    refuse_suspicious(papers)
    return FetchResult(papers=papers, total_results=len(papers))

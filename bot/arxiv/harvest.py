"""The OAI-PMH side of the daily refresh: `ListRecords` in the arXivRaw format, page by page
through sickle (its paging and OAI error handling), on the paced session."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import requests
from lxml import etree
from sickle import Sickle, oaiexceptions
from sickle.iterator import OAIResponseIterator
from sickle.response import OAIResponse

from bot.arxiv.answers import (
    ArxivFailure,
    ExpiredToken,
    HarvestPage,
)
from bot.papers import HarvestedPaper
from bot.text import squash

OAI = "{http://www.openarchives.org/OAI/2.0/}"
RAW = "{http://arxiv.org/OAI/arXivRaw/}"
# Every OAI-PMH error sickle raises (one class per error code).
_OAI_ERRORS = tuple(
    kind
    for kind in vars(oaiexceptions).values()
    if isinstance(kind, type) and issubclass(kind, Exception)
)


class PacedSickle(Sickle):  # type: ignore[misc]
    """Sickle whose HTTP goes through our session: `harvest` is its documented request step
    (sickle's own retry loop is replaced by the session's urllib3 `Retry`)."""

    def __init__(self, endpoint: str, session: requests.Session) -> None:
        super().__init__(endpoint, iterator=OAIResponseIterator, max_retries=0)
        self.session = session

    def harvest(self, **kwargs: Any) -> OAIResponse:
        response = self.session.get(
            self.endpoint, params=kwargs, headers={"Accept": "text/xml, application/xml"}
        )
        if response.status_code != 200:
            raise ArxivFailure(f"arXiv OAI-PMH answered HTTP {response.status_code}")
        return OAIResponse(response, params=kwargs)


def pages(
    session: requests.Session, url: str, *, from_day: date, token: str | None
) -> Iterator[HarvestPage]:
    """The harvest's pages from `token` (or from `from_day`); nothing for an empty range."""
    sickle = PacedSickle(url, session)
    params = (
        {"resumptionToken": token}
        if token
        else {"metadataPrefix": "arXivRaw", "from": from_day.isoformat()}
    )
    try:
        responses = sickle.ListRecords(**params)
        for response in responses:
            following = responses.resumption_token
            yield HarvestPage(
                papers=tuple(parse_records(response.xml)),
                token=(following.token or None) if following else None,
            )
    except oaiexceptions.NoRecordsMatch:
        return  # arXiv's way of saying "nothing announced in this range"
    except oaiexceptions.BadResumptionToken as exc:
        raise ExpiredToken("arXiv refused the harvest's resumption token") from exc
    except _OAI_ERRORS as exc:
        raise ArxivFailure(f"arXiv OAI-PMH error: {type(exc).__name__}: {exc}") from exc


def parse_records(xml: Any) -> Iterator[HarvestedPaper]:
    """The papers of one ListRecords page (deleted records have no metadata: left out)."""
    for record in xml.iterfind(f".//{OAI}record"):
        raw = record.find(f".//{RAW}arXivRaw")
        if raw is None:
            continue
        listed = tuple(dict.fromkeys((raw.findtext(f"{RAW}categories") or "").split()))
        yield HarvestedPaper(
            arxiv_id=(raw.findtext(f"{RAW}id") or "").strip(),
            title=squash(raw.findtext(f"{RAW}title")),
            abstract=squash(raw.findtext(f"{RAW}abstract")),
            categories=frozenset(listed),
            listed_categories=listed,
        )


def parse_file(content: bytes) -> list[HarvestedPaper]:
    """The papers of a saved ListRecords answer (tests, benchmarks)."""
    return list(parse_records(etree.fromstring(content)))

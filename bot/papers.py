"""A paper as arXiv gives it, reduced to what the store keeps: an API entry (`FetchedPaper`)
or an OAI-PMH arXivRaw record (`HarvestedPaper`). The arXiv gateway makes them, the store
keeps them; neither needs the other to read them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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
    # arXiv's primary category and all of them, as arXiv lists them (empty: not said)
    primary_category: str = ""
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class HarvestedPaper:
    """One OAI-PMH arXivRaw record, as much as the prefilter needs."""

    arxiv_id: str
    title: str
    abstract: str
    categories: frozenset[str]
    # the same categories as arXivRaw lists them, the primary first
    listed_categories: tuple[str, ...] = ()

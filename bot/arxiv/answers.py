"""What arXiv answers, reduced to what the store keeps, and the ways asking it can fail.

Imports nothing heavy: the core and the store use these types without loading the HTTP
stack (the `papers` command starts faster)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.papers import FetchedPaper, HarvestedPaper

# New-style ids (2303.08597) and old-style ones (hep-th/9901001, math.AG/0601001).
_ARXIV_ID = re.compile(r"\d{4}\.\d{4,5}|[a-z][a-z-]*(\.[A-Z]{2})?/\d{7}")


class ArxivFailure(Exception):
    """arXiv could not be asked or answered badly; stored papers stay as they are."""


class KeywordRejected(ArxivFailure):
    """arXiv answered its 400 error feed: the query itself is refused."""


class MalformedFeed(ArxivFailure):
    """The answer was not well-formed XML."""


class SuspiciousAnswer(ArxivFailure):
    """The answer parsed but holds entries we refuse to store (empty title or abstract,
    an id that does not parse)."""


class ArxivUnavailable(ArxivFailure):
    """arXiv failed several requests in a row: nobody asks until the next try."""


@dataclass(frozen=True)
class FetchResult:
    papers: tuple[FetchedPaper, ...]
    total_results: int


def split_entry_id(entry_id: str) -> tuple[str, int]:
    """`http://arxiv.org/abs/2303.08597v2` -> ("2303.08597", 2); old-style ids keep their slash."""
    short = entry_id.split("/abs/", 1)[-1]
    head, sep, tail = short.rpartition("v")
    if sep and tail.isascii() and tail.isdigit() and head:
        return head, int(tail)
    return short, 1


def is_arxiv_id(text: str) -> bool:
    return _ARXIV_ID.fullmatch(text) is not None


def refuse_suspicious(papers: Sequence[FetchedPaper]) -> None:
    """Raise `SuspiciousAnswer` when any entry would store less than a paper: one bad entry
    makes the whole answer suspect, and a stored paper is never overwritten with it."""
    bad_ids = [p.arxiv_id for p in papers if not is_arxiv_id(p.arxiv_id)]
    no_title = sum(not p.title for p in papers)
    no_abstract = sum(not p.abstract for p in papers)
    problems = [
        f"{len(bad_ids)} unreadable id{'s' if len(bad_ids) != 1 else ''} ({bad_ids[0][:40]!r})"
        if bad_ids
        else "",
        f"{no_title} empty title{'s' if no_title != 1 else ''}" if no_title else "",
        f"{no_abstract} empty abstract{'s' if no_abstract != 1 else ''}" if no_abstract else "",
    ]
    found = [p for p in problems if p]
    if found:
        raise SuspiciousAnswer("arXiv answered suspicious entries: " + ", ".join(found))


class ExpiredToken(ArxivFailure):
    """OAI-PMH refused a resumption token (expired or unknown): harvest again from `from`."""


@dataclass(frozen=True)
class HarvestPage:
    """One page of a harvest and the token of the next (None: this was the last)."""

    papers: tuple[HarvestedPaper, ...]
    token: str | None

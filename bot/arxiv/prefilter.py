"""The harvest's prefilter (SPEC 4, step 2): which keywords a harvested paper may match.

A paper is a candidate for a keyword when every term of the keyword's phrase occurs in its
title or abstract after the same normalisation arXiv's search applies (accents removed, lower
case, split on non-alphanumerics, Lucene's English stop words dropped, Snowball stemming):
a superset of arXiv's own matching, which the confirm request then narrows. Category rules
(`in:cs.CV`) are checked on the harvested categories; exclusions and authors are left to the
confirm request.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from bot.keywords import KeywordSpec
from bot.papers import HarvestedPaper
from bot.taxonomy import with_aliases

# Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET.
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)
_NON_ALNUM = re.compile(r"[\W_]+")


@cache
def _stemmer() -> Any:
    import Stemmer  # PyStemmer: the Snowball stemmers in C

    return Stemmer.Stemmer("english")


def terms(text: str) -> set[str]:
    """The normalised, stemmed, stop-word-free terms of `text`."""
    plain = "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )
    words = {w for w in _NON_ALNUM.split(plain.lower()) if w and w not in STOP_WORDS}
    return set(_stemmer().stemWords(list(words)))


@dataclass(frozen=True)
class _Entry:
    keyword_id: int
    terms: frozenset[str]
    categories: frozenset[str]


class KeywordIndex:
    """The followed keywords, indexed by one term each (the longest: likely the rarest), so a
    paper is checked only against keywords whose anchor term it contains."""

    def __init__(self, keywords: Iterable[tuple[int, KeywordSpec]]) -> None:
        self.keyword_ids: list[int] = []
        self.unindexed: list[int] = []  # no phrase terms (an author alone): asked one by one
        self._by_anchor: dict[str, list[_Entry]] = {}
        for keyword_id, spec in keywords:
            # A paper harvested under one of an alias pair may not list the other.
            categories = with_aliases(frozenset(spec.categories))
            wanted = frozenset(terms(spec.phrase))
            if not wanted:
                self.unindexed.append(keyword_id)
                continue
            self.keyword_ids.append(keyword_id)
            anchor = max(sorted(wanted), key=len)
            self._by_anchor.setdefault(anchor, []).append(_Entry(keyword_id, wanted, categories))

    def match(self, papers: Sequence[HarvestedPaper]) -> list[tuple[int, str]]:
        """(keyword id, arXiv id) of every candidate among `papers`."""
        found = []
        for paper in papers:
            words = terms(f"{paper.title} {paper.abstract}")
            for word in words & self._by_anchor.keys():
                for entry in self._by_anchor[word]:
                    if entry.terms <= words and (
                        not entry.categories or entry.categories & paper.categories
                    ):
                        found.append((entry.keyword_id, paper.arxiv_id))
        return found

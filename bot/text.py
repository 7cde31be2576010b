"""Text rules shared by keywords, the README and the chat formats."""

from __future__ import annotations

import unicodedata

MAX_KEYWORD_LENGTH = 100


def squash(text: str | None) -> str:
    """Newlines to spaces, runs of whitespace to one space, trimmed."""
    return " ".join((text or "").split())


def _is_forbidden(char: str) -> bool:
    # Quotes and backslashes could close the quoted phrase of the arXiv query;
    # control characters have no business in a keyword.
    return char in "\"'`\\“”„‟‘’‚‛«»" or unicodedata.category(char) in ("Cc", "Cf")


def clean_keyword(raw: str) -> str:
    """The keyword as it will be shown and searched: unsafe characters dropped, spaces squashed."""
    kept = "".join(
        " " if ch in "\t\n\r" else ch for ch in raw if ch in "\t\n\r" or not _is_forbidden(ch)
    )
    return squash(kept)


def keyword_key(label: str) -> str:
    """The deployment-wide key of a keyword: case-folded, whitespace collapsed."""
    return squash(label).casefold()


def arxiv_query(phrase: str) -> str:
    """The Daily Papers query: a word in title AND abstract, a phrase in title OR abstract."""
    if " " in phrase:
        return f'ti:"{phrase}" OR abs:"{phrase}"'
    return f'ti:"{phrase}" AND abs:"{phrase}"'

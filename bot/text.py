"""Text rules shared by keywords, the README and the chat formats."""

from __future__ import annotations

MAX_KEYWORD_LENGTH = 100


def squash(text: str | None) -> str:
    """Newlines to spaces, runs of whitespace to one space, trimmed."""
    return " ".join((text or "").split())

"""Text rules shared by keywords, the README and the chat formats."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

MAX_KEYWORD_LENGTH = 100
# In a reply, “…” marks text a person or arXiv supplied (a label, a typed word): the formats show
# it verbatim, never as their markup. `quoted` keeps the marks out of what it encloses.
OPEN_QUOTE, CLOSE_QUOTE = "“", "”"
_QUOTED = re.compile(f"({OPEN_QUOTE}[^{OPEN_QUOTE}{CLOSE_QUOTE}]*{CLOSE_QUOTE})")


def squash(text: str | None) -> str:
    """Newlines to spaces, runs of whitespace to one space, trimmed."""
    return " ".join((text or "").split())


def shown(text: str) -> str:
    """`text` without format characters (bidi controls such as U+202E, zero-width characters) and
    control characters other than line breaks and tabs: nothing shown can reverse or hide a line."""
    if text.isprintable():  # the common case: nothing invisible in it
        return text
    return "".join(ch for ch in text if ch.isprintable() or _visible(ch))


def _visible(char: str) -> bool:
    return char in "\n\r\t" or unicodedata.category(char) not in ("Cf", "Cc")


def quoted(text: str) -> str:
    """Supplied text inside one of our messages, marked so that formats show it verbatim."""
    inner = shown(text).replace(OPEN_QUOTE, "").replace(CLOSE_QUOTE, "")
    return f"{OPEN_QUOTE}{inner}{CLOSE_QUOTE}"


def quoted_parts(message: str) -> list[tuple[str, bool]]:
    """A message as (part, supplied) pieces: supplied ones are the “…” spans of `quoted`."""
    return [(part, bool(_QUOTED.fullmatch(part))) for part in _QUOTED.split(message) if part]


def split_text(
    text: str,
    limit: int,
    *,
    units: Callable[[str], int] = len,
    cut: Callable[[str, int], int] | None = None,
) -> list[str]:
    """Chunks of at most `limit` units, cut at line ends where possible; a longer line is cut at
    the position `cut(line, limit)` gives (default: the last space, else hard)."""
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        while units(line) > limit:
            at = (cut or _cut_at_space)(line, _fitting(line, limit, units))
            if current.strip():
                chunks.append(current)
            current = ""
            chunks.append(line[:at])
            line = line[at:]
        candidate = f"{current}\n{line}" if current else line
        if current and units(candidate) > limit:
            if current.strip():
                chunks.append(current)
            current = line
        else:
            current = candidate
    if current.strip():
        chunks.append(current)
    return chunks


def _fitting(line: str, limit: int, units: Callable[[str], int]) -> int:
    """How many characters of `line` fit in `limit` units."""
    keep = min(len(line), limit)
    while keep > 1 and (over := units(line[:keep]) - limit) > 0:
        keep = max(1, keep - over)  # a character is at least one unit
    return keep


def _cut_at_space(line: str, fits: int) -> int:
    space = line.rfind(" ", fits // 2, fits)
    return space + 1 if space > 0 else fits

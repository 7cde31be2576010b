"""Discord's text rules and limits: lengths in UTF-16 units, trimming with "…", markdown and
mentions made harmless in arXiv and typed text, one message's parts. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import discord
from discord.utils import escape_markdown, escape_mentions

from bot.text import quoted_parts, shown, split_text, squash

TITLE, DESCRIPTION, FIELD_NAME, FIELD_VALUE = 256, 4096, 256, 1024
FOOTER, AUTHOR, EMBED_TOTAL, EMBEDS, CONTENT = 2048, 256, 6000, 10, 2000
ELLIPSIS = "…"
COLOUR = discord.Colour(0xB31B1B)  # arXiv red
NO_MENTIONS = discord.AllowedMentions.none()  # sent with every message: nothing ever pings


@dataclass(frozen=True)
class Attachment:
    """A file to upload with a message."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class Message:
    """One Discord message: what `send` / `followup.send` get, minus the mentions policy."""

    content: str | None = None
    embeds: tuple[discord.Embed, ...] = ()
    file: Attachment | None = None
    ephemeral: bool = False
    saves: tuple[str, ...] = ()  # arXiv ids that get a Save button (the embeds' papers)
    abstracts: tuple[str, ...] = ()  # arXiv ids that get an Abstract button (compact posts)

    def as_dict(self) -> dict[str, Any]:
        """A plain snapshot (what the tests compare)."""
        return {
            "content": self.content,
            "embeds": [e.to_dict() for e in self.embeds],
            "file": (self.file.filename, self.file.data) if self.file else None,
            "ephemeral": self.ephemeral,
            "saves": list(self.saves),
        }


# -- text rules ---------------------------------------------------------------


def units(text: str) -> int:
    """Length in UTF-16 code units (an astral character counts 2)."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


def fit(text: str, limit: int, suffix: str = ELLIPSIS) -> str:
    """`text` if it fits in `limit`, else its start plus `suffix`, together within `limit`."""
    if units(text) <= limit:
        return text
    keep = max(0, limit - units(suffix))
    while keep and units(text[:keep]) + units(suffix) > limit:
        keep -= max(1, units(text[:keep]) + units(suffix) - limit)
    return text[:keep].rstrip() + suffix


def safe(text: str) -> str:
    """arXiv or user text for Discord: one line, markdown escaped, mentions defused."""
    return defuse(markdown_escaped(squash(text)))


def ours(message: str) -> str:
    """One of our messages: our markup kept, its “supplied” parts escaped, mentions defused."""
    parts = quoted_parts(message)
    return "".join(defuse(markdown_escaped(p) if supplied else p) for p, supplied in parts)


# What discord.py's escape_markdown can act on: these characters anywhere ("[" opens a
# link), and "-", "#" or ">" first on a line after blanks. Most abstracts have none of them.
_MARKDOWN_CHARACTERS = re.compile(r"[_\\~|*`\[]")
_MARKDOWN_LINE_STARTS = ("-", "#", ">")
_BRACKET = "\x00"  # stands for "[" during discord.py's scan (a control character: never shown)
_UNESCAPED_BRACKET = re.compile(r"(?<!\\)((?:\\\\)*)\[")  # after an even number of backslashes


def markdown_escaped(text: str) -> str:
    """`discord.utils.escape_markdown(text)` (URLs kept as they are), and every `[` escaped.

    discord.py's pattern for a masked link is greedy: in `[a](u1) and [b](u2)` it escapes the
    first `[` only, and nothing between the two, so the second link stays live. Each `[` is set
    aside before its scan and put back escaped. The scan tries a dozen patterns at every
    character (about 70 µs for an abstract); a text it could not change is returned as it is.
    """
    if _MARKDOWN_CHARACTERS.search(text) is None and not any(
        line.lstrip().startswith(_MARKDOWN_LINE_STARTS) for line in text.split("\n")
    ):
        return text
    guarded = text.replace(_BRACKET, "").replace("[", _BRACKET)
    escaped = escape_markdown(guarded).replace(_BRACKET, "[")
    # discord.py keeps URLs as they are, a backslash in one too: make every "[" follow an odd
    # number of backslashes, wherever it is.
    return _UNESCAPED_BRACKET.sub(r"\1\\[", escaped)


def defuse(text: str) -> str:
    """Our own text (which may use `code` markdown on purpose): only mentions defused (and no
    format character that could reverse the line)."""
    text = shown(text)
    return escape_mentions(text) if "@" in text else text


def split_content(text: str, limit: int = CONTENT) -> list[str]:
    """Chunks of at most `limit` UTF-16 units, cut at line ends where possible."""
    return split_text(text, limit, units=units)

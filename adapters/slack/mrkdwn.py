"""Slack's text rules: mrkdwn escaping, supplied text that cannot format ours, entity-safe cuts."""

from __future__ import annotations

import re

from bot.text import quoted_parts, shown, split_text, squash

MAX_SECTION = 3000  # characters in a section's text
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")
# mrkdwn has no escape for its formatting characters: in supplied text they become look-alikes
# that Slack does not parse (the stored text is unchanged). URLs keep theirs, or they would break.
_LOOKALIKES = str.maketrans({"*": "∗", "_": "ˍ", "~": "∼", "`": "ˋ"})
_URL = re.compile(r"(https?://[^\s<>|]+)")


def escape(text: str) -> str:
    """Slack's three control characters as entities, so arXiv text cannot ping or link (and no
    format character that could reverse the line)."""
    return shown(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def verbatim(text: str) -> str:
    """Supplied text (arXiv's, a typed label) for mrkdwn: escaped, and unable to format ours."""
    parts = _URL.split(escape(text))
    return "".join(p if i % 2 else p.translate(_LOOKALIKES) for i, p in enumerate(parts))


def mrkdwn(message: str) -> str:
    """One of our messages for mrkdwn: our markup kept, its “supplied” parts verbatim."""
    return "".join(verbatim(p) if supplied else escape(p) for p, supplied in quoted_parts(message))


def code(typed: str) -> str:
    """What someone typed as inline code (a backtick in it would end the code early)."""
    return "`" + escape(squash(typed)).replace("`", "ˋ") + "`"


def unescape(text: str) -> str:
    """Command text arrives with &, <, > escaped; this is what the user typed."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def clip(escaped: str, limit: int) -> str:
    """Shorten escaped mrkdwn to `limit` characters without cutting an entity in half."""
    if len(escaped) <= limit:
        return escaped
    return _PARTIAL_ENTITY.sub("", escaped[: limit - 1]) + "…"


def clip_plain(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sections_of(escaped: str, limit: int = MAX_SECTION) -> list[str]:
    """Escaped text in chunks of at most `limit` characters, never cut inside an entity."""
    return split_text(escaped, limit, cut=_safe_cut)


def _safe_cut(line: str, fits: int) -> int:
    space = line.rfind(" ", fits - 200, fits)
    cut = space + 1 if space > 0 else fits
    amp = line.rfind("&", cut - 5, cut)
    return amp if amp > 0 and ";" not in line[amp:cut] else cut

"""Replies as Discord messages: embeds and content within Discord's limits, nothing that pings.

Pure: no network, no client. `format_reply(reply)` gives the messages to send, in order; every
limit (title 256, description 4096, field value 1024, footer 2048, 6000 characters and 10 embeds a
message, 2000 characters of content) is kept here by trimming with "…" or splitting across
messages, so Discord never answers 400. Lengths are counted in UTF-16 code units, which is never
less than the code points Discord may count, so the check holds either way.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import discord
from discord.utils import escape_markdown, escape_mentions

from bot.replies import CommandHelp, File, KeywordRow, KeywordTable, Papers, PaperView, Reply, Text
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


# -- replies ------------------------------------------------------------------


def format_reply(reply: Reply) -> list[Message]:
    """The messages that show `reply` on Discord, in sending order (none for an empty reply)."""
    match reply:
        case Text():
            return _text(reply)
        case Papers():
            return papers_messages(reply)
        case KeywordTable():
            return _keywords(reply)
        case File():
            return [
                Message(
                    content=fit(ours(reply.comment), CONTENT) or None,
                    file=Attachment(reply.filename, reply.content.encode("utf-8")),
                    ephemeral=reply.private,
                )
            ]
        case CommandHelp():
            return [help_message(reply)]
    raise AssertionError(f"unhandled reply {reply!r}")


def format_replies(replies: Iterable[Reply]) -> list[Message]:
    return [message for reply in replies for message in format_reply(reply)]


def _text(reply: Text) -> list[Message]:
    return [
        Message(content=chunk, ephemeral=reply.ephemeral)
        for chunk in split_content(ours(reply.text))
    ]


def papers_messages(reply: Papers, *, reserve: int = 0) -> list[Message]:
    """The heading, then one embed per paper, packed ≤10 embeds and ≤6000 characters a message,
    each message with a Save button per paper (10 buttons: 2 of the 5 rows a message allows);
    `reserve`: characters of every message kept free (the daily post's part marker)."""
    papers = [p for group in reply.groups for p in group.papers]
    embeds = [
        sized_paper_embed(p, group.label, reserve=reserve)
        for group in reply.groups
        for p in group.papers
    ]
    batches = list(pack_sized(embeds, limit=EMBED_TOTAL - reserve)) or [[]]
    heading = fit(ours(reply.heading), CONTENT) if reply.heading.strip() else None
    ids = iter(p.arxiv_id for p in papers)  # batches keep the papers' order
    messages = [
        Message(
            content=heading if i == 0 else None,
            embeds=tuple(batch),
            saves=tuple(itertools.islice(ids, len(batch))),
            ephemeral=reply.ephemeral,
        )
        for i, batch in enumerate(batches)
    ]
    return [m for m in messages if m.content or m.embeds]  # Discord refuses empty messages


def paper_embed(paper: PaperView, group: str = "") -> discord.Embed:
    """Title linked to the abstract page, authors, date, comment; the abstract as description."""
    return sized_paper_embed(paper, group)[0]


def sized_paper_embed(
    paper: PaperView, group: str = "", *, reserve: int = 0
) -> tuple[discord.Embed, int]:
    """`paper_embed` and its `embed_size`, counted while it is built."""
    title = fit(safe(paper.title), TITLE) or paper.arxiv_id
    embed = discord.Embed(title=title, url=paper.abs_url, colour=COLOUR)
    size = units(title)
    if group:
        name = fit(safe(group), AUTHOR)
        embed.set_author(name=name)
        size += units(name)
    fields = []
    if paper.authors:
        fields.append(("Authors", fit(safe(paper.authors_short()), FIELD_VALUE), True))
    fields.append(("Updated", paper.day.isoformat(), True))
    fields.append(("PDF", f"[{paper.arxiv_id}v{paper.version}]({paper.pdf_url})", True))
    comment = safe(paper.comment)
    if comment:
        fields.append(("Comment", fit(comment, FIELD_VALUE), False))
    for name, value, inline in fields:
        embed.add_field(name=name, value=value, inline=inline)
        size += units(name) + units(value)
    footer = f"arXiv:{paper.arxiv_id}v{paper.version}"
    embed.set_footer(text=footer)
    size += units(footer)
    abstract = safe(paper.abstract)
    if abstract:
        description = fit(
            abstract,
            min(DESCRIPTION, EMBED_TOTAL - reserve - size),
            suffix=f"{ELLIPSIS} [more on arXiv]({paper.abs_url})",
        )
        embed.description = description
        size += units(description)
    return embed, size


def embed_size(embed: discord.Embed) -> int:
    """What counts towards the 6000 characters of a message (Discord's rule, in UTF-16 units)."""
    data = embed.to_dict()
    parts = [data.get("title", ""), data.get("description", "")]
    parts += [f["name"] + f["value"] for f in data.get("fields", [])]
    parts += [data.get("footer", {}).get("text", ""), data.get("author", {}).get("name", "")]
    return sum(units(p) for p in parts)


def pack_embeds(embeds: Sequence[discord.Embed]) -> Iterator[list[discord.Embed]]:
    """Greedy batches of at most 10 embeds and 6000 characters."""
    return pack_sized((embed, embed_size(embed)) for embed in embeds)


def pack_sized(
    embeds: Iterable[tuple[discord.Embed, int]], *, limit: int = EMBED_TOTAL
) -> Iterator[list[discord.Embed]]:
    """`pack_embeds` for embeds whose sizes are known (`limit` characters a message)."""
    batch: list[discord.Embed] = []
    total = 0
    for embed, size in embeds:
        if batch and (len(batch) == EMBEDS or total + size > limit):
            yield batch
            batch, total = [], 0
        batch.append(embed)
        total += size
    if batch:
        yield batch


def _keywords(reply: KeywordTable) -> list[Message]:
    harvest = f"\n{reply.harvest}" if reply.harvest else ""
    # Short, so a full description still fits in 6000.
    footer = fit(defuse(reply.digest + harvest), 500)
    if not reply.rows:
        text = f"No keywords followed here yet. Start with `/papers add`.\n{reply.digest}"
        return [Message(content=fit(defuse(text), CONTENT))]
    lines = [_keyword_line(row) for row in reply.rows]
    embeds = []
    for i, chunk in enumerate(split_content("\n".join(lines), DESCRIPTION)):
        embed = discord.Embed(description=chunk, colour=COLOUR)
        if i == 0:
            embed.title = "Keywords followed in this channel"
        embed.set_footer(text=footer)
        embeds.append(embed)
    return [Message(embeds=tuple(batch)) for batch in pack_embeds(embeds)]


def _keyword_line(row: KeywordRow) -> str:
    count = f"{row.papers} paper{'s' if row.papers != 1 else ''}"
    latest = f"newest {row.newest.isoformat()}" if row.newest else "no papers yet"
    rules = f" ({safe(row.rules)})" if row.rules else ""
    return fit(
        f"**{safe(row.label)}**{rules}: {count}, {latest}, last fetch {safe(row.status_text)}", 1000
    )


def help_message(reply: CommandHelp, syntax: Mapping[str, str] | None = None) -> Message:
    """`help` as an embed, each command as typed on Discord (`syntax`: its slash syntax by name,
    from the registered group; else the text syntax)."""
    lines = []
    for usage in reply.usages:
        typed = (syntax or {}).get(usage.name, f"/papers {usage.syntax}")
        mark = " (managers)" if usage.manager and reply.managers else ""
        lines.append(f"`{typed}`: {discord_wording(usage.summary)}{mark}")
    embed = discord.Embed(
        title="Daily Papers: follow arXiv keywords in this channel",
        description=fit(defuse("\n".join(lines)), DESCRIPTION),
        colour=COLOUR,
    )
    if reply.managers:
        embed.set_footer(text=fit(f"Managers here: {reply.managers}.", FOOTER))
    return Message(embeds=(embed,), ephemeral=reply.ephemeral)


def discord_wording(summary: str) -> str:
    """A command's summary in Discord's words (a server, a scope option)."""
    return summary.replace("with `all`", "with scope all").replace("workspace", "server")

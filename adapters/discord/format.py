"""Replies as Discord messages: embeds and content within Discord's limits, nothing that pings.

Pure: no network, no client. `format_reply(reply)` gives the messages to send, in order; every
limit (title 256, description 4096, field value 1024, footer 2048, 6000 characters and 10 embeds a
message, 2000 characters of content) is kept here by trimming with "…" or splitting across
messages, so Discord never answers 400. Lengths are counted in UTF-16 code units, which is never
less than the code points Discord may count, so the check holds either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import discord

# Re-exported: one module for "how a reply looks on Discord".
from adapters.discord.posts import embed_size as embed_size
from adapters.discord.posts import pack_embeds as pack_embeds
from adapters.discord.posts import pack_sized as pack_sized
from adapters.discord.posts import paper_embed as paper_embed
from adapters.discord.posts import papers_messages as papers_messages
from adapters.discord.posts import sized_paper_embed as sized_paper_embed
from adapters.discord.text import AUTHOR as AUTHOR
from adapters.discord.text import COLOUR as COLOUR
from adapters.discord.text import CONTENT as CONTENT
from adapters.discord.text import DESCRIPTION as DESCRIPTION
from adapters.discord.text import ELLIPSIS as ELLIPSIS
from adapters.discord.text import EMBED_TOTAL as EMBED_TOTAL
from adapters.discord.text import EMBEDS as EMBEDS
from adapters.discord.text import FIELD_NAME as FIELD_NAME
from adapters.discord.text import FIELD_VALUE as FIELD_VALUE
from adapters.discord.text import FOOTER as FOOTER
from adapters.discord.text import NO_MENTIONS as NO_MENTIONS
from adapters.discord.text import TITLE as TITLE
from adapters.discord.text import Attachment as Attachment
from adapters.discord.text import Message as Message
from adapters.discord.text import defuse as defuse
from adapters.discord.text import fit as fit
from adapters.discord.text import markdown_escaped as markdown_escaped
from adapters.discord.text import ours as ours
from adapters.discord.text import safe as safe
from adapters.discord.text import split_content as split_content
from adapters.discord.text import units as units
from bot.replies import CommandHelp, File, KeywordRow, KeywordTable, Papers, Reply, Text

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

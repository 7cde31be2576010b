"""Replies as plain terminal text (the terminal front end's format)."""

from __future__ import annotations

import textwrap

from bot.posts.poster import more_line
from bot.replies import CommandHelp, File, KeywordTable, Papers, Reply, Text
from bot.text import shown


def format_reply(reply: Reply) -> str:
    match reply:
        case File(content=content):
            return content
        case _:
            return shown(_text(reply))  # nothing shown can reverse a line or move the cursor


def _text(reply: Reply) -> str:
    match reply:
        case Text(text=text):
            return text
        case Papers():
            return _papers(reply)
        case KeywordTable():
            return _keywords(reply)
        case CommandHelp():
            return _help(reply)
    raise AssertionError(f"unhandled reply {reply!r}")


def _help(reply: CommandHelp) -> str:
    lines = []
    for usage in reply.usages:
        who = " (managers)" if usage.manager and reply.managers else ""
        lines.append(f"papers {usage.syntax}\n    {usage.summary}{who}")
    return "\n".join(lines)


def _papers(reply: Papers) -> str:
    lines = [reply.heading, ""]
    for group in reply.groups:
        if group.label:
            lines += [f"== {group.label} ==", ""]
        for paper in group.papers:
            lines.append(f"{paper.title}")
            lines.append(f"  {paper.abs_url}  ({paper.day.isoformat()})")
            if paper.authors:
                lines.append(f"  {paper.authors_short()}")
            if paper.comment:
                lines.append(f"  Comment: {paper.comment}")
            lines += textwrap.wrap(
                paper.abstract, width=96, initial_indent="  ", subsequent_indent="  "
            )
            lines.append("")
    if reply.more:  # `digest now` within the channel's max: the rest wait, and say so
        lines.append(more_line(reply, "papers"))
    return "\n".join(lines).rstrip() + "\n"


def _keywords(reply: KeywordTable) -> str:
    if not reply.rows:
        return (
            f"No keywords followed here yet. Start with `papers add <keyword>`.\n{reply.digest}\n"
        )
    width = max(len(r.label) for r in reply.rows)
    lines = [f"{'keyword'.ljust(width)}  papers  newest      last fetch"]
    for row in reply.rows:
        newest = row.newest.isoformat() if row.newest else "-"
        lines.append(f"{row.label.ljust(width)}  {row.papers:>6}  {newest:<10}  {row.status_text}")
        if row.rules:
            lines.append(f"  {row.rules}")
    if reply.harvest:
        lines.append(reply.harvest)
    lines.append(reply.digest)
    return "\n".join(lines) + "\n"

"""Papers as Discord messages: an embed per paper (lists and full-style posts), one line per
paper with Save and Abstract buttons (compact posts), a threaded post's parent, and the
closing line of a post cut by `max`; packed within Discord's limits. Pure."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

import discord

from adapters.discord.text import (
    AUTHOR,
    COLOUR,
    CONTENT,
    DESCRIPTION,
    ELLIPSIS,
    EMBED_TOTAL,
    EMBEDS,
    FIELD_VALUE,
    TITLE,
    Message,
    fit,
    ours,
    safe,
    units,
)
from bot.posts.poster import more_line as shared_more_line
from bot.posts.poster import parent_line
from bot.replies import Papers, PaperView

COMPACT_PAPERS = 10  # lines a compact message: a Save and an Abstract button each, 4 of 5 rows
COMPACT_LINE, COMPACT_LABEL = 300, 80  # 10 of each within a description's 4096


def papers_messages(reply: Papers, *, reserve: int = 0) -> list[Message]:
    """A reply's papers in its style (compact, or an embed per paper), and a post cut by `max`
    ends with how many wait and the command that lists them."""
    if reply.style == "compact":
        messages = compact_messages(reply, reserve=reserve)
    else:
        messages = embed_messages(reply, reserve=reserve)
    if reply.more and messages:
        last = messages[-1]
        content = f"{last.content}\n{more_line(reply)}" if last.content else more_line(reply)
        messages[-1] = replace(last, content=content)
    return messages


def more_line(post: Papers) -> str:
    return shared_more_line(post, "/papers")


def parent_message(post: Papers, *, reserve: int = 0) -> Message:
    """A threaded post's parent: "14 new papers: Virtual Try-On 9, Image Editing 5"."""
    return Message(content=fit(safe(parent_line(post)), CONTENT - reserve))


def compact_messages(reply: Papers, *, reserve: int = 0) -> list[Message]:
    """One line per paper (title link, first author et al., date) under its keyword, up to
    COMPACT_PAPERS a message in one embed, each paper with a Save and an Abstract button."""
    rows = [(g.label, p) for g in reply.groups for p in g.papers]
    heading = fit(ours(reply.heading), CONTENT) if reply.heading.strip() else None
    messages = []
    for start in range(0, len(rows), COMPACT_PAPERS):
        chunk, lines, label = rows[start : start + COMPACT_PAPERS], [], None
        for group, paper in chunk:
            if group and group != label:
                lines.append(f"**{fit(safe(group), COMPACT_LABEL)}**")
            label = group
            lines.append(compact_line(paper))
        embed = discord.Embed(description="\n".join(lines), colour=COLOUR)
        ids = tuple(p.arxiv_id for _, p in chunk)
        messages.append(
            Message(
                content=heading if start == 0 else None,
                embeds=(embed,),
                saves=ids,
                abstracts=ids,
                ephemeral=reply.ephemeral,
            )
        )
    return messages


def compact_line(paper: PaperView) -> str:
    title = fit(link_text(paper.title), 180) or paper.arxiv_id
    first = (
        paper.authors[0] + (" et al." if len(paper.authors) > 1 else "") if paper.authors else ""
    )
    who = f" · {fit(safe(first), 80)}" if first else ""
    return fit(f"[{title}]({paper.abs_url}){who} · {paper.day.isoformat()}", COMPACT_LINE)


def link_text(text: str) -> str:
    """Supplied text as a masked link's text. Discord's link syntax ignores escapes there: a
    "]" in a title would close our link early and make "](https://elsewhere)" after it a live
    link of its own, so square brackets become their full-width look-alikes."""
    return safe(text).replace("\\[", "［").translate(_NO_BRACKETS)


_NO_BRACKETS = str.maketrans("[]", "［］")


def embed_messages(reply: Papers, *, reserve: int = 0) -> list[Message]:
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

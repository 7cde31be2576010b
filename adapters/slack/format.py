"""Replies as Slack messages (Block Kit) within Slack's limits; pure, no network."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.slack.mrkdwn import MAX_SECTION as MAX_SECTION  # re-exported: Slack's limits
from adapters.slack.mrkdwn import (
    clip,
    clip_plain,
    code,
    escape,
    mrkdwn,
    sections_of,
    verbatim,
)
from adapters.slack.posts import COMMAND as COMMAND  # re-exported: the blocks of a paper
from adapters.slack.posts import SAVE_PAPER as SAVE_PAPER
from adapters.slack.posts import SHOW_ABSTRACT as SHOW_ABSTRACT
from adapters.slack.posts import Block as Block
from adapters.slack.posts import (
    context,
    more_block,
    paper_block,
    parent_text,
    save_actions,
    section,
)
from bot.replies import (
    CommandHelp,
    File,
    KeywordRow,
    KeywordTable,
    PaperGroup,
    Papers,
    PaperView,
    Reply,
    Text,
)
from bot.text import shown, squash

MAX_BLOCKS = 50  # blocks in one message
MAX_HEADER = 150  # characters in a header block
MAX_FALLBACK = 3000  # the top-level `text` (notifications, screen readers)
# Block text per message: long messages are hard to read and risk msg_too_long.
MESSAGE_BUDGET = 12_000
BLOCKS_PER_PAPER = 2  # its section (with "Show abstract") and a row with "Save"


@dataclass(frozen=True)
class SlackMessage:
    """One Slack message: mrkdwn fallback text, blocks, visibility, or a file to upload."""

    text: str
    blocks: tuple[Block, ...] = ()
    ephemeral: bool = False
    upload: File | None = None

    def payload(self) -> dict[str, Any]:
        """Arguments for chat.postMessage / respond (minus channel and response_type)."""
        body: dict[str, Any] = {"text": self.text, "unfurl_links": False, "unfurl_media": False}
        if self.blocks:
            body["blocks"] = [dict(b) for b in self.blocks]
        return body


# -- blocks -------------------------------------------------------------------


def header(text: str) -> Block:
    """A header block; plain text is never parsed, so it is not escaped."""
    plain = clip_plain(squash(shown(text)), MAX_HEADER) or "Daily Papers"
    return {"type": "header", "text": {"type": "plain_text", "text": plain, "emoji": True}}


def _group_label(label: str, continued: bool) -> Block:
    suffix = " (continued)" if continued else ""
    return section(f"*{clip(verbatim(squash(label)), 300)}*{suffix}")


def _text_size(block: Block) -> int:
    if block["type"] == "actions":  # buttons: a few characters of their own
        return 0
    if "text" in block:
        return len(block["text"]["text"])
    return sum(len(e.get("text", "")) for e in block.get("elements", ()))


# -- replies ------------------------------------------------------------------


def to_messages(reply: Reply) -> list[SlackMessage]:
    """A reply as one or more Slack messages, each within Block Kit's limits."""
    match reply:
        case Text():
            return _text(reply)
        case Papers():
            return _papers(reply)
        case KeywordTable():
            return _keywords(reply)
        case File():
            comment = clip(mrkdwn(reply.comment), MAX_FALLBACK)
            return [SlackMessage(text=comment, upload=reply, ephemeral=reply.private)]
        case CommandHelp():
            return _text(Text(help_text(reply), ephemeral=reply.ephemeral), ours=True)
    raise AssertionError(f"unhandled reply {reply!r}")


def _text(reply: Text, *, ours: bool = False) -> list[SlackMessage]:
    escaped = (reply.text.strip() if ours else mrkdwn(reply.text.strip())) or " "
    blocks = [section(chunk) for chunk in sections_of(escaped)]
    return [
        SlackMessage(
            text=clip(page_text, MAX_FALLBACK), blocks=tuple(page), ephemeral=reply.ephemeral
        )
        for page, page_text in _paginate(blocks, fallback=escaped)
    ]


def _paginate(blocks: Sequence[Block], *, fallback: str) -> list[tuple[list[Block], str]]:
    """Blocks in pages of at most MAX_BLOCKS and MESSAGE_BUDGET characters."""
    pages: list[list[Block]] = [[]]
    used = 0
    for block in blocks:
        size = _text_size(block)
        if pages[-1] and (len(pages[-1]) >= MAX_BLOCKS or used + size > MESSAGE_BUDGET):
            pages.append([])
            used = 0
        pages[-1].append(block)
        used += size
    if len(pages) == 1:
        return [(pages[0], fallback)]
    return [(page, f"{clip(fallback, 200)} ({i}/{len(pages)})") for i, page in enumerate(pages, 1)]


def _papers(reply: Papers) -> list[SlackMessage]:
    pages = _paper_pages(reply.groups, reply.style)
    if reply.more:  # the closing line of a post cut by `max`, under the header's room
        if len(pages[-1]) >= MAX_BLOCKS - 1:
            pages.append([])
        pages[-1].append(more_block(reply))
    count = len(pages)
    messages = []
    for number, page in enumerate(pages, 1):
        suffix = f" ({number}/{count})" if count > 1 else ""
        title = clip_plain(squash(reply.heading), MAX_HEADER - len(suffix)) + suffix
        messages.append(
            SlackMessage(
                text=mrkdwn(title), blocks=(header(title), *page), ephemeral=reply.ephemeral
            )
        )
    return messages


def _paper_pages(groups: Iterable[PaperGroup], style: str = "") -> list[list[Block]]:
    """Paper blocks under their group labels, split so that each page leaves room for a header."""
    pages: list[list[Block]] = [[]]
    used = 0
    for group in groups:
        shown_here = False  # the group's label is on the current page
        started = False  # the group's label was shown on an earlier page
        for paper in group.papers:
            blocks = (paper_block(paper, style), save_actions(paper))
            label = [] if not group.label or shown_here else [_group_label(group.label, started)]
            size = sum(_text_size(b) for b in (*label, *blocks))
            if pages[-1] and (
                len(pages[-1]) + len(label) + len(blocks) > MAX_BLOCKS - 1
                or used + size > MESSAGE_BUDGET
            ):
                pages.append([])
                used = 0
                shown_here = False
                label = [_group_label(group.label, started)] if group.label else []
                size = sum(_text_size(b) for b in (*label, *blocks))
            pages[-1].extend((*label, *blocks))
            used += size
            shown_here = started = True
    return pages


def _keywords(reply: KeywordTable) -> list[SlackMessage]:
    digest = context(escape(reply.digest))
    if not reply.rows:
        note = f"No keywords followed here yet. Start with `{COMMAND} add <keyword>`."
        return [SlackMessage(text=escape(note), blocks=(section(escape(note)), digest))]
    lines = "\n".join(_keyword_line(row) for row in reply.rows)
    blocks = [header("Keywords followed in this channel")]
    blocks += [section(chunk) for chunk in sections_of(lines)]
    if reply.harvest:
        blocks.append(context(escape(reply.harvest)))
    blocks.append(digest)
    fallback = f"{len(reply.rows)} keyword{'s' if len(reply.rows) != 1 else ''} followed here"
    return [
        SlackMessage(text=page_text, blocks=tuple(page))
        for page, page_text in _paginate(blocks, fallback=fallback)
    ]


def _keyword_line(row: KeywordRow) -> str:
    newest = row.newest.isoformat() if row.newest else "–"
    status = verbatim(squash(row.status_text))
    mark = ":warning: " if row.status == "failed" else ""
    plural = "s" if row.papers != 1 else ""
    rules = f" ({verbatim(squash(row.rules))})" if row.rules else ""
    return (
        f"• *{verbatim(squash(row.label))}*{rules}: {row.papers} paper{plural}, newest {newest}, "
        f"last fetch: {mark}{status}"
    )


def parent_message(post: Papers) -> SlackMessage:
    """A threaded post's parent: one line naming the counts per keyword."""
    text = parent_text(post)
    return SlackMessage(text=clip(text, MAX_FALLBACK), blocks=(section(text),))


def abstract_message(paper: PaperView) -> SlackMessage:
    """The answer to "Show abstract": the paper's abstract, only for the person who clicked."""
    title = clip(verbatim(squash(paper.title)) or paper.arxiv_id, 1000)
    authors = clip(verbatim(squash(", ".join(paper.authors))), 1000)
    head = (
        f"*<{paper.abs_url}|{title}>*\n{authors + ' · ' if authors else ''}{paper.day.isoformat()}"
    )
    abstract = verbatim(squash(paper.abstract)) or "_No abstract._"
    blocks = [section(head), *(section(chunk) for chunk in sections_of(abstract))]
    blocks.append(context(f"<{paper.pdf_url}|PDF> · <{paper.abs_url}|arXiv page>"))
    return SlackMessage(text=title, blocks=tuple(blocks[:MAX_BLOCKS]), ephemeral=True)


def help_text(reply: CommandHelp) -> str:
    """`help` as mrkdwn, written as Slack users type the commands."""
    lines = [
        f"`{COMMAND} {escape(u.syntax)}`: {escape(u.summary)}"
        + (" (managers)" if u.manager and reply.managers else "")
        for u in reply.usages
    ]
    if reply.managers:
        lines.append(f"Managers here: {escape(reply.managers)}.")
    return "\n".join(lines)


def asked_by(user_name: str, typed: str) -> str:
    """Who asked what, for a public answer: a name, not a mention (that would ping them)."""
    who = verbatim(squash(user_name)) or "Someone"
    return f"{who} used {code(f'{COMMAND} {typed}')}"


def attribute(messages: list[SlackMessage], note: str) -> list[SlackMessage]:
    """Say who asked, under the first message's header (when it has room for one more block)."""
    if not messages or messages[0].upload is not None or len(messages[0].blocks) >= MAX_BLOCKS:
        return messages
    first = messages[0]
    blocks = list(first.blocks)
    at = 1 if blocks and blocks[0]["type"] == "header" else 0
    blocks.insert(at, context(note))
    return [SlackMessage(first.text, tuple(blocks), first.ephemeral, first.upload), *messages[1:]]

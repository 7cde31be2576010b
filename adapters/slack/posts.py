"""A paper's blocks in each style (lists, the post's full and compact) and the lines only a
post has: a threaded post's parent and the closing count of papers left for the next post."""

from __future__ import annotations

from typing import Any

from adapters.slack.mrkdwn import MAX_SECTION, clip, escape, verbatim
from bot.posts.poster import more_line, parent_line
from bot.replies import Papers, PaperView
from bot.text import squash

SHOW_ABSTRACT = "show_abstract"  # action_id prefix of the "Show abstract" buttons
SAVE_PAPER = "save_paper"  # action_id prefix of the "Save" buttons
ABSTRACT_SHOWN = 600  # characters of the abstract in a full-style post; the button has the rest
COMMAND = "/papers"
Block = dict[str, Any]


def section(mrkdwn: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(mrkdwn, MAX_SECTION)}}


def context(mrkdwn: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(mrkdwn, MAX_SECTION)}]}


def cut_words(text: str, limit: int) -> str:
    """`text` within `limit` characters, cut at a word boundary, with "…" when cut."""
    if len(text) <= limit:
        return text
    space = text.rfind(" ", 0, limit)
    return text[: space if space > limit // 2 else limit - 1].rstrip() + "…"


def paper_block(paper: PaperView, style: str = "") -> Block:
    """Title linked to arXiv, then per style: "compact" one line (first author et al., date);
    lists ("") the first authors, date and comment; "full" that and the abstract's first
    ABSTRACT_SHOWN characters. The abstract (the whole of it) is one click away."""
    title = clip(verbatim(squash(paper.title)) or paper.arxiv_id, 1000)
    if style == "compact":
        first = f"{verbatim(squash(paper.authors[0]))[:200]} et al. · " if paper.authors else ""
        if len(paper.authors) == 1:
            first = first.replace(" et al.", "")
        block = section(f"<{paper.abs_url}|{title}> · {first}{paper.day.isoformat()}")
    else:
        meta = [clip(verbatim(squash(paper.authors_short())), 600)] if paper.authors else []
        meta.append(paper.day.isoformat())
        lines = [f"*<{paper.abs_url}|{title}>*", " · ".join(meta)]
        if squash(paper.comment):
            lines.append("Comment: " + clip(verbatim(squash(paper.comment)), 1000))
        if style == "full" and squash(paper.abstract):
            lines.append(verbatim(cut_words(squash(paper.abstract), ABSTRACT_SHOWN)))
        block = section("\n".join(lines))
    block["accessory"] = {
        "type": "button",
        "text": {"type": "plain_text", "text": "Show abstract", "emoji": True},
        "action_id": f"{SHOW_ABSTRACT}:{paper.arxiv_id}"[:255],
        "value": paper.arxiv_id,
    }
    return block


def save_actions(paper: PaperView) -> Block:
    """The paper's Save button, in a row of its own under the paper (the section's one
    accessory is "Show abstract"): two blocks a paper, so a message holds at most 24."""
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Save", "emoji": True},
                "action_id": f"{SAVE_PAPER}:{paper.arxiv_id}"[:255],
                "value": paper.arxiv_id,
            }
        ],
    }


def parent_text(post: Papers) -> str:
    """A threaded post's parent, escaped: "14 new papers: Virtual Try-On 9, Image Editing 5"."""
    return verbatim(squash(parent_line(post)))


def more_block(post: Papers) -> Block:
    """The closing line of a post cut by `max`: how many wait, and the command that lists them."""
    return context(more_line(post, COMMAND))


def escaped_heading(post: Papers) -> str:
    return escape(squash(post.heading))

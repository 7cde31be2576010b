"""The Daily Papers README export (SPEC section 6), exact to the byte."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from bot.replies import PaperView
from bot.text import squash

PAPERS_PER_SECTION = 100
COMMENT_VERBATIM = 20

HEADER = (
    "# Daily Papers\n"
    "The project automatically fetches the latest papers from arXiv based on keywords.\n"
    "\n"
    "The subheadings in the README file represent the search keywords.\n"
    "\n"
    "Only the most recent articles for each keyword are retained, up to a maximum of 100 papers.\n"
    "\n"
    "You can click the 'Watch' button to receive daily email notifications.\n"
    "\n"
    "Last update: {day}\n"
    "\n"
)
TABLE_HEAD = "| **Title** | **Date** | **Abstract** | **Comment** |\n| --- | --- | --- | --- |"


def cell(text: str) -> str:
    """Whitespace-normalised, with `|` escaped so it cannot break the table."""
    return squash(text).replace("|", "\\|")


def comment_cell(comment: str) -> str:
    text = cell(comment)
    if len(text) <= COMMENT_VERBATIM:
        return text
    return f"<details><summary>{text[:5]}...</summary><p>{text}</p></details>"


def paper_row(paper: PaperView) -> str:
    return (
        f"| **[{cell(paper.title)}]({paper.pdf_url})** | {paper.day.isoformat()} | "
        f"<details><summary>Show</summary><p>{cell(paper.abstract)}</p></details> | "
        f"{comment_cell(paper.comment)} |"
    )


def render_section(label: str, papers: Sequence[PaperView]) -> str:
    rows = "".join("\n" + paper_row(p) for p in papers[:PAPERS_PER_SECTION])
    return f"## {squash(label)}\n{TABLE_HEAD}{rows}\n\n"


def render_readme(sections: Iterable[tuple[str, Sequence[PaperView]]], *, day: date) -> str:
    """The whole README: header, then one section per keyword in the order given.

    Each section's papers come newest first, ties by arXiv id descending (the store's order).
    """
    parts = [HEADER.format(day=day.isoformat())]
    parts.extend(render_section(label, papers) for label, papers in sections)
    return "".join(parts)

"""A channel's papers as an Atom 1.0 document, written with feedgen."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from feedgen.feed import FeedGenerator

from bot.replies import PaperView
from bot.text import shown, squash

ARXIV_SCHEME = "http://arxiv.org/schemas/atom"  # the scheme of arXiv's own category terms


def render_atom(*, url: str, title: str, papers: Sequence[PaperView], updated: datetime) -> bytes:
    """The feed at `url`: one entry per paper, in the order given. Nothing in it depends on the
    time it is written, so the same papers give the same bytes (and the same ETag)."""
    feed = FeedGenerator()
    feed.id(url)
    feed.title(xml_text(title))
    feed.link(href=url, rel="self", type="application/atom+xml")
    feed.author(name="Daily Papers")  # Atom wants one where an entry may have no author
    feed.updated(updated)
    for paper in papers:
        _entry(feed, paper)
    document: bytes = feed.atom_str(pretty=True)
    return document


def _entry(feed: FeedGenerator, paper: PaperView) -> None:
    entry = feed.add_entry(order="append")
    entry.id(paper.abs_url)  # versioned: a new version is a new entry for readers
    entry.title(xml_text(squash(paper.title)) or paper.arxiv_id)
    # One link: feedgen 1.0.0 writes an entry link's href only (its rel and type are dropped),
    # and Atom allows one alternate link per type, so the PDF would make the entry invalid.
    entry.link(href=paper.abs_url, rel="alternate", type="text/html")
    entry.updated(paper.updated)
    if paper.published is not None:
        entry.published(paper.published)
    for name in paper.authors:
        if xml_text(name).strip():
            entry.author(name=xml_text(name))
    entry.summary(xml_text(paper.abstract))
    for category in paper.categories:
        entry.category(term=category, scheme=ARXIV_SCHEME)


def xml_text(text: str) -> str:
    """Text XML can carry: `shown` drops control and format characters (XML 1.0 refuses most
    control characters), and the two non-characters U+FFFE/U+FFFF go too."""
    return shown(text).replace("\ufffe", "").replace("\uffff", "")

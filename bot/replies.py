"""What commands answer: plain data each front end turns into its own messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class PaperView:
    """A paper as every front end shows it."""

    arxiv_id: str
    version: int
    title: str
    authors: tuple[str, ...]
    updated: datetime  # UTC, of the newest version
    comment: str
    abstract: str
    # Read with the whole paper only (a saved paper, a feed entry); lists and posts leave them out.
    published: datetime | None = None  # UTC, of the first version
    primary_category: str = ""
    categories: tuple[str, ...] = ()

    @property
    def day(self) -> date:
        return self.updated.date()

    @property
    def abs_url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv_id}v{self.version}"

    @property
    def pdf_url(self) -> str:
        return f"https://arxiv.org/pdf/{self.arxiv_id}v{self.version}"

    def authors_short(self, shown: int = 3) -> str:
        """The first three authors, then "et al."."""
        if len(self.authors) <= shown:
            return ", ".join(self.authors)
        return ", ".join(self.authors[:shown]) + " et al."


@dataclass(frozen=True)
class PaperGroup:
    """Papers under one heading (a keyword's label, or "" for no heading)."""

    label: str
    papers: tuple[PaperView, ...]


@dataclass(frozen=True)
class Papers:
    """A list of papers: `list`, the papers `add` found, the daily post."""

    heading: str
    groups: tuple[PaperGroup, ...]
    ephemeral: bool = False  # only for the person who asked (`preview`)
    # A post's (daily, weekly or `digest now`): its style ("full" or "compact"; "" for the
    # answers of commands) and the papers left for the next post by the channel's `max`.
    style: str = ""
    more: int = 0

    @property
    def count(self) -> int:
        return sum(len(g.papers) for g in self.groups)


@dataclass(frozen=True)
class Text:
    """A message; errors and usage are ephemeral where the platform allows. `error`: the input
    was bad and nothing changed; `failed`: the command did what it could but part of it failed
    (a keyword followed whose fetch failed), so the terminal exits 1."""

    text: str
    ephemeral: bool = False
    error: bool = False
    failed: bool = False


@dataclass(frozen=True)
class KeywordRow:
    label: str
    papers: int
    newest: date | None
    status: str  # "ok", "failed", "skipped" (arXiv was down) or "never"
    error: str | None = None
    rules: str = ""  # the keyword's rules for people: "excluding medical · in cs.CV, cs.GR"

    @property
    def status_text(self) -> str:
        if self.status in ("failed", "skipped"):
            return f"{self.status}: {self.error or 'unknown reason'}"
        return self.status


@dataclass(frozen=True)
class KeywordTable:
    """The `keywords` answer: each keyword's state and the channel's daily post."""

    rows: tuple[KeywordRow, ...]
    digest: str
    paused: bool = False
    harvest: str = ""  # the last daily harvest: when, records, requests, fallback or not


@dataclass(frozen=True)
class Usage:
    """One command's line of help: its name, how to write it, what it does, who may use it."""

    name: str
    syntax: str
    summary: str
    manager: bool = False


@dataclass(frozen=True)
class CommandHelp:
    """The `help` answer: every command's usage, rendered by each front end in its own syntax.

    `managers` says who may use the manager commands here ("" when everyone may).
    """

    usages: tuple[Usage, ...]
    managers: str = ""
    ephemeral: bool = True


@dataclass(frozen=True)
class File:
    """A file to hand over (the README export)."""

    filename: str
    content: str
    comment: str
    # Only for the person who asked: Slack sends it in a direct message, Discord as an
    # ephemeral attachment.
    private: bool = False


Reply = Text | Papers | KeywordTable | File | CommandHelp


def error(text: str) -> Text:
    return Text(text, ephemeral=True, error=True)

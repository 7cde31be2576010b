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
    status: str  # "ok", "failed" or "never"
    error: str | None = None

    @property
    def status_text(self) -> str:
        if self.status == "failed":
            return f"failed: {self.error or 'unknown reason'}"
        return self.status


@dataclass(frozen=True)
class KeywordTable:
    """The `keywords` answer: each keyword's state and the channel's daily post."""

    rows: tuple[KeywordRow, ...]
    digest: str
    paused: bool = False


@dataclass(frozen=True)
class File:
    """A file to hand over (the README export)."""

    filename: str
    content: str
    comment: str


Reply = Text | Papers | KeywordTable | File


def error(text: str) -> Text:
    return Text(text, ephemeral=True, error=True)

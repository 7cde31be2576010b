"""The words of saved papers and private feeds (`save`, `unsave`, `saved [bibtex]`, `feed [reset]`)
as frozen commands; `grammar.build` turns a `ValueError` from here into its `BadInput`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.arxiv.answers import is_arxiv_id
from bot.text import quoted

# What people paste for a paper: arXiv:2303.08597, 2303.08597v2, its abs or pdf URL.
_PREFIX = re.compile(r"^(arxiv:|https?://(www\.|export\.)?arxiv\.org/(abs|pdf)/)", re.IGNORECASE)
_VERSION = re.compile(r"v\d+$")


@dataclass(frozen=True)
class Save:
    """Save a paper for yourself (what a post's Save button does)."""

    arxiv_id: str


@dataclass(frozen=True)
class Unsave:
    """Remove a paper from your saved papers."""

    arxiv_id: str


@dataclass(frozen=True)
class Saved:
    """The papers you saved, newest saved first; `bibtex`: as a saved.bib file."""

    bibtex: bool = False


@dataclass(frozen=True)
class Feed:
    """A private Atom feed URL of this channel's papers; `reset` stops the earlier URLs."""

    reset: bool = False


def build(name: str, args: list[str]) -> Save | Unsave | Saved | Feed:
    """One of these commands from its name and words; `ValueError` says what was wrong."""
    match name, [a.casefold() for a in args]:
        case (("save" | "unsave"), [_]):
            arxiv_id = arxiv_id_of(args[0])
            return Save(arxiv_id) if name == "save" else Unsave(arxiv_id)
        case (("save" | "unsave"), _):
            raise ValueError(f"`{name}` takes one arXiv id, such as 2303.08597.")
        case "saved", ([] | ["bibtex"]) as words:
            return Saved(bibtex=bool(words))
        case "saved", _:
            raise ValueError("`saved` takes nothing, or `bibtex`.")
        case "feed", ([] | ["reset"]) as words:
            return Feed(reset=bool(words))
        case "feed", _:
            raise ValueError("`feed` takes nothing, or `reset`.")
    raise ValueError(f"Unknown command {quoted(name)}.")


def arxiv_id_of(raw: str) -> str:
    """The arXiv id without version in what was typed or pasted; `ValueError` if there is none."""
    text = _PREFIX.sub("", raw.strip()).removesuffix(".pdf")
    arxiv_id = _VERSION.sub("", text)
    if not is_arxiv_id(arxiv_id):
        raise ValueError(
            f"{quoted(raw.strip()[:60])} is not an arXiv id; write it as 2303.08597 "
            "(or hep-th/9901001 for the old style)."
        )
    return arxiv_id

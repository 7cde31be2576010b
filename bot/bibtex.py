"""Saved papers as BibTeX in arXiv's own style, written with bibtexparser (its LaTeX encoding
turns `{`, `%`, `&` and accents into LaTeX that parses back to the same text)."""

from __future__ import annotations

from collections.abc import Iterable

from bibtexparser import model
from bibtexparser.entrypoint import write_string
from bibtexparser.library import Library
from bibtexparser.middlewares import LatexEncodingMiddleware

from bot.replies import PaperView
from bot.text import shown, squash


def entry(paper: PaperView) -> model.Entry:
    """`@misc{<id>, title, author, year, eprint, archivePrefix, primaryClass, url}`, as arXiv's
    "Export BibTeX citation" writes it (the year is the first version's)."""
    first = paper.published or paper.updated
    fields = [
        ("title", _plain(paper.title)),
        ("author", " and ".join(_plain(name) for name in paper.authors if _plain(name))),
        ("year", str(first.year)),
        ("eprint", paper.arxiv_id),
        ("archivePrefix", "arXiv"),
        ("primaryClass", paper.primary_category),
        ("url", f"https://arxiv.org/abs/{paper.arxiv_id}"),
    ]
    kept = [model.Field(key, value) for key, value in fields if value]
    return model.Entry("misc", paper.arxiv_id, kept)


def render_bibtex(papers: Iterable[PaperView]) -> str:
    """The papers as one .bib file, in the order given."""
    library = Library()
    for paper in papers:
        library.add(entry(paper))
    # Keep the url and the keys as they are: LaTeX-encoding them would break the link.
    encode = LatexEncodingMiddleware(keep_math=True, enclose_urls=False)
    return write_string(library, prepend_middleware=[encode])


def _plain(text: str) -> str:
    return squash(shown(text))

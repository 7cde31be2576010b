"""The arXiv API query of a keyword (SPEC 4), built from its validated terms.

Every term sits inside double quotes and holds only letters, digits, spaces and `- . + '`
(`bot.keywords.clean_term`), so no typed text can add a field, an operator or a parenthesis.
An apostrophe needs no escape inside a quoted term: arXiv's query parser treats only spaces,
double quotes and parentheses specially and escapes Lucene's operators itself (arXiv/arxiv-search,
classic_api/query_parser.py and services/index/util.py), so a backslash would be searched for;
on the wire the URL encoding carries it as %27.
"""

from __future__ import annotations

from bot import taxonomy
from bot.keywords import KeywordSpec, is_term


def arxiv_query(spec: KeywordSpec) -> str:
    """One word: in title AND abstract; a phrase: in title OR abstract (the Daily Papers
    semantics). Rules follow a parenthesised base: `ANDNOT (ti:"x" OR abs:"x")` per exclusion,
    `AND (cat:a OR cat:b)`, `AND au:"name"`. An author alone is `au:"name"`."""
    rules = [f"ANDNOT ({_title_or_abstract(term)})" for term in spec.exclude]
    if spec.categories:
        rules.append("AND (" + " OR ".join(_category(c) for c in spec.categories) + ")")
    if spec.phrase:
        base = _phrase(spec.phrase)
        if spec.author:
            rules.append("AND " + _field("au", spec.author))
        return " ".join([f"({base})", *rules]) if rules else base
    if spec.author is None:
        raise ValueError("a keyword needs a phrase or an author")
    return " ".join([_field("au", spec.author), *rules])


def _phrase(phrase: str) -> str:
    if " " in phrase:
        return _title_or_abstract(phrase)
    return f"{_field('ti', phrase)} AND {_field('abs', phrase)}"


def _title_or_abstract(term: str) -> str:
    return f"{_field('ti', term)} OR {_field('abs', term)}"


def _field(name: str, term: str) -> str:
    if not is_term(term):  # the parser let nothing else through; say so loudly if it ever did
        raise ValueError(f"not a query term: {term!r}")
    return f'{name}:"{term}"'


def _category(category: str) -> str:
    if taxonomy.canonical(category) != category:
        raise ValueError(f"not an arXiv category: {category!r}")
    return f"cat:{category}"

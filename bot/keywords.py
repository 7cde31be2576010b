"""Keyword text (SPEC 3): a phrase and its rules (`-word`, `-"two words"`, `in:cs.CV,eess.IV`,
`by:"Kaiming He"`), parsed from what people type into a `KeywordSpec` with a normalised key.

Quotes are grammar here, never query text: every term keeps only letters, digits, spaces and
`- . + '`, so nothing typed can reach the arXiv query but words (bot/arxiv/query.py builds it).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from bot import taxonomy
from bot.text import MAX_KEYWORD_LENGTH, squash

MAX_TEXT_LENGTH = 300  # the phrase (at most MAX_KEYWORD_LENGTH) with its rules
MAX_EXCLUSIONS = 5
MAX_CATEGORIES = 5
TERM_SYMBOLS = "-.+' "
TAXONOMY_URL = "https://arxiv.org/category_taxonomy"

# Typographic quotes (what phones and macOS type for " and ') count as the plain ones.
_TYPED = str.maketrans({**dict.fromkeys("“”„‟«»″", '"'), **dict.fromkeys("‘’‚‛′", "'")})
RULES_EXAMPLE = 'image editing -medical -"remote sensing" in:cs.CV,cs.GR by:"Kaiming He"'


class BadKeyword(ValueError):
    """The keyword text breaks the grammar; the message says what and how to write it."""


@dataclass(frozen=True)
class KeywordSpec:
    """What a keyword asks arXiv for. Parse it with `parse_keyword`; build it yourself only
    from terms that passed `clean_term`."""

    phrase: str  # "" for an author alone
    exclude: tuple[str, ...] = ()  # sorted, case-insensitively distinct
    categories: tuple[str, ...] = ()  # arXiv's spelling, sorted
    author: str | None = None

    @property
    def text(self) -> str:
        """The keyword written canonically (rules sorted); `parse_keyword` gives it back."""
        parts = [_quote_phrase(self.phrase)] if self.phrase else []
        parts += ["-" + _quote(term) for term in self.exclude]
        if self.categories:
            parts.append("in:" + ",".join(self.categories))
        if self.author:
            parts.append("by:" + _quote(self.author))
        return " ".join(parts)

    @property
    def key(self) -> str:
        """The deployment-wide key: case-folded, whitespace collapsed, rules sorted."""
        return self.text.casefold()

    def rules_text(self) -> str:
        """The rules for people: "excluding medical · in cs.CV, cs.GR · by Kaiming He"."""
        parts = []
        if self.exclude:
            parts.append("excluding " + ", ".join(self.exclude))
        if self.categories:
            parts.append("in " + ", ".join(self.categories))
        if self.author:
            parts.append("by " + self.author)
        return " · ".join(parts)


def clean_label(raw: str) -> str:
    """The keyword as typed, fit to show and parse: control and format characters (bidi
    controls among them) and backslashes dropped, typographic quotes made plain, spaces squashed."""
    kept = []
    for ch in raw.translate(_TYPED):
        if ch in "\t\n\r":
            kept.append(" ")
        elif ch not in "\\`" and unicodedata.category(ch) not in ("Cc", "Cf"):
            kept.append(ch)
    return squash("".join(kept))


def clean_term(raw: str) -> str:
    """A term as it may reach the query: letters, digits, spaces and `- . + '`; any other
    character becomes a space (so `AR/VR` is searched as arXiv tokenises it, `AR VR`)."""
    text = unicodedata.normalize("NFC", raw)
    kept = "".join(ch if _is_term_char(ch) else " " for ch in text)
    term = squash(kept)
    return term if any(ch.isalnum() for ch in term) else ""


def is_term(value: str) -> bool:
    """`value` could have come out of `clean_term` (the query builder's last check)."""
    return bool(value) and all(_is_term_char(ch) for ch in value)


def parse_keyword(text: str) -> KeywordSpec:
    """Keyword text (after `clean_label`) to its spec, or `BadKeyword` saying what is wrong."""
    if len(text) > MAX_TEXT_LENGTH:
        raise BadKeyword(
            f"The keyword with its rules is {len(text)} characters long; "
            f"at most {MAX_TEXT_LENGTH} are allowed."
        )
    words: list[str] = []
    exclude: dict[str, str] = {}
    chosen: list[str] = []
    authors: list[str] = []
    for token in _join_category_lists(_tokens(text)):
        folded = token.casefold()
        if token.startswith("-"):
            term = _rule_term(token[1:], "An exclusion", '-medical or -"remote sensing"')
            exclude.setdefault(term.casefold(), term)
        elif folded.startswith("in:"):
            chosen += _categories(token[3:])
        elif folded.startswith("by:"):
            authors.append(_rule_term(token[3:], "An author", 'by:"Kaiming He" or by:He'))
        elif exclude or chosen or authors:
            raise BadKeyword(
                f"{token!r} comes after a rule: write the words first, then the rules, "
                f"e.g. {RULES_EXAMPLE}"
            )
        else:
            words.append(token.replace('"', ""))
    distinct = list(dict.fromkeys(chosen))
    return _spec(clean_term(" ".join(words)), list(exclude.values()), distinct, authors)


def keyword_key(text: str) -> str:
    """The normalised key of keyword text (see `KeywordSpec.key`). Text that no longer parses
    (a keyword stored before the rule grammar, left as it was) keeps the key it had then."""
    try:
        return parse_keyword(text).key
    except BadKeyword:
        return squash(text).casefold()


def complete_rules(text: str, limit: int = 25) -> list[str]:
    """The text with its last `in:` list completed by each category id that fits (for
    autocompletion); [] when the text does not end in an `in:` rule."""
    head, space, last = text.rpartition(" ")
    if not last.casefold().startswith("in:"):
        return []
    done, comma, partial = last[3:].rpartition(",")
    taken = {c.strip().casefold() for c in done.split(",")}
    prefix = f"{head}{space}{last[:3]}{done}{comma}"
    return [prefix + c for c in taxonomy.starting_with(partial) if c.casefold() not in taken][
        :limit
    ]


# -- the pieces ------------------------------------------------------------------------------


def _is_term_char(ch: str) -> bool:
    return ch in TERM_SYMBOLS or unicodedata.category(ch)[0] in "LMN"


def _tokens(text: str) -> list[str]:
    """Words split on spaces outside double quotes; the quotes stay in the token."""
    tokens: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == " " and not quoted:
            if current:
                tokens.append("".join(current))
                current = []
            continue
        quoted = quoted != (ch == '"')
        current.append(ch)
    if quoted:
        raise BadKeyword(
            'A quote is not closed: put one at each end, as in -"remote sensing" or by:"Kaiming He".'
        )
    if current:
        tokens.append("".join(current))
    return tokens


def _join_category_lists(tokens: list[str]) -> list[str]:
    """`in:cs.CV, eess.IV` (a space after the comma) is one rule."""
    joined: list[str] = []
    for token in tokens:
        if joined and joined[-1].casefold().startswith("in:") and joined[-1].endswith(","):
            joined[-1] += token
        else:
            joined.append(token)
    return joined


def _rule_term(raw: str, what: str, example: str) -> str:
    term = clean_term(raw.replace('"', ""))
    if not term:
        raise BadKeyword(f"{what} needs a word: write it as {example}.")
    if len(term) > MAX_KEYWORD_LENGTH:
        raise BadKeyword(
            f"{what} is {len(term)} characters long; at most {MAX_KEYWORD_LENGTH} are allowed."
        )
    return term


def _categories(raw: str) -> list[str]:
    typed = [c.strip() for c in raw.replace('"', "").split(",") if c.strip()]
    if not typed:
        raise BadKeyword("in: needs a category: in:cs.CV, or several as in:cs.CV,eess.IV.")
    found = []
    for category in typed:
        known = taxonomy.canonical(category)
        if known is None:
            close = taxonomy.close_to(category)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise BadKeyword(
                f"{category!r} is not an arXiv category.{hint} Categories are written as "
                f"cs.CV or eess.IV; the list: {TAXONOMY_URL}"
            )
        found.append(known)
    return found


def _spec(phrase: str, exclude: list[str], chosen: list[str], authors: list[str]) -> KeywordSpec:
    if len(phrase) > MAX_KEYWORD_LENGTH:
        raise BadKeyword(
            f"The keyword is {len(phrase)} characters long; at most {MAX_KEYWORD_LENGTH} are allowed."
        )
    if len(exclude) > MAX_EXCLUSIONS:
        raise BadKeyword(f"{len(exclude)} exclusions; at most {MAX_EXCLUSIONS} are allowed.")
    if len(chosen) > MAX_CATEGORIES:
        raise BadKeyword(f"{len(chosen)} categories; at most {MAX_CATEGORIES} are allowed.")
    if len(authors) > 1:
        raise BadKeyword(
            'One author per keyword (by:"Kaiming He"); follow another author with another keyword.'
        )
    if not phrase and not authors:
        if exclude or chosen:
            raise BadKeyword(
                "Rules need words to apply to, or an author: image editing -medical, "
                'or by:"Kaiming He" alone.'
            )
        raise BadKeyword(
            "Nothing is left of the keyword once quotes and symbols are removed "
            "(a word keeps letters, digits and - . + ')."
        )
    return KeywordSpec(
        phrase=phrase,
        exclude=tuple(sorted(exclude, key=str.casefold)),
        categories=tuple(sorted(chosen, key=str.casefold)),
        author=authors[0] if authors else None,
    )


def _quote(term: str) -> str:
    return f'"{term}"' if " " in term or term.startswith("-") else term


def _quote_phrase(phrase: str) -> str:
    # A phrase word starting with "-" would read back as an exclusion.
    return f'"{phrase}"' if any(w.startswith("-") for w in phrase.split(" ")) else phrase

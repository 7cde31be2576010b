"""One command grammar for every front end: text or typed options to frozen `Command`s."""

from __future__ import annotations

from dataclasses import dataclass

from bot.commands import saves_grammar
from bot.commands.digest_grammar import DigestAt as DigestAt  # re-exported: one grammar
from bot.commands.digest_grammar import DigestNow as DigestNow
from bot.commands.digest_grammar import DigestOff as DigestOff
from bot.commands.digest_grammar import DigestShape as DigestShape
from bot.commands.digest_grammar import make_digest as make_digest
from bot.commands.digest_grammar import parse_digest
from bot.commands.saves_grammar import Feed as Feed  # re-exported: one grammar
from bot.commands.saves_grammar import Save as Save
from bot.commands.saves_grammar import Saved as Saved
from bot.commands.saves_grammar import Unsave as Unsave
from bot.commands.usage import DEFAULT_LIMIT as DEFAULT_LIMIT  # re-exported: one grammar
from bot.commands.usage import MAX_LIMIT as MAX_LIMIT
from bot.commands.usage import USAGES as USAGES
from bot.commands.usage import BadInput as BadInput
from bot.commands.usage import anyone_may as anyone_may
from bot.commands.usage import help_text as help_text
from bot.keywords import MAX_TEXT_LENGTH, BadKeyword, clean_label, parse_keyword
from bot.text import quoted, squash


@dataclass(frozen=True)
class Add:
    """Follow a keyword in this channel (fetches it if it is new)."""

    keyword: str


@dataclass(frozen=True)
class Remove:
    """Stop following a keyword in this channel."""

    keyword: str


@dataclass(frozen=True)
class Keywords:
    """This channel's keywords with paper counts and fetch status."""


@dataclass(frozen=True)
class List:
    """The newest papers of one keyword or of all this channel's keywords."""

    keyword: str | None = None
    limit: int = DEFAULT_LIMIT


@dataclass(frozen=True)
class Readme:
    """Export the Daily Papers README of this channel or the whole workspace."""

    whole_workspace: bool = False


@dataclass(frozen=True)
class Fetch:
    """Refresh this channel's keywords now."""


@dataclass(frozen=True)
class Preview:
    """A keyword's paper count and 3 newest papers, without following it."""

    keyword: str


@dataclass(frozen=True)
class Help:
    """Usage of every command."""


Command = (
    Add
    | Remove
    | Keywords
    | List
    | DigestAt
    | DigestOff
    | DigestNow
    | DigestShape
    | Readme
    | Fetch
    | Preview
    | Help
    | Save
    | Unsave
    | Saved
    | Feed
)

MANAGER_COMMANDS = (Add, Remove, DigestAt, DigestOff, DigestNow, DigestShape, Fetch, Feed)
# Commands whose answer only the asker sees, however long it takes (a platform that must say
# "working on it" first says it privately too).
PRIVATE_ANSWERS = (Preview, Help, Save, Unsave, Saved, Feed)


def parse(text: str) -> Command:
    """Text after the command prefix (`add Virtual Try-On`) to a `Command`, or `BadInput`."""
    words = squash(text).split(" ") if squash(text) else []
    if not words:
        return Help()
    name, rest = words[0].casefold(), words[1:]
    return build(name, rest)


def build(name: str, args: list[str]) -> Command:
    """A command from its name and words (the terminal's argv comes here too)."""
    match name:
        case "add":
            return Add(validate_keyword(" ".join(args), name))
        case "remove":
            return Remove(validate_keyword(" ".join(args), name))
        case "preview":
            return Preview(validate_keyword(" ".join(args), name))
        case "keywords":
            _no_arguments(name, args)
            return Keywords()
        case "list":
            return _list(args)
        case "digest":
            return parse_digest(args)
        case "readme":
            return _readme(args)
        case "fetch":
            _no_arguments(name, args)
            return Fetch()
        case "help":
            return Help()
        case "save" | "unsave" | "saved" | "feed":
            try:
                return saves_grammar.build(name, args)
            except ValueError as exc:
                raise BadInput(str(exc), name) from None
        case _:
            raise BadInput(f"Unknown command {quoted(name)}.")


def validate_keyword(raw: str, command: str = "add") -> str:
    """The keyword as typed (cleaned: see `clean_label`), its rules checked. `remove` and
    `list` only name a followed keyword: their text is matched, not parsed, when it does not
    parse (a keyword stored before the rule grammar)."""
    keyword = clean_label(raw)
    if not any(ch.isalnum() for ch in keyword):
        problem = (
            "The keyword is empty."
            if not squash(raw)
            else "Nothing is left of the keyword once quotes, symbols and control characters are removed."
        )
        raise BadInput(problem, command)
    if len(keyword) > MAX_TEXT_LENGTH:
        raise BadInput(
            f"The keyword is {len(keyword)} characters long; at most {MAX_TEXT_LENGTH} are allowed.",
            command,
        )
    try:
        parse_keyword(keyword)
    except BadKeyword as exc:
        if command in ("add", "preview"):
            raise BadInput(str(exc), command) from None
    return keyword


def is_number(text: str) -> bool:
    """ASCII digits, signed or not: `str.isdigit` also takes "²", which `int` refuses."""
    digits = text.lstrip("-")
    return digits.isascii() and digits.isdigit()


def validate_limit(raw: str | int) -> int:
    text = str(raw).strip()
    if not is_number(text) or not 1 <= int(text) <= MAX_LIMIT:
        raise BadInput(
            f"The limit must be a number from 1 to {MAX_LIMIT}, got {quoted(text)}.", "list"
        )
    return int(text)


def _list(args: list[str]) -> List:
    limit = DEFAULT_LIMIT
    if args and is_number(args[-1]):
        limit = validate_limit(args[-1])
        args = args[:-1]
    keyword = validate_keyword(" ".join(args), "list") if args else None
    return List(keyword=keyword, limit=limit)


def make_readme(scope: str | None) -> Readme:
    if scope is None or scope.strip().casefold() in ("", "channel"):
        return Readme(whole_workspace=False)
    if scope.strip().casefold() == "all":
        return Readme(whole_workspace=True)
    raise BadInput(
        f"Unknown scope {quoted(scope.strip())}; use `readme` or `readme all`.", "readme"
    )


def _readme(args: list[str]) -> Readme:
    if len(args) > 1:
        raise BadInput("`readme` takes at most one word, `all`.", "readme")
    return make_readme(args[0] if args else None)


def _no_arguments(name: str, args: list[str]) -> None:
    if args:
        raise BadInput(f"`{name}` takes no arguments.", name)

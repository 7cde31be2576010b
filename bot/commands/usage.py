"""The one table of help: `help` on every platform, the usage line of every error, Discord's
descriptions; and `BadInput`, the error that says what was wrong and how to write it."""

from __future__ import annotations

from bot.replies import Usage

DEFAULT_LIMIT = 5
MAX_LIMIT = 20

USAGES: tuple[Usage, ...] = (
    Usage("add", "add <keyword>", "follow a keyword here; fetches it if new", True),
    Usage("remove", "remove <keyword>", "stop following a keyword here", True),
    Usage("keywords", "keywords", "this channel's keywords, paper counts and fetch status"),
    Usage(
        "list",
        "list [keyword] [limit]",
        f"newest papers (default {DEFAULT_LIMIT}, at most {MAX_LIMIT})",
    ),
    Usage(
        "digest",
        "digest <HH:MM> [timezone] | digest weekly <mon..sun> <HH:MM> [timezone] | digest off | "
        "digest now | digest threads on|off | digest style full|compact | digest max <1-200>",
        "when this channel gets its post (daily or weekly) and its shape",
        True,
    ),
    Usage(
        "readme",
        "readme [all]",
        "the Daily Papers README of this channel, or of the workspace with `all`",
    ),
    Usage("fetch", "fetch", "refresh this channel's keywords now", True),
    Usage("preview", "preview <keyword>", "a keyword's paper count and 3 newest, only for you"),
    Usage("save", "save <arxiv id>", "save a paper for yourself, as its Save button does"),
    Usage("saved", "saved [bibtex]", "your saved papers, only for you; `bibtex`: as saved.bib"),
    Usage("unsave", "unsave <arxiv id>", "remove a paper from your saved papers"),
    Usage("feed", "feed | feed reset", "a private Atom feed URL of this channel's papers", True),
    Usage("help", "help", "this help"),
)
_BY_NAME = {u.name: u for u in USAGES}


class BadInput(Exception):
    """The text is not a command: says what was wrong and how to write it."""

    def __init__(self, problem: str, command: str | None = None) -> None:
        self.problem = problem
        self.command = command
        super().__init__(problem)

    @property
    def usage(self) -> str:
        if self.command in _BY_NAME:
            return "Usage: " + _BY_NAME[self.command].syntax
        return "Commands: " + ", ".join(u.name for u in USAGES) + ". Try `help`."

    def __str__(self) -> str:
        return f"{self.problem}\n{self.usage}"


def help_text(prefix: str = "", *, managers: bool = True) -> str:
    """Every command's usage as plain text (the terminal's), from the same table the error
    messages use; `managers=False` where everyone may manage."""
    lines = []
    for usage in USAGES:
        who = " (managers)" if usage.manager and managers else ""
        lines.append(f"{prefix}{usage.syntax}\n{' ' * (len(prefix) + 4)}{usage.summary}{who}")
    return "\n".join(lines)


def anyone_may() -> str:
    """The commands everyone may use, for refusals: "`keywords`, `list`, … and `help`"."""
    names = [f"`{u.name}`" for u in USAGES if not u.manager]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)

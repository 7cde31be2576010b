"""The `digest` commands: when a channel's post comes (daily, weekly, off, now) and its shape
(threads, style, max), from one line of text on every platform."""

from __future__ import annotations

from dataclasses import dataclass

from bot.commands.usage import BadInput
from bot.posts.digest import DAY_NAMES, MAX_PAPERS
from bot.text import quoted
from bot.timeparse import parse_hhmm, zone_name

STYLES = ("full", "compact")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class DigestAt:
    """Set this channel's post time (and timezone): daily, or weekly on `weekday` (0 = Monday)."""

    time: str
    timezone: str | None = None
    weekday: int | None = None


@dataclass(frozen=True)
class DigestOff:
    """Stop this channel's post."""


@dataclass(frozen=True)
class DigestNow:
    """Post the undelivered papers now."""


@dataclass(frozen=True)
class DigestShape:
    """Change one thing of the post's shape; the fields left None stay as they are."""

    threads: bool | None = None
    style: str | None = None
    max_papers: int | None = None


DigestCommand = DigestAt | DigestOff | DigestNow | DigestShape


def make_digest(time: str, timezone: str | None = None) -> DigestCommand:
    """Discord's `time` and `timezone` options: the same grammar as the text after `digest`
    (`time` may be `weekly mon 09:00`, `threads on`, `max 50` ...)."""
    words = time.split()
    if timezone and timezone.strip():
        if words and words[0].casefold() in ("off", "now", "threads", "style", "max"):
            raise BadInput(
                f"`digest {words[0].casefold()}` takes no timezone: the timezone goes with a time.",
                "digest",
            )
        words.append(timezone.strip())
    return parse_digest(words)


def parse_digest(args: list[str]) -> DigestCommand:
    """The words after `digest`, validated; `BadInput` says what was wrong."""
    if not args:
        raise BadInput("Say when: a time, `weekly <day> <HH:MM>`, `off` or `now`.", "digest")
    head, rest = args[0].casefold(), args[1:]
    match head:
        case "off" | "now":
            _nothing_after(head, rest)
            return DigestOff() if head == "off" else DigestNow()
        case "weekly":
            if len(rest) not in (2, 3):
                raise BadInput(
                    "Write it as `digest weekly <mon..sun> <HH:MM> [timezone]`.", "digest"
                )
            return _at(rest[1], rest[2] if len(rest) == 3 else None, _weekday(rest[0]))
        case "threads":
            return DigestShape(threads=_choice(head, rest, ("on", "off")) == "on")
        case "style":
            return DigestShape(style=_choice(head, rest, STYLES))
        case "max":
            return DigestShape(max_papers=_max(head, rest))
    if len(args) > 2:
        raise BadInput("Say when in at most two words: `digest <HH:MM> [timezone]`.", "digest")
    return _at(args[0], args[1] if len(args) == 2 else None, None)


def _at(time: str, timezone: str | None, weekday: int | None) -> DigestAt:
    clock = parse_hhmm(time)
    if clock is None:
        raise BadInput(
            f"{quoted(time.strip())} is not a time; write it as HH:MM, 24-hour, e.g. 09:30.",
            "digest",
        )
    zone = zone_name(timezone) if timezone is not None else None
    if timezone is not None and zone is None:
        raise BadInput(
            f"{quoted(timezone.strip())} is not a timezone; use an IANA name such as Europe/Berlin.",
            "digest",
        )
    return DigestAt(time=f"{clock[0]:02d}:{clock[1]:02d}", timezone=zone, weekday=weekday)


def _weekday(word: str) -> int:
    key = word.casefold()[:3]
    if key in WEEKDAYS and DAY_NAMES[WEEKDAYS.index(key)].casefold().startswith(word.casefold()):
        return WEEKDAYS.index(key)
    raise BadInput(f"{quoted(word)} is not a day; use one of {', '.join(WEEKDAYS)}.", "digest")


def _choice(head: str, rest: list[str], choices: tuple[str, ...]) -> str:
    if len(rest) == 1 and rest[0].casefold() in choices:
        return rest[0].casefold()
    got = f", got {quoted(' '.join(rest))}" if rest else ""
    raise BadInput(f"`digest {head}` takes {' or '.join(choices)}{got}.", "digest")


def _max(head: str, rest: list[str]) -> int:
    text = rest[0] if len(rest) == 1 else " ".join(rest)
    number = text.isascii() and text.isdigit()  # not "²", which isdigit takes and int refuses
    if len(rest) != 1 or not number or not 1 <= int(text) <= MAX_PAPERS:
        raise BadInput(
            f"`digest {head}` takes a number of papers from 1 to {MAX_PAPERS}, got {quoted(text)}.",
            "digest",
        )
    return int(text)


def _nothing_after(head: str, rest: list[str]) -> None:
    if rest:
        raise BadInput(f"`digest {head}` takes nothing after it.", "digest")

"""Parsing of clock times and timezones shared by settings and commands."""

from __future__ import annotations

import re
from functools import cache

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing for `papers help`
if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(text: str) -> tuple[int, int] | None:
    """`"9:05"` -> (9, 5); anything that is not a 24-hour clock time -> None."""
    match = _HHMM.match(text.strip())
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def clock_of(hhmm: str) -> tuple[int, int]:
    """(hour, minute) of a clock time validated before (a setting, a channel's stored time):
    one that does not parse is a bug, raised rather than replaced by some default time."""
    clock = parse_hhmm(hhmm)
    if clock is None:
        raise ValueError(f"not a 24-hour HH:MM clock time: {hhmm!r}")
    return clock


MAX_ZONE_LENGTH = 64  # the longest IANA name is 32 characters


def parse_zone(text: str) -> ZoneInfo | None:
    """An IANA zone such as `Europe/Berlin`, or None when there is no such zone.

    `ZoneInfo` reads a file named by the text: a folder of the zone database (`Europe`), a
    name too long for the file system or with a NUL byte fail with OSError or ValueError, not
    only ZoneInfoNotFoundError.
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # when a zone is asked for

    name = text.strip()
    if not name or len(name) > MAX_ZONE_LENGTH:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def zone_name(text: str) -> str | None:
    """The IANA spelling of a zone typed in any case (`europe/berlin` -> `Europe/Berlin`), or
    None when there is no such zone."""
    name = text.strip()
    if parse_zone(name) is not None:
        return name
    return _zones_by_folded_name().get(name.casefold())


@cache
def _zones_by_folded_name() -> dict[str, str]:
    from zoneinfo import available_timezones  # reads the zone database once

    return {zone.casefold(): zone for zone in available_timezones()}

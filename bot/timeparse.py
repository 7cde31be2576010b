"""Parsing of clock times and timezones shared by settings and commands."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(text: str) -> tuple[int, int] | None:
    """`"9:05"` -> (9, 5); anything that is not a 24-hour clock time -> None."""
    match = _HHMM.match(text.strip())
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def parse_zone(text: str) -> ZoneInfo | None:
    """An IANA zone such as `Europe/Berlin`, or None when there is no such zone."""
    try:
        return ZoneInfo(text.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None

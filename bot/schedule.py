"""The scheduler of `papers serve` (placeholder until the daily-posts work lands)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core import Core
from bot.poster import Poster


class _Idle:
    async def stop(self) -> None:
        return None


async def start_scheduler(core: Core, posters: Sequence[Poster]) -> _Idle:
    """Starts nothing yet: the daily refresh and digests come with the daily-posts issue."""
    return _Idle()

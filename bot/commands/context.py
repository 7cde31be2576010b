"""What every command handler works with: where a command comes from (`Place`, taken from the
verified request), and the deployment's parts (`Context`: settings, store, arXiv, clock)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlmodel import Session

    from bot.arxiv.gateway import ArxivGateway
    from bot.arxiv.refresh import Refresher
    from bot.config import Settings
    from bot.storage.models import Channel

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Place:
    """Where a command comes from, taken from the verified request, never from its text."""

    platform: str  # "slack", "discord" or "terminal"
    workspace: str  # the platform's ids: Slack team, Discord guild, "local"
    channel: str
    user_id: str = ""
    is_manager: bool = True
    workspace_name: str = ""
    # Who may use the manager commands here, in the platform's words ("" when everyone may):
    # help marks those commands, and a refusal names who may.
    managers: str = ""


TERMINAL = Place(platform="terminal", workspace="local", channel="terminal", user_id="local")


class Context(Protocol):
    """The parts a command handler uses (`Core` is one): handlers take it as their first
    argument, so they never import the dispatcher that calls them."""

    settings: Settings
    engine: Engine
    gateway: ArxivGateway
    refresher: Refresher
    clock: Clock

    def channel(self, session: Session, place: Place) -> Channel:
        """The channel of `place`, created (or reactivated) on first use."""
        ...

    def existing_channel(self, session: Session, place: Place) -> Channel | None:
        """The channel of `place` if the store knows it."""
        ...

    def today(self) -> date:
        """Today in the deployment's TIMEZONE."""
        ...

"""The core: one `execute()` from a `Command` to `Reply`s (each command's work lives in its own
module), the questions front ends ask besides commands, and the entry points of a refresh."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

from bot.arxiv.announced import AnnouncementRefresh
from bot.arxiv.answers import is_arxiv_id
from bot.arxiv.refresh import Progress, Refresher, RefreshOutcome, describe
from bot.commands import export, feeds, follow, posting, saves
from bot.commands.context import TERMINAL, Clock, Place
from bot.commands.grammar import (
    MANAGER_COMMANDS,
    USAGES,
    Add,
    BadInput,
    Command,
    DigestAt,
    DigestNow,
    DigestOff,
    DigestShape,
    Feed,
    Fetch,
    Help,
    Keywords,
    List,
    Preview,
    Readme,
    Remove,
    Save,
    Saved,
    Unsave,
    anyone_may,
)
from bot.commands.preview import preview
from bot.config import Settings
from bot.keywords import BadKeyword
from bot.replies import CommandHelp, PaperView, Reply, error
from bot.storage import catalog, once, store
from bot.storage.db import read_session, write_session, writer
from bot.storage.models import Channel, Paper

if TYPE_CHECKING:
    from bot.arxiv.gateway import ArxivGateway

__all__ = ["TERMINAL", "Core", "Place", "RefreshOutcome", "describe"]
logger = logging.getLogger(__name__)


class Core:
    """Everything a front end needs: the store, the one arXiv gateway and the clock (the
    `Context` every command handler takes)."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        gateway: ArxivGateway,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.gateway = gateway
        self.refresher = Refresher(engine, gateway)
        self.clock: Clock = clock or (lambda: datetime.now(UTC))

    @property
    def write_engine(self) -> Engine:
        """The engine for write transactions (on SQLite they begin IMMEDIATE), for a front end
        that keeps tables of its own (Slack's installations)."""
        return writer(self.engine)

    # -- commands -------------------------------------------------------------

    def execute(self, place: Place, command: Command) -> list[Reply]:
        """Run one command for `place`; expected errors come back as error replies. The one
        place that checks who may manage."""
        if isinstance(command, MANAGER_COMMANDS) and not place.is_manager:
            who = place.managers or "channel managers"
            return [error(f"Only {who} can do that here. Anyone can use {anyone_may()}.")]
        try:
            return self._dispatch(place, command)
        except BadInput as exc:
            return [error(str(exc))]
        except BadKeyword as exc:  # a command built without the grammar's check
            return [error(str(BadInput(str(exc), type(command).__name__.lower())))]

    def _dispatch(self, place: Place, command: Command) -> list[Reply]:
        match command:
            case Add(keyword=label):
                return follow.add(self, place, label)
            case Remove(keyword=label):
                return [follow.remove(self, place, label)]
            case Keywords():
                return [follow.keywords(self, place)]
            case List(keyword=label, limit=limit):
                return [follow.newest(self, place, label, limit)]
            case Fetch():
                return [follow.fetch(self, place)]
            case DigestAt() | DigestOff() | DigestShape():
                return [posting.set_digest(self, place, command)]
            case DigestNow():
                return posting.digest_now(self, place)
            case Readme(whole_workspace=whole):
                return [export.readme_file(self, place, whole)]
            case Preview(keyword=label):
                return [preview(self, place, label)]
            case Save() | Unsave() | Saved():
                return saves.run(self, place, command)
            case Feed():
                return feeds.run(self, place, command)
            case Help():
                return [CommandHelp(usages=USAGES, managers=place.managers)]
        raise AssertionError(f"unhandled command {command!r}")

    def digest_now(self, place: Place) -> list[Reply]:
        return posting.digest_now(self, place)

    def readme(self, place: Place, *, whole_workspace: bool = False) -> str:
        return export.readme(self, place, whole_workspace=whole_workspace)

    # -- the parts handlers share (`Context`) ---------------------------------------

    def channel(self, session: Session, place: Place) -> Channel:
        workspace = store.ensure_workspace(
            session,
            platform=place.platform,
            external_id=place.workspace,
            name=place.workspace_name,
        )
        return store.ensure_channel(session, workspace=workspace, external_id=place.channel)

    def existing_channel(self, session: Session, place: Place) -> Channel | None:
        workspace = store.find_workspace(
            session, platform=place.platform, external_id=place.workspace
        )
        if workspace is None:
            return None
        return store.find_channel(session, workspace=workspace, external_id=place.channel)

    def today(self) -> date:
        return self.clock().astimezone(ZoneInfo(self.settings.timezone)).date()

    # -- what front ends ask besides commands --------------------------------------

    def paper(self, arxiv_id: str) -> PaperView | None:
        """A stored paper (papers are public, shared by every workspace); None for a text that
        is no arXiv id (a crafted button: PostgreSQL refuses a NUL byte, for one)."""
        if not is_arxiv_id(arxiv_id):
            return None
        with read_session(self.engine) as session:
            paper = session.get(Paper, arxiv_id)
            return catalog.paper_view(paper) if paper is not None else None

    def channel_labels(self, place: Place) -> list[str]:
        """The labels this channel follows, as first typed here, in the order added."""
        with read_session(self.engine) as session:
            channel = self.existing_channel(session, place)
            subs = store.channel_subscriptions(session, channel) if channel else []
            return [s.label for s, _ in subs]

    def leave_workspace(self, platform: str, workspace: str) -> int:
        """The bot left a workspace: its channels stop (their data stays); how many stopped."""
        with write_session(self.engine) as session:
            return store.deactivate_workspace(session, platform=platform, external_id=workspace)

    def leave_channel(self, place: Place) -> bool:
        """A channel was deleted: it stops at once (its data stays); False if it was unknown."""
        with write_session(self.engine) as session:
            channel = self.existing_channel(session, place)
            if channel is None:
                return False
            channel.active = False
            session.add(channel)
            return True

    def once(self, place: Place, command: Command, *, delivery: str | None = None) -> str:
        """ "new" the first time; "redelivered" for the same delivery again (a platform's retry, a
        replay); "repeated" for a change typed twice in a row by one person within a minute."""
        changes = isinstance(command, MANAGER_COMMANDS)
        if delivery is None and not changes:
            return "new"  # nothing to remember: reading twice is harmless
        typist = (place.platform, place.workspace, place.channel, place.user_id)
        # Bookkeeping: a claim lost in a crash lets a command run twice, never not at all.
        with write_session(self.engine, durable=False) as session:
            return once.received(
                session,
                delivery=f"{place.platform}|{delivery}" if delivery else None,
                typist="|".join(typist) if changes else None,
                typed=repr(command),
                now=self.clock(),
            )

    # -- refreshing (bot/arxiv/refresh.py and announced.py do the work) ---------------------

    def refresh(self, label: str) -> RefreshOutcome:
        """Fetch one keyword from arXiv (its own query) and store what came back."""
        return self.refresher.refresh(label)

    def refresh_all(
        self, labels: Iterable[str] | None = None, *, progress: Progress | None = None
    ) -> list[RefreshOutcome]:
        """The daily refresh of `labels` (default: every followed keyword): harvest,
        prefilter, confirm; per-keyword queries where the harvest cannot answer."""
        chosen = self.followed_keywords() if labels is None else list(labels)
        run = AnnouncementRefresh(self.refresher, clock=self.clock)
        return run.run(chosen, progress=progress)

    def followed_keywords(self) -> list[str]:
        """Every keyword some active channel follows, each once."""
        with read_session(self.engine) as session:
            return store.followed_phrases(session)

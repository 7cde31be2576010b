"""The core: one `execute()` from a `Command` to `Reply`s, plus keyword refreshes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

from bot.arxiv.announced import AnnouncementRefresh, harvest_line, last_harvest
from bot.arxiv.refresh import UNAVAILABLE, Progress, Refresher, RefreshOutcome, describe
from bot.commands import feeds, saves
from bot.commands.grammar import (
    MANAGER_COMMANDS,
    USAGES,
    Add,
    BadInput,
    Command,
    DigestAt,
    DigestNow,
    DigestOff,
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
from bot.commands.readme import PAPERS_PER_SECTION, render_readme
from bot.config import Settings
from bot.keywords import BadKeyword
from bot.posts import digest
from bot.replies import (
    CommandHelp,
    File,
    KeywordTable,
    PaperGroup,
    Papers,
    PaperView,
    Reply,
    Text,
    error,
)
from bot.storage import catalog, once, store
from bot.storage.db import read_session, write_session, writer
from bot.storage.models import Channel, Paper
from bot.text import quoted

if TYPE_CHECKING:
    from bot.arxiv.gateway import ArxivGateway

__all__ = ["TERMINAL", "Core", "Place", "RefreshOutcome", "describe"]
logger = logging.getLogger(__name__)
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Place:
    """Where a command comes from, taken from the verified request, never from its text."""

    platform: str  # "slack", "discord" or "terminal"
    workspace_id: str
    channel_id: str
    user_id: str = ""
    is_manager: bool = True
    workspace_name: str = ""
    # Who may use the manager commands here, in the platform's words ("" when everyone may):
    # help marks those commands, and a refusal names who may.
    managers: str = ""


TERMINAL = Place(platform="terminal", workspace_id="local", channel_id="terminal", user_id="local")
# The terminal has no poster: `digest HH:MM` there would promise a post that never comes.
NO_TERMINAL_POST = (
    "The terminal has no daily post: `papers serve` posts to Slack and Discord channels only. "
    "`papers digest now` shows the papers not seen here yet."
)


class Core:
    """Everything a front end needs: the store, the one arXiv gateway and the clock."""

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
        """Run one command for `place`; expected errors come back as error replies."""
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
                return self._add(place, label)
            case Remove(keyword=label):
                return self._remove(place, label)
            case Keywords():
                return [self._keywords(place)]
            case List(keyword=label, limit=limit):
                return [self._list(place, label, limit)]
            case DigestAt() | DigestOff():
                return [self._set_digest(place, command)]
            case DigestNow():
                return self.digest_now(place)
            case Readme(whole_workspace=whole):
                return [self._readme(place, whole)]
            case Fetch():
                return [self._fetch(place)]
            case Preview(keyword=label):
                return [preview(self, place, label)]
            case Help():
                return [CommandHelp(usages=USAGES, managers=place.managers)]
            case Save() | Unsave() | Saved():
                return saves.run(self, place, command)
            case Feed():
                return feeds.run(self, place, command)
        raise AssertionError(f"unhandled command {command!r}")

    def channel(self, session: Session, place: Place) -> Channel:
        workspace = store.ensure_workspace(
            session,
            platform=place.platform,
            external_id=place.workspace_id,
            name=place.workspace_name,
        )
        return store.ensure_channel(session, workspace=workspace, external_id=place.channel_id)

    def _existing_channel(self, session: Session, place: Place) -> Channel | None:
        workspace = store.find_workspace(
            session, platform=place.platform, external_id=place.workspace_id
        )
        if workspace is None:
            return None
        return store.find_channel(session, workspace=workspace, external_id=place.channel_id)

    def _add(self, place: Place, label: str) -> list[Reply]:
        with read_session(self.engine) as session:
            channel = self._existing_channel(session, place)
            following = channel and store.subscription_for(session, channel=channel, label=label)
            keyword = store.find_keyword(session, label)
            needs_fetch = keyword is None or keyword.last_success_at is None
        if following:
            with write_session(self.engine) as session:
                self.channel(session, place)  # reactivates a channel the bot had left
            # The label as first typed here, whatever spelling asked again.
            return [Text(f"This channel already follows “{following.label}”.", ephemeral=True)]
        outcome: RefreshOutcome | None = None
        if needs_fetch:
            outcome = self.refresh(label)
            if outcome.rejected:
                raise BadInput(
                    f"arXiv rejected the keyword “{label}”: {outcome.reason}. Try other words.",
                    "add",
                )
        with write_session(self.engine) as session:
            channel = self.channel(session, place)
            keyword = store.ensure_keyword(session, label)
            store.subscribe(session, channel=channel, keyword=keyword, label=label)
            if outcome is not None and not outcome.ok:
                # The failed fetch ran before the keyword had a row to record it on.
                status, reason = (
                    ("skipped", UNAVAILABLE) if outcome.skipped else ("failed", outcome.reason)
                )
                store.record_fetch(session, label, status=status, error=reason)
            count = catalog.match_count(session, keyword.id)  # type: ignore[arg-type]
            newest = catalog.newest_papers(session, [keyword.id], limit=3)  # type: ignore[list-item]
        if outcome is not None and not outcome.ok:
            note = f"Now following “{label}”, but arXiv could not be asked ({outcome.reason}); it will be fetched at the next refresh."
            return [Text(note, failed=True)]
        heading = f"Now following “{label}”: {count} paper{'s' if count != 1 else ''} found."
        if not newest:
            return [Text(heading)]
        return [
            Papers(
                heading=heading + " The newest:",
                groups=(PaperGroup(label="", papers=tuple(newest)),),
            )
        ]

    def _remove(self, place: Place, label: str) -> list[Reply]:
        with write_session(self.engine) as session:
            channel = self._existing_channel(session, place)
            removed = store.unsubscribe(session, channel=channel, label=label) if channel else None
            if removed is None:
                raise BadInput(
                    f"This channel does not follow “{label}”. `keywords` lists what it follows.",
                    "remove",
                )
            shown = removed.label
        return [Text(f"Stopped following “{shown}” here. Its papers stay stored.")]

    def _keywords(self, place: Place) -> Reply:
        with read_session(self.engine) as session:
            channel = self._existing_channel(session, place)
            digest = self._digest_text(channel)
            if place.platform == TERMINAL.platform:
                digest = "No daily post in the terminal; `papers digest now` shows what is new."
            if channel is None:
                return KeywordTable(rows=(), digest=digest)
            return KeywordTable(
                rows=tuple(store.keyword_rows(session, channel)),
                digest=digest,
                paused=channel.paused,
                harvest=harvest_line(last_harvest(session)),
            )

    def _digest_text(self, channel: Channel | None) -> str:
        if channel is not None and not channel.digest_enabled:
            return "Daily post: off."
        time_, zone = self.digest_schedule(channel)
        paused = (
            " (paused after repeated failures; `digest HH:MM` resumes it)"
            if channel and channel.paused
            else ""
        )
        return f"Daily post at {time_} {zone}{paused}."

    def digest_schedule(self, channel: Channel | None) -> tuple[str, str]:
        """(HH:MM, IANA zone) of the channel's daily post, defaults filled in."""
        time_ = (channel.digest_time if channel else None) or self.settings.digest_time
        zone = (channel.digest_timezone if channel else None) or self.settings.timezone
        return time_, zone

    def _list(self, place: Place, label: str | None, limit: int) -> Reply:
        with read_session(self.engine) as session:
            channel = self._existing_channel(session, place)
            if label is not None:
                subs = store.channel_subscriptions(session, channel) if channel else []
                named = store.followed(subs, label)
                if named is None:
                    raise BadInput(f"This channel does not follow “{label}”.", "list")
                assert named[1].id is not None  # a stored keyword
                keyword_ids, name = [named[1].id], quoted(named[0].label)
            else:
                # Ids only: a channel of 500 keywords costs no 500 loaded rows here.
                keyword_ids = store.followed_keyword_ids(session, channel) if channel else []
                if not keyword_ids:
                    return Text(
                        "This channel follows no keywords yet. Start with `add <keyword>`.",
                        ephemeral=True,
                    )
                name = "this channel's keywords"
            papers = catalog.newest_papers(session, keyword_ids, limit=limit)
        if not papers:
            return Text(f"No papers stored yet for {name}.")
        heading = f"Newest {len(papers)} paper{'s' if len(papers) != 1 else ''} for {name}"
        return Papers(heading=heading, groups=(PaperGroup(label="", papers=tuple(papers)),))

    def _set_digest(self, place: Place, command: DigestAt | DigestOff) -> Reply:
        if place.platform == TERMINAL.platform:
            return error(NO_TERMINAL_POST)
        with write_session(self.engine) as session:
            channel = self.channel(session, place)
            if isinstance(command, DigestOff):
                channel.digest_enabled = False
            else:
                channel.digest_enabled = True
                channel.digest_time = command.time
                channel.digest_timezone = command.timezone or channel.digest_timezone
                channel.paused = False
                channel.failed_days = 0
            session.add(channel)
            text = self._digest_text(channel)
        return Text(text)

    def digest_now(self, place: Place) -> list[Reply]:
        """The channel's undelivered papers, at once: the reply is the post.

        They are recorded as delivered as the reply is made, leaving out papers on their way
        in a daily post's parts; the day's scheduled post is not used up: it carries whatever
        is new by then.
        """
        with write_session(self.engine) as session:
            channel = self.channel(session, place)
            post = digest.take_now(session, channel)
        if post is None:
            return [Text("Nothing new since the last post.", ephemeral=True)]
        return [post]

    def undelivered(self, session: Session, channel: Channel) -> Papers | None:
        """The papers of the channel's keywords not yet delivered to it, grouped by keyword."""
        return digest.undelivered_post(session, channel)

    def _readme(self, place: Place, whole_workspace: bool) -> Reply:
        content = self.readme(place, whole_workspace=whole_workspace)
        scope = "this workspace" if whole_workspace else "this channel"
        return File(
            filename="README.md", content=content, comment=f"Daily Papers README of {scope}."
        )

    def readme(self, place: Place, *, whole_workspace: bool = False) -> str:
        """The README export of the channel's (or workspace's) keywords, in the order added."""
        with read_session(self.engine) as session:
            sections = self._readme_sections(session, place, whole_workspace)
            ids = [keyword_id for _, keyword_id in sections]
            papers = catalog.newest_per_keyword(
                session, ids, limit=PAPERS_PER_SECTION, with_authors=False
            )
        return render_readme(((label, papers[k]) for label, k in sections), day=self.today())

    def _readme_sections(
        self, session: Session, place: Place, whole_workspace: bool
    ) -> list[tuple[str, int]]:
        workspace = store.find_workspace(
            session, platform=place.platform, external_id=place.workspace_id
        )
        if workspace is None:
            return []
        if whole_workspace:
            return store.workspace_subscriptions(session, workspace)
        channel = store.find_channel(session, workspace=workspace, external_id=place.channel_id)
        if channel is None:
            return []
        return [(s.label, k.id) for s, k in store.channel_subscriptions(session, channel)]  # type: ignore[misc]

    def today(self) -> date:
        return self.clock().astimezone(ZoneInfo(self.settings.timezone)).date()

    def _fetch(self, place: Place) -> Reply:
        outage = self.gateway.outage()
        if outage is not None:  # said at once, and the channel's cooldown is not used up
            return Text(outage.describe() + ".", ephemeral=True)
        now = self.clock()
        cooldown = timedelta(seconds=self.settings.fetch_cooldown_seconds)
        with write_session(self.engine) as session:
            channel = self.channel(session, place)
            last = (
                store.as_utc(channel.last_fetch_request_at)
                if channel.last_fetch_request_at
                else None
            )
            if last is not None and now - last < cooldown:
                minutes = int((now - last).total_seconds() // 60)
                wait = int((last + cooldown - now).total_seconds() // 60) + 1
                return Text(
                    f"This channel's keywords were fetched {minutes} min ago; try again in {wait} min.",
                    ephemeral=True,
                )
            channel.last_fetch_request_at = now
            session.add(channel)
            followed = [
                (s.label, k.phrase) for s, k in store.channel_subscriptions(session, channel)
            ]
        if not followed:
            return Text(
                "This channel follows no keywords yet. Start with `add <keyword>`.", ephemeral=True
            )
        # Fetched by the deployment's phrase, shown under this channel's own label.
        fetched = self.refresher.refresh_many([phrase for _, phrase in followed])
        outcomes = [
            replace(o, label=label) for o, (label, _) in zip(fetched, followed, strict=True)
        ]
        return Text("Fetched:\n" + "\n".join(describe(o) for o in outcomes))

    # -- what front ends ask besides commands --------------------------------------

    def paper(self, arxiv_id: str) -> PaperView | None:
        """A stored paper (papers are public, shared by every workspace)."""
        with read_session(self.engine) as session:
            paper = session.get(Paper, arxiv_id)
            return catalog.paper_view(paper) if paper is not None else None

    def channel_labels(self, place: Place) -> list[str]:
        """The labels this channel follows, as first typed here, in the order added."""
        with read_session(self.engine) as session:
            channel = self._existing_channel(session, place)
            subs = store.channel_subscriptions(session, channel) if channel else []
            return [s.label for s, _ in subs]

    def leave_workspace(self, platform: str, workspace_id: str) -> int:
        """The bot left a workspace: its channels stop (their data stays); how many stopped."""
        with write_session(self.engine) as session:
            return store.deactivate_workspace(session, platform=platform, external_id=workspace_id)

    def leave_channel(self, place: Place) -> bool:
        """A channel was deleted: it stops at once (its data stays); False if it was unknown."""
        with write_session(self.engine) as session:
            channel = self._existing_channel(session, place)
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
        typist = (place.platform, place.workspace_id, place.channel_id, place.user_id)
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

"""The core: one `execute()` from a `Command` to `Reply`s, plus keyword refreshes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

from bot.arxiv.gateway import ArxivFailure, ArxivGateway, FetchResult, KeywordRejected
from bot.commands.grammar import (
    MANAGER_COMMANDS,
    Add,
    BadInput,
    Command,
    DigestAt,
    DigestNow,
    DigestOff,
    Fetch,
    Help,
    Keywords,
    List,
    Readme,
    Remove,
    help_text,
)
from bot.commands.readme import PAPERS_PER_SECTION, render_readme
from bot.config import Settings
from bot.posts import digest
from bot.replies import File, KeywordTable, PaperGroup, Papers, Reply, Text, error
from bot.storage import catalog, store
from bot.storage.db import read_session, write_session
from bot.storage.models import Channel

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


TERMINAL = Place(platform="terminal", workspace_id="local", channel_id="terminal", user_id="local")
# The terminal has no poster: `digest HH:MM` there would promise a post that never comes.
NO_TERMINAL_POST = (
    "The terminal has no daily post: `papers serve` posts to Slack and Discord channels only. "
    "`papers digest now` shows the papers not seen here yet."
)


@dataclass(frozen=True)
class RefreshOutcome:
    """What one keyword's refresh did."""

    label: str
    ok: bool
    found: int = 0
    new: int = 0
    reason: str | None = None
    rejected: bool = False


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
        self.clock: Clock = clock or (lambda: datetime.now(UTC))

    # -- commands -------------------------------------------------------------

    def execute(self, place: Place, command: Command) -> list[Reply]:
        """Run one command for `place`; expected errors come back as error replies."""
        if isinstance(command, MANAGER_COMMANDS) and not place.is_manager:
            return [
                error(
                    "Only channel managers can do that here. Ask someone with Manage Channels (Discord) or a listed manager (Slack)."
                )
            ]
        try:
            return self._dispatch(place, command)
        except BadInput as exc:
            return [error(str(exc))]

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
            case Help():
                return [Text(help_text(), ephemeral=True)]
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
                store.record_fetch(session, label, status="failed", error=outcome.reason)
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
                sub = channel and store.subscription_for(session, channel=channel, label=label)
                if not sub:
                    raise BadInput(f"This channel does not follow “{label}”.", "list")
                keyword_ids, name = [sub.keyword_id], sub.label
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

        They are recorded as delivered before the reply goes out (at most once), and the
        day's scheduled post is not used up: it carries whatever is new by then.
        """
        with write_session(self.engine) as session:
            channel = self.channel(session, place)
            post = digest.take_now(session, channel)
        return [post] if post is not None else [Text("Nothing new since the last post.")]

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
            labels = [k.phrase for _, k in store.channel_subscriptions(session, channel)]
        if not labels:
            return Text(
                "This channel follows no keywords yet. Start with `add <keyword>`.", ephemeral=True
            )
        outcomes = [self.refresh(label) for label in labels]
        return Text("Fetched:\n" + "\n".join(describe(o) for o in outcomes))

    # -- refreshing -------------------------------------------------------------

    def refresh(self, label: str) -> RefreshOutcome:
        """Fetch one keyword from arXiv and store what came back; failures keep the old papers."""
        try:
            result = self.gateway.fetch(label)
        except KeywordRejected as exc:
            self._record_failure(label, str(exc))
            return RefreshOutcome(label=label, ok=False, reason=str(exc), rejected=True)
        except ArxivFailure as exc:
            logger.warning("fetching %r failed: %s", label, exc)
            self._record_failure(label, str(exc))
            return RefreshOutcome(label=label, ok=False, reason=str(exc))
        return self._store_result(label, result)

    def _store_result(self, label: str, result: FetchResult) -> RefreshOutcome:
        with write_session(self.engine, durable=False) as session:
            if not result.papers:
                keyword = store.ensure_keyword(session, label)
                had = catalog.match_count(session, keyword.id or 0)
                if had:
                    reason = f"arXiv answered no papers for a keyword that had {had}"
                    store.record_fetch(session, label, status="failed", error=reason)
                    return RefreshOutcome(label=label, ok=False, reason=reason)
            # Same transaction: the "ok" lands together with the papers, or not at all.
            keyword_id = store.record_fetch(session, label, status="ok")
            if keyword_id is None:
                store.ensure_keyword(session, label)
                keyword_id = store.record_fetch(session, label, status="ok") or 0
            new = catalog.record_answer(session, keyword_id=keyword_id, papers=result.papers)
        return RefreshOutcome(label=label, ok=True, found=len(result.papers), new=new)

    def _record_failure(self, label: str, reason: str) -> None:
        with write_session(self.engine) as session:
            store.record_fetch(session, label, status="failed", error=reason)

    def followed_keywords(self) -> list[str]:
        """Every keyword some active channel follows, each once."""
        with read_session(self.engine) as session:
            return store.followed_phrases(session)

    def refresh_all(
        self,
        labels: Iterable[str] | None = None,
        *,
        progress: Callable[[RefreshOutcome], None] | None = None,
    ) -> list[RefreshOutcome]:
        outcomes = []
        for label in self.followed_keywords() if labels is None else labels:
            outcome = self.refresh(label)
            outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
        return outcomes


def describe(outcome: RefreshOutcome) -> str:
    if outcome.ok:
        return f"{outcome.label}: {outcome.found} papers, {outcome.new} new"
    return f"{outcome.label}: failed ({outcome.reason})"

"""The daily post's platform edge as a small fake (`FakePoster`), and helpers of the daily-post
tests: a runner pass, papers and keywords stored directly, claims and parts read back."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import select

from bot.arxiv.gateway import FetchedPaper
from bot.commands.core import Core, Place
from bot.commands.grammar import Add
from bot.posts.digest import DigestOutcome
from bot.posts.poster import Part, PostFailed, parent_line, parts_of, threaded
from bot.posts.runner import DigestRunner
from bot.replies import Papers
from bot.storage import catalog, store
from bot.storage.db import read_session, write_session
from bot.storage.models import Channel, DigestClaim, DigestPart
from tests.fakes.arxiv_server import ArxivStandIn, make_entry

SLACK = Place(platform="slack", workspace="T1", channel="C1")


# -- the platform edge --------------------------------------------------------------------


class ProcessCrash(BaseException):
    """The process dies at this point (nothing of ours catches a BaseException)."""


@dataclass
class Message:
    channel: str
    claim: int
    part: int
    papers: tuple[str, ...]
    at: datetime  # the (travelled) wall clock when the platform took it
    loop_time: float
    thread: str | None = None  # the message id of its thread's parent


@dataclass
class FakePoster:
    """A platform that renders one part per keyword group, keeps what it takes, finds it
    again, and answers as scripted per channel: each send takes the channel's next step,
    "ok" when none is left."""

    platform: str = "slack"
    script: dict[str, list[str | PostFailed]] = field(default_factory=dict)
    slow: dict[str, float] = field(default_factory=dict)
    refuse_read_back: bool = False
    render_error: Exception | None = None
    during_send: Callable[[], Awaitable[None]] | None = None
    messages: list[Message] = field(default_factory=list)
    posts: list[Papers] = field(default_factory=list)  # what each render was given
    attempts: list[str] = field(default_factory=list)
    read_backs: int = 0
    busy: int = 0
    most_busy: int = 0

    def render(self, post: Papers, *, claim: int, threads: bool = False) -> list[Part]:
        if self.render_error is not None:
            raise self.render_error
        self.posts.append(post)
        bodies = [
            {"label": g.label, "links": [p.abs_url for p in g.papers], "claim": claim}
            for g in post.groups
        ]
        if threads:  # a parent naming the counts, the groups in its thread
            return threaded(
                parts_of(post, [{"parent": parent_line(post), "claim": claim}, *bodies])
            )
        return parts_of(post, bodies)

    async def send(
        self, *, workspace: str, channel: str, part: Part, thread: str | None = None
    ) -> str:
        channel_id = channel
        self.attempts.append(channel_id)
        self.busy += 1
        self.most_busy = max(self.most_busy, self.busy)
        try:
            if self.during_send is not None:
                await self.during_send()
            await asyncio.sleep(self.slow.get(channel_id, 0))
            steps = self.script.get(channel_id)
            step = steps.pop(0) if steps else "ok"
            if isinstance(step, PostFailed):
                raise step
            if step == "lost":  # the request never reached the platform; no answer either
                raise PostFailed("no answer", maybe_delivered=True)
            if step == "die":  # the process dies as the request leaves; it never arrives
                raise ProcessCrash(channel_id)
            if (part.thread_of is None) != (thread is None):
                raise AssertionError(f"part {part.number} in thread {thread!r}")
            now, loop_time = datetime.now(UTC), asyncio.get_running_loop().time()
            claim = part.body["claim"]
            self.messages.append(
                Message(channel_id, claim, part.number, part.papers, now, loop_time, thread)
            )
            if step == "no answer":  # taken, but the answer never came
                raise PostFailed("no answer", maybe_delivered=True)
            if step == "crash":
                raise ProcessCrash(channel_id)
            return f"m{len(self.messages)}"
        finally:
            self.busy -= 1

    async def find(
        self,
        *,
        workspace: str,
        channel: str,
        claim: int,
        since: datetime,
        threads: Sequence[str] = (),
    ) -> dict[int, str]:
        """As the platforms: a thread's messages only when that thread is read too."""
        channel_id = channel
        self.read_backs += 1
        if self.refuse_read_back:
            raise PostFailed("missing_scope", permanent=True)
        return {
            m.part: f"m{i + 1}"
            for i, m in enumerate(self.messages)
            if m.channel == channel_id and m.claim == claim and m.at >= since
            if m.thread is None or m.thread in threads
        }

    def to(self, channel: str) -> list[list[str]]:
        """The papers of each message the channel got, in order."""
        return [list(m.papers) for m in self.messages if m.channel == channel]

    def copies(self) -> Counter[tuple[str, int, int]]:
        return Counter((m.channel, m.claim, m.part) for m in self.messages)


async def run_due_digests(
    core: Core, posters: list[Any], now: datetime | None = None, **options: Any
) -> list[DigestOutcome]:
    """One pass as a fresh runner (a process of its own): post whatever is due at `now`."""
    runner = DigestRunner(core, posters, **options)
    try:
        return await runner.run_due(now)
    finally:
        runner.close()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def entry(arxiv_id: str, updated: datetime, version: int = 1) -> bytes:
    return make_entry(arxiv_id, version, title=f"Paper {arxiv_id}", updated=updated)


def add_paper(core: Core, label: str, arxiv_id: str, updated: datetime) -> None:
    """A paper arrives for `label` (as if a refresh had stored it)."""
    paper = FetchedPaper(
        arxiv_id, 1, f"Paper {arxiv_id}", ("A. Author",), "Abstract.", "", updated, updated
    )
    with write_session(core.engine) as session:
        keyword = store.ensure_keyword(session, label)
        catalog.upsert_papers(session, [paper])
        catalog.add_matches(session, keyword_id=keyword.id, paper_ids=[arxiv_id])  # type: ignore[arg-type]


def follow(core: Core, arxiv_api: ArxivStandIn, place: Place, label: str) -> None:
    """Follow `label` in `place`; the stand-in knows one old paper of it, so refreshes succeed."""
    if not arxiv_api.entries(label):
        arxiv_api.add_entries(
            label, [entry(f"2001.{abs(hash(label)) % 10**5:05d}", utc(2020, 1, 1))]
        )
    core.execute(place, Add(label))


def claims(core: Core, place: Place | None = None) -> list[DigestClaim]:
    with read_session(core.engine) as session:
        query = select(DigestClaim).order_by(DigestClaim.local_date, DigestClaim.channel_id)  # type: ignore[arg-type]
        if place is not None:
            query = query.where(DigestClaim.channel_id == channel_of(core, place).id)
        return list(session.exec(query).all())


def parts(core: Core) -> list[tuple[int, str]]:
    with read_session(core.engine) as session:
        rows = session.exec(select(DigestPart).order_by(DigestPart.id)).all()  # type: ignore[arg-type]
        return [(p.number, p.status) for p in rows]


def delivered(core: Core, place: Place) -> set[str]:
    channel = channel_of(core, place).id
    with read_session(core.engine) as session:
        return {
            pid
            for (pid,) in session.execute(
                text("SELECT paper_id FROM deliveries WHERE channel_id = :c"), {"c": channel}
            )
        }


def channel_of(core: Core, place: Place) -> Channel:
    with read_session(core.engine) as session:
        channel = core.existing_channel(session, place)
        assert channel is not None
        return channel


async def run_at(
    core: Core, posters: Iterable[FakePoster], when: datetime, tm: Any, **options: Any
) -> list[DigestOutcome]:
    tm.move_to(when, tick=False)
    return await run_due_digests(core, list(posters), when, **options)


def statuses(outcomes: list[DigestOutcome]) -> list[str]:
    return sorted(o.status for o in outcomes)

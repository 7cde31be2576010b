"""Daily posts through `run_due_digests` at given times: exactly once, only what is new,
failures, pausing, crashes and DST. The clock is moved with time-machine; arXiv is the
loopback stand-in; the platforms are the small fake posters below."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.arxiv.daily import DailyRefresh
from bot.arxiv.gateway import FetchedPaper
from bot.commands.core import Core, Place
from bot.commands.grammar import Add, DigestAt, DigestNow, Keywords
from bot.posts import claims as daily_claims
from bot.posts import digest
from bot.posts.poster import PostFailed
from bot.posts.runner import run_due_digests
from bot.replies import KeywordTable, Papers, Reply
from bot.storage import catalog, store
from bot.storage.db import read_session, write_session
from bot.storage.models import Channel, DigestClaim
from tests.fakes.arxiv_server import ArxivStandIn, make_entry, status

SLACK = Place(platform="slack", workspace_id="T1", channel_id="C1")


# -- fakes and helpers --------------------------------------------------------------------


class ProcessCrash(BaseException):
    """The process dies at this point (nothing of ours catches a BaseException)."""


@dataclass
class Sent:
    workspace_id: str
    channel_id: str
    replies: list[Reply]
    at: datetime  # the (travelled) wall clock when the platform accepted it
    loop_time: float

    @property
    def ids(self) -> list[str]:
        return [
            p.arxiv_id
            for r in self.replies
            if isinstance(r, Papers)
            for g in r.groups
            for p in g.papers
        ]

    @property
    def groups(self) -> list[tuple[str, list[str]]]:
        post = self.replies[0]
        assert isinstance(post, Papers)
        return [(g.label, [p.arxiv_id for p in g.papers]) for g in post.groups]


@dataclass
class FakePoster:
    """A platform that accepts posts, or refuses / stalls / crashes as told, and remembers."""

    platform: str = "slack"
    refuse: dict[str, PostFailed] = field(default_factory=dict)
    slow: dict[str, float] = field(default_factory=dict)  # e.g. waiting out a 429's Retry-After
    crash_after_accept: set[str] = field(default_factory=set)
    during_post: Any = None  # async callable run while a post is on its way
    sent: list[Sent] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)
    busy: int = 0
    most_busy: int = 0  # the most posts this platform had in hand at once

    async def post(self, *, workspace_id: str, channel_id: str, replies: list[Reply]) -> None:
        self.attempts.append(channel_id)
        self.busy += 1
        self.most_busy = max(self.most_busy, self.busy)
        try:
            await self._post(workspace_id, channel_id, replies)
        finally:
            self.busy -= 1

    async def _post(self, workspace_id: str, channel_id: str, replies: list[Reply]) -> None:
        if self.during_post is not None:
            await self.during_post()
        await asyncio.sleep(self.slow.get(channel_id, 0))
        if channel_id in self.refuse:
            raise self.refuse[channel_id]
        now = datetime.now(UTC)
        self.sent.append(
            Sent(workspace_id, channel_id, list(replies), now, asyncio.get_running_loop().time())
        )
        if channel_id in self.crash_after_accept:
            raise ProcessCrash(channel_id)

    def to(self, channel_id: str) -> list[Sent]:
        return [s for s in self.sent if s.channel_id == channel_id]


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


def channel_of(core: Core, place: Place) -> Channel:
    with read_session(core.engine) as session:
        channel = core._existing_channel(session, place)
        assert channel is not None
        return channel


async def run_at(core: Core, posters: Iterable[FakePoster], when: datetime, tm: Any) -> list[Any]:
    tm.move_to(when, tick=False)
    return await run_due_digests(core, list(posters), when)


# -- the daily post -----------------------------------------------------------------------


async def test_two_keywords_one_post_of_the_undelivered_then_only_new_then_none(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 10), tick=False)
    arxiv_api.add_entries("Diffusion", [entry("2603.00001", utc(2026, 3, 1))])
    arxiv_api.add_entries("Virtual Try-On", [entry("2603.00002", utc(2026, 3, 1))])
    core.execute(SLACK, Add("Diffusion"))
    core.execute(SLACK, Add("Virtual Try-On"))
    # New on arXiv overnight: one paper matches both keywords.
    arxiv_api.add_entries(
        "Diffusion",
        [entry("2603.00011", utc(2026, 3, 2, 12)), entry("2603.00013", utc(2026, 3, 2, 18))],
    )
    arxiv_api.add_entries(
        "Virtual Try-On",
        [entry("2603.00012", utc(2026, 3, 2, 15)), entry("2603.00013", utc(2026, 3, 2, 18))],
    )
    arxiv_api.announce(  # what the daily harvest sees of them
        [
            make_entry("2603.00011", summary="Diffusion."),
            make_entry("2603.00012", summary="Virtual try-on."),
            make_entry("2603.00013", summary="Diffusion for virtual try-on."),
        ],
        day=utc(2026, 3, 2).date(),
    )
    poster = FakePoster()

    time_machine.move_to(utc(2026, 3, 3, 1), tick=False)
    assert await DailyRefresh(core).run() is True
    assert await run_at(core, [poster], utc(2026, 3, 3, 8, 59), time_machine) == []
    outcomes = await run_at(core, [poster], utc(2026, 3, 3, 9), time_machine)
    assert [o.status for o in outcomes] == ["sent"]
    assert len(poster.sent) == 1
    assert poster.sent[0].workspace_id == "T1" and poster.sent[0].channel_id == "C1"
    assert poster.sent[0].groups == [
        ("Diffusion", ["2603.00013", "2603.00011"]),
        ("Virtual Try-On", ["2603.00012"]),
    ]
    assert await run_at(core, [poster], utc(2026, 3, 3, 15), time_machine) == []
    assert len(poster.sent) == 1

    # Day 2: no daily refresh ran, so the stale keywords are fetched before the post.
    arxiv_api.add_entries("Virtual Try-On", [entry("2603.00021", utc(2026, 3, 3, 20))])
    before = len(arxiv_api.requests)
    await run_at(core, [poster], utc(2026, 3, 4, 9), time_machine)
    assert len(arxiv_api.requests) - before == 2
    assert [s.ids for s in poster.sent] == [
        ["2603.00013", "2603.00011", "2603.00012"],
        ["2603.00021"],
    ]

    # Day 3: nothing new, no post; the day is settled as empty.
    outcomes = await run_at(core, [poster], utc(2026, 3, 5, 9), time_machine)
    assert [o.status for o in outcomes] == ["empty"]
    assert len(poster.sent) == 2
    assert [c.status for c in claims(core)] == ["sent", "sent", "empty"]
    assert [store.as_utc(c.finished_at) for c in claims(core)][2] == utc(2026, 3, 5, 9)  # type: ignore[arg-type]


async def test_a_stale_keyword_is_fetched_once_for_all_its_channels_and_a_failed_fetch_posts_what_is_stored(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 1, 10), tick=False)
    places = [Place(platform="slack", workspace_id="T1", channel_id=f"C{i}") for i in range(4)]
    for place in places:
        follow(core, arxiv_api, place, "Diffusion")
    arxiv_api.add_entries("Diffusion", [entry("2603.00100", utc(2026, 3, 1, 20))])
    poster = FakePoster()
    asked = len(arxiv_api.requests)
    await run_at(core, [poster], utc(2026, 3, 2, 9), time_machine)
    assert len(arxiv_api.requests) == asked + 1
    assert [s.ids for s in poster.sent] == [["2603.00100"]] * 4
    # arXiv is down the next morning: the post carries what was stored meanwhile.
    add_paper(core, "Diffusion", "2603.00200", utc(2026, 3, 2, 20))
    arxiv_api.always(status(503))
    outcomes = await run_at(core, [poster], utc(2026, 3, 3, 9), time_machine)
    assert sorted(o.status for o in outcomes) == ["sent"] * 4
    assert [s.ids for s in poster.sent[4:]] == [["2603.00200"]] * 4
    (row,) = core.execute(places[0], Keywords()).pop().rows  # type: ignore[union-attr]
    assert row.status == "failed"


async def test_add_then_next_post_carries_no_flood(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 10), tick=False)
    arxiv_api.add_entries(
        "Diffusion",
        [entry(f"2602.{i:05d}", utc(2026, 2, 1) + timedelta(hours=i)) for i in range(40)],
    )
    core.execute(SLACK, Add("Diffusion"))
    arxiv_api.add_entries("Diffusion", [entry("2603.00100", utc(2026, 3, 2, 20))])
    poster = FakePoster()
    await run_at(core, [poster], utc(2026, 3, 3, 9), time_machine)
    assert [s.ids for s in poster.sent] == [["2603.00100"]]


async def test_a_new_version_of_a_delivered_paper_is_not_posted_again(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 10), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    arxiv_api.add_entries("Diffusion", [entry("2603.00100", utc(2026, 3, 2, 20))])
    poster = FakePoster()
    await run_at(core, [poster], utc(2026, 3, 3, 9), time_machine)
    arxiv_api.add_entries("Diffusion", [entry("2603.00100", utc(2026, 3, 3, 20), version=2)])
    outcomes = await run_at(core, [poster], utc(2026, 3, 4, 9), time_machine)
    assert [o.status for o in outcomes] == ["empty"]
    assert [s.ids for s in poster.sent] == [["2603.00100"]]


async def test_digest_now_posts_at_once_without_using_up_the_day(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 10), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 2, 9))
    (reply,) = core.execute(SLACK, DigestNow())
    assert isinstance(reply, Papers) and [p.arxiv_id for p in reply.groups[0].papers] == [
        "2603.00100"
    ]
    assert claims(core) == []
    # The day's scheduled post still happens, with only what arrived after `digest now`.
    add_paper(core, "Diffusion", "2603.00200", utc(2026, 3, 2, 11))
    poster = FakePoster()
    await run_at(core, [poster], utc(2026, 3, 2, 12), time_machine)
    assert [s.ids for s in poster.sent] == [["2603.00200"]]


async def test_digest_now_leaves_out_a_post_on_its_way(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 2, 7))
    answers: list[Reply] = []

    async def manager_types_digest_now() -> None:
        answers.extend(await asyncio.to_thread(core.execute, SLACK, DigestNow()))

    poster = FakePoster(during_post=manager_types_digest_now)
    await run_at(core, [poster], utc(2026, 3, 2, 9), time_machine)
    assert [s.ids for s in poster.sent] == [["2603.00100"]]
    assert [type(a).__name__ for a in answers] == ["Text"]  # "Nothing new since the last post."


def test_two_channels_on_one_keyword_each_get_their_own_undelivered_papers_in_a_batch(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    """The batch path reads all channels' papers in one query: it must not mix their
    deliveries, nor rank the shared keyword's papers across channels."""
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    other = Place(platform="slack", workspace_id="T1", channel_id="C2")
    follow(core, arxiv_api, SLACK, "Diffusion")
    follow(core, arxiv_api, other, "Diffusion")
    for n in (1, 2, 3):  # 2603.00003 is the newest
        add_paper(core, "Diffusion", f"2603.0000{n}", utc(2026, 3, 1, n))
    first, second = channel_of(core, SLACK).id, channel_of(core, other).id
    assert first is not None and second is not None
    old = f"2001.{abs(hash('Diffusion')) % 10**5:05d}"
    with write_session(core.engine) as session:
        store.mark_delivered(session, channel_id=first, paper_ids=["2603.00001", "2603.00003", old])
        store.mark_delivered(session, channel_id=second, paper_ids=["2603.00002", old])
    with read_session(core.engine) as session:
        for per_keyword, mine in (
            (100, {first: ["2603.00002"], second: ["2603.00003", "2603.00001"]}),
            (1, {first: ["2603.00002"], second: ["2603.00003"]}),
        ):
            many = catalog.undelivered_groups_many(
                session, [first, second], per_keyword=per_keyword
            )
            for cid in (first, second):
                alone = catalog.undelivered_groups(session, cid, per_keyword=per_keyword)
                assert many[cid] == alone
                assert [p.arxiv_id for g in many[cid] for p in g.papers] == mine[cid]
    now = utc(2026, 3, 2, 8)
    with write_session(core.engine) as session:
        taken = [
            daily_claims.claim_digest(
                session, channel_id=cid, local_date=date(2026, 3, 2), owner="me", now=now
            )
            for cid in (second, first)
        ]
        assert taken[0] is not None and taken[1] is not None
        posts = daily_claims.begin_sending_many(session, [taken[0], taken[1]], now=now)
    assert [digest.paper_ids(p) for p in posts if isinstance(p, Papers)] == [
        ["2603.00003", "2603.00001"],
        ["2603.00002"],
    ]
    assert [p.groups[0].label for p in posts if isinstance(p, Papers)] == ["Diffusion"] * 2


def test_stale_keywords_are_those_not_fetched_successfully_since_the_refresh_time(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    labels = ["Fresh", "At the slot", "Just before", "Never"]
    for label in labels:
        follow(core, arxiv_api, SLACK, label)
    since = datetime(2026, 3, 2, 3, 0, tzinfo=ZoneInfo("Europe/Paris"))  # 02:00 UTC
    fetched = {
        "Fresh": utc(2026, 3, 2, 7),
        "At the slot": utc(2026, 3, 2, 2),
        "Just before": utc(2026, 3, 2, 2) - timedelta(microseconds=1),
        "Never": None,
    }
    with write_session(core.engine) as session:
        for label, at in fetched.items():
            keyword = store.find_keyword(session, label)
            assert keyword is not None
            keyword.last_success_at = at
            session.add(keyword)
    channel = channel_of(core, SLACK).id
    with read_session(core.engine) as session:
        stale = digest.stale_labels(session, channel_ids=[channel], since=since)  # type: ignore[list-item]
    assert sorted(stale[channel]) == ["Just before", "Never"]  # type: ignore[index]


def test_a_claim_lost_within_a_batch_is_reported_and_left_alone_while_the_others_pass(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    now = utc(2026, 3, 2, 8)
    time_machine.move_to(now, tick=False)
    places = [Place(platform="slack", workspace_id="T1", channel_id=f"C{n}") for n in (1, 2, 3)]
    for place in places:
        follow(core, arxiv_api, place, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 2, 7))
    with write_session(core.engine) as session:
        taken = [
            daily_claims.claim_digest(
                session,
                channel_id=channel_of(core, place).id,  # type: ignore[arg-type]
                local_date=date(2026, 3, 2),
                owner="me",
                now=now,
            )
            for place in places
        ]
    middle = taken[1]
    assert middle is not None and None not in taken
    with write_session(core.engine) as session:  # another process retook the middle one
        session.get(DigestClaim, middle.id).owner = "them"  # type: ignore[union-attr]
    with write_session(core.engine) as session:
        results = daily_claims.begin_sending_many(session, taken, now=now)  # type: ignore[arg-type]
    assert isinstance(results[1], daily_claims.ClaimLost)
    assert [digest.paper_ids(r) for r in (results[0], results[2])] == [["2603.00100"]] * 2  # type: ignore[arg-type]
    by_channel = {c.channel_id: (c.status, c.owner) for c in claims(core)}
    assert by_channel == {
        taken[0].channel_id: ("sending", "me"),  # type: ignore[union-attr]
        middle.channel_id: ("claimed", "them"),
        taken[2].channel_id: ("sending", "me"),  # type: ignore[union-attr]
    }


# -- crashes ------------------------------------------------------------------------------


async def test_crash_between_acceptance_and_delivery_record_never_posts_twice(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 2, 7))
    dying = FakePoster(crash_after_accept={"C1"})
    with pytest.raises(ProcessCrash):
        await run_at(core, [dying], utc(2026, 3, 2, 9), time_machine)
    assert len(dying.sent) == 1
    assert [c.status for c in claims(core)] == ["sending"]

    restarted = FakePoster()
    assert await run_at(core, [restarted], utc(2026, 3, 2, 9, 1), time_machine) == []
    assert await run_at(core, [restarted], utc(2026, 3, 2, 9, 30), time_machine) == []
    assert restarted.attempts == []
    (claim,) = claims(core)
    assert claim.status == "uncertain"  # settled after its lease ran out, not re-sent
    # The papers it may have carried count as delivered: tomorrow only brings what is new.
    add_paper(core, "Diffusion", "2603.00200", utc(2026, 3, 2, 20))
    await run_at(core, [restarted], utc(2026, 3, 3, 9), time_machine)
    assert [s.ids for s in restarted.sent] == [["2603.00200"]]


async def test_a_claim_whose_holder_died_before_sending_is_retaken_after_its_lease(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 2, 7))
    channel_id = channel_of(core, SLACK).id
    with write_session(core.engine) as session:
        taken = daily_claims.claim_digest(
            session,
            channel_id=channel_id,
            local_date=date(2026, 3, 2),
            owner="dead",
            now=utc(2026, 3, 2, 9),
        )  # type: ignore[arg-type]
    assert taken is not None
    poster = FakePoster()
    assert await run_at(core, [poster], utc(2026, 3, 2, 9, 10), time_machine) == []
    outcomes = await run_at(core, [poster], utc(2026, 3, 2, 9, 16), time_machine)
    assert [o.status for o in outcomes] == ["sent"]
    assert [s.ids for s in poster.sent] == [["2603.00100"]]
    (claim,) = claims(core)
    assert claim.owner != "dead" and claim.status == "sent"


async def test_a_post_that_may_have_arrived_is_not_retried_and_its_papers_count_as_delivered(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 2, 7))
    poster = FakePoster(
        refuse={"C1": PostFailed("read timeout after sending", maybe_delivered=True)}
    )
    outcomes = await run_at(core, [poster], utc(2026, 3, 2, 9), time_machine)
    assert [o.status for o in outcomes] == ["uncertain"]
    poster.refuse.clear()
    assert await run_at(core, [poster], utc(2026, 3, 2, 10), time_machine) == []
    outcomes = await run_at(core, [poster], utc(2026, 3, 3, 9), time_machine)
    assert [o.status for o in outcomes] == ["empty"]
    assert poster.sent == []


async def test_a_post_with_no_answer_in_time_is_uncertain_and_holds_up_no_other_channel(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    stuck = Place(platform="slack", workspace_id="T1", channel_id="C2")
    follow(core, arxiv_api, SLACK, "Diffusion")
    follow(core, arxiv_api, stuck, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 2, 7))
    poster = FakePoster(slow={"C2": 30.0})
    began = asyncio.get_running_loop().time()
    time_machine.move_to(utc(2026, 3, 2, 9), tick=False)
    outcomes = await run_due_digests(core, [poster], utc(2026, 3, 2, 9), post_timeout=0.3)
    assert asyncio.get_running_loop().time() - began < 10
    assert sorted((o.channel_id, o.status) for o in outcomes) == [
        (channel_of(core, SLACK).id, "sent"),
        (channel_of(core, stuck).id, "uncertain"),
    ]
    assert "no answer in 0.3s" in next(o.detail for o in outcomes if o.status == "uncertain")
    assert [s.channel_id for s in poster.sent] == ["C1"]
    # Its paper counts as delivered: the next day does not send it again.
    poster.slow.clear()
    add_paper(core, "Diffusion", "2603.00200", utc(2026, 3, 2, 20))
    await run_at(core, [poster], utc(2026, 3, 3, 9), time_machine)
    assert [s.ids for s in poster.to("C2")] == [["2603.00200"]]


# -- failures and pausing -----------------------------------------------------------------


async def test_three_days_of_permanent_refusal_pause_the_channel_and_others_post_on_time(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 1, 10), tick=False)
    places = [Place(platform="slack", workspace_id="T1", channel_id=f"C{i}") for i in (1, 2, 3)]
    for place in places:
        follow(core, arxiv_api, place, "Diffusion")
    poster = FakePoster(refuse={"C1": PostFailed("channel_not_found", permanent=True)})
    for day in (2, 3, 4):
        add_paper(core, "Diffusion", f"2603.{day:05d}", utc(2026, 3, day - 1, 20))
        outcomes = await run_at(core, [poster], utc(2026, 3, day, 9), time_machine)
        assert sorted(o.status for o in outcomes) == [
            "failed" if day < 4 else "paused",
            "sent",
            "sent",
        ]
        assert sorted(s.channel_id for s in poster.sent[-2:]) == ["C2", "C3"]
        assert all(s.at == utc(2026, 3, day, 9) for s in poster.sent[-2:])
    channel = channel_of(core, places[0])
    assert (
        channel.paused and channel.failed_days == 3 and channel.last_failure == "channel_not_found"
    )
    (table,) = core.execute(places[0], Keywords())
    assert isinstance(table, KeywordTable) and table.paused and "paused" in table.digest

    add_paper(core, "Diffusion", "2603.00005", utc(2026, 3, 4, 20))
    await run_at(core, [poster], utc(2026, 3, 5, 9), time_machine)
    assert poster.attempts.count("C1") == 3  # paused: not even tried on day 4
    assert [s.ids for s in poster.to("C2")][-1] == ["2603.00005"]

    # `digest HH:MM` resumes it; the papers it missed come in its next post.
    poster.refuse.clear()
    core.execute(places[0], DigestAt("09:00"))
    await run_at(core, [poster], utc(2026, 3, 6, 9), time_machine)
    assert [s.ids for s in poster.to("C1")] == [
        ["2603.00005", "2603.00004", "2603.00003", "2603.00002"]
    ]
    assert channel_of(core, places[0]).failed_days == 0


async def test_a_success_resets_the_failure_count_and_transient_failures_do_not_count(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 1, 10), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    gone = PostFailed("not_in_channel", permanent=True)
    script = {2: gone, 3: gone, 4: None, 5: gone, 6: PostFailed("HTTP 503"), 7: gone}
    poster = FakePoster()
    for day, failure in script.items():
        add_paper(core, "Diffusion", f"2603.{day:05d}", utc(2026, 3, day - 1, 20))
        poster.refuse = {"C1": failure} if failure else {}
        await run_at(core, [poster], utc(2026, 3, day, 9), time_machine)
    channel = channel_of(core, SLACK)
    assert (channel.paused, channel.failed_days) == (False, 2)
    assert [s.ids for s in poster.sent] == [["2603.00004", "2603.00003", "2603.00002"]]


async def test_one_slow_channel_delays_no_other(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 1, 10), tick=False)
    places = [Place(platform="discord", workspace_id="G1", channel_id=f"D{i}") for i in range(6)]
    for place in places:
        follow(core, arxiv_api, place, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 1, 20))
    poster = FakePoster(platform="discord", slow={"D0": 1.5})
    time_machine.move_to(utc(2026, 3, 2, 9), tick=False)
    start = asyncio.get_running_loop().time()
    outcomes = await run_due_digests(core, [poster], utc(2026, 3, 2, 9))
    assert sorted(o.status for o in outcomes) == ["sent"] * 6
    took = {s.channel_id: s.loop_time - start for s in poster.sent}
    assert took["D0"] >= 1.5
    assert max(t for c, t in took.items() if c != "D0") < 1.0
    assert poster.sent[-1].channel_id == "D0"


async def test_channels_are_posted_concurrently_up_to_the_bound(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 1, 10), tick=False)
    for i in range(6):
        follow(
            core,
            arxiv_api,
            Place(platform="slack", workspace_id="T1", channel_id=f"C{i}"),
            "Diffusion",
        )
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 1, 20))
    poster = FakePoster(slow={f"C{i}": 0.2 for i in range(6)})
    time_machine.move_to(utc(2026, 3, 2, 9), tick=False)
    outcomes = await run_due_digests(core, [poster], utc(2026, 3, 2, 9), max_concurrent=2)
    assert sorted(o.status for o in outcomes) == ["sent"] * 6
    assert poster.most_busy == 2
    unbounded = FakePoster(slow={f"C{i}": 0.2 for i in range(6)})
    add_paper(core, "Diffusion", "2603.00200", utc(2026, 3, 2, 20))
    await run_at(core, [unbounded], utc(2026, 3, 3, 9), time_machine)
    assert unbounded.most_busy == 6


async def test_a_claim_past_the_sending_point_is_never_retaken(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 2, 7))
    channel_id = channel_of(core, SLACK).id
    day, nine = date(2026, 3, 2), utc(2026, 3, 2, 9)
    with write_session(core.engine) as session:
        first = daily_claims.claim_digest(
            session, channel_id=channel_id, local_date=day, owner="a", now=nine
        )  # type: ignore[arg-type]
    assert first is not None
    with write_session(core.engine) as session:
        assert daily_claims.begin_sending(session, first, now=nine) is not None
    later = nine + 2 * daily_claims.CLAIM_LEASE
    with write_session(core.engine) as session:
        assert (
            daily_claims.claim_digest(
                session, channel_id=channel_id, local_date=day, owner="b", now=later
            )
            is None
        )  # type: ignore[arg-type]
        assert (
            daily_claims.claim_digest(
                session, channel_id=channel_id, local_date=day, owner="a", now=later
            )
            is None
        )  # type: ignore[arg-type]
    (claim,) = claims(core)
    assert (claim.owner, claim.status) == ("a", "sending")


async def test_a_channel_whose_platform_has_no_poster_here_is_left_to_another_process(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 1, 10), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 1, 20))
    discord_only = FakePoster(platform="discord")
    assert await run_at(core, [discord_only], utc(2026, 3, 2, 9), time_machine) == []
    assert claims(core) == []
    slack = FakePoster()
    await run_at(core, [slack], utc(2026, 3, 2, 9, 5), time_machine)
    assert len(slack.sent) == 1


# -- daylight saving time -----------------------------------------------------------------

DST_CASES = {
    # zone, change day: {post time: the UTC instants of its posts on the days around it}
    ("Europe/Berlin", date(2026, 3, 29)): {
        "02:30": [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)],
        "01:30": [utc(2026, 3, 28, 0, 30), utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 23, 30)],
    },
    ("Europe/Berlin", date(2026, 10, 25)): {
        "02:30": [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
        "01:30": [utc(2026, 10, 23, 23, 30), utc(2026, 10, 24, 23, 30), utc(2026, 10, 26, 0, 30)],
    },
    ("America/New_York", date(2026, 3, 8)): {
        "02:30": [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 6, 30)],
        "01:30": [utc(2026, 3, 7, 6, 30), utc(2026, 3, 8, 6, 30), utc(2026, 3, 9, 5, 30)],
    },
    ("America/New_York", date(2026, 11, 1)): {
        "02:30": [utc(2026, 10, 31, 6, 30), utc(2026, 11, 1, 7, 30), utc(2026, 11, 2, 7, 30)],
        "01:30": [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)],
    },
}


@pytest.mark.parametrize("case", list(DST_CASES), ids=lambda c: f"{c[0]}-{c[1]}")
async def test_dst_change_days_get_one_post_on_each_local_day(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any, case: tuple[str, date]
) -> None:
    zone, change_day = case
    expected = DST_CASES[case]
    start = datetime.combine(
        change_day - timedelta(days=1), datetime.min.time(), tzinfo=UTC
    ) - timedelta(hours=12)
    time_machine.move_to(start - timedelta(hours=1), tick=False)
    places = {
        hhmm: Place(platform="slack", workspace_id="T1", channel_id=hhmm) for hhmm in expected
    }
    for hhmm, place in places.items():
        follow(core, arxiv_api, place, "Diffusion")
        core.execute(place, DigestAt(hhmm, zone))
    poster = FakePoster()
    when = start
    while when < start + timedelta(days=4):  # a sweep every half hour, a new paper every 6 hours
        if when.minute == 0 and when.hour % 6 == 0:
            add_paper(core, "Diffusion", f"{when:%y%m.%d%H}", when)
        await run_at(core, [poster], when, time_machine)
        when += timedelta(minutes=30)
    days = [change_day - timedelta(days=1), change_day, change_day + timedelta(days=1)]
    for hhmm, place in places.items():
        posts = [s.at for s in poster.to(place.channel_id)]
        local_days = [p.astimezone(ZoneInfo(zone)).date() for p in posts]
        assert len(local_days) == len(set(local_days)), hhmm  # never two on one local day
        assert [p for p, d in zip(posts, local_days, strict=True) if d in days] == expected[hhmm], (
            hhmm
        )

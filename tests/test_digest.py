"""Daily posts through `DigestRunner` at given times: each part once, only what is new, papers
delivered with the part that carried them, verification of unknown outcomes, retries,
pausing, crashes, graceful stops and DST. The clock is moved with time-machine; arXiv is the
loopback stand-in; the platform is `FakePoster`, a small fake at the `Poster` edge (the real
posters are tested against the Slack and Discord stand-ins in their own test files)."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlmodel import select

from bot.arxiv.daily import DailyRefresh
from bot.commands.core import Core, Place
from bot.commands.grammar import Add, DigestAt, DigestNow, Keywords
from bot.posts import claims as claims_mod
from bot.posts import digest
from bot.posts.poster import PostFailed
from bot.posts.runner import DigestRunner
from bot.replies import KeywordTable, Papers, Reply
from bot.storage import store
from bot.storage.db import make_engine, read_session, upgrade, write_session
from bot.storage.models import DigestClaim
from tests.fakes.arxiv_server import ArxivStandIn, make_entry, status
from tests.support.digest import (
    SLACK,
    FakePoster,
    add_paper,
    channel_of,
    claims,
    delivered,
    entry,
    follow,
    parts,
    run_at,
    run_due_digests,
    statuses,
    utc,
)

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
    assert statuses(outcomes) == ["sent"]
    # One post in two parts (the fake renders one per keyword), the shared paper once.
    assert poster.to("C1") == [["2603.00013", "2603.00011"], ["2603.00012"]]
    assert await run_at(core, [poster], utc(2026, 3, 3, 15), time_machine) == []

    # Day 2: no daily refresh ran, so the stale keywords are fetched before the post.
    arxiv_api.add_entries("Virtual Try-On", [entry("2603.00021", utc(2026, 3, 3, 20))])
    before = len(arxiv_api.requests)
    await run_at(core, [poster], utc(2026, 3, 4, 9), time_machine)
    assert len(arxiv_api.requests) - before == 2
    assert poster.to("C1")[2:] == [["2603.00021"]]

    # Day 3: nothing new, no post; the day is settled as empty.
    outcomes = await run_at(core, [poster], utc(2026, 3, 5, 9), time_machine)
    assert statuses(outcomes) == ["empty"]
    assert len(poster.messages) == 3
    assert [c.status for c in claims(core)] == ["sent", "sent", "empty"]
    assert parts(core) == [(1, "sent"), (2, "sent"), (1, "sent")]


async def test_a_stale_keyword_is_fetched_once_for_all_its_channels_and_a_failed_fetch_posts_what_is_stored(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 1, 10), tick=False)
    places = [Place(platform="slack", workspace="T1", channel=f"C{i}") for i in range(4)]
    for place in places:
        follow(core, arxiv_api, place, "Diffusion")
    arxiv_api.add_entries("Diffusion", [entry("2603.00100", utc(2026, 3, 1, 20))])
    poster = FakePoster()
    asked = len(arxiv_api.requests)
    await run_at(core, [poster], utc(2026, 3, 2, 9), time_machine)
    assert len(arxiv_api.requests) == asked + 1
    assert [poster.to(p.channel) for p in places] == [[["2603.00100"]]] * 4
    # arXiv is down the next morning: the post carries what was stored meanwhile.
    add_paper(core, "Diffusion", "2603.00200", utc(2026, 3, 2, 20))
    arxiv_api.always(status(503))
    outcomes = await run_at(core, [poster], utc(2026, 3, 3, 9), time_machine)
    assert statuses(outcomes) == ["sent"] * 4
    assert [m.papers for m in poster.messages[4:]] == [("2603.00200",)] * 4
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
    assert poster.to("C1") == [["2603.00100"]]


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
    assert statuses(outcomes) == ["empty"]
    assert poster.to("C1") == [["2603.00100"]]


async def test_digest_now_posts_at_once_without_using_up_the_day(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 10), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 2, 9))
    (reply,) = core.execute(SLACK, DigestNow())
    assert isinstance(reply, Papers) and digest.paper_ids(reply) == ["2603.00100"]
    assert claims(core) == []
    # The day's scheduled post still happens, with only what arrived after `digest now`.
    add_paper(core, "Diffusion", "2603.00200", utc(2026, 3, 2, 11))
    poster = FakePoster()
    await run_at(core, [poster], utc(2026, 3, 2, 12), time_machine)
    assert poster.to("C1") == [["2603.00200"]]


async def test_digest_now_leaves_out_a_post_on_its_way(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 2, 7))
    answers: list[Reply] = []

    async def manager_types_digest_now() -> None:
        answers.extend(await asyncio.to_thread(core.execute, SLACK, DigestNow()))

    poster = FakePoster(during_send=manager_types_digest_now)
    await run_at(core, [poster], utc(2026, 3, 2, 9), time_machine)
    assert poster.to("C1") == [["2603.00100"]]
    assert [type(a).__name__ for a in answers] == ["Text"]  # "Nothing new since the last post."


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
    assert sorted(stale) == ["Just before", "Never"]


# -- parts and their outcomes -------------------------------------------------------------


def two_keywords(core: Core, arxiv_api: ArxivStandIn, time_machine: Any) -> None:
    """C1 follows two keywords with one new paper each: a post of two parts."""
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    follow(core, arxiv_api, SLACK, "Retrieval")
    add_paper(core, "Diffusion", "2603.00001", utc(2026, 3, 2, 7))
    add_paper(core, "Retrieval", "2603.00002", utc(2026, 3, 2, 7))


async def test_papers_are_delivered_with_the_part_that_carried_them_and_the_rest_goes_later(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    two_keywords(core, arxiv_api, time_machine)
    poster = FakePoster(script={"C1": ["ok", PostFailed("HTTP 429: ratelimited")]})
    outcomes = await run_at(core, [poster], utc(2026, 3, 2, 9), time_machine)
    assert statuses(outcomes) == ["retry"]
    assert delivered(core, SLACK) >= {"2603.00001"} and "2603.00002" not in delivered(core, SLACK)
    assert parts(core) == [(1, "sent"), (2, "pending")]
    # Tried again after a minute, not before; only the part that is missing goes.
    assert await run_at(core, [poster], utc(2026, 3, 2, 9, 0, 59), time_machine) == []
    outcomes = await run_at(core, [poster], utc(2026, 3, 2, 9, 1), time_machine)
    assert statuses(outcomes) == ["sent"]
    assert poster.to("C1") == [["2603.00001"], ["2603.00002"]]
    assert "2603.00002" in delivered(core, SLACK)
    assert poster.read_backs == 0  # nothing was unknown


async def test_a_part_taken_whose_answer_never_came_is_verified_and_not_sent_again(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    two_keywords(core, arxiv_api, time_machine)
    poster = FakePoster(script={"C1": ["no answer"]})
    outcomes = await run_at(core, [poster], utc(2026, 3, 2, 9), time_machine)
    assert statuses(outcomes) == ["retry"]
    assert parts(core) == [(1, "sending"), (2, "pending")]
    assert "2603.00001" not in delivered(core, SLACK)  # unknown is not delivered
    await run_at(core, [poster], utc(2026, 3, 2, 9, 1), time_machine)
    assert poster.read_backs == 1
    assert poster.copies() == Counter(
        {("C1", claims(core)[0].id, 1): 1, ("C1", claims(core)[0].id, 2): 1}
    )
    assert delivered(core, SLACK) >= {"2603.00001", "2603.00002"}
    assert [c.status for c in claims(core)] == ["sent"]


async def test_a_part_that_never_reached_the_platform_is_sent_again(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    two_keywords(core, arxiv_api, time_machine)
    poster = FakePoster(script={"C1": ["lost"]})
    await run_at(core, [poster], utc(2026, 3, 2, 9), time_machine)
    assert poster.messages == []
    await run_at(core, [poster], utc(2026, 3, 2, 9, 1), time_machine)
    assert poster.read_backs == 1
    assert poster.to("C1") == [["2603.00001"], ["2603.00002"]]
    assert [c.status for c in claims(core)] == ["sent"]


async def test_a_platform_that_refuses_the_read_back_gets_the_part_again_and_it_is_counted(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any, caplog: pytest.LogCaptureFixture
) -> None:
    two_keywords(core, arxiv_api, time_machine)
    poster = FakePoster(script={"C1": ["no answer"]}, refuse_read_back=True)
    await run_at(core, [poster], utc(2026, 3, 2, 9), time_machine)
    time_machine.move_to(utc(2026, 3, 2, 9, 1), tick=False)
    runner = DigestRunner(core, [poster])
    try:
        await runner.run_due()
    finally:
        runner.close()
    assert runner.unverified == 1
    assert "again without proof (1 such parts so far)" in caplog.text
    assert poster.to("C1") == [["2603.00001"], ["2603.00001"], ["2603.00002"]]  # twice, never lost
    assert [c.status for c in claims(core)] == ["sent"]


async def test_a_rendering_error_keeps_the_papers_for_the_next_post_and_does_not_count(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any, caplog: pytest.LogCaptureFixture
) -> None:
    two_keywords(core, arxiv_api, time_machine)
    poster = FakePoster(render_error=ValueError("a formatter bug"))
    outcomes = await run_at(core, [poster], utc(2026, 3, 2, 9), time_machine)
    assert statuses(outcomes) == ["failed"]
    assert "rendering the 2026-03-02 post of channel" in caplog.text and "Traceback" in caplog.text
    assert delivered(core, SLACK).isdisjoint({"2603.00001", "2603.00002"})
    assert channel_of(core, SLACK).failed_days == 0
    poster.render_error = None
    await run_at(core, [poster], utc(2026, 3, 3, 9), time_machine)
    assert poster.to("C1") == [["2603.00001"], ["2603.00002"]]


async def test_a_single_server_error_is_posted_later_the_same_day(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 2, 7))
    poster = FakePoster(script={"C1": [PostFailed("HTTP 500", maybe_delivered=True)]})
    assert statuses(await run_at(core, [poster], utc(2026, 3, 2, 9), time_machine)) == ["retry"]
    assert statuses(await run_at(core, [poster], utc(2026, 3, 2, 9, 1), time_machine)) == ["sent"]
    assert poster.to("C1") == [["2603.00100"]]


async def test_429_on_every_try_is_retried_with_backoff_all_day_and_blocks_no_one(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    busy = Place(platform="slack", workspace="T1", channel="C2")
    follow(core, arxiv_api, SLACK, "Diffusion")
    follow(core, arxiv_api, busy, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 2, 7))
    poster = FakePoster(script={"C2": [PostFailed("HTTP 429: ratelimited")] * 100})
    when, tries = utc(2026, 3, 2, 9), []
    while when < utc(2026, 3, 3, 0):  # a sweep every minute until the day ends
        before = poster.attempts.count("C2")
        await run_at(core, [poster], when, time_machine)
        if poster.attempts.count("C2") > before:
            tries.append(when)
        when += timedelta(minutes=1)
    gaps = [int((b - a).total_seconds() // 60) for a, b in itertools.pairwise(tries)]
    assert gaps[:5] == [1, 5, 15, 60, 60]  # and then every hour
    assert tries[-1] == utc(2026, 3, 2, 23, 21) and len(tries) == 4 + 14
    assert poster.to("C2") == []
    assert poster.to("C1") == [["2603.00100"]]  # on time, at 09:00
    assert not channel_of(core, busy).paused and channel_of(core, busy).failed_days == 0
    # The next day is a new post, with the papers still undelivered.
    poster.script.clear()
    await run_at(core, [poster], utc(2026, 3, 3, 9), time_machine)
    assert poster.to("C2") == [["2603.00100"]]
    assert [c.status for c in claims(core, busy)] == ["failed", "sent"]  # the day ended


@pytest.mark.parametrize(
    "refusal", ["channel_not_found", "restricted_action", "Discord 403", "Discord 50083"]
)
async def test_three_days_of_permanent_refusal_pause_the_channel_and_others_post_on_time(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any, refusal: str
) -> None:
    time_machine.move_to(utc(2026, 3, 1, 10), tick=False)
    places = [Place(platform="slack", workspace="T1", channel=f"C{i}") for i in (1, 2, 3)]
    for place in places:
        follow(core, arxiv_api, place, "Diffusion")
    poster = FakePoster(script={"C1": [PostFailed(refusal, permanent=True)] * 3})
    for day in (2, 3, 4):
        add_paper(core, "Diffusion", f"2603.{day:05d}", utc(2026, 3, day - 1, 20))
        outcomes = await run_at(core, [poster], utc(2026, 3, day, 9), time_machine)
        assert statuses(outcomes) == ["failed" if day < 4 else "paused", "sent", "sent"]
        assert all(m.at == utc(2026, 3, day, 9) for m in poster.messages[-2:])
    channel = channel_of(core, places[0])
    assert channel.paused and channel.failed_days == 3 and channel.last_failure == refusal
    (table,) = core.execute(places[0], Keywords())
    assert isinstance(table, KeywordTable) and table.paused and "paused" in table.digest

    add_paper(core, "Diffusion", "2603.00005", utc(2026, 3, 4, 20))
    await run_at(core, [poster], utc(2026, 3, 5, 9), time_machine)
    assert poster.attempts.count("C1") == 3  # paused: not even tried on day 4
    # `digest HH:MM` resumes it; the papers it missed come in its next post.
    core.execute(places[0], DigestAt("09:00"))
    await run_at(core, [poster], utc(2026, 3, 6, 9), time_machine)
    assert poster.to("C1") == [["2603.00005", "2603.00004", "2603.00003", "2603.00002"]]
    assert channel_of(core, places[0]).failed_days == 0


async def test_a_success_resets_the_failure_count_and_transient_failures_do_not_count(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 1, 10), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    gone = PostFailed("not_in_channel", permanent=True)
    script = {2: gone, 3: gone, 4: "ok", 5: gone, 6: PostFailed("HTTP 503"), 7: gone}
    poster = FakePoster()
    for day, step in script.items():
        add_paper(core, "Diffusion", f"2603.{day:05d}", utc(2026, 3, day - 1, 20))
        poster.script = {"C1": [step]}
        await run_at(core, [poster], utc(2026, 3, day, 9), time_machine)
    channel = channel_of(core, SLACK)
    assert (channel.paused, channel.failed_days) == (False, 2)
    assert poster.to("C1") == [["2603.00004", "2603.00003", "2603.00002"]]


async def test_one_slow_channel_delays_no_other(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 1, 10), tick=False)
    places = [Place(platform="discord", workspace="G1", channel=f"D{i}") for i in range(6)]
    for place in places:
        follow(core, arxiv_api, place, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 1, 20))
    poster = FakePoster(platform="discord", slow={"D0": 1.5})
    time_machine.move_to(utc(2026, 3, 2, 9), tick=False)
    start = asyncio.get_running_loop().time()
    outcomes = await run_due_digests(core, [poster], utc(2026, 3, 2, 9))
    assert statuses(outcomes) == ["sent"] * 6
    took = {m.channel: m.loop_time - start for m in poster.messages}
    assert took["D0"] >= 1.5
    assert max(t for c, t in took.items() if c != "D0") < 1.0


async def test_channels_are_posted_concurrently_up_to_the_bound(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 1, 10), tick=False)
    for i in range(6):
        place = Place(platform="slack", workspace="T1", channel=f"C{i}")
        follow(core, arxiv_api, place, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 1, 20))
    poster = FakePoster(slow={f"C{i}": 0.2 for i in range(6)})
    outcomes = await run_at(core, [poster], utc(2026, 3, 2, 9), time_machine, max_concurrent=2)
    assert statuses(outcomes) == ["sent"] * 6
    assert poster.most_busy == 2


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
    assert slack.to("C1") == [["2603.00100"]]


# -- crashes, leases and graceful stops ---------------------------------------------------


async def test_a_crash_after_the_platform_took_a_part_is_verified_after_the_lease_not_resent(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    two_keywords(core, arxiv_api, time_machine)
    dying = FakePoster(script={"C1": ["crash"]})
    await run_at(core, [dying], utc(2026, 3, 2, 9), time_machine)
    assert parts(core) == [(1, "sending"), (2, "pending")]
    assert delivered(core, SLACK).isdisjoint({"2603.00001", "2603.00002"})

    restarted = FakePoster(messages=dying.messages)  # the same channel, a new process
    assert await run_at(core, [restarted], utc(2026, 3, 2, 9, 0, 59), time_machine) == []
    outcomes = await run_at(core, [restarted], utc(2026, 3, 2, 9, 1, 1), time_machine)
    assert statuses(outcomes) == ["sent"]  # taken over once the 60 s lease ran out
    assert restarted.read_backs == 1
    assert restarted.to("C1") == [["2603.00001"], ["2603.00002"]]
    assert delivered(core, SLACK) >= {"2603.00001", "2603.00002"}


async def test_a_live_holder_renews_its_lease_through_a_long_send(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 2, 7))
    other = FakePoster()

    async def five_minutes_pass() -> None:  # while the request is out, a renewal comes due
        time_machine.move_to(utc(2026, 3, 2, 9, 5), tick=False)
        await asyncio.sleep(0.2)
        assert await run_due_digests(core, [other], utc(2026, 3, 2, 9, 5)) == []

    slow = FakePoster(during_send=five_minutes_pass)
    time_machine.move_to(utc(2026, 3, 2, 9), tick=False)
    outcomes = await run_due_digests(core, [slow], renew_seconds=0.05)
    assert statuses(outcomes) == ["sent"] and other.attempts == []
    assert slow.to("C1") == [["2603.00100"]]


async def test_renewals_failing_through_an_outage_log_one_traceback(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any, monkeypatch: Any, caplog: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 2, 7))

    renew = claims_mod.renew

    def database_away_for_renewals(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name.startswith("claim-renewals"):
            raise OSError("the database went away")
        return renew(*args, **kwargs)  # mark_sending's own check of the claim still works

    monkeypatch.setattr(claims_mod, "renew", database_away_for_renewals)
    slow = FakePoster(during_send=lambda: asyncio.sleep(0.5))
    time_machine.move_to(utc(2026, 3, 2, 9), tick=False)
    outcomes = await run_due_digests(core, [slow], renew_seconds=0.05)
    failures = [r for r in caplog.records if r.getMessage().startswith("renewing our claims")]
    assert statuses(outcomes) == ["sent"] and len(failures) >= 3
    assert [bool(r.exc_info) for r in failures] == [True] + [False] * (len(failures) - 1)


async def test_a_graceful_stop_finishes_parts_in_flight_and_hands_back_the_rest_at_once(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    places = [Place(platform="slack", workspace="T1", channel=f"C{i}") for i in range(4)]
    for place in places:
        follow(core, arxiv_api, place, "Diffusion")
        follow(core, arxiv_api, place, "Retrieval")
    add_paper(core, "Diffusion", "2603.00001", utc(2026, 3, 2, 7))
    add_paper(core, "Retrieval", "2603.00002", utc(2026, 3, 2, 7))
    time_machine.move_to(utc(2026, 3, 2, 9), tick=False)
    stopping = FakePoster(slow={"C0": 0.3, "C1": 0.3}, script={"C1": ["crash"]})
    runner = DigestRunner(core, [stopping], max_concurrent=2)
    passing = asyncio.create_task(runner.run_due())
    while len(stopping.attempts) < 2:  # C0 and C1 have a part out; C2, C3 wait for a slot
        await asyncio.sleep(0.01)
    await runner.stop(grace=5)
    await passing
    runner.close()
    # C0's part in flight finished and was recorded; C1 died with its part out; nothing else went.
    assert stopping.to("C0") == [["2603.00001"]] and stopping.to("C1") == [["2603.00001"]]
    assert "2603.00001" in delivered(core, places[0])
    assert "2603.00001" not in delivered(core, places[1])
    # Handed back: another process takes every claim at once, not after the lease.
    other = FakePoster(messages=list(stopping.messages))
    outcomes = await run_due_digests(core, [other], utc(2026, 3, 2, 9))
    assert statuses(outcomes) == ["sent"] * 4
    assert Counter(other.copies().values()) == Counter({1: 8})  # each part of each post once


async def test_parts_still_out_when_the_grace_ends_are_verified_by_the_next_holder(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    add_paper(core, "Diffusion", "2603.00100", utc(2026, 3, 2, 7))
    time_machine.move_to(utc(2026, 3, 2, 9), tick=False)
    stuck = FakePoster(slow={"C1": 30})
    runner = DigestRunner(core, [stuck])
    passing = asyncio.create_task(runner.run_due())
    while not stuck.attempts:
        await asyncio.sleep(0.01)
    await runner.stop(grace=0.1)
    await passing
    runner.close()
    assert parts(core) == [(1, "sending")] and [c.owner for c in claims(core)] == [""]
    # Handed back, but looked for only once the platform has had a minute to settle.
    other = FakePoster()
    assert await run_due_digests(core, [other], utc(2026, 3, 2, 9, 0, 59)) == []
    assert statuses(await run_due_digests(core, [other], utc(2026, 3, 2, 9, 1))) == ["sent"]
    assert other.read_backs == 1 and other.to("C1") == [["2603.00100"]]


async def test_an_open_claim_of_a_day_that_ended_is_closed_and_its_papers_go_the_next_day(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    two_keywords(core, arxiv_api, time_machine)
    poster = FakePoster(script={"C1": ["ok", PostFailed("HTTP 502")]})
    await run_at(core, [poster], utc(2026, 3, 2, 23, 59), time_machine)
    outcomes = await run_at(core, [poster], utc(2026, 3, 3, 9), time_machine)
    assert statuses(outcomes) == ["sent"]
    assert [(c.status, c.detail) for c in claims(core)] == [
        ("failed", "the day ended before it was posted"),
        ("sent", None),
    ]
    assert poster.to("C1") == [["2603.00001"], ["2603.00002"]]


async def test_parts_stored_by_a_process_that_let_the_claim_go_are_used_not_rendered_again(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    """A stopping process hands its claims back while its transaction storing their parts is
    still open (PostgreSQL; SQLite's writers queue). The next holder waits for those parts
    and posts them; it must not find the papers "on their way" and settle the day as empty."""
    if core.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's write transactions cannot overlap")
    two_keywords(core, arxiv_api, time_machine)
    now, lease = utc(2026, 3, 2, 9), timedelta(seconds=60)
    poster = FakePoster()
    with read_session(core.engine) as session:
        due = digest.due_channels(session, settings=core.settings, now=now, platforms=["slack"])
    with write_session(core.engine) as session:
        (claim,) = claims_mod.take(session, due, owner="a", now=now, lease=lease)
    with write_session(core.engine) as storing:  # "a" renders and stores, not yet committed
        assert claims_mod.prepare(
            storing, [claim], lambda c, p: poster.render(p, claim=c.id), owner="a", now=now
        )
        with write_session(core.engine) as session:
            claims_mod.hand_back(session, [claim.id], owner="a", now=now)
        with write_session(core.engine) as session:
            (taken,) = claims_mod.take(session, due, owner="b", now=now, lease=lease)

        def prepare_as_b() -> Any:
            with write_session(core.engine) as session:
                return claims_mod.prepare(session, [taken], lambda c, p: [], owner="b", now=now)

        waiting = asyncio.create_task(asyncio.to_thread(prepare_as_b))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # "b" waits for the channel's lock
    prepared = await waiting
    assert [p.part.papers for p in prepared[claim.id]] == [("2603.00001",), ("2603.00002",)]
    assert [c.status for c in claims(core)] == ["open"]


# -- the schema ---------------------------------------------------------------------------


def test_claims_in_flight_at_the_upgrade_become_free_to_take(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine, "0003")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO workspaces (platform, external_id, name, active, created_at) "
                "VALUES ('slack', 'T1', '', true, '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO channels (workspace_id, external_id, active, digest_enabled, "
                "paused, failed_days, created_at) "
                "VALUES (1, 'C1', true, true, false, 0, '2026-01-01 00:00:00')"
            )
        )
        for day, state in ((1, "sent"), (2, "sending"), (3, "claimed")):
            conn.execute(
                text(
                    "INSERT INTO digest_claims (channel_id, local_date, status, owner, "
                    "lease_until, claimed_at, papers) VALUES (1, :day, :state, 'old', "
                    "'2026-01-09 00:00:00', '2026-01-01 00:00:00', '[\"2601.00001\"]')"
                ),
                {"day": date(2026, 1, day), "state": state},
            )
    upgrade(engine)
    with read_session(engine) as session:
        rows = session.exec(select(DigestClaim).order_by(DigestClaim.local_date)).all()  # type: ignore[arg-type]
    assert [(c.status, c.owner, c.attempts) for c in rows] == [
        ("sent", "old", 0),
        ("open", "", 0),
        ("open", "", 0),
    ]
    assert store.as_utc(rows[1].lease_until) == utc(2026, 1, 1)
    engine.dispose()


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
    places = {hhmm: Place(platform="slack", workspace="T1", channel=hhmm) for hhmm in expected}
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
        posts = [m.at for m in poster.messages if m.channel == place.channel]
        local_days = [p.astimezone(ZoneInfo(zone)).date() for p in posts]
        assert len(local_days) == len(set(local_days)), hhmm  # never two on one local day
        assert [p for p, d in zip(posts, local_days, strict=True) if d in days] == expected[hhmm], (
            hhmm
        )

"""The daily post's new shapes (threads, weekly, max, styles) on the unhappy path, as an
operator lives it: a thread that refuses its replies, a weekly schedule changed in the middle
of its week, a post cut by `max`. Whenever the choice is a duplicate or a loss, the papers
show twice rather than never."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest

from adapters.terminal_format import format_reply as terminal_reply
from bot.commands.core import TERMINAL, Core
from bot.commands.grammar import BadInput, DigestNow, List, parse
from bot.posts.poster import Part, PostFailed
from bot.replies import KeywordTable, Papers, Text
from bot.storage.db import write_session
from bot.storage.models import Channel
from tests.fakes.arxiv_server import ArxivStandIn
from tests.support.common import snapshot
from tests.support.digest import (
    SLACK,
    FakePoster,
    add_paper,
    channel_of,
    delivered,
    follow,
    parts,
    run_at,
    statuses,
    utc,
)

REFUSAL = (
    "Discord refused the thread: 403 Missing Permissions (the bot needs Create Public Threads)"
)


@dataclass
class ThreadRefusingPoster(FakePoster):
    """A platform whose threads refuse replies (`thread_refusal`); the channel takes them."""

    thread_refusal: str | None = REFUSAL

    async def send(
        self, *, workspace: str, channel: str, part: Part, thread: str | None = None
    ) -> str:
        if thread is not None and self.thread_refusal is not None:
            self.attempts.append(channel)
            raise PostFailed(self.thread_refusal, permanent=True, thread_gone=True)
        if thread is None:  # a reply sent into the channel itself
            part = replace(part, thread_of=None)
        return await super().send(workspace=workspace, channel=channel, part=part, thread=thread)


def _threaded(core: Core, arxiv_api: ArxivStandIn, time_machine: Any) -> set[str]:
    """C1 with threads on and three new papers in two keywords; the papers it had before."""
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    follow(core, arxiv_api, SLACK, "Retrieval")
    core.execute(SLACK, parse("digest threads on"))
    old = delivered(core, SLACK)
    add_paper(core, "Diffusion", "2603.00001", utc(2026, 3, 2, 6))
    add_paper(core, "Diffusion", "2603.00002", utc(2026, 3, 2, 7))
    add_paper(core, "Retrieval", "2603.00003", utc(2026, 3, 2, 7))
    return old


def _schedule_line(core: Core) -> str:
    (table, *_) = core.execute(SLACK, parse("keywords"))
    assert isinstance(table, KeywordTable)
    return table.digest


def _said(core: Core, typed: str) -> str:
    (answer,) = core.execute(SLACK, parse(typed))
    assert isinstance(answer, Text) and not answer.error, answer
    return answer.text


# -- threads that refuse their replies ------------------------------------------------------


async def test_replies_a_thread_refuses_go_into_the_channel_and_keywords_says_why(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    old = _threaded(core, arxiv_api, time_machine)
    poster = ThreadRefusingPoster()
    assert statuses(await run_at(core, [poster], utc(2026, 3, 2, 9), time_machine)) == ["sent"]
    # The parent, then each reply in the channel itself; the thread is asked once only.
    assert [(m.part, m.thread) for m in poster.messages] == [(1, None), (2, None), (3, None)]
    assert poster.to("C1") == [[], ["2603.00002", "2603.00001"], ["2603.00003"]]
    assert len(poster.attempts) == 4
    assert delivered(core, SLACK) - old == {"2603.00001", "2603.00002", "2603.00003"}
    channel = channel_of(core, SLACK)
    assert (channel.paused, channel.failed_days) == (False, 0)
    line = _schedule_line(core)
    assert "threads (refused, so the papers went into the channel" in line
    assert "Missing Permissions" in line

    # Permission granted: the next post threads again, and the note goes.
    add_paper(core, "Diffusion", "2603.00004", utc(2026, 3, 3, 6))
    poster.thread_refusal = None
    await run_at(core, [poster], utc(2026, 3, 3, 9), time_machine)
    assert [(m.part, m.thread) for m in poster.messages[3:]] == [(1, None), (2, "m4")]
    assert _schedule_line(core) == "Daily post at 09:00 UTC · threads."


async def test_typing_digest_threads_again_clears_the_note(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    _threaded(core, arxiv_api, time_machine)
    await run_at(core, [ThreadRefusingPoster()], utc(2026, 3, 2, 9), time_machine)
    assert "refused" in _schedule_line(core)
    core.execute(SLACK, parse("digest threads on"))
    assert _schedule_line(core) == "Daily post at 09:00 UTC · threads."


async def test_a_channel_that_refuses_too_fails_the_day_as_any_refusal(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    old = _threaded(core, arxiv_api, time_machine)
    gone = PostFailed("Discord refused: 403 Missing Access", permanent=True)
    poster = ThreadRefusingPoster(script={"C1": ["ok", gone]})
    assert statuses(await run_at(core, [poster], utc(2026, 3, 2, 9), time_machine)) == ["failed"]
    assert delivered(core, SLACK) == old  # nothing lost: the papers wait for the next post
    assert channel_of(core, SLACK).failed_days == 1


# -- a restart between the parent and its replies ------------------------------------------


async def test_a_parent_whose_answer_was_lost_is_found_and_its_thread_used_no_second_parent(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    _threaded(core, arxiv_api, time_machine)
    lost = FakePoster(script={"C1": ["no answer"]})  # the parent taken, its answer lost
    assert statuses(await run_at(core, [lost], utc(2026, 3, 2, 9), time_machine)) == ["retry"]
    assert [status for _, status in parts(core)] == ["sending", "pending", "pending"]

    restarted = FakePoster(messages=lost.messages)  # another process, after the backoff
    outcomes = await run_at(core, [restarted], utc(2026, 3, 2, 9, 1, 1), time_machine)
    assert statuses(outcomes) == ["sent"]
    assert [(m.part, m.thread) for m in restarted.messages] == [(1, None), (2, "m1"), (3, "m1")]
    assert set(restarted.copies().values()) == {1}


# -- weekly ---------------------------------------------------------------------------------


async def test_weekly_in_the_dst_fall_back_week_posts_once_at_the_first_of_the_two_times(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    # Berlin's clocks go back on Sunday 25 October 2026: 02:30 happens at 00:30 and 01:30 UTC.
    time_machine.move_to(utc(2026, 10, 24, 23), tick=False)  # Sunday 01:00 in Berlin
    follow(core, arxiv_api, SLACK, "Diffusion")
    core.execute(SLACK, parse("digest weekly sun 02:30 Europe/Berlin"))
    poster, when = FakePoster(), utc(2026, 10, 24, 23)
    while when < utc(2026, 10, 25, 6):  # a new paper and a sweep every quarter hour
        add_paper(core, "Diffusion", f"2610.{when:%d%H%M}", when)
        await run_at(core, [poster], when, time_machine)
        when += timedelta(minutes=15)
    assert [m.at for m in poster.messages] == [utc(2026, 10, 25, 0, 30)]


async def test_weekly_set_on_its_day_after_its_time_posts_now_as_daily_does_and_says_so(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 6), tick=False)  # Monday
    follow(core, arxiv_api, SLACK, "Diffusion")
    add_paper(core, "Diffusion", "2603.00001", utc(2026, 3, 2, 7))
    time_machine.move_to(utc(2026, 3, 2, 10), tick=False)
    weekly = _said(core, "digest weekly mon 09:00")
    daily = _said(core, "digest 09:00")
    said = " That time has passed {}: 1 new paper goes out now, then on schedule."
    assert weekly == "Weekly post on Monday at 09:00 UTC." + said.format("this week")
    assert daily == "Daily post at 09:00 UTC." + said.format("today")
    core.execute(SLACK, parse("digest weekly mon 09:00"))
    poster = FakePoster()
    assert statuses(await run_at(core, [poster], utc(2026, 3, 2, 10), time_machine)) == ["sent"]
    # Posted: setting it again the same day promises nothing more.
    assert "passed" not in _said(core, "digest weekly mon 09:00")
    for hour in (11, 23):
        await run_at(core, [poster], utc(2026, 3, 2, hour), time_machine)
    assert len(poster.messages) == 1


async def test_weekly_then_daily_then_weekly_in_one_week_posts_once_per_period_and_loses_none(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 6), tick=False)  # Monday
    follow(core, arxiv_api, SLACK, "Diffusion")
    old = delivered(core, SLACK)
    core.execute(SLACK, parse("digest weekly mon 09:00"))
    poster, ids = FakePoster(), []
    for day, typed in ((2, None), (3, "digest 09:00"), (4, "digest weekly mon 09:00"), (5, None)):
        if typed:
            time_machine.move_to(utc(2026, 3, day, 8), tick=False)
            core.execute(SLACK, parse(typed))
        ids.append(f"2603.{day:05d}")
        add_paper(core, "Diffusion", ids[-1], utc(2026, 3, day, 8, 30))
        await run_at(core, [poster], utc(2026, 3, day, 9, 30), time_machine)
    # Monday weekly, Tuesday daily; Wednesday weekly again: Monday's period was posted.
    assert [m.at.day for m in poster.messages] == [2, 3]
    assert delivered(core, SLACK) - old == set(ids[:2])
    await run_at(core, [poster], utc(2026, 3, 9, 9, 30), time_machine)  # next Monday
    assert poster.to("C1")[2:] == [ids[:1:-1]]
    assert delivered(core, SLACK) - old == set(ids)
    assert set(poster.copies().values()) == {1}


async def test_a_paused_channel_resumed_with_digest_weekly_posts_on_its_day(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 6), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    gone = PostFailed("channel_not_found", permanent=True)
    poster = FakePoster(script={"C1": [gone, gone, gone]})
    for day in (2, 3, 4):
        add_paper(core, "Diffusion", f"2603.{day:05d}", utc(2026, 3, day, 7))
        await run_at(core, [poster], utc(2026, 3, day, 9), time_machine)
    assert channel_of(core, SLACK).paused
    assert _schedule_line(core) == (  # why, and the command that resumes it
        "Daily post at 09:00 UTC (paused after repeated failures: channel_not_found; "
        "`digest 09:00` resumes it)."
    )
    core.execute(SLACK, parse("digest max 20"))  # a weekly channel resumes as a weekly one
    with write_session(core.engine) as session:
        channel = session.get(Channel, channel_of(core, SLACK).id)
        assert channel is not None
        channel.digest_weekday = 2
        session.add(channel)
    assert "`digest weekly wed 09:00` resumes it" in _schedule_line(core)
    assert await run_at(core, [poster], utc(2026, 3, 5, 9), time_machine) == []
    core.execute(SLACK, parse("digest weekly fri 09:00"))
    assert not channel_of(core, SLACK).paused
    assert _schedule_line(core) == "Weekly post on Friday at 09:00 UTC · max 20."
    outcomes = await run_at(core, [poster], utc(2026, 3, 6, 9), time_machine)
    assert statuses(outcomes) == ["sent"]
    assert sorted(*poster.to("C1")) == [f"2603.{d:05d}" for d in (2, 3, 4)]


# -- grammar --------------------------------------------------------------------------------

BAD_SHAPES = [
    ("digest max 0", "from 1 to 200"),
    ("digest max 201", "from 1 to 200"),
    ("digest max abc", "from 1 to 200"),
    ("digest max 1.5", "from 1 to 200"),
    ("digest max ²", "from 1 to 200"),  # str.isdigit says yes, int() says no: was a crash
    ("digest max ５", "from 1 to 200"),
    ("digest max 5 6", "from 1 to 200"),
    ("digest weekly funday 09:00", "not a day"),
    ("digest weekly mon 09:00 UTC extra", "digest weekly <mon..sun>"),
    ("digest weekly 09:00 mon", "not a day"),
    ("digest threads maybe", "takes on or off"),
    ("digest threads on off", "takes on or off"),
    ("digest style tiny", "takes full or compact"),
    ("digest style full extra", "takes full or compact"),
    ("digest off now", "takes nothing after it"),
]


@pytest.mark.parametrize(("typed", "problem"), BAD_SHAPES)
def test_bad_shape_words_say_what_and_how_and_change_nothing(
    core: Core, typed: str, problem: str
) -> None:
    core.execute(SLACK, parse("digest weekly tue 08:30 Europe/Berlin"))
    core.execute(SLACK, parse("digest max 50"))
    before = snapshot(core.engine)
    with pytest.raises(BadInput) as caught:
        core.execute(SLACK, parse(typed))
    assert problem in str(caught.value) and "Usage: digest" in str(caught.value)
    assert snapshot(core.engine) == before


@pytest.mark.parametrize("typed", ["list ²", "list diffusion ²", "list diffusion 5²"])
def test_a_trailing_superscript_is_keyword_text_not_a_limit_that_crashes(typed: str) -> None:
    command = parse(typed)
    assert isinstance(command, List) and command.limit == 5


# -- max N ----------------------------------------------------------------------------------


def test_the_terminal_says_how_many_more_digest_now_left_for_next_time(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 6), tick=False)
    follow(core, arxiv_api, TERMINAL, "Diffusion")
    for i in range(103):  # over the default max of 100
        add_paper(core, "Diffusion", f"2603.{i:05d}", utc(2026, 3, 1, 0, i % 60))
    (post,) = core.execute(TERMINAL, DigestNow())
    shown = terminal_reply(post)
    assert isinstance(post, Papers) and (post.count, post.more) == (100, 3)
    assert shown.rstrip().endswith(
        "3 more papers wait for the next post; `papers digest now` posts them now, "
        "`papers list 20` shows the 20 newest."
    )
    (rest,) = core.execute(TERMINAL, DigestNow())
    assert isinstance(rest, Papers) and (rest.count, rest.more) == (3, 0)
    assert "more papers wait" not in terminal_reply(rest)


async def test_max_200_carries_150_papers_of_one_keyword_in_one_post(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    """The store read 100 undelivered papers a keyword: `max 200` stopped at 100, and the
    post's count said 100 where 150 were new."""
    time_machine.move_to(utc(2026, 3, 2, 6), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    core.execute(SLACK, parse("digest max 200"))
    old = delivered(core, SLACK)
    ids = [f"2603.{i:05d}" for i in range(150)]
    for i, arxiv_id in enumerate(ids):
        add_paper(core, "Diffusion", arxiv_id, utc(2026, 3, 1, i // 60, i % 60))
    poster = FakePoster()
    await run_at(core, [poster], utc(2026, 3, 2, 9), time_machine)
    assert (poster.posts[0].count, poster.posts[0].more) == (150, 0)
    assert delivered(core, SLACK) - old == set(ids)

"""The shape of a channel's post (issue 13): `digest weekly`, `threads`, `style`, `max`, their
grammar, the `keywords` line, the migration that stores them, and the core's posts in each
shape (the runner with the `FakePoster` of tests/test_digest.py; the real posters are tested
in tests/test_slack_poster.py and tests/test_discord_poster.py)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from bot.commands.core import TERMINAL, Core, Place
from bot.commands.grammar import (
    BadInput,
    DigestAt,
    DigestNow,
    DigestOff,
    DigestShape,
    Keywords,
    make_digest,
    parse,
)
from bot.posts.poster import parent_line
from bot.replies import KeywordTable, Papers, Text
from bot.storage.db import downgrade, make_engine, read_session, upgrade, write_session
from bot.storage.models import Channel
from tests.fakes.arxiv_server import ArxivStandIn
from tests.support.common import snapshot
from tests.support.digest import (
    SLACK,
    FakePoster,
    add_paper,
    channel_of,
    claims,
    delivered,
    follow,
    parts,
    run_at,
    statuses,
    utc,
)

# -- grammar ------------------------------------------------------------------------------

GOOD = [
    ("digest 9:05", DigestAt("09:05")),
    ("digest weekly mon 09:00", DigestAt("09:00", None, 0)),
    ("digest weekly Sunday 18:30 Europe/Berlin", DigestAt("18:30", "Europe/Berlin", 6)),
    ("digest weekly sun 18:30 europe/berlin", DigestAt("18:30", "Europe/Berlin", 6)),
    (
        "digest 07:00 utc",
        DigestAt("07:00", "UTC"),
    ),  # IANA names in any case, stored as IANA spells them
    ("digest threads on", DigestShape(threads=True)),
    ("digest threads OFF", DigestShape(threads=False)),
    ("digest style compact", DigestShape(style="compact")),
    ("digest style full", DigestShape(style="full")),
    ("digest max 50", DigestShape(max_papers=50)),
    ("digest max 1", DigestShape(max_papers=1)),
    ("digest max 200", DigestShape(max_papers=200)),
    ("digest off", DigestOff()),
    ("digest now", DigestNow()),
]
BAD = [
    ("digest weekly", "weekly <mon..sun>"),
    ("digest weekly moon 09:00", "not a day"),
    ("digest weekly mon 25:00", "not a time"),
    ("digest weekly mon 09:00 Mars/Base", "not a timezone"),
    ("digest threads", "takes on or off"),
    ("digest threads maybe", "got “maybe”"),
    ("digest style tiny", "takes full or compact"),
    ("digest max 0", "from 1 to 200"),
    ("digest max 201", "from 1 to 200"),
    ("digest max -5", "from 1 to 200"),
    ("digest max many", "from 1 to 200"),
    ("digest now please", "takes nothing after it"),
]


@pytest.mark.parametrize(("typed", "command"), GOOD)
def test_the_digest_grammar(typed: str, command: object) -> None:
    assert parse(typed) == command


@pytest.mark.parametrize(("typed", "problem"), BAD)
def test_bad_digest_input_says_what_and_how(typed: str, problem: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse(typed)
    assert problem in str(caught.value) and "Usage: digest" in str(caught.value)


def test_discords_one_time_option_goes_through_the_same_grammar() -> None:
    assert make_digest("weekly mon 09:00") == DigestAt("09:00", None, 0)
    with pytest.raises(BadInput, match="`digest max` takes no timezone"):
        make_digest("max 5", "Europe/Berlin")  # Discord's two options, the second misplaced
    assert make_digest("weekly mon 09:00", "Asia/Tokyo") == DigestAt("09:00", "Asia/Tokyo", 0)
    assert make_digest("threads on") == DigestShape(threads=True)
    assert make_digest("08:15", "UTC") == DigestAt("08:15", "UTC")


def test_bad_shape_input_changes_nothing(core: Core) -> None:
    core.execute(SLACK, parse("digest 08:30 Europe/Berlin"))
    before = snapshot(core.engine)
    for typed, _ in BAD:
        with pytest.raises(BadInput):
            core.execute(SLACK, parse(typed))
    assert snapshot(core.engine) == before


# -- the keywords line --------------------------------------------------------------------


def _line(core: Core, place: Place = SLACK) -> str:
    (table,) = core.execute(place, Keywords())
    assert isinstance(table, KeywordTable)
    return table.digest


def test_keywords_shows_the_schedule_and_the_shape_in_one_line(core: Core) -> None:
    assert _line(core) == "Daily post at 09:00 UTC."
    for typed in ("digest 08:30 Europe/Berlin", "digest threads on", "digest style compact"):
        core.execute(SLACK, parse(typed))
    (answer,) = core.execute(SLACK, parse("digest max 50"))
    line = "Daily post at 08:30 Europe/Berlin · threads · compact · max 50."
    assert isinstance(answer, Text) and answer.text == line
    assert _line(core) == line
    core.execute(SLACK, parse("digest weekly mon 09:00"))
    assert (
        _line(core) == "Weekly post on Monday at 09:00 Europe/Berlin · threads · compact · max 50."
    )
    for typed in ("digest threads off", "digest style full", "digest max 100", "digest 07:00"):
        core.execute(SLACK, parse(typed))
    assert _line(core) == "Daily post at 07:00 Europe/Berlin."
    core.execute(SLACK, parse("digest off"))
    assert _line(core) == "Daily post: off."


def test_only_managers_shape_the_post_and_the_terminal_has_no_post(core: Core) -> None:
    member = Place("slack", "T1", "C1", is_manager=False, managers="<@U1>")
    (refused,) = core.execute(member, parse("digest threads on"))
    assert isinstance(refused, Text) and refused.error
    (terminal,) = core.execute(TERMINAL, parse("digest max 5"))
    assert isinstance(terminal, Text) and terminal.error and "terminal" in terminal.text
    with read_session(core.engine) as session:
        assert session.exec(text("SELECT count(*) FROM channels")).scalar() == 0  # type: ignore[call-overload]


# -- the migration ------------------------------------------------------------------------


def test_the_migration_gives_existing_channels_todays_post_and_keeps_every_row(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    upgrade(engine, "0011")
    with engine.begin() as conn:
        for statement in (
            "INSERT INTO workspaces (platform, external_id, name, active, created_at) "
            "VALUES ('slack', 'T1', '', true, '2026-01-01 00:00:00')",
            "INSERT INTO channels (workspace_id, external_id, active, digest_enabled, digest_time, "
            "digest_timezone, paused, failed_days, created_at) VALUES (1, 'C1', true, true, "
            "'08:30', 'Europe/Berlin', false, 0, '2026-01-01 00:00:00')",
            "INSERT INTO keywords (key, phrase, words, exclude, categories, fetch_status, "
            "created_at) VALUES ('alpha', 'Alpha', 'Alpha', '[]', '', 'ok', '2026-01-01 00:00:00')",
            "INSERT INTO subscriptions (channel_id, keyword_id, label, created_at) "
            "VALUES (1, 1, 'Alpha', '2026-01-01 00:00:00')",
            "INSERT INTO digest_claims (channel_id, local_date, status, owner, lease_until, "
            "claimed_at, attempts) VALUES (1, '2026-01-01', 'sent', 'x', '2026-01-01 00:00:00', "
            "'2026-01-01 00:00:00', 0)",
        ):
            conn.execute(text(statement))
    before = snapshot(engine)

    upgrade(engine, "0012")
    after = snapshot(engine)
    assert {t: rows for t, rows in after.items() if t != "channels"} == {
        t: rows for t, rows in before.items() if t != "channels"
    }
    with read_session(engine) as session:
        channel = session.get(Channel, 1)
        assert channel is not None
        assert (channel.external_id, channel.digest_time, channel.digest_timezone) == (
            "C1",
            "08:30",
            "Europe/Berlin",
        )
        shape = (channel.digest_weekday, channel.digest_threads, channel.digest_style)
        assert (*shape, channel.digest_max) == (None, False, "full", 100)
    with write_session(engine) as session:  # the new columns take values
        channel = session.get(Channel, 1)
        assert channel is not None
        channel.digest_weekday, channel.digest_threads, channel.digest_max = 6, True, 200
        session.add(channel)

    downgrade(engine, "0011")
    assert snapshot(engine) == before
    engine.dispose()


# -- max N --------------------------------------------------------------------------------


async def test_max_5_of_12_posts_5_and_the_7_others_come_in_the_next_post(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 6), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    core.execute(SLACK, parse("digest max 5"))
    ids = [f"2603.{i:05d}" for i in range(1, 13)]
    for i, arxiv_id in enumerate(ids):
        add_paper(core, "Diffusion", arxiv_id, utc(2026, 3, 1, i))
    poster, old = FakePoster(), delivered(core, SLACK)  # what was there when followed
    assert statuses(await run_at(core, [poster], utc(2026, 3, 2, 9), time_machine)) == ["sent"]
    # First come, first posted (each post shows its papers newest first).
    assert poster.to("C1") == [ids[4::-1]]
    assert poster.posts[0].more == 7
    assert delivered(core, SLACK) - old == set(ids[:5])  # the 7 others wait

    await run_at(core, [poster], utc(2026, 3, 3, 9), time_machine)
    assert poster.to("C1")[1:] == [ids[9:4:-1]]
    assert poster.posts[1].more == 2
    await run_at(core, [poster], utc(2026, 3, 4, 9), time_machine)
    assert poster.to("C1")[2:] == [ids[:9:-1]]
    assert poster.posts[2].more == 0
    assert delivered(core, SLACK) - old == set(ids)


async def test_under_max_papers_left_waiting_go_before_newer_ones_so_a_backlog_drains(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    """7 new papers a day with `max 5`: the two left each day go out the next day, before
    that day's newest; once the flow stops, everything has arrived."""
    time_machine.move_to(utc(2026, 3, 2, 6), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    core.execute(SLACK, parse("digest max 5"))
    old, poster, arrived = delivered(core, SLACK), FakePoster(), []
    for day in range(2, 6):
        for i in range(7):
            add_paper(core, "Diffusion", f"2603.{day:02d}{i:03d}", utc(2026, 3, day - 1, i))
        await run_at(core, [poster], utc(2026, 3, day, 9), time_machine)
        arrived.append(sorted(poster.to("C1")[-1]))
    assert arrived[1][:2] == ["2603.02005", "2603.02006"]  # yesterday's two, first
    for day in range(6, 9):  # nothing new: the backlog (4 x 7 - 4 x 5 = 8) goes out
        await run_at(core, [poster], utc(2026, 3, day, 9), time_machine)
    expected = {f"2603.{day:02d}{i:03d}" for day in range(2, 6) for i in range(7)}
    assert delivered(core, SLACK) - old == expected


def test_digest_now_honours_max_and_leaves_the_rest_for_the_next_post(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 6), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    core.execute(SLACK, parse("digest max 2"))
    core.execute(SLACK, parse("digest style compact"))
    old = delivered(core, SLACK)
    for i in range(3):
        add_paper(core, "Diffusion", f"2603.0000{i}", utc(2026, 3, 1, i))
    (post,) = core.execute(SLACK, DigestNow())
    assert isinstance(post, Papers)
    assert (post.count, post.more, post.style) == (2, 1, "compact")
    assert delivered(core, SLACK) - old == {"2603.00000", "2603.00001"}  # the oldest first


# -- weekly -------------------------------------------------------------------------------


async def test_weekly_posts_once_on_the_local_day_across_dst_then_daily_again(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = utc(2026, 3, 16)  # a Monday; clocks go forward on Sunday 29 March
    time_machine.move_to(start, tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    core.execute(SLACK, parse("digest weekly mon 09:00 Europe/Berlin"))
    poster = FakePoster()
    when = start
    while when < utc(2026, 4, 8):  # a sweep every hour, a new paper every 6 hours
        if when.hour % 6 == 0:
            add_paper(core, "Diffusion", f"{when:%y%m.%d%H}", when)
        await run_at(core, [poster], when, time_machine)
        when += timedelta(hours=1)
    posts = [m.at for m in poster.messages]
    # 09:00 in Berlin: 08:00 UTC in winter, 07:00 UTC in summer; on Mondays only.
    assert posts == [
        utc(2026, 3, 16, 8),
        utc(2026, 3, 23, 8),
        utc(2026, 3, 30, 7),
        utc(2026, 4, 6, 7),
    ]
    assert {p.astimezone(berlin).weekday() for p in posts} == {0}
    periods = [c.local_date for c in claims(core, SLACK)]
    assert periods == [date(2026, 3, d) for d in (16, 23, 30)] + [date(2026, 4, 6)]

    core.execute(SLACK, parse("digest 09:00"))  # daily again
    for day in (7, 8, 9):
        add_paper(core, "Diffusion", f"2604.{day:05d}", utc(2026, 4, day, 1))
        await run_at(core, [poster], utc(2026, 4, day, 7, 30), time_machine)
    assert [m.at for m in poster.messages][4:] == [
        utc(2026, 4, 7, 7, 30),
        utc(2026, 4, 8, 7, 30),
        utc(2026, 4, 9, 7, 30),
    ]


async def test_a_weekly_post_missed_by_a_process_down_on_its_day_goes_once_later_that_week(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    time_machine.move_to(utc(2026, 3, 2, 6), tick=False)  # Monday
    follow(core, arxiv_api, SLACK, "Diffusion")
    core.execute(SLACK, parse("digest weekly tue 09:00"))
    add_paper(core, "Diffusion", "2603.00001", utc(2026, 3, 2, 7))
    poster = FakePoster()
    assert await run_at(core, [poster], utc(2026, 3, 3, 8, 59), time_machine) == []
    # Down on Tuesday at 09:00; started on Thursday: the week's post goes once.
    for hour in (10, 11, 15):
        await run_at(core, [poster], utc(2026, 3, 5, hour), time_machine)
    assert [m.at for m in poster.messages] == [utc(2026, 3, 5, 10)]
    assert [c.local_date for c in claims(core, SLACK)] == [date(2026, 3, 3)]
    assert channel_of(core, SLACK).digest_weekday == 1


# -- threads ------------------------------------------------------------------------------


def _threaded_channel(core: Core, arxiv_api: ArxivStandIn, time_machine: Any) -> None:
    """C1, threads on, two keywords with new papers: a parent and two replies."""
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    follow(core, arxiv_api, SLACK, "Retrieval")
    core.execute(SLACK, parse("digest threads on"))
    add_paper(core, "Diffusion", "2603.00001", utc(2026, 3, 2, 6))
    add_paper(core, "Diffusion", "2603.00002", utc(2026, 3, 2, 7))
    add_paper(core, "Retrieval", "2603.00003", utc(2026, 3, 2, 7))


async def test_threads_one_parent_naming_the_counts_and_the_papers_in_its_thread(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    _threaded_channel(core, arxiv_api, time_machine)
    poster = FakePoster()
    assert statuses(await run_at(core, [poster], utc(2026, 3, 2, 9), time_machine)) == ["sent"]
    parent, *replies = poster.messages
    assert (parent.part, parent.thread, parent.papers) == (1, None, ())
    assert [(m.part, m.thread) for m in replies] == [(2, "m1"), (3, "m1")]
    assert poster.to("C1") == [[], ["2603.00002", "2603.00001"], ["2603.00003"]]
    assert parent_line(poster.posts[0]) == "3 new papers: Diffusion 2, Retrieval 1"
    assert set(poster.copies().values()) == {1}


async def test_a_restart_between_the_parent_and_its_replies_finishes_the_thread(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    _threaded_channel(core, arxiv_api, time_machine)
    dying = FakePoster(script={"C1": ["ok", "die"]})  # dies as the first reply leaves
    await run_at(core, [dying], utc(2026, 3, 2, 9), time_machine)
    assert [(m.part, m.thread) for m in dying.messages] == [(1, None)]
    assert [status for _, status in parts(core)] == ["sent", "sending", "pending"]

    restarted = FakePoster(messages=dying.messages)
    outcomes = await run_at(core, [restarted], utc(2026, 3, 2, 9, 1, 1), time_machine)
    assert statuses(outcomes) == ["sent"]
    assert restarted.read_backs == 1  # the reply's outcome was unknown: looked for in the thread
    assert [(m.part, m.thread) for m in restarted.messages] == [(1, None), (2, "m1"), (3, "m1")]
    assert set(restarted.copies().values()) == {1}  # one parent, each reply once


async def test_a_reply_the_platform_took_before_a_crash_is_found_in_the_thread_not_resent(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    _threaded_channel(core, arxiv_api, time_machine)
    dying = FakePoster(script={"C1": ["ok", "crash"]})  # the reply taken, then the crash
    await run_at(core, [dying], utc(2026, 3, 2, 9), time_machine)
    restarted = FakePoster(messages=dying.messages)
    await run_at(core, [restarted], utc(2026, 3, 2, 9, 1, 1), time_machine)
    assert [(m.part, m.thread) for m in restarted.messages] == [(1, None), (2, "m1"), (3, "m1")]
    assert [status for _, status in parts(core)] == ["sent", "sent", "sent"]

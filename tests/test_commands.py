"""The command grammar and every bad input of SPEC section 3: a message, exit code 2, no change."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from bot.commands.core import TERMINAL, Core, Place
from bot.commands.grammar import (
    Add,
    BadInput,
    DigestAt,
    DigestNow,
    DigestOff,
    Fetch,
    Help,
    Keywords,
    List,
    Preview,
    Readme,
    Remove,
    help_text,
    parse,
)
from bot.replies import KeywordTable, Papers, Text
from bot.storage import catalog, store
from bot.storage.db import read_session
from bot.storage.models import Channel, Subscription
from tests.fakes.arxiv_server import ArxivStandIn, make_entry, status
from tests.support.cli import run_papers
from tests.support.common import snapshot


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("add Virtual Try-On", Add("Virtual Try-On")),
        ("ADD   Virtual \t Try-On ", Add("Virtual Try-On")),
        ("remove virtual try-on", Remove("virtual try-on")),
        ("keywords", Keywords()),
        ("list", List(None, 5)),
        ("list 12", List(None, 12)),
        ("list Virtual Try-On", List("Virtual Try-On", 5)),
        ("list Virtual Try-On 3", List("Virtual Try-On", 3)),
        ("list 3D Gaussian Splatting", List("3D Gaussian Splatting", 5)),
        ("digest 9:05", DigestAt("09:05", None)),
        ("digest 18:30 Europe/Berlin", DigestAt("18:30", "Europe/Berlin")),
        ("digest off", DigestOff()),
        ("digest NOW", DigestNow()),
        ("readme", Readme(False)),
        ("readme all", Readme(True)),
        ("fetch", Fetch()),
        ("help", Help()),
        ("", Help()),
        # Quotes are grammar now: the label keeps them as typed (the query never does).
        ('add foo") OR ("bar', Add('foo") OR ("bar')),
        ("preview image  editing -medical", Preview("image editing -medical")),
        ("add by:“Kaiming He”", Add('by:"Kaiming He"')),
    ],
)
def test_parse(text: str, command: object) -> None:
    assert parse(text) == command


BAD = [
    ("frobnicate", "Unknown command"),
    ("add", "empty"),
    ("add    ", "empty"),
    ('add "" \\', "Nothing is left"),
    ("add " + "x" * 101, "at most 100"),
    ("list 0", "from 1 to 20"),
    ("list 21", "from 1 to 20"),
    ("list Virtual Try-On -3", "from 1 to 20"),
    ("digest", "Say when"),
    ("digest 24:00", "not a time"),
    ("digest 9am", "not a time"),
    ("digest 09:00 Mars/Olympus", "not a timezone"),
    ("digest 09:00 Europe/Berlin extra", "Say when"),
    ("readme everything", "Unknown scope"),
    ("keywords please", "takes no arguments"),
    ("fetch now", "takes no arguments"),
    ("remove", "empty"),
    ('add "\\"', "Nothing is left"),
    ("digest 25:00", "not a time"),
]


@pytest.mark.parametrize(("text", "problem"), BAD)
def test_bad_input_says_what_and_how(text: str, problem: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse(text)
    message = str(caught.value)
    assert problem in message
    assert "Usage: " in message or "Commands: " in message


def test_help_lists_every_command_usage() -> None:
    text = help_text()
    for syntax in (
        "add <keyword>",
        "remove <keyword>",
        "list [keyword] [limit]",
        "digest <HH:MM> [timezone]",
        "readme [all]",
    ):
        assert syntax in text
    assert str(BadInput("x", "add")).endswith("Usage: add <keyword>")


def test_store_errors_change_nothing(core: Core, engine: Engine, arxiv_api: ArxivStandIn) -> None:
    arxiv_api.add_entries("Kept", [make_entry(arxiv_id="2501.00001")])
    core.execute(TERMINAL, parse("add Kept"))
    before = snapshot(engine)
    for text in ("remove Not Followed", "list Not Followed", "remove ''"):
        try:
            replies = core.execute(TERMINAL, parse(text))
        except BadInput:
            continue
        assert isinstance(replies[0], Text) and replies[0].error and replies[0].ephemeral
    assert snapshot(engine) == before


def test_managers_only_commands_are_refused_for_others(core: Core, engine: Engine) -> None:
    guest = Place(platform="slack", workspace="T1", channel="C1", user_id="U2", is_manager=False)
    for text in (
        "add Anything",
        "remove Anything",
        "digest 10:00",
        "digest off",
        "digest now",
        "fetch",
    ):
        reply = core.execute(guest, parse(text))[0]
        assert isinstance(reply, Text) and reply.error and "managers" in reply.text
    with read_session(engine) as session:
        assert session.exec(select(Channel)).all() == []
    assert isinstance(core.execute(guest, parse("keywords"))[0], KeywordTable)


def test_add_remove_list_keywords_round_trip(
    core: Core, engine: Engine, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries(
        "Gaussian Splatting",
        [make_entry(arxiv_id=f"2501.0000{i}", title=f"GS {i}") for i in range(4)],
    )
    added = core.execute(TERMINAL, parse("add Gaussian   Splatting"))[0]
    assert isinstance(added, Papers) and "4 papers found" in added.heading and added.count == 3
    again = core.execute(TERMINAL, parse("add gaussian splatting"))[0]
    assert isinstance(again, Text) and "already follows “Gaussian Splatting”" in again.text
    listed = core.execute(TERMINAL, parse("list gaussian splatting 2"))[0]
    assert isinstance(listed, Papers) and listed.count == 2
    table = core.execute(TERMINAL, parse("keywords"))[0]
    assert isinstance(table, KeywordTable)
    assert [(r.label, r.papers, r.status) for r in table.rows] == [("Gaussian Splatting", 4, "ok")]
    removed = core.execute(TERMINAL, parse("remove GAUSSIAN SPLATTING"))[0]
    assert isinstance(removed, Text) and "Stopped following “Gaussian Splatting”" in removed.text
    with read_session(engine) as session:
        assert session.exec(select(Subscription)).all() == []


def test_two_workspaces_neither_sees_nor_changes_the_other(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("Shared Topic", [make_entry(arxiv_id="2501.00001")])
    a = Place(platform="slack", workspace="TA", channel="C1")
    b = Place(platform="slack", workspace="TB", channel="C1")
    core.execute(a, parse("add Shared Topic"))
    core.execute(a, parse("add Only In A"))
    table_b = core.execute(b, parse("keywords"))[0]
    assert isinstance(table_b, KeywordTable) and table_b.rows == ()
    refused = core.execute(b, parse("remove Only In A"))[0]
    assert isinstance(refused, Text) and refused.error
    assert "## " not in core.readme(b, whole_workspace=True)
    core.execute(b, parse("add Shared Topic"))
    core.execute(b, parse("remove Shared Topic"))
    table_a = core.execute(a, parse("keywords"))[0]
    assert isinstance(table_a, KeywordTable)
    assert [r.label for r in table_a.rows] == ["Shared Topic", "Only In A"]


def test_a_channels_answers_say_what_each_command_did(
    core: Core, engine: Engine, arxiv_api: ArxivStandIn
) -> None:
    """The words and store effects every front end shows (they only convert and place them)."""
    day = lambda d: datetime(2024, 1, d, tzinfo=UTC)  # noqa: E731
    arxiv_api.add_entries(
        "diffusion", [make_entry(f"2401.0000{d}", updated=day(d)) for d in (1, 2, 3)]
    )
    arxiv_api.add_entries(
        "retrieval", [make_entry(f"2402.0000{d}", updated=day(d)) for d in (1, 2, 3)]
    )
    place, other = Place("discord", "G1", "C1"), Place("discord", "G1", "C1", user_id="U2")
    core.execute(place, Add("diffusion"))
    core.execute(place, Add("retrieval"))
    # what an add found counts as seen: the next post carries only what comes later
    assert core.execute(place, DigestNow()) == [
        Text("Nothing new since the last post.", ephemeral=True)
    ]
    (every,) = core.execute(place, List(None, 5))
    assert (
        isinstance(every, Papers) and every.heading == "Newest 5 papers for this channel's keywords"
    )
    (two,) = core.execute(place, List("retrieval", 2))
    assert isinstance(two, Papers) and two.heading == "Newest 2 papers for “retrieval”"
    assert [p.arxiv_id for g in two.groups for p in g.papers] == ["2402.00003", "2402.00002"]
    (table,) = core.execute(place, Keywords())
    assert isinstance(table, KeywordTable) and table.digest == "Daily post at 09:00 UTC."
    first = table.rows[0]
    assert (first.label, first.papers, first.newest, first.status) == (
        "diffusion",
        3,
        date(2024, 1, 3),
        "ok",
    )
    arxiv_api.add_entries("diffusion", [make_entry("2401.00004", updated=day(4))])
    (fetched,) = core.execute(place, Fetch())
    assert isinstance(fetched, Text) and fetched.text.startswith(
        "Fetched:\n“diffusion”: 4 papers, 1 new"
    )
    (again,) = core.execute(other, Fetch())
    assert isinstance(again, Text) and "try again in" in again.text
    (when,) = core.execute(place, DigestAt("07:30", "Europe/Berlin"))  # real clock: after
    # 07:30 in Berlin the reply adds that today's new paper goes out now (test_shapes_unhappy)
    assert isinstance(when, Text) and when.text.startswith("Daily post at 07:30 Europe/Berlin.")
    assert core.execute(place, DigestOff()) == [Text("Daily post: off.")]
    (removed,) = core.execute(place, Remove("DIFFUSION"))
    assert isinstance(removed, Text)
    assert removed.text == "Stopped following “diffusion” here. Its papers stay stored."
    with read_session(engine) as session:
        keyword = store.find_keyword(session, "diffusion")
        assert keyword is not None and catalog.match_count(session, keyword.id) == 4  # type: ignore[arg-type]


def test_digest_settings_are_stored(core: Core, engine: Engine) -> None:
    place = Place(platform="slack", workspace="T1", channel="C1")
    reply = core.execute(place, parse("digest 07:15 America/New_York"))[0]
    assert isinstance(reply, Text) and "07:15 America/New_York" in reply.text
    core.execute(place, parse("digest off"))
    with read_session(engine) as session:
        channel = session.exec(select(Channel)).one()
    assert (channel.digest_time, channel.digest_timezone, channel.digest_enabled) == (
        "07:15",
        "America/New_York",
        False,
    )


def test_fetch_is_rate_limited_per_channel(core: Core, arxiv_api: ArxivStandIn) -> None:
    core.execute(TERMINAL, parse("add Some Topic"))
    first = core.execute(TERMINAL, parse("fetch"))[0]
    assert isinstance(first, Text) and "“Some Topic”: 0 papers" in first.text
    second = core.execute(TERMINAL, parse("fetch"))[0]
    assert isinstance(second, Text) and "try again in" in second.text
    assert len(arxiv_api.requests) == 2


@pytest.mark.parametrize(
    "args",
    [
        ["frobnicate"],
        ["add"],
        ["list", "0"],
        ["digest", "25:00"],
        ["readme", "everything"],
        ["db", "nonsense"],
    ],
)
def test_terminal_bad_input_exits_2_with_message_on_stderr(tmp_path: Path, args: list[str]) -> None:
    result = run_papers(tmp_path, *args)
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert "papers:" in result.stderr and "Traceback" not in result.stderr


def test_terminal_success_and_failure_exit_codes(tmp_path: Path) -> None:
    listed = run_papers(tmp_path, "keywords")
    assert listed.returncode == 0 and "No keywords followed" in listed.stdout
    run_papers(tmp_path, "add", "Unreachable Topic")
    fetched = run_papers(tmp_path, "fetch")
    assert fetched.returncode == 1
    assert "“Unreachable Topic”: failed (arXiv could not be reached)" in fetched.stdout


def test_the_terminal_refuses_a_daily_post_it_would_never_get(core: Core, engine: Engine) -> None:
    """Nothing posts to the terminal channel, so `digest HH:MM` there is refused, not promised."""
    before = snapshot(engine)
    for text in ("digest 00:01", "digest 09:00 Europe/Berlin", "digest off"):
        (reply,) = core.execute(TERMINAL, parse(text))
        assert isinstance(reply, Text) and reply.error and "no daily post" in reply.text
    assert snapshot(engine) == before
    table = core.execute(TERMINAL, parse("keywords"))[0]
    assert isinstance(table, KeywordTable) and "Daily post at" not in table.digest


def test_a_fetch_that_failed_is_flagged_on_the_add_reply(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.always(status(503))
    (reply,) = core.execute(TERMINAL, parse("add Unlucky Topic"))
    assert isinstance(reply, Text) and reply.failed and not reply.error
    assert "Now following “Unlucky Topic”" in reply.text
    arxiv_api.normal()
    (fine,) = core.execute(TERMINAL, parse("add Lucky Topic"))
    assert not getattr(fine, "failed", False)


@pytest.mark.parametrize("zone", ["Europe", "America", "Etc", "x" * 300, "Europe/../Etc", "a\x00b"])
def test_a_zone_that_is_no_zone_is_bad_input(zone: str) -> None:
    with pytest.raises(BadInput, match="not a timezone"):
        parse(f"digest 09:00 {zone}")

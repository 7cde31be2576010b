"""What the core does for the chat front ends, tested once here: commands that run once, the
manager rule and help, labels from the asking channel, leaving a workspace or a channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from bot.arxiv.gateway import ArxivGateway
from bot.commands.core import Core, Place
from bot.commands.grammar import USAGES, Add, DigestAt, Fetch, Help, Keywords, Remove
from bot.config import Settings
from bot.replies import CommandHelp, KeywordTable, Text
from bot.storage.db import read_session, write_session
from bot.storage.models import Channel
from tests.fakes.arxiv_server import ArxivStandIn, make_entry

README = Path(__file__).resolve().parent.parent / "README.md"
A = Place("discord", "G1", "C1", user_id="U1", managers="members with Manage Channels")
B = Place("discord", "G2", "C2", user_id="U2", managers="members with Manage Channels")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed(settings: Settings, engine: Engine, clock: Clock) -> Core:
    return Core(settings, engine, ArxivGateway(settings, engine), clock=clock)


def test_a_delivery_seen_again_is_redelivered_on_any_replica(
    timed: Core, settings: Settings, engine: Engine, clock: Clock
) -> None:
    replica = Core(settings, engine, ArxivGateway(settings, engine), clock=clock)  # same database
    assert timed.once(A, Keywords(), delivery="T1") == "new"
    assert replica.once(A, Keywords(), delivery="T1") == "redelivered"
    assert timed.once(B, Keywords(), delivery="T2") == "new"
    clock.now += timedelta(minutes=11)  # long after any platform would redeliver
    assert replica.once(A, Keywords(), delivery="T1") == "new"


def test_a_change_typed_twice_in_a_row_within_a_minute_is_repeated(
    timed: Core, clock: Clock
) -> None:
    assert timed.once(A, Add("Diffusion"), delivery="1") == "new"
    assert timed.once(A, Add("Diffusion"), delivery="2") == "repeated"
    assert timed.once(B, Add("Diffusion"), delivery="3") == "new"  # someone else, elsewhere
    assert timed.once(A, Keywords(), delivery="4") == "new"  # reading is never held back
    assert timed.once(A, Remove("Diffusion"), delivery="5") == "new"
    assert timed.once(A, Add("Diffusion"), delivery="6") == "new"  # not in a row: meant
    clock.now += timedelta(seconds=61)
    assert timed.once(A, Add("Diffusion"), delivery="7") == "new"


def test_only_managers_change_things_and_the_refusal_names_them(core: Core) -> None:
    member = Place("discord", "G1", "C1", is_manager=False, managers="members with Manage Channels")
    (refusal,) = core.execute(member, DigestAt("08:00"))
    assert isinstance(refusal, Text) and refusal.error and refusal.ephemeral
    assert refusal.text == (
        "Only members with Manage Channels can do that here. "
        "Anyone can use `keywords`, `list`, `readme`, `preview`, `save`, `saved`, `unsave` and `help`."
    )
    assert isinstance(core.execute(member, Keywords())[0], KeywordTable)


def test_help_is_the_usage_table_with_who_manages_here(core: Core) -> None:
    assert core.execute(A, Help()) == [CommandHelp(USAGES, managers="members with Manage Channels")]
    assert core.execute(Place("slack", "T1", "C1"), Help()) == [CommandHelp(USAGES, managers="")]


def test_fetch_shows_the_asking_channels_own_label(core: Core, arxiv_api: ArxivStandIn) -> None:
    arxiv_api.add_entries("diffusion models", [make_entry(arxiv_id="2501.00001")])
    core.execute(A, Add("Diffusion Models"))
    core.execute(B, Add("diffusion MODELS"))  # the same keyword, spelt its own way
    (fetched,) = core.execute(B, Fetch())
    assert isinstance(fetched, Text)
    assert fetched.text == "Fetched:\n“diffusion MODELS”: 1 papers, 0 new"
    assert core.channel_labels(A) == ["Diffusion Models"]
    assert core.channel_labels(B) == ["diffusion MODELS"]


def test_a_deleted_channel_stops_at_once_and_only_it(core: Core, engine: Engine) -> None:
    core.execute(A, Add("one"))
    core.execute(Place("discord", "G1", "C9"), Add("two"))
    assert core.leave_channel(A) is True
    assert core.leave_channel(Place("discord", "G1", "C404")) is False
    assert core.followed_keywords() == ["two"]
    assert core.leave_workspace("discord", "G1") == 2
    assert core.followed_keywords() == []


def test_digest_time_resumes_a_paused_channel_and_fetch_does_not(
    core: Core, engine: Engine
) -> None:
    core.execute(A, Add("paused topic"))
    with write_session(engine) as session:
        channel = session.exec(select(Channel)).one()
        channel.paused, channel.failed_days = True, 3
    core.execute(A, Fetch())
    assert _paused(engine)
    core.execute(A, DigestAt("09:00"))
    assert not _paused(engine)
    readme = README.read_text(encoding="utf-8")
    assert "(or `/papers fetch`)" not in readme  # the README says what resumes a channel
    assert readme.count("`/papers digest HH:MM` in a channel resumes") == 2


def _paused(engine: Engine) -> bool:
    with read_session(engine) as session:
        return session.exec(select(Channel)).one().paused

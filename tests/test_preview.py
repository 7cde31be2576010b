"""`preview <keyword>`: only for the person who asked, follows nothing, asks arXiv at most
once a day per keyword and once a minute per channel, and says at once when arXiv is down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, update
from sqlmodel import select

from bot.arxiv.gateway import ArxivGateway
from bot.commands.core import TERMINAL, Core, Place
from bot.commands.grammar import parse
from bot.commands.preview import PREVIEW_COOLDOWN
from bot.config import Settings
from bot.replies import Papers, Text
from bot.storage.db import read_session, write_session
from bot.storage.models import ArxivPacer, Channel, Keyword, Subscription
from tests.fakes.arxiv_server import ArxivStandIn, make_entry

SLACK = Place(platform="slack", workspace="T1", channel="C1", user_id="U1", is_manager=False)


def _entries(n: int) -> list[bytes]:
    return [
        make_entry(
            arxiv_id=f"2501.{i:05d}",
            title=f"Paper {i}",
            updated=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=i),
        )
        for i in range(n)
    ]


def test_preview_follows_nothing_and_a_second_preview_the_same_day_asks_nothing(
    core: Core, engine: Engine, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("image editing", _entries(5))
    typed = "preview image editing -medical in:cs.CV"
    (first,) = core.execute(SLACK, parse(typed))  # anyone may: SLACK is no manager
    assert isinstance(first, Papers) and first.ephemeral
    assert first.heading == (
        "Preview of “image editing -medical in:cs.CV” (not followed): 5 papers found. The newest:"
    )
    assert [p.title for p in first.groups[0].papers] == ["Paper 4", "Paper 3", "Paper 2"]
    (second,) = core.execute(SLACK, parse("preview Image Editing in:cs.cv -Medical"))
    other = Place(platform="discord", workspace="G1", channel="C9")
    (third,) = core.execute(other, parse(typed))
    assert second == first.__class__(
        heading=first.heading.replace(
            "image editing -medical in:cs.CV", "Image Editing in:cs.cv -Medical"
        ),
        groups=first.groups,
        ephemeral=True,
    )
    assert isinstance(third, Papers) and third.groups == first.groups
    assert len(arxiv_api.requests) == 1, "the same key the same day: answered from the store"
    with read_session(engine) as session:
        assert session.exec(select(Subscription)).all() == []
    (added,) = core.execute(TERMINAL, parse("add image editing in:cs.CV -medical"))
    assert isinstance(added, Papers) and "5 papers found" in added.heading
    assert len(arxiv_api.requests) == 1, "adding what was previewed today needs no request"


def test_a_keyword_fetched_today_is_previewed_from_the_store_and_asked_again_the_next_day(
    core: Core, engine: Engine, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("diffusion", _entries(2))
    core.execute(TERMINAL, parse("add diffusion"))
    (answer,) = core.execute(SLACK, parse("preview diffusion"))
    assert isinstance(answer, Papers) and "2 papers found" in answer.heading
    assert len(arxiv_api.requests) == 1
    with write_session(engine) as session:  # the last fetch was yesterday
        session.execute(
            update(Keyword).values(last_success_at=datetime.now(UTC) - timedelta(days=1))
        )
    arxiv_api.add_entries("diffusion", _entries(3)[2:])
    (again,) = core.execute(SLACK, parse("preview diffusion"))
    assert isinstance(again, Papers) and "3 papers found" in again.heading
    assert len(arxiv_api.requests) == 2


def test_nothing_found_is_said_only_to_the_asker(core: Core, arxiv_api: ArxivStandIn) -> None:
    (answer,) = core.execute(SLACK, parse('preview by:"Nobody Atall"'))
    assert (
        isinstance(answer, Text) and answer.ephemeral and "Nothing on arXiv matches" in answer.text
    )
    assert arxiv_api.requests[0].params["search_query"] == 'au:"Nobody Atall"'


def test_previews_that_ask_arxiv_are_limited_per_channel(
    settings: Settings, engine: Engine, arxiv_api: ArxivStandIn
) -> None:
    now = [datetime(2026, 3, 2, 12, 0, tzinfo=UTC)]
    core = Core(settings, engine, ArxivGateway(settings, engine), clock=lambda: now[0])
    core.execute(SLACK, parse("preview alpha"))
    (refused,) = core.execute(SLACK, parse("preview beta"))
    assert isinstance(refused, Text) and refused.ephemeral and "try again in 60 s" in refused.text
    elsewhere = Place(platform="slack", workspace="T1", channel="C2")
    assert isinstance(core.execute(elsewhere, parse("preview beta"))[0], Text)
    assert len(arxiv_api.requests) == 2, "the cooldown is per channel"
    now[0] += PREVIEW_COOLDOWN
    core.execute(SLACK, parse("preview gamma"))
    assert len(arxiv_api.requests) == 3


def test_during_an_outage_a_preview_says_so_at_once(
    core: Core, engine: Engine, arxiv_api: ArxivStandIn
) -> None:
    with write_session(engine) as session:
        session.add(
            ArxivPacer(
                name="arxiv",
                failures=3,
                outage_round=1,
                retry_at=datetime.now(UTC).timestamp() + 300,
                last_failure="HTTP 503",
            )
        )
    assert core.gateway.outage() is not None
    (answer,) = core.execute(SLACK, parse("preview diffusion"))
    assert isinstance(answer, Text) and answer.ephemeral and "503" in answer.text
    assert arxiv_api.requests == []
    with read_session(engine) as session:  # and the channel's cooldown was not used up
        assert session.exec(select(Channel.last_preview_request_at)).all() == []

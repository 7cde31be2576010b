"""`/papers` over real HTTP: signed slash commands in, the ack, response_url posts and Web API
calls: where and how Slack shows the core's answers (what each command does is the core's,
tests/test_commands.py)."""

from __future__ import annotations

import itertools
import re
import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.arxiv.gateway import ArxivGateway
from bot.commands.core import Core, Place
from bot.storage import store
from bot.storage.db import read_session
from bot.storage.models import Channel
from tests.fakes.arxiv_server import ArxivStandIn, hang, make_entry
from tests.fakes.slack_server import Call, SlackWebAPI, app_uninstalled_event
from tests.support.common import snapshot
from tests.support.slack import (
    block_texts,
    eventually,
    labels,
    mrkdwn_texts,
    running,
)

VTON = "Virtual Try-On"


def _entries(n: int = 3, **fields: object) -> list[bytes]:
    return [
        make_entry(
            arxiv_id=f"2501.{i:05d}",
            title=f"Try-on paper {i}",
            authors=("Ada", "Alan", "Grace", "Edsger"),
            comment=f"{i} pages",
            summary=f"The abstract of paper {i}.",
            updated=datetime(2025, 1, i + 1, tzinfo=UTC),
            **fields,  # type: ignore[arg-type]
        )
        for i in range(1, n + 1)
    ]


def _channel(core: Core, workspace: str = "T0TEST", channel: str = "C0TEST") -> Channel:
    with read_session(core.engine) as session:
        ws = store.find_workspace(session, platform="slack", external_id=workspace)
        assert ws is not None
        found = store.find_channel(session, workspace=ws, external_id=channel)
        assert found is not None
        return found


async def test_add_fetches_stores_and_answers_in_channel(core: Core, arxiv_api: ArxivStandIn):
    arxiv_api.add_entries(VTON, _entries(4))
    async with SlackWebAPI() as api, running(core, api) as slack:
        ack = await slack.command(f"add {VTON}", "add")
        assert (ack.status, ack.text) == (200, "")  # quick: no "Adding…" note, the answer follows
        body = await api.wait_for_response("add")

    assert body["response_type"] == "in_channel"
    assert body["blocks"][0] == {
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": f"Now following “{VTON}”: 4 papers found. The newest:",
            "emoji": True,
        },
    }
    assert "alice used `/papers add Virtual Try-On`" in block_texts(body)
    assert "<@" not in str(body)  # a public answer names who asked without pinging them
    papers = [b for b in body["blocks"] if b.get("accessory")]
    assert [b["accessory"]["value"] for b in papers] == ["2501.00004", "2501.00003", "2501.00002"]
    assert labels(core.engine, "T0TEST") == [VTON]
    assert [r.params["search_query"] for r in arxiv_api.requests][:1] == [
        f'ti:"{VTON}" OR abs:"{VTON}"'
    ]


async def test_list_shows_links_authors_dates_comments_and_a_show_abstract_button(
    core: Core, arxiv_api: ArxivStandIn
):
    arxiv_api.add_entries(VTON, _entries(3))
    async with SlackWebAPI() as api, running(core, api) as slack:
        await slack.answer(f"add {VTON}", "add")
        body = await slack.answer("list 2", "list")
        assert body["response_type"] == "in_channel"
        first = body["blocks"][2]
        assert first["text"]["text"] == (
            "*<https://arxiv.org/abs/2501.00003v1|Try-on paper 3>*\n"
            "Ada, Alan, Grace et al. · 2025-01-04\n"
            "Comment: 3 pages"
        )
        assert first["accessory"]["text"]["text"] == "Show abstract"
        assert len([b for b in body["blocks"] if b.get("accessory")]) == 2

        click = await slack.slack.send_block_action(
            first["accessory"]["action_id"],
            first["accessory"]["value"],
            response_url=api.response_url("click"),
        )
        assert click.status == 200, click.text
        shown = await api.wait_for_response("click")

    assert shown["response_type"] == "ephemeral"
    assert "The abstract of paper 3." in block_texts(shown)
    assert "https://arxiv.org/pdf/2501.00003v1" in block_texts(shown)


async def test_public_answers_go_in_channel_and_private_ones_only_to_the_asker(
    core: Core, arxiv_api: ArxivStandIn
):
    """What the core answers is placed, not re-worded: the words are the core's (test_commands)."""
    arxiv_api.add_entries(VTON, _entries(2))
    async with SlackWebAPI() as api, running(core, api) as slack:
        await slack.answer(f"add {VTON}", "add")
        table = await slack.answer("keywords", "kw")
        fetched = await slack.answer("fetch", "f1")
        again = await slack.reply("fetch", "f2", user_id="U0OTHER")  # someone else, too soon
        nothing = await slack.reply("digest now", "now")
        await slack.answer("digest weekly mon 09:00", "weekly")
        await slack.answer("digest threads on", "threads")
        weekly = await slack.answer("digest max 50", "max")

    assert table["response_type"] == fetched["response_type"] == "in_channel"
    assert "• *Virtual Try-On*: 2 papers" in block_texts(table)
    assert fetched["text"].startswith("Fetched:")
    assert again["response_type"] == nothing["response_type"] == "ephemeral"
    assert "try again in" in again["text"]
    assert nothing["text"] == "Nothing new since the last post."
    assert weekly["response_type"] == "in_channel"  # the digest grammar, through Slack text
    assert weekly["text"] == "Weekly post on Monday at 09:00 UTC · threads · max 50."


async def test_readme_uploads_the_export_with_a_one_line_comment(
    core: Core, arxiv_api: ArxivStandIn
):
    arxiv_api.add_entries(VTON, _entries(2))
    async with SlackWebAPI() as api, running(core, api) as slack:
        await slack.answer(f"add {VTON}", "add")
        ack = await slack.command("readme", "readme")
        assert ack.status == 200
        upload = await api.wait_for_upload()
        ack_all = await slack.command("readme all", "all")
        assert ack_all.status == 200
        upload_all = await api.wait_for_upload(count=2)
        place = Place("slack", "T0TEST", "C0TEST")
        expected = slack.core.readme(place).encode()

    assert upload.filename == "README.md"
    assert upload.channel_id == "C0TEST"
    assert upload.initial_comment == "Daily Papers README of this channel."
    assert upload.content == expected
    assert b"## Virtual Try-On\n" in upload.content
    assert upload_all.initial_comment == "Daily Papers README of this workspace."
    assert api.responses("readme") == []  # the file is the answer
    assert {c.token for c in api.calls} == {"xoxb-test-token"}


async def test_help_is_answered_in_the_ack(core: Core, arxiv_api: ArxivStandIn):
    async with SlackWebAPI() as api, running(core, api) as slack:
        ack = await slack.command("help", "help")
        empty = await slack.command("", "empty")

    body = ack.json()
    assert body["response_type"] == "ephemeral"
    assert "`/papers add &lt;keyword&gt;`: follow a keyword here" in body["text"]
    assert (
        "`/papers digest &lt;HH:MM&gt; [timezone] | digest weekly &lt;mon..sun&gt;" in body["text"]
    )
    assert empty.json()["text"] == body["text"]
    assert api.response_posts == []


async def test_managers_only_when_slack_managers_is_set(core: Core, arxiv_api: ArxivStandIn):
    arxiv_api.add_entries(VTON, _entries(1))
    async with (
        SlackWebAPI() as api,
        running(core, api, slack_managers=frozenset({"U0BOSS"})) as slack,
    ):
        before = snapshot(core.engine)
        denied = await slack.reply(f"add {VTON}", "denied", user_id="U0USER")
        assert snapshot(core.engine) == before
        allowed = await slack.answer(f"add {VTON}", "allowed", user_id="U0BOSS")
        listed = await slack.answer("list", "list", user_id="U0USER")

    assert denied["response_type"] == "ephemeral"
    assert denied["text"].startswith(
        "Only the people this app's SLACK_MANAGERS setting names can do that here."
    )
    assert allowed["response_type"] == "in_channel"
    assert labels(core.engine, "T0TEST") == [VTON]
    assert listed["response_type"] == "in_channel"


BAD_INPUT = [  # the core's parser words them all (test_commands); here: where they are said
    ("frobnicate", "Unknown command “frobnicate”"),
    ("list 0", "The limit must be a number from 1 to 20"),
]


@pytest.mark.parametrize(("text", "problem"), BAD_INPUT, ids=[t for t, _ in BAD_INPUT])
async def test_bad_input_is_ephemeral_in_the_ack_and_changes_nothing(
    core: Core, arxiv_api: ArxivStandIn, text: str, problem: str
):
    async with SlackWebAPI() as api, running(core, api) as slack:
        before = snapshot(core.engine)
        ack = await slack.command(text, "bad")
        after = snapshot(core.engine)

    assert ack.status == 200
    body = ack.json()
    assert body["response_type"] == "ephemeral"
    assert problem in body["text"]
    assert "Usage:" in body["text"] or "Commands:" in body["text"]
    assert after == before
    assert api.response_posts == []
    assert [c.method for c in api.calls] == ["auth.test"]  # Bolt's authorization, nothing else
    assert arxiv_api.requests == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("remove Not Followed", "This channel does not follow “Not Followed”"),
        ("list Not Followed", "This channel does not follow “Not Followed”"),
    ],
)
async def test_bad_input_found_by_the_core_is_ephemeral_and_changes_nothing(
    core: Core, arxiv_api: ArxivStandIn, text: str, problem: str
):
    arxiv_api.add_entries(VTON, _entries(1))
    async with SlackWebAPI() as api, running(core, api) as slack:
        await slack.answer(f"add {VTON}", "add")
        before = snapshot(core.engine)
        body = await slack.reply(text, "bad")
        after = snapshot(core.engine)

    assert body["response_type"] == "ephemeral"
    assert problem in body["text"]
    assert after == before


async def test_arxiv_text_is_escaped_and_typed_entities_are_unescaped(
    core: Core, arxiv_api: ArxivStandIn
):
    title = "<!channel> Fast & Safe <script>alert(1)</script>"
    arxiv_api.add_entries(
        "R D Robots",  # a query term keeps letters, digits, spaces and - . + ' (SPEC 3)
        [make_entry(title=title, comment="<@U123> & <!here>", authors=("<!everyone>",))],
    )
    async with SlackWebAPI() as api, running(core, api) as slack:
        # Slack delivers what the user typed with &, < and > escaped
        body = await slack.answer("add R&amp;D &lt;Robots&gt;", "add")

    assert labels(core.engine, "T0TEST") == ["R&D <Robots>"]
    assert arxiv_api.requests[0].params["search_query"] == 'ti:"R D Robots" OR abs:"R D Robots"'
    text = mrkdwn_texts(body)
    assert "&lt;!channel&gt; Fast &amp; Safe &lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;@U123&gt; &amp; &lt;!here&gt;" in text and "&lt;!everyone&gt;" in text
    for raw in ("<!channel>", "<script>", "<!here>", "<@U123>", "<!everyone>", "R&D"):
        assert raw not in text
    assert "“R&amp;D &lt;Robots&gt;”" in body["text"]
    # a header is plain text, which Slack never parses: shown as typed, it cannot ping
    assert body["blocks"][0]["text"] == {
        "type": "plain_text",
        "text": "Now following “R&D <Robots>”: 1 paper found. The newest:",
        "emoji": True,
    }


async def test_slow_arxiv_is_acknowledged_within_3_seconds_then_answered(
    memory_core: Core,
    arxiv_api: ArxivStandIn,
):
    core = memory_core
    arxiv_api.add_entries(VTON, _entries(2))
    arxiv_api.script([hang(5)])
    patient = ArxivGateway(
        core.settings.model_copy(update={"arxiv_timeout_seconds": 15}), core.engine
    )
    async with SlackWebAPI() as api, running(core, api, gateway=patient) as slack:
        started = time.monotonic()
        ack = await slack.command(f"add {VTON}", "slow")
        acked = time.monotonic() - started
        assert api.responses("slow") == []
        body = await api.wait_for_response("slow", timeout=15)
        answered = time.monotonic() - started

    assert ack.status == 200 and acked < 3.0, acked
    assert answered >= 4.5
    assert body["response_type"] == "in_channel" and "2 papers found" in body["text"]


async def test_slack_connect_commands_belong_to_the_installation_workspace(
    core: Core, arxiv_api: ArxivStandIn
):
    arxiv_api.add_entries(VTON, _entries(1))
    async with SlackWebAPI() as api, running(core, api) as slack:
        # a user of another organisation types in a shared channel: the payload names their team
        await slack.answer(f"add {VTON}", "add", team_id="T0GUEST", user_id="U0GUEST")
        listed = await slack.answer("list", "list", team_id="T0TEST")

    assert labels(core.engine, "T0TEST") == [VTON]
    assert labels(core.engine, "T0GUEST") == []
    assert any(b.get("accessory") for b in listed["blocks"])


async def test_enterprise_workspace_id_is_enterprise_and_team(core: Core, arxiv_api: ArxivStandIn):
    arxiv_api.add_entries(VTON, _entries(1))
    async with SlackWebAPI() as api, running(core, api) as slack:
        api.add_token("xoxb-test-token", team_id="T0TEST", enterprise_id="E0GRID")
        await slack.answer(f"add {VTON}", "add", enterprise_id="E0GRID")

    assert labels(core.engine, "E0GRID:T0TEST") == [VTON]


async def test_uninstall_event_stops_the_workspace_channels(core: Core, arxiv_api: ArxivStandIn):
    arxiv_api.add_entries(VTON, _entries(1))
    async with SlackWebAPI() as api, running(core, api) as slack:
        await slack.answer(f"add {VTON}", "add")
        assert _channel(slack.core).active
        event = await slack.slack.send_event(app_uninstalled_event())
        assert event.status == 200
        await eventually(lambda: not _channel(slack.core).active)

    with read_session(core.engine) as session:
        ws = store.find_workspace(session, platform="slack", external_id="T0TEST")
        assert ws is not None and ws.active is False
        assert store.followed_phrases(session) == []


async def test_a_failing_core_is_logged_and_answered_with_an_apology(
    core: Core, arxiv_api: ArxivStandIn, caplog: pytest.LogCaptureFixture
):
    async with SlackWebAPI() as api, running(core, api) as slack:

        def broken(place: Place, command: object) -> list:  # type: ignore[type-arg]
            raise RuntimeError("database on fire")

        slack.front.service.core.execute = broken  # type: ignore[method-assign]
        body = await slack.reply("keywords", "boom")

    assert body["response_type"] == "ephemeral"
    assert body["text"].startswith("Sorry, that failed on our side")
    assert "database on fire" not in body["text"]
    assert any("/papers keywords failed" in r.getMessage() for r in caplog.records)


async def test_upload_refused_is_explained_to_the_user(core: Core, arxiv_api: ArxivStandIn):
    async with SlackWebAPI() as api, running(core, api) as slack:
        api.fail_next("files.completeUploadExternal", error="not_in_channel")
        body = await slack.answer("readme", "readme")

    assert body["response_type"] == "ephemeral"
    assert "Could not upload README.md" in body["text"] and "not_in_channel" in body["text"]
    assert "/invite" in body["text"]


async def test_answers_beyond_five_response_url_posts_go_through_chat_post_message(
    core: Core, arxiv_api: ArxivStandIn
):
    arxiv_api.add_entries(VTON, _entries(1))
    async with SlackWebAPI() as api, running(core, api) as slack:
        await slack.answer(f"add {VTON}", "add")
        # 60 new papers with long comments: about 8 fit a message, more than five messages
        arxiv_api.add_entries(VTON, [*_entries(1), *_long_entries(60)])
        await slack.answer("fetch", "fetch")
        ack = await slack.command("digest now", "now")
        assert ack.status == 200
        await api.wait_for(_last_part, timeout=15)

    responded = api.responses("now")
    assert len(responded) == 5
    assert all(r["response_type"] == "in_channel" for r in responded)
    overflow = api.accepted("chat.postMessage")
    assert len(overflow) >= 2
    assert {c.params["channel"] for c in overflow} == {"C0TEST"}
    headers = [r["blocks"][0]["text"]["text"] for r in responded]
    headers += [c.params["blocks"][0]["text"]["text"] for c in overflow]
    total = len(headers)
    assert headers == [f"60 new papers on arXiv ({i}/{total})" for i in range(1, total + 1)]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(c.at for c in overflow))  # paced


def _last_part(call: Call) -> bool:
    if call.method != "chat.postMessage" or not call.ok:
        return False
    part = re.search(r"\((\d+)/(\d+)\)$", call.params["blocks"][0]["text"]["text"])
    return part is not None and part.group(1) == part.group(2)


def _long_entries(n: int) -> list[bytes]:
    return [
        make_entry(
            arxiv_id=f"2503.{i:05d}",
            title=f"Long paper {i} " + "t" * 200,
            comment="c" * 1000,
            updated=datetime(2025, 3, 1, tzinfo=UTC) + timedelta(minutes=i),
        )
        for i in range(1, n + 1)
    ]

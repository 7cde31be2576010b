"""Slack's side of saved papers and feeds: the Save button's signed block_actions through Bolt,
answered ephemerally; `saved bibtex` as a file in the person's direct messages; `feed` only for
the asker."""

from __future__ import annotations

from datetime import UTC, datetime

import bibtexparser

from bot.commands.core import Core, Place
from bot.commands.grammar import Saved
from bot.replies import Text
from tests.fakes.arxiv_server import ArxivStandIn, make_entry
from tests.fakes.slack_server import SlackWebAPI
from tests.support.common import snapshot
from tests.support.slack import block_texts, running

ALICE = Place("slack", "T0TEST", "C0TEST", user_id="U0USER")  # the stand-in's default user


def _papers(arxiv_api: ArxivStandIn) -> None:
    arxiv_api.add_entries(
        "Diffusion",
        [
            make_entry(
                arxiv_id=f"2501.{i:05d}",
                title=f"Diffusion paper {i}",
                updated=datetime(2025, 1, i, tzinfo=UTC),
                categories=("cs.CV",),
            )
            for i in (1, 2)
        ],
    )


def _save_buttons(body: dict) -> list[dict]:
    return [
        element
        for block in body["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"].startswith("save_paper:")
    ]


async def test_the_save_button_saves_for_who_pressed_it_and_answers_only_them(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    _papers(arxiv_api)
    async with SlackWebAPI() as api, running(core, api) as slack:
        await slack.answer("add Diffusion", "add")
        listed = await slack.answer("list", "list")
        button = _save_buttons(listed)[1]
        assert button["text"]["text"] == "Save" and button["value"] == "2501.00001"
        for name in ("s1", "s2"):
            click = await slack.slack.send_block_action(
                button["action_id"], button["value"], response_url=api.response_url(name)
            )
            assert click.status == 200, click.text
        first, second = await api.wait_for_response("s1"), await api.wait_for_response("s2")
        (saved,) = slack.core.execute(ALICE, Saved())
        (other,) = slack.core.execute(Place("slack", "T0TEST", "C0TEST", user_id="U2"), Saved())
    assert first["response_type"] == second["response_type"] == "ephemeral"
    assert "Saved “Diffusion paper 1” for you" in block_texts(first)
    assert "already among your saved papers" in block_texts(second)
    assert isinstance(saved, Text) and "2501.00001v1" in saved.text
    assert isinstance(other, Text) and "2501.00001" not in other.text


async def test_a_save_value_that_is_no_arxiv_id_is_answered_and_stores_nothing(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    async with SlackWebAPI() as api, running(core, api) as slack:
        before = snapshot(core.engine)
        click = await slack.slack.send_block_action(
            "save_paper:x", "<!channel> not an id", response_url=api.response_url("bad")
        )
        assert click.status == 200
        answer = await api.wait_for_response("bad")
    assert answer["response_type"] == "ephemeral"
    assert "is not an arXiv id" in block_texts(answer) and "<!channel>" not in str(answer)
    assert snapshot(core.engine) == before


async def test_saved_bibtex_arrives_as_a_file_in_a_direct_message(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    _papers(arxiv_api)
    async with SlackWebAPI() as api, running(core, api) as slack:
        await slack.answer("add Diffusion", "add")
        await slack.answer("save 2501.00002", "save")
        ack = await slack.command("saved bibtex", "bib")
        assert ack.status == 200
        upload = await api.wait_for_upload()
        note = await api.wait_for_response("bib")
    (opened,) = api.calls_to("conversations.open")
    assert opened.params["users"] == "U0USER"
    assert upload.filename == "saved.bib"
    assert upload.channel_id == opened.response["channel"]["id"] and upload.channel_id != "C0TEST"
    assert upload.initial_comment == "Your 1 saved paper as BibTeX."
    (entry,) = bibtexparser.parse_string(upload.content.decode()).entries
    assert entry.key == "2501.00002" and entry["primaryClass"] == "cs.CV"
    assert note["response_type"] == "ephemeral"
    assert "saved.bib is in your direct messages" in block_texts(note)


async def test_feed_answers_its_url_only_to_the_asker(core: Core) -> None:
    async with SlackWebAPI() as api, running(core, api) as slack:
        answer = await slack.reply("feed", "feed")
    assert answer["response_type"] == "ephemeral"
    assert "/feeds/" in block_texts(answer) and ".atom" in block_texts(answer)

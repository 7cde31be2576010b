"""Each front end's part of keyword rules and `preview`: Slack text and Discord options become
the same commands, answers only for the asker, rules shown in `keywords`, the `in:` completion
(the behaviour itself is tested once, in tests/test_keyword_rules.py and tests/test_preview.py)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest
from discord import app_commands

from adapters.discord import format as discord_format
from adapters.discord.commands import papers_group, preview_command, rule_choices
from adapters.slack import format as slack_format
from adapters.terminal_format import format_reply
from bot.commands.core import Core
from bot.commands.grammar import Add, Preview
from bot.commands.usage import BadInput
from bot.replies import KeywordRow, KeywordTable
from tests.fakes.arxiv_server import ArxivStandIn, make_entry
from tests.fakes.slack_server import SlackWebAPI
from tests.support.cli import run_papers
from tests.support.discord import CommandRecorder
from tests.support.slack import (
    block_texts,
    labels,
    running,
)

TYPED = 'image editing -medical in:cs.CV,cs.GR by:"Kaiming He"'
ROW = KeywordRow(
    label=TYPED,
    papers=2,
    newest=date(2025, 1, 2),
    status="ok",
    rules="excluding medical · in cs.CV, cs.GR · by Kaiming He",
)


def test_keywords_lines_show_the_label_as_typed_and_the_rules() -> None:
    table = KeywordTable(rows=(ROW,), digest="Daily post at 09:00 UTC.")
    slack = block_texts(slack_format.to_messages(table)[0].payload())
    assert (
        '• *image editing -medical in:cs.CV,cs.GR by:"Kaiming He"* (excluding medical · in '
        "cs.CV, cs.GR · by Kaiming He): 2 papers" in slack
    )
    (message,) = discord_format.format_reply(table)
    assert message.embeds[0].description.startswith(
        '**image editing -medical in:cs.CV,cs.GR by:"Kaiming He"** (excluding medical'
    )
    terminal = format_reply(table)
    assert f"{TYPED}  " in terminal and "\n  excluding medical · in cs.CV, cs.GR" in terminal


def test_discord_completes_categories_within_its_limits() -> None:
    choices = rule_choices("image editing in:cs.CV,eess.I")
    assert [(c.name, c.value) for c in choices] == [
        ("image editing in:cs.CV,eess.IV", "image editing in:cs.CV,eess.IV")
    ]
    assert len(rule_choices("x in:")) == 25
    assert rule_choices("x" * 95 + " in:cs.") == [], "a choice is at most 100 characters"
    assert rule_choices("image editing") == []


async def test_slack_preview_is_ephemeral_and_add_takes_the_rules(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("image editing", [make_entry(arxiv_id="2501.00001", title="Edit")])
    async with SlackWebAPI() as api, running(core, api) as slack:
        preview = await slack.reply(f"preview {TYPED}", "preview")
        added = await slack.answer(
            "add image editing in:cs.GR,cs.CV -medical by:“Kaiming He”", "add"
        )

    assert preview["response_type"] == "ephemeral"
    assert preview["blocks"][0]["text"]["text"].startswith(f"Preview of “{TYPED}” (not followed)")
    assert "used `/papers preview" not in block_texts(preview), "no attribution: only for the asker"
    assert added["response_type"] == "in_channel"
    assert labels(core.engine, "T0TEST") == [
        'image editing in:cs.GR,cs.CV -medical by:"Kaiming He"'
    ]
    assert len(arxiv_api.requests) == 1, "previewed today: the add asked arXiv nothing"


async def test_discord_add_and_preview_take_the_rules_as_keyword_text_and_complete_in() -> None:
    """The handlers only convert (the core applies the rules: test_keyword_rules); a private
    answer's placement is tested in test_discord_rules."""
    recorder = CommandRecorder()
    group = papers_group(recorder)
    for name in ("add", "preview"):
        handler = group.get_command(name)
        assert isinstance(handler, app_commands.Command)
        (keyword,) = handler.parameters
        assert (keyword.name, keyword.required, keyword.autocomplete) == ("keyword", True, True)
        choices = await handler._params["keyword"].autocomplete(
            SimpleNamespace(), "image editing in:cs.G"
        )  # type: ignore[misc]
        assert [c.value for c in choices] == [
            "image editing in:cs.GL",
            "image editing in:cs.GR",
            "image editing in:cs.GT",
        ]
        await handler.callback(SimpleNamespace(), keyword=TYPED)  # type: ignore[arg-type]
    assert recorder.commands == [Add(TYPED), Preview(TYPED)]
    with pytest.raises(BadInput) as refused:
        preview_command("x in:cs.XX")
    assert "'cs.XX' is not an arXiv category" in str(refused.value)
    assert "Usage: preview <keyword>" in str(refused.value)


def test_terminal_rules_are_keyword_text_never_options(tmp_path: Path) -> None:
    """`papers add image editing -medical in:cs.CV` and the quoted form are one command.
    (arXiv is unreachable here: each add follows the keyword and exits 1 saying so.)"""
    first = run_papers(tmp_path, "add", "image", "editing", "-medical", "in:cs.CV")
    assert first.returncode == 1 and "Now following" in first.stderr, first.stderr
    again = run_papers(tmp_path, "add", "image editing -medical in:cs.CV")
    assert again.returncode == 0 and "already follows" in again.stdout
    dash = run_papers(tmp_path, "add", "image", "editing", "-h")  # an exclusion, not an option
    assert dash.returncode == 1 and "Now following “image editing -h”" in dash.stderr
    listed = run_papers(tmp_path, "keywords")
    assert "image editing -medical in:cs.CV" in listed.stdout
    assert "  excluding medical · in cs.CV" in listed.stdout

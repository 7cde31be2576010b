"""Crafted button presses (a Save or Abstract value no message of ours carries: no arXiv id,
an unknown paper, 5,000 characters, unicode, a NUL byte) get a clear private answer, store
nothing and leave no traceback in the logs, on Slack (signed block actions through Bolt) and
in the core both adapters ask (`Core.paper`)."""

from __future__ import annotations

import logging

import pytest

from bot.commands.core import Core
from tests.fakes.slack_server import SlackWebAPI
from tests.support.common import snapshot
from tests.support.slack import block_texts, running

CRAFTED = [
    "",
    "x" * 5000,
    "2501.99999",  # an arXiv id, not a stored paper
    "𝕏ü\u202e2501.00001",
    "2501.00001\x00",
    "<!channel> ../../etc/passwd",
    "hep-th/9901001v2",
]


@pytest.mark.parametrize("value", CRAFTED)
def test_the_core_finds_no_paper_for_a_crafted_id_and_raises_nothing(
    core: Core, value: str
) -> None:
    assert core.paper(value) is None


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("show_abstract", ("no longer stored",)),
        ("save_paper:x", ("is not an arXiv id", "is not among the papers stored here")),
    ],
)
async def test_slack_crafted_presses_are_answered_privately_without_a_traceback(
    core: Core, caplog: pytest.LogCaptureFixture, action: str, expected: tuple[str, ...]
) -> None:
    caplog.set_level(logging.INFO)
    async with SlackWebAPI() as api, running(core, api) as slack:
        before = snapshot(core.engine)
        for n, value in enumerate(CRAFTED):
            if action.startswith("save") and value == "2501.99999":
                continue  # a well-formed id: saved as any other (tested in test_slack_saves)
            url = api.response_url(f"r{n}")
            click = await slack.slack.send_block_action(action, value, response_url=url)
            assert click.status == 200
            answer = await api.wait_for_response(f"r{n}")
            assert answer["response_type"] == "ephemeral", value[:50]
            text = block_texts(answer)
            assert any(e in text for e in expected), (value[:50], text)
            assert "<!channel>" not in str(answer) and "\x00" not in str(answer)
        assert snapshot(core.engine) == before
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []

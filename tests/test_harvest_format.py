"""The last harvest in each front end's `keywords` answer (the core fills it: test_harvest)."""

from __future__ import annotations

from datetime import date

from adapters.discord.format import format_reply as discord_format
from adapters.slack.format import to_messages
from adapters.terminal_format import format_reply as terminal_format
from bot.replies import KeywordRow, KeywordTable

LINE = "Last harvest 2026-11-29 01:02 UTC: 1512 records, 5 requests (2 pages, 3 confirms)."
TABLE = KeywordTable(
    rows=(KeywordRow("Virtual Try-On", 12, date(2026, 11, 28), "skipped", "arXiv unavailable"),),
    digest="Daily post at 09:00 UTC.",
    harvest=LINE,
)


def test_terminal_shows_the_harvest_and_the_skipped_keyword() -> None:
    text = terminal_format(TABLE)
    assert LINE in text and "skipped: arXiv unavailable" in text


def test_slack_shows_the_harvest_as_context() -> None:
    [message] = to_messages(TABLE)
    contexts = [b for b in message.blocks if b["type"] == "context"]
    assert any(LINE in str(b) for b in contexts)


def test_discord_shows_the_harvest_in_the_footer() -> None:
    [message] = discord_format(TABLE)
    assert LINE in (message.embeds[0].footer.text or "")


def test_no_harvest_yet_shows_nothing() -> None:
    quiet = KeywordTable(rows=TABLE.rows, digest=TABLE.digest)
    assert "harvest" not in terminal_format(quiet).lower()

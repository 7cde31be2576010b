"""SPEC section 8: what people read. No format character reaches any platform, and supplied text
(arXiv's, a typed label) never acts as our markup, on Slack, Discord or the terminal."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, date, datetime

import pytest

from adapters.discord.format import format_reply
from adapters.slack.format import asked_by, to_messages
from adapters.terminal_format import format_reply as terminal_reply
from bot.replies import KeywordRow, KeywordTable, PaperGroup, Papers, PaperView, Reply, Text
from bot.text import quoted, quoted_parts, shown

RLO, PDF, LRI, ZWSP = "\u202e", "\u202c", "\u2066", "\u200b"
HOSTILE = PaperView(
    arxiv_id="2501.00009",
    version=1,
    title=f"Invoice {RLO}fdp.exe{PDF}",
    authors=(f"Zed {RLO}nimda", f"Ann{ZWSP} Lee"),
    updated=datetime(2025, 1, 9, tzinfo=UTC),
    comment=f"10 pages{LRI}\x1b[31m",
    abstract=f"We {RLO}reverse{PDF} nothing.\nSecond line.",
)
REPLIES: list[Reply] = [
    Papers(heading=f"Newest for {quoted('x' + RLO)}", groups=(PaperGroup(f"L{RLO}", (HOSTILE,)),)),
    Text(f"Now following {quoted(f'a {RLO}b')}: 1 paper found."),
    KeywordTable(
        rows=(KeywordRow(f"k{RLO}", 1, date(2025, 1, 9), "failed", f"e{RLO}"),), digest="d"
    ),
]


def _everything(reply: Reply) -> list[str]:
    """All text each platform would show for `reply`."""
    slack = [json.dumps(m.payload(), ensure_ascii=False) for m in to_messages(reply)]
    discord = [json.dumps(m.as_dict(), ensure_ascii=False) for m in format_reply(reply)]
    return [*slack, *discord, terminal_reply(reply)]


@pytest.mark.parametrize("reply", REPLIES, ids=["papers", "text", "keywords"])
def test_no_format_character_reaches_any_platform(reply: Reply) -> None:
    for shown_text in _everything(reply):
        invisible = {c for c in shown_text if unicodedata.category(c) == "Cf" or c == "\x1b"}
        assert invisible == set(), (shown_text, invisible)


def test_shown_keeps_text_and_line_breaks_and_drops_invisible_characters() -> None:
    assert shown(f"Invoice {RLO}fdp.exe{PDF}") == "Invoice fdp.exe"
    assert shown("a\tb\nc é 漢字 😀") == "a\tb\nc é 漢字 😀"
    assert shown(f"x{ZWSP}\x00\x07y") == "xy"


def test_quoted_parts_find_the_supplied_text() -> None:
    message = f"Stopped following {quoted('a “b” *c*')} here. `keywords` lists the rest."
    assert quoted_parts(message) == [
        ("Stopped following ", False),
        ("“a b *c*”", True),
        (" here. `keywords` lists the rest.", False),
    ]


def test_slack_typed_text_cannot_break_our_markup() -> None:
    label = "*bold* _it_ ~s~"
    (table,) = to_messages(
        KeywordTable(rows=(KeywordRow(label, 2, None, "ok"),), digest="Daily post at 09:00 UTC.")
    )
    line = table.blocks[1]["text"]["text"]
    assert line.startswith("• *∗bold∗ ˍitˍ ∼s∼*: 2 papers")  # our bold holds, theirs is text
    assert line.count("*") == 2 and "_" not in line and "~" not in line

    note = asked_by("alice `x`", "add a` *b*")
    assert note == "alice ˋxˋ used `/papers add aˋ *b*`"  # one code span, as typed inside it
    assert note.count("`") == 2

    (text,) = to_messages(
        Text(f"This channel does not follow {quoted('a_b*')}. `keywords` lists it.")
    )
    assert text.blocks[0]["text"]["text"] == (
        "This channel does not follow “aˍb∗”. `keywords` lists it."
    )
    (link,) = to_messages(Text(f"See {quoted('https://x.org/a_b and *c*')}."))
    assert "https://x.org/a_b and ∗c∗" in link.blocks[0]["text"]["text"]  # URLs keep theirs


def test_discord_echoes_of_typed_labels_are_escaped() -> None:
    label = "||spoiler|| **bold** [x](http://evil.example/1) [y](http://evil.example/2)"
    (message,) = format_reply(
        Text(f"Now following {quoted(label)}: 1 paper found. `list` shows it.")
    )
    assert message.content == (
        "Now following “\\|\\|spoiler\\|\\| \\*\\*bold\\*\\* \\[x](http://evil.example/1) "
        "\\[y](http://evil.example/2)”: 1 paper found. `list` shows it."
    )

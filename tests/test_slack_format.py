"""format.py: replies to Block Kit, snapshot-tested without a network, and Slack's limits kept."""

from __future__ import annotations

from datetime import date

import pytest

from adapters.slack.format import (
    MAX_BLOCKS,
    MAX_HEADER,
    MAX_SECTION,
    SlackMessage,
    abstract_message,
    attribute,
    to_messages,
)
from adapters.slack.mrkdwn import clip, escape, sections_of, unescape
from bot.replies import File, KeywordRow, KeywordTable, PaperGroup, Papers, Text
from tests.support.slack import paper, papers_reply


def _within_limits(message: SlackMessage) -> None:
    assert 0 < len(message.blocks) <= MAX_BLOCKS
    assert len(message.text) <= 3000
    for block in message.blocks:
        if block["type"] == "header":
            assert 0 < len(block["text"]["text"]) <= MAX_HEADER
        if block["type"] == "section":
            assert 0 < len(block["text"]["text"]) <= MAX_SECTION
        for element in block.get("elements", ()):
            assert len(element["text"]) <= MAX_SECTION
        if "accessory" in block:
            assert len(block["accessory"]["value"]) <= 2000
            assert len(block["accessory"]["action_id"]) <= 255


def test_snapshot_of_a_short_list() -> None:
    reply = Papers(
        heading="Newest 2 papers for this channel's keywords",
        groups=(PaperGroup(label="", papers=(paper(2), paper(1, comment="", authors=("Solo",)))),),
    )
    [message] = to_messages(reply)
    assert message.ephemeral is False
    assert message.payload() == {
        "text": "Newest 2 papers for this channel's keywords",
        "unfurl_links": False,
        "unfurl_media": False,
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": "Newest 2 papers for this channel's keywords",
                    "emoji": True,
                },
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*<https://arxiv.org/abs/2501.00002v1|Paper number 2>*\n"
                    "Ada Lovelace, Alan Turing, Grace Hopper et al. · 2025-01-01\n"
                    "Comment: 10 pages, 4 figures",
                },
                "accessory": {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Show abstract", "emoji": True},
                    "action_id": "show_abstract:2501.00002",
                    "value": "2501.00002",
                },
            },
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Save", "emoji": True},
                        "action_id": "save_paper:2501.00002",
                        "value": "2501.00002",
                    }
                ],
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*<https://arxiv.org/abs/2501.00001v1|Paper number 1>*\nSolo · 2025-01-01",
                },
                "accessory": {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Show abstract", "emoji": True},
                    "action_id": "show_abstract:2501.00001",
                    "value": "2501.00001",
                },
            },
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Save", "emoji": True},
                        "action_id": "save_paper:2501.00001",
                        "value": "2501.00001",
                    }
                ],
            },
        ],
    }


def test_snapshot_of_the_keywords_table() -> None:
    reply = KeywordTable(
        rows=(
            KeywordRow("Virtual Try-On", 12, date(2025, 3, 1), "ok"),
            KeywordRow("R&D", 1, date(2025, 2, 1), "failed", "arXiv answered HTTP 503"),
            KeywordRow("New one", 0, None, "never"),
        ),
        digest="Daily post at 09:00 UTC.",
    )
    [message] = to_messages(reply)
    assert [b["type"] for b in message.blocks] == ["header", "section", "context"]
    assert message.blocks[1]["text"]["text"] == (
        "• *Virtual Try-On*: 12 papers, newest 2025-03-01, last fetch: ok\n"
        "• *R&amp;D*: 1 paper, newest 2025-02-01, last fetch: :warning: failed: arXiv answered HTTP 503\n"
        "• *New one*: 0 papers, newest –, last fetch: never"
    )
    assert message.blocks[2]["elements"][0]["text"] == "Daily post at 09:00 UTC."
    assert message.text == "3 keywords followed here"


def test_empty_keywords_table_says_how_to_start() -> None:
    [message] = to_messages(KeywordTable(rows=(), digest="Daily post at 09:00 UTC."))
    assert "Start with `/papers add &lt;keyword&gt;`." in message.blocks[0]["text"]["text"]


def test_text_replies_keep_their_visibility_and_escape() -> None:
    [error] = to_messages(Text("Bad <input> & more\nUsage: add <keyword>", ephemeral=True))
    assert error.ephemeral is True
    assert error.text == "Bad &lt;input&gt; &amp; more\nUsage: add &lt;keyword&gt;"
    [shown] = to_messages(Text("Stopped following “x” here."))
    assert shown.ephemeral is False


def test_file_reply_is_an_upload_with_its_comment() -> None:
    readme = File(filename="README.md", content="# Daily Papers\n", comment="README of <this>.")
    [message] = to_messages(readme)
    assert message.upload is readme
    assert message.text == "README of &lt;this&gt;."


@pytest.mark.parametrize("groups", [1, 3])
def test_sixty_papers_split_across_messages_within_block_kit_limits(groups: int) -> None:
    reply = papers_reply(60, groups=groups, comment="c" * 900, title="T&<> " * 150)
    messages = to_messages(reply)
    assert len(messages) >= 2
    for message in messages:
        _within_limits(message)
    shown = [b["accessory"]["value"] for m in messages for b in m.blocks if "accessory" in b]
    expected = [p.arxiv_id for g in reply.groups for p in g.papers]
    assert shown == expected  # every paper once, in order
    headers = [m.blocks[0]["text"]["text"] for m in messages]
    assert headers[0].endswith(f"(1/{len(messages)})")
    assert headers[-1].endswith(f"({len(messages)}/{len(messages)})")


def test_a_group_split_across_messages_repeats_its_label() -> None:
    messages = to_messages(papers_reply(60, groups=1))
    labels = [
        b["text"]["text"]
        for m in messages
        for b in m.blocks
        if b["type"] == "section" and "accessory" not in b
    ]
    assert labels[0] == "*Keyword 0*"
    assert labels[1:] and all(label == "*Keyword 0* (continued)" for label in labels[1:])
    assert len(labels) == len(messages)


def test_long_heading_and_titles_are_clipped_not_cut_mid_entity() -> None:
    reply = Papers(heading="H" * 400, groups=(PaperGroup("", (paper(1, title="&" * 2000),)),))
    [message] = to_messages(reply)
    _within_limits(message)
    assert message.blocks[0]["text"]["text"] == "H" * (MAX_HEADER - 1) + "…"
    section = message.blocks[1]["text"]["text"]
    link_text = section.split("|", 1)[1].split(">*", 1)[0]
    assert link_text.endswith("&amp;…")


def test_long_text_is_split_into_sections_at_line_ends() -> None:
    lines = [f"line {i} " + "x" * 90 for i in range(200)]
    messages = to_messages(Text("\n".join(lines)))
    assert len(messages) == 2  # 20,000 characters: more than one message should carry
    for message in messages:
        _within_limits(message)
    sections = [b["text"]["text"] for m in messages for b in m.blocks]
    assert len(sections) > 5
    assert "\n".join(sections) == "\n".join(lines)
    assert messages[1].text.endswith("(2/2)")


def test_split_and_clip_never_break_an_entity() -> None:
    escaped = escape("a" * 2998 + "&&&&" + "b" * 10)
    chunks = sections_of(escaped, 3000)
    assert "".join(chunks) == escaped
    assert all(not c.endswith(("&", "&a", "&am", "&amp")) for c in chunks)
    assert clip(escape("x" * 8 + "&"), 10) == "x" * 8 + "…"


def test_escape_and_unescape() -> None:
    assert escape("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"
    assert unescape("R&amp;D &lt;x&gt; &amp;lt;") == "R&D <x> &lt;"
    assert unescape(escape("a &amp; <b>")) == "a &amp; <b>"


def test_abstract_message_is_ephemeral_and_complete() -> None:
    long = paper(7, abstract="word " * 1500, authors=tuple(f"Author {i}" for i in range(12)))
    message = abstract_message(long)
    _within_limits(message)
    assert message.ephemeral is True
    text = "".join(b["text"]["text"] for b in message.blocks[1:-1])
    assert text.replace("\n", " ").split() == ["word"] * 1500
    assert "Author 11" in message.blocks[0]["text"]["text"]  # every author here


def test_attribute_adds_who_asked_under_the_header() -> None:
    messages = attribute(to_messages(papers_reply(2)), "<@U1> used `/papers list`")
    assert messages[0].blocks[1] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "<@U1> used `/papers list`"}],
    }
    full = to_messages(papers_reply(49))
    assert len(full[0].blocks) == MAX_BLOCKS
    assert attribute(full, "x") == full  # no room: left as it was


def test_every_paper_has_its_save_button_right_under_it_and_24_fit_a_message() -> None:
    reply = papers_reply(60)
    messages = to_messages(reply)
    saved = []
    for message in messages:
        _within_limits(message)
        blocks = list(message.blocks)
        for at, block in enumerate(blocks):
            if "accessory" in block:
                (button,) = blocks[at + 1]["elements"]
                assert blocks[at + 1]["type"] == "actions" and button["text"]["text"] == "Save"
                assert button["action_id"] == f"save_paper:{block['accessory']['value']}"
                saved.append(button["value"])
    assert saved == [p.arxiv_id for g in reply.groups for p in g.papers]
    per_message = [sum("accessory" in b for b in m.blocks) for m in messages]
    assert per_message == [24, 24, 12]


def test_a_private_file_is_an_upload_only_the_asker_gets() -> None:
    bib = File(filename="saved.bib", content="@misc{x,}\n", comment="Your saves.", private=True)
    [message] = to_messages(bib)
    assert message.upload is bib and message.ephemeral
    [public] = to_messages(File(filename="README.md", content="#\n", comment="README."))
    assert not public.ephemeral

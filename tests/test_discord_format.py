"""adapters/discord/format.py: replies to Discord messages, snapshot-tested without a network."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime

import pytest
from discord.utils import escape_markdown

from adapters.discord.format import (
    CONTENT,
    DESCRIPTION,
    EMBED_TOTAL,
    EMBEDS,
    FIELD_VALUE,
    TITLE,
    Attachment,
    embed_size,
    fit,
    format_reply,
    help_message,
    markdown_escaped,
    sized_paper_embed,
    split_content,
    units,
)
from bot.commands.grammar import USAGES
from bot.replies import (
    CommandHelp,
    File,
    KeywordRow,
    KeywordTable,
    PaperGroup,
    Papers,
    PaperView,
    Text,
)
from tests.support.common import FIXTURES
from tests.support.discord import live_links


def paper(n: int = 1, **changes: object) -> PaperView:
    values: dict[str, object] = {
        "arxiv_id": f"2401.{n:05d}",
        "version": 2,
        "title": f"Paper {n}",
        "authors": ("Ada Lovelace", "Alan Turing"),
        "updated": datetime(2024, 1, 2, 3, 4, tzinfo=UTC),
        "comment": "",
        "abstract": "We do things.",
    }
    values.update(changes)
    return PaperView(**values)  # type: ignore[arg-type]


def papers(*views: PaperView, heading: str = "Newest papers", label: str = "") -> Papers:
    return Papers(heading=heading, groups=(PaperGroup(label=label, papers=views),))


def assert_within_limits(message_dict: dict) -> None:
    embeds = message_dict["embeds"]
    assert len(embeds) <= EMBEDS
    assert len(message_dict["content"] or "") <= CONTENT
    total = 0
    for embed in embeds:
        assert len(embed.get("title", "")) <= TITLE
        assert len(embed.get("description", "")) <= DESCRIPTION
        assert len(embed.get("footer", {}).get("text", "")) <= 2048
        assert len(embed.get("author", {}).get("name", "")) <= 256
        assert len(embed.get("fields", [])) <= 25
        for field in embed.get("fields", []):
            assert 1 <= len(field["value"]) <= FIELD_VALUE and 1 <= len(field["name"]) <= 256
        total += sum(
            len(p)
            for p in (
                embed.get("title", ""),
                embed.get("description", ""),
                embed.get("footer", {}).get("text", ""),
                embed.get("author", {}).get("name", ""),
                *(f["name"] + f["value"] for f in embed.get("fields", [])),
            )
        )
    assert total <= EMBED_TOTAL


def test_paper_embed_snapshot() -> None:
    view = paper(
        7,
        title="Diffusion *for* Try-On",
        authors=("A One", "B Two", "C Three", "D Four"),
        comment="CVPR 2024\n  oral",
        abstract="Line one\n  line   two.",
    )
    (message,) = format_reply(papers(view, heading="Now following “try-on”", label="try-on"))
    assert message.as_dict() == {
        "content": "Now following “try-on”",
        "embeds": [
            {
                "type": "rich",
                "title": "Diffusion \\*for\\* Try-On",
                "url": "https://arxiv.org/abs/2401.00007v2",
                "color": 0xB31B1B,
                "author": {"name": "try-on"},
                "description": "Line one line two.",
                "fields": [
                    {"name": "Authors", "value": "A One, B Two, C Three et al.", "inline": True},
                    {"name": "Updated", "value": "2024-01-02", "inline": True},
                    {
                        "name": "PDF",
                        "value": "[2401.00007v2](https://arxiv.org/pdf/2401.00007v2)",
                        "inline": True,
                    },
                    {"name": "Comment", "value": "CVPR 2024 oral", "inline": False},
                ],
                "footer": {"text": "arXiv:2401.00007v2"},
                "flags": 0,
            }
        ],
        "file": None,
        "ephemeral": False,
        "saves": ["2401.00007"],
    }


def test_mentions_and_markdown_are_defused() -> None:
    view = paper(title="@everyone <@&123456789012345678> __x__", abstract="@here ~~gone~~")
    (message,) = format_reply(papers(view, heading="Newest for @everyone"))
    embed = message.as_dict()["embeds"][0]
    assert "@everyone" not in embed["title"] and "@\u200beveryone" in embed["title"]
    assert "<@&123456789012345678>" not in embed["title"]
    assert "\\_\\_x\\_\\_" in embed["title"]
    assert embed["description"] == "@\u200bhere \\~\\~gone\\~\\~"
    assert message.content == "Newest for @\u200beveryone"


MARKDOWN_PIECES = [
    *"abc -#>_*~|`[]()\\<>:/.\n\t ",
    "https://arxiv.org/abs/2401.00001_v2",
    "<https://x.org/a_b>",
    "steam://run/1_2",
    "[a link](https://x.org/*b*)",
    "> ",
    ">>> ",
    "  - ",
    "## ",
    "$x_i^2$",
    "\\alpha",
    "O(n \\log n)",
]


def test_markdown_escaping_is_discord_pys_and_leaves_no_masked_link_live() -> None:
    rng = random.Random(5)
    texts = ["", "plain words", "-x", "  - item", "#h", ">q", "a\n> q", "[a](b)", "x\n\n -y"]
    texts += ["".join(rng.choices(MARKDOWN_PIECES, k=rng.randint(1, 12))) for _ in range(3000)]
    for feed in (FIXTURES / "arxiv-api").glob("*.xml"):
        texts += [e.text or "" for e in ET.parse(feed).iter("{http://www.w3.org/2005/Atom}summary")]
    for text in texts:
        if "[" not in text:
            assert markdown_escaped(text) == escape_markdown(text), text
        assert live_links(markdown_escaped(text)) == [], text


def test_every_masked_link_of_a_line_is_escaped() -> None:
    text = (
        r"see [a](http://evil.example/1) and **b** [c](http://evil.example/2) \\[d](http://e.x/3)"
    )
    assert len(live_links(escape_markdown(text))) == 2  # discord.py's greedy pattern
    escaped = markdown_escaped(text)
    assert live_links(escaped) == []
    assert "\\*\\*b\\*\\*" in escaped  # what lay between two links is escaped too


def test_long_texts_are_trimmed_with_an_ellipsis_and_a_link() -> None:
    view = paper(
        title="T" * 400,
        authors=tuple("N" * 600 for _ in range(3)),
        comment="c" * 2000,
        abstract="word " * 2000,  # 10,000 characters
    )
    (message,) = format_reply(papers(view))
    data = message.as_dict()
    assert_within_limits(data)
    embed = data["embeds"][0]
    assert len(embed["title"]) == TITLE and embed["title"].endswith("…")
    assert embed["description"].endswith("… [more on arXiv](https://arxiv.org/abs/2401.00001v2)")
    assert embed_size(message.embeds[0]) <= EMBED_TOTAL
    assert [f["value"][-1] for f in embed["fields"] if f["name"] in ("Authors", "Comment")] == [
        "…",
        "…",
    ]


def test_many_papers_split_across_messages() -> None:
    views = [paper(n, abstract="x" * 2500) for n in range(25)]
    messages = format_reply(papers(*views, heading="Newest 25"))
    assert len(messages) > 1
    assert messages[0].content == "Newest 25" and all(m.content is None for m in messages[1:])
    for message in messages:
        assert_within_limits(message.as_dict())
    titles = [e.title for m in messages for e in m.embeds]
    assert titles == [f"Paper {n}" for n in range(25)]  # order kept, nothing lost


def test_ten_embeds_a_message_at_most() -> None:
    messages = format_reply(papers(*(paper(n) for n in range(23))))
    assert [len(m.embeds) for m in messages] == [10, 10, 3]


def test_astral_characters_count_twice() -> None:
    assert units("𝔸b") == 3
    trimmed = fit("𝔸" * 300, TITLE)
    assert units(trimmed) <= TITLE and trimmed.endswith("…")


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"comment": "12 pages, *ICML* @everyone", "abstract": "é" * 5000},
        {"title": "𝔸" * 400, "authors": ("𝔹 " * 400,), "abstract": "𝔸_" * 3000},
        {"authors": (), "abstract": "", "comment": " \n "},
    ],
)
@pytest.mark.parametrize("group", ["", "Virtual Try-On 𝔸", "x" * 300])
def test_embed_size_counted_while_building_is_the_embeds_size(
    changes: dict[str, object], group: str
) -> None:
    embed, size = sized_paper_embed(paper(**changes), group)
    assert size == embed_size(embed) <= EMBED_TOTAL


def test_text_is_split_at_lines_and_keeps_ephemeral() -> None:
    text = "\n".join(f"line {i} " + "y" * 90 for i in range(60))
    messages = format_reply(Text(text, ephemeral=True, error=True))
    assert len(messages) > 1
    assert all(m.ephemeral and len(m.content or "") <= CONTENT for m in messages)
    assert "\n".join(m.content or "" for m in messages) == text
    assert split_content("a" * 4500) == ["a" * 2000, "a" * 2000, "a" * 500]


def test_keyword_table() -> None:
    table = KeywordTable(
        rows=(
            KeywordRow("Virtual Try-On", 12, date(2024, 5, 6), "ok"),
            KeywordRow("*bold*", 0, None, "failed", "HTTP 503"),
        ),
        digest="Daily post at 09:00 UTC.",
    )
    (message,) = format_reply(table)
    (embed,) = message.as_dict()["embeds"]
    assert embed["title"] == "Keywords followed in this channel"
    assert embed["description"].split("\n") == [
        "**Virtual Try-On**: 12 papers, newest 2024-05-06, last fetch ok",
        "**\\*bold\\***: 0 papers, no papers yet, last fetch failed: HTTP 503",
    ]
    assert embed["footer"] == {"text": "Daily post at 09:00 UTC."}
    empty = format_reply(KeywordTable(rows=(), digest="Daily post: off."))
    assert empty[0].content == (
        "No keywords followed here yet. Start with `/papers add`.\nDaily post: off."
    )


def test_many_keywords_stay_within_limits() -> None:
    rows = tuple(KeywordRow("k" * 100 + str(i), i, None, "never") for i in range(300))
    messages = format_reply(KeywordTable(rows=rows, digest="Daily post at 09:00 UTC."))
    for message in messages:
        assert_within_limits(message.as_dict())
    text = "\n".join(e.description or "" for m in messages for e in m.embeds)
    assert text.count("\n") == 299


def test_file_reply_is_an_attachment() -> None:
    (message,) = format_reply(File("README.md", "# Daily Papers\n", "README of @here"))
    assert message.as_dict() == {
        "content": "README of @\u200bhere",
        "embeds": [],
        "file": ("README.md", b"# Daily Papers\n"),
        "ephemeral": False,
        "saves": [],
    }
    (bib,) = format_reply(File("saved.bib", "@misc{x,}\n", "Your saves.", private=True))
    assert bib.ephemeral and bib.file == Attachment("saved.bib", b"@misc{x,}\n")


def test_every_paper_of_a_message_gets_a_save_button_in_order() -> None:
    reply = papers(*(paper(i) for i in range(1, 24)), heading="23 papers")
    messages = format_reply(reply)
    assert [len(m.saves) for m in messages] == [len(m.embeds) for m in messages]
    assert [i for m in messages for i in m.saves] == [f"2401.{i:05d}" for i in range(1, 24)]
    for message in messages:
        footers = [embed.footer.text for embed in message.embeds]
        assert footers == [f"arXiv:{i}v2" for i in message.saves]  # button n is embed n's paper


def test_heading_over_the_content_limit_is_trimmed() -> None:
    (message,) = format_reply(Papers(heading="x" * 3000, groups=()))
    assert message.embeds == () and message.content == "x" * (CONTENT - 1) + "…"


@pytest.mark.parametrize("reply", [Papers(heading=" ", groups=()), Text(""), Text(" \n ")])
def test_nothing_to_say_is_no_message(reply: Papers | Text) -> None:
    assert format_reply(reply) == []  # an empty message would be a 400


def test_help_message() -> None:
    message = help_message(
        CommandHelp(USAGES[:2], managers="members with Manage Channels"),
        {"add": "/papers add keyword"},
    )
    assert message.ephemeral
    assert message.embeds[0].description == (
        "`/papers add keyword`: follow a keyword here; fetches it if new (managers)\n"
        "`/papers remove <keyword>`: stop following a keyword here (managers)"
    )
    assert message.embeds[0].footer.text == "Managers here: members with Manage Channels."
    (everyone,) = format_reply(CommandHelp(USAGES[:1]))
    assert "(managers)" not in (everyone.embeds[0].description or "")

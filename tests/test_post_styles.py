"""`digest style full|compact` on both platforms, rendered as the daily post's parts (threads on
and off): 100 papers with 2,000-character abstracts, 500 authors and long titles stay within
Block Kit's limits (50 blocks, 3000 characters a section, 150 a header, 10 elements an actions
or context block) and Discord's (256 a title, 4096 a description, 6000 a message, 10 embeds,
2000 of content, 5 rows of 5 buttons); every paper once, with its Save button."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import discord
import pytest

from adapters.discord.buttons import save_view
from adapters.discord.format import CONTENT, DESCRIPTION, EMBED_TOTAL, EMBEDS, TITLE
from adapters.discord.format import embed_size as discord_embed_size
from adapters.discord.poster import DiscordPoster
from adapters.slack.format import MAX_BLOCKS, MAX_HEADER, MAX_SECTION
from adapters.slack.poster import SlackPoster
from bot.posts.poster import Part
from bot.replies import PaperGroup, Papers, PaperView

AUTHORS = tuple(f"Author Number{i} Surname" for i in range(500))


def huge_post(style: str, more: int = 0) -> Papers:
    papers = [
        PaperView(
            arxiv_id=f"2603.{i:05d}",
            version=2,
            title=f"A long title {i} " + "with many words " * 30,
            authors=AUTHORS,
            updated=datetime(2026, 3, 2, tzinfo=UTC),
            comment="Accepted at a venue; " * 20,
            abstract=("word " * 400)[:2000],
        )
        for i in range(100)
    ]
    groups = tuple(
        PaperGroup(f"Keyword {g}", tuple(papers[g * 25 : g * 25 + 25])) for g in range(4)
    )
    return Papers(
        heading=f"{100 + more} new papers on arXiv", groups=groups, style=style, more=more
    )


def _all_papers(post: Papers) -> list[str]:
    return [p.arxiv_id for g in post.groups for p in g.papers]


def _slack_limits(part: Part) -> None:
    blocks = part.body["blocks"]
    assert 0 < len(blocks) <= MAX_BLOCKS
    assert 0 < len(part.body["text"]) <= 3000
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= MAX_HEADER
        elif block["type"] == "section":
            assert len(block["text"]["text"]) <= MAX_SECTION
        else:
            assert block["type"] in ("actions", "context") and len(block["elements"]) <= 10


@pytest.mark.parametrize("threads", [False, True])
@pytest.mark.parametrize("style", ["full", "compact"])
def test_slack_styles_keep_block_kit_limits_for_100_huge_papers(style: str, threads: bool) -> None:
    poster = SlackPoster(tokens=lambda _: None, clients=lambda _: None)  # type: ignore[arg-type, return-value]
    post = huge_post(style, more=7)
    parts = poster.render(post, claim=1, threads=threads)
    for part in parts:
        _slack_limits(part)
    assert [pid for p in parts for pid in p.papers] == _all_papers(post)
    blocks = [b for p in parts for b in p.body["blocks"]]
    saves = [b["elements"][0]["value"] for b in blocks if b["type"] == "actions"]
    assert saves == _all_papers(post)  # a Save button on every paper
    sections = [b for b in blocks if b.get("accessory", {}).get("value") in saves]
    assert [b["accessory"]["text"]["text"] for b in sections] == ["Show abstract"] * 100
    text = sections[0]["text"]["text"]
    if style == "full":  # the abstract's start in the message, cut at a word with "…"
        assert "word word" in text and text.endswith("…")
        abstract = text.rsplit("\n", 1)[1]
        assert len(abstract) <= 600 and abstract.endswith("word…")
    else:  # one line: title link, first author et al., date
        assert "\n" not in text and "word word" not in text
        assert "Author Number0 Surname et al. · 2026-03-02" in text
        assert "Number1" not in text
    closing = parts[-1].body["blocks"][-1]
    assert closing["type"] == "context"
    assert closing["elements"][0]["text"] == (
        "7 more papers wait for the next post; `/papers digest now` posts them now, "
        "`/papers list 20` shows the 20 newest."
    )


def _discord_limits(part: Part) -> None:
    embeds = part.body["embeds"]
    assert len(embeds) <= EMBEDS and (embeds or part.body["content"])
    assert len(part.body["content"] or "") <= CONTENT
    for embed in embeds:
        assert len(embed.get("title", "")) <= TITLE
        assert len(embed.get("description", "")) <= DESCRIPTION
    assert sum(discord_embed_size(discord.Embed.from_dict(e)) for e in embeds) <= EMBED_TOTAL


@pytest.mark.parametrize("threads", [False, True])
@pytest.mark.parametrize("style", ["full", "compact"])
async def test_discord_styles_keep_embed_and_button_limits_for_100_huge_papers(
    style: str, threads: bool
) -> None:
    poster = DiscordPoster(None, asyncio.Event())  # type: ignore[arg-type]  # render is pure
    post = huge_post(style, more=7)
    parts = poster.render(post, claim=1, threads=threads)
    for part in parts:
        _discord_limits(part)
        view = save_view(part.body["saves"], part.body["abstracts"])  # as sent
        rows = view.to_components()
        assert len(rows) <= 5 and all(len(r["components"]) <= 5 for r in rows)
    assert [pid for p in parts for pid in p.papers] == _all_papers(post)
    assert [pid for p in parts for pid in p.body["saves"]] == _all_papers(post)
    abstracts = [pid for p in parts for pid in p.body["abstracts"]]
    first = parts[1 if threads else 0].body["embeds"]
    if style == "compact":  # one line per paper, the abstract behind a button
        assert abstracts == _all_papers(post)
        lines = first[0]["description"].split("\n")
        assert lines[0] == "**Keyword 0**" and len(lines) == 11
        assert "Author Number0 Surname et al. · 2026-03-02" in lines[1]
        assert "word word" not in first[0]["description"]
    else:  # as lists: an embed per paper, the abstract its description
        assert abstracts == []
        assert first[0]["description"].startswith("word word")
    assert parts[-1].body["content"].startswith("7 more papers wait for the next post;")

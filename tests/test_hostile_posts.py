"""The daily post's styles (full, compact; threads on and off) with hostile arXiv text and
typed labels: `@everyone`, `<!channel>`, masked links, bidi controls, a 2,000-character
abstract, 500 authors. Nothing pings, no link but arXiv's is live, no format character
reaches either platform (SPEC section 8), and the platforms' limits hold."""

from __future__ import annotations

import asyncio
import json
import re
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import discord
import pytest

from adapters.discord.format import CONTENT, EMBED_TOTAL, EMBEDS, paper_embed
from adapters.discord.format import embed_size as discord_embed_size
from adapters.discord.poster import DiscordPoster
from adapters.discord.posts import compact_line
from adapters.slack.format import MAX_BLOCKS, MAX_SECTION, abstract_message
from adapters.slack.poster import SlackPoster
from bot.replies import PaperGroup, Papers, PaperView
from tests.support.discord import live_links, rendered_texts

RLO, LRI, ZWSP = "\u202e", "\u2066", "\u200b"
EVIL = "[click me](https://evil.example/x)"
SHOUT = (
    "@everyone @here <!channel> <!here|here> <@U0ADMIN> <#C0GENERAL> "
    f"<@123456789012345678> <@&123456789012345678> {RLO}gnp.exe"
)
CLOSER = "x](https://evil.example/y) [z"  # would close our own link early


def hostile(i: int) -> PaperView:
    return PaperView(
        arxiv_id=f"2603.{i:05d}",
        version=1,
        title=f"{CLOSER} {SHOUT} {EVIL} ||spoiler|| `code` *bold* {i}",
        authors=tuple(f"@everyone {EVIL} Author{n}{LRI}" for n in range(500)),
        updated=datetime(2026, 3, 2, tzinfo=UTC),
        comment=f"{EVIL} {SHOUT}",
        abstract=(f"{SHOUT} {EVIL} <https://evil.example|also evil> " * 40)[:2000],
    )


def hostile_post(style: str) -> Papers:
    papers = tuple(hostile(i) for i in range(30))
    groups = (
        PaperGroup(f"{EVIL} @everyone{RLO}", papers[:15]),
        PaperGroup("<!channel> label", papers[15:]),
    )
    return Papers(heading="30 new papers on arXiv", groups=groups, style=style, more=3)


SHAPES = [(style, threads) for style in ("full", "compact") for threads in (False, True)]


def _no_format_characters(text: str, ours: str = "") -> None:
    """None but `ours` (Discord: the zero-width space that escapes `@everyone`)."""
    assert not [c for c in text if unicodedata.category(c) == "Cf" and c not in ours], text[:200]


@pytest.mark.parametrize(("style", "threads"), SHAPES)
def test_slack_hostile_text_pings_nobody_links_only_arxiv_within_block_kit(
    style: str, threads: bool
) -> None:
    poster = SlackPoster(tokens=None, clients=None)  # type: ignore[arg-type]  # render is pure
    parts = poster.render(hostile_post(style), claim=1, threads=threads)
    for part in parts:
        blocks = part.body["blocks"]
        assert len(blocks) <= MAX_BLOCKS and len(part.body["text"]) <= 3000
        texts = [part.body["text"], *_slack_texts(blocks)]
        for text in texts:
            assert len(text) <= MAX_SECTION
            _no_format_characters(text)
            # Slack's special mentions and links are <...>: only our arXiv links may be.
            for inside in re.findall(r"<([^>]*)>", text):
                assert re.match(r"https://arxiv\.org/", inside), inside
        for button in _buttons(blocks):
            assert len(button.get("value", "")) <= 2000 and len(button["action_id"]) <= 255
    shown = [pid for p in parts for pid in p.papers]
    assert len(shown) == 30 == len(set(shown))


def _slack_texts(blocks: list[dict[str, Any]]) -> list[str]:
    texts = []
    for block in blocks:
        if "text" in block:
            texts.append(block["text"]["text"])
        for element in block.get("elements", []):
            if isinstance(element.get("text"), str):
                texts.append(element["text"])
            elif isinstance(element.get("text"), dict):
                texts.append(element["text"]["text"])
    return texts


def _buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = [b["accessory"] for b in blocks if b.get("accessory", {}).get("type") == "button"]
    for block in blocks:
        found += [e for e in block.get("elements", []) if e.get("type") == "button"]
    return found


@pytest.mark.parametrize(("style", "threads"), SHAPES)
def test_discord_hostile_text_pings_nobody_links_only_arxiv_within_embed_limits(
    style: str, threads: bool
) -> None:
    poster = DiscordPoster(None, asyncio.Event())  # type: ignore[arg-type]  # render is pure
    parts = poster.render(hostile_post(style), claim=1, threads=threads)
    for part in parts:
        body = part.body
        assert len(body["content"] or "") <= CONTENT and len(body["embeds"]) <= EMBEDS
        embeds = [discord.Embed.from_dict(e) for e in body["embeds"]]
        assert sum(discord_embed_size(e) for e in embeds) <= EMBED_TOTAL
        for text in rendered_texts(body) + [
            e.get("author", {}).get("name", "") for e in body["embeds"]
        ]:
            _no_format_characters(text, ours=ZWSP)
            assert live_links(text) == [], text[:300]
            # Mentions are escaped as well as switched off when sent (AllowedMentions.none()).
            assert not re.search(r"(?<![\\\u200b])@(everyone|here)", text), text[:300]
            assert not re.search(r"<@[!&]?\d", text), text[:300]
        assert len(json.dumps(body)) < 60_000
    shown = [pid for p in parts for pid in p.papers]
    assert len(shown) == 30 == len(set(shown))


def test_discord_a_compact_title_cannot_close_our_link_early() -> None:
    """Discord's link syntax ignores escapes in a link's text: `x\\](https://evil)` would still
    close it, so the title's square brackets are shown as full-width look-alikes."""
    line = compact_line(replace(hostile(1), title=CLOSER))
    assert line.startswith("[x］(https://evil.example/y) ［z](https://arxiv.org/abs/2603.00001v1)")
    assert live_links(line) == []


def test_the_abstract_buttons_answers_keep_hostile_text_inert() -> None:
    """Slack's Show abstract and Discord's Abstract answer with the whole abstract."""
    paper = hostile(1)
    slack = abstract_message(paper).payload()
    for text in _slack_texts(slack["blocks"]):
        _no_format_characters(text)
        assert all(re.match(r"https://arxiv\.org/", i) for i in re.findall(r"<([^>]*)>", text))
    embed = paper_embed(paper).to_dict()
    for text in rendered_texts({"embeds": [embed]}):
        _no_format_characters(text, ours=ZWSP)
        assert live_links(text) == [] and not re.search(r"(?<!\u200b)@everyone", text)

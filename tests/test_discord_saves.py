"""Discord's side of saved papers and feeds: a Save button per paper on `list` answers and daily
posts (persistent dynamic items, understood after a restart), each press answered ephemerally;
`saved bibtex` as an ephemeral attachment; `feed` only for the asker. Interactions are handed to
the client directly (tests/support/discord_direct.py)."""

from __future__ import annotations

from typing import Any

import bibtexparser

from bot.commands.core import Core, Place
from bot.commands.grammar import Saved
from bot.replies import PaperGroup, Papers, Text
from tests.fakes.arxiv_server import ArxivStandIn
from tests.support.common import snapshot
from tests.support.discord import MANAGER, MESSAGE, entries, follow
from tests.support.discord_direct import EPHEMERAL, Direct, Sent, front_end

ADA, BOB = "4001", "4002"
SUPPRESS_EMBEDS = 1 << 2


def _buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [part for row in message["components"] for part in row["components"]]


async def _listed(direct: Direct, core: Core, arxiv_api: ArxivStandIn, n: int = 3) -> Sent:
    arxiv_api.add_entries("diffusion", entries(n))
    follow(core, direct, "diffusion")  # type: ignore[arg-type]
    first, *_ = direct.answers(await direct.command("list", {"limit": n}))  # 10 a message
    return first


async def _press(direct: Direct, message: dict[str, Any], custom_id: str, user: str) -> Sent:
    (answer,) = direct.answers(await direct.press(message, custom_id, user_id=user))
    return answer


def _saved(core: Core, direct: Direct, user: str) -> str:
    place = Place("discord", direct.guild_id, direct.channel_id, user_id=user)
    (reply,) = core.execute(place, Saved())
    assert isinstance(reply, Text)
    return reply.text


async def test_list_answers_carry_a_save_button_per_paper(
    direct: Direct, core: Core, arxiv_api: ArxivStandIn
) -> None:
    answer = await _listed(direct, core, arxiv_api, n=12)
    assert answer.kind == "callback"
    buttons = _buttons(answer.message)
    ids = [embed["url"].rsplit("/", 1)[1].removesuffix("v1") for embed in answer.embeds]
    assert [b["custom_id"] for b in buttons] == [f"papers:save:{i}" for i in ids]
    assert [b["label"] for b in buttons] == [f"Save {i}" for i in ids]
    assert len(answer.message["components"]) <= 5
    assert all(len(row["components"]) <= 5 for row in answer.message["components"])


async def test_a_save_press_saves_for_who_pressed_and_answers_only_them(
    direct: Direct, core: Core, arxiv_api: ArxivStandIn
) -> None:
    answer = await _listed(direct, core, arxiv_api)
    assert answer.kind == "callback"
    first = await _press(direct, answer.message, "papers:save:2401.00002", ADA)
    again = await _press(direct, answer.message, "papers:save:2401.00002", ADA)
    assert first.type == MESSAGE and first.flags & EPHEMERAL
    assert first.content is not None and first.content.startswith("Saved “Paper 2” for you")
    assert again.flags & EPHEMERAL and "already among your saved papers" in (again.content or "")
    assert "2401.00002" in _saved(core, direct, ADA)
    assert "2401.00002" not in _saved(core, direct, BOB)


async def test_a_save_button_works_after_a_restart(
    direct: Direct, core: Core, arxiv_api: ArxivStandIn
) -> None:
    answer = await _listed(direct, core, arxiv_api)
    async with Direct(front_end(core)) as restarted:  # a new process: nothing of the first
        pressed = await _press(restarted, answer.message, "papers:save:2401.00003", BOB)
    assert pressed.flags & EPHEMERAL and "Saved" in (pressed.content or "")
    assert "2401.00003" in _saved(core, direct, BOB)


async def test_a_forged_save_id_is_answered_and_stores_nothing(
    direct: Direct, core: Core, arxiv_api: ArxivStandIn
) -> None:
    answer = await _listed(direct, core, arxiv_api)
    assert answer.kind == "callback"
    forged = dict(answer.message)
    forged["components"] = [
        {
            "type": 1,
            "components": [{"type": 2, "style": 2, "label": "x", "custom_id": "papers:save:99"}],
        }
    ]
    before = snapshot(core.engine)
    pressed = await _press(direct, forged, "papers:save:99", ADA)
    assert pressed.flags & EPHEMERAL and "is not an arXiv id" in (pressed.content or "")
    assert snapshot(core.engine) == before


async def test_daily_posts_carry_save_buttons(
    direct: Direct, core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("diffusion", entries(2))
    follow(core, direct, "diffusion")
    post = Papers(
        heading="2 new papers",
        groups=(PaperGroup("diffusion", tuple(_views(core, "2401.00002", "2401.00001"))),),
    )
    for part in direct.fe.poster.render(post, claim=1):  # stored between render and send: as JSON
        await direct.fe.poster.send(workspace=direct.guild_id, channel=direct.channel_id, part=part)
    (posted,) = direct.channel_messages()
    assert [b["custom_id"] for b in _buttons(posted.message)] == [
        "papers:save:2401.00002",
        "papers:save:2401.00001",
    ]
    pressed = await _press(direct, posted.message, "papers:save:2401.00001", ADA)
    assert pressed.flags & EPHEMERAL and "2401.00001" in _saved(core, direct, ADA)


async def test_a_compact_post_has_save_and_abstract_buttons_and_abstract_answers_only_the_presser(
    direct: Direct, core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("diffusion", entries(2))
    follow(core, direct, "diffusion")
    papers = tuple(_views(core, "2401.00002", "2401.00001"))
    post = Papers(
        heading="2 new papers", groups=(PaperGroup("diffusion", papers),), style="compact"
    )
    for part in direct.fe.poster.render(post, claim=1):  # stored between render and send: as JSON
        await direct.fe.poster.send(workspace=direct.guild_id, channel=direct.channel_id, part=part)
    (posted,) = direct.channel_messages()
    assert [b["custom_id"] for b in _buttons(posted.message)] == [
        "papers:save:2401.00002",
        "papers:save:2401.00001",
        "papers:abstract:2401.00002",
        "papers:abstract:2401.00001",
    ]
    (embed,) = posted.embeds
    assert len(embed["description"].split("\n")) == 3  # the keyword, then a line per paper
    before = snapshot(core.engine)
    pressed = await _press(direct, posted.message, "papers:abstract:2401.00001", ADA)
    assert pressed.flags & EPHEMERAL
    (shown,) = pressed.embeds
    assert shown["url"].endswith("/abs/2401.00001v1") and shown["description"] == papers[1].abstract
    assert snapshot(core.engine) == before  # reading an abstract stores nothing


def _views(core: Core, *ids: str) -> list[Any]:
    views = [core.paper(arxiv_id) for arxiv_id in ids]
    assert all(views)
    return views


async def test_saved_bibtex_is_an_ephemeral_attachment(
    direct: Direct, core: Core, arxiv_api: ArxivStandIn
) -> None:
    answer = await _listed(direct, core, arxiv_api)
    assert answer.kind == "callback"
    await _press(direct, answer.message, "papers:save:2401.00001", ADA)
    sent = await direct.command("saved", {"format": "bibtex"}, user_id=ADA)
    (bib,) = direct.answers(sent)
    assert bib.flags & EPHEMERAL
    ((name, raw),) = bib.files
    data = raw.decode()
    assert name == "saved.bib"
    (entry,) = bibtexparser.parse_string(data).entries
    assert entry.key == "2401.00001" and entry["archivePrefix"] == "arXiv"


async def test_feed_answers_its_url_only_to_the_asker(direct: Direct) -> None:
    (answer,) = direct.answers(await direct.command("feed", {"reset": True}, permissions=MANAGER))
    assert answer.flags & EPHEMERAL
    assert answer.flags & SUPPRESS_EMBEDS  # no link preview: Discord's crawler never fetches it
    assert "/feeds/" in (answer.content or "") and "stopped working" in (answer.content or "")

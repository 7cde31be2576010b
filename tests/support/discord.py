"""The Discord front end started against the loopback gateway and REST stand-in, and readers of
what it answered (helpers of the Discord tests)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlmodel import select

from adapters import command_service
from adapters.command_service import CommandService
from adapters.discord.bot import DiscordFrontEnd
from adapters.discord.interactions import MANAGERS
from bot.commands.core import Core, Place
from bot.commands.grammar import Add
from bot.config import Settings
from bot.replies import Text
from bot.storage import store
from bot.storage.db import read_session
from bot.storage.models import Channel, Subscription, Workspace
from tests.fakes.arxiv_server import make_entry
from tests.fakes.discord_server import (
    EVERYONE_PERMISSIONS,
    DiscordStandIn,
    Posted,
    SentInteraction,
)

MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
MANAGER = EVERYONE_PERMISSIONS | MANAGE_CHANNELS
MEMBER = EVERYONE_PERMISSIONS
DEFERRED, MESSAGE, AUTOCOMPLETE = 5, 4, 8
NOT_MANAGER = f"Only {MANAGERS} can do that here. Anyone can use `keywords`, `list`, `readme`, `preview`, `save`, `saved`, `unsave` and `help`."


async def _no_identify_wait(shard_id: int | None, *, initial: bool = False) -> None:
    return None  # discord.py sleeps 5 s before a re-IDENTIFY; pointless on loopback


def discord_settings(settings: Settings, ds: DiscordStandIn, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "discord_bot_token": SecretStr(ds.token),
        "discord_guild_id": int(ds.guild_id),
        "discord_api_url": ds.api_base,
        "discord_gateway_url": ds.gateway_url,
    }
    values.update(changes)
    return settings.model_copy(update=values)


async def started(
    core: Core, ds: DiscordStandIn, *, service: CommandService | None = None, **changes: Any
) -> DiscordFrontEnd:
    settings = discord_settings(core.settings, ds, **changes)
    core = Core(settings, core.engine, core.gateway, clock=core.clock)
    options = {"guild_ready_timeout": 0.05}
    front_end = DiscordFrontEnd(core, service=service, client_options=options)
    front_end.client.before_identify_hook = _no_identify_wait  # type: ignore[method-assign]
    await front_end.start()
    await ds.wait_until_ready(count=ds.ready_count + 1)
    await asyncio.wait_for(front_end.client.wait_until_ready(), 3)
    return front_end


# -- helpers ------------------------------------------------------------------


def entries(n: int, prefix: str = "2401", **fields: Any) -> list[bytes]:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    return [
        make_entry(
            arxiv_id=f"{prefix}.{i:05d}",
            title=fields.get("title", f"Paper {i}"),
            summary=fields.get("summary", f"Abstract {i}."),
            authors=("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"),
            updated=base + timedelta(days=i),
        )
        for i in range(1, n + 1)
    ]


async def answers(ds: DiscordStandIn, sent: SentInteraction, count: int = 1) -> list[Posted]:
    """The callback plus follow-ups once `count` messages with content have arrived."""

    def ready() -> list[Posted] | None:
        posted = [p for p in ds.callbacks(sent) + ds.followups(sent) if p.type != DEFERRED]
        return posted if len(posted) >= count else None

    return await ds.wait_for(ready)


def subscriptions(core: Core) -> list[tuple[str, str, str]]:
    """(guild, channel, label) of every subscription."""
    with read_session(core.engine) as session:
        rows = session.exec(
            select(Workspace.external_id, Channel.external_id, Subscription.label)
            .join(Channel, Channel.workspace_id == Workspace.id)
            .join(Subscription, Subscription.channel_id == Channel.id)
        ).all()
    return sorted((str(g), str(c), str(label)) for g, c, label in rows)


def channel_row(core: Core, ds: DiscordStandIn, channel_id: str | None = None) -> Channel | None:
    with read_session(core.engine) as session:
        workspace = store.find_workspace(session, platform="discord", external_id=ds.guild_id)
        if workspace is None:
            return None
        return store.find_channel(
            session, workspace=workspace, external_id=channel_id or ds.channel_id
        )


def follow(
    core: Core,
    ds: DiscordStandIn,
    *labels: str,
    channel_id: str | None = None,
    guild_id: str | None = None,
) -> None:
    """Follow keywords through the core, as a manager of the channel would."""
    place = Place("discord", guild_id or ds.guild_id, channel_id or ds.channel_id)
    for label in labels:
        replies = core.execute(place, Add(label))
        assert not any(isinstance(r, Text) and r.error for r in replies), replies


def slow_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command takes longer than the core's quick answer: it is deferred first."""
    monkeypatch.setattr(command_service, "QUICK_SECONDS", 0.0)


# -- judging what was posted ------------------------------------------------------------

# "[" after an even number of backslashes (none included) opens a link; after an odd one it is text
_LIVE_LINK = re.compile(r"(?<!\\)(?:\\\\)*\[([^\]\n]*)\]\(\s*<?(https?://[^)\s>]+)")
_MARKUP = "*_~|["


def live_links(text: str) -> list[str]:
    """Every masked link Discord would render clickable, except those to arxiv.org."""
    return [
        f"[{label}]({url})"
        for label, url in _LIVE_LINK.findall(text)
        if not re.match(r"https?://(export\.)?arxiv\.org/", url)
    ]


def _echoed_raw(text: str, typed: str) -> bool:
    """`typed` appears in `text` with one of its markup characters not escaped."""
    if not any(c in typed for c in _MARKUP):
        return False
    pattern = "".join(
        f"(\\\\)?{re.escape(c)}" if c in _MARKUP else re.escape(c) for c in " ".join(typed.split())
    )
    return any(None in m.groups() for m in re.finditer(pattern, text))


def rendered_texts(data: dict[str, Any]) -> list[str]:
    """Every text of a message that Discord renders as markdown."""
    texts = [data.get("content") or ""]
    for embed in data.get("embeds") or []:
        texts += [embed.get("title") or "", embed.get("description") or ""]
        texts += [(embed.get("footer") or {}).get("text") or ""]
        texts += [
            f"{f.get('name') or ''} {f.get('value') or ''}" for f in embed.get("fields") or []
        ]
    return [t for t in texts if t]


def judge(everything: Iterable[Any], typed: set[str]) -> list[str]:
    """What a reader would see go wrong in everything posted (each with ``kind`` and ``data``):
    a live masked link not to arXiv, or text typed into an option echoed with its markdown
    unescaped ("||x||" as a spoiler)."""
    found = []
    for posted in everything:
        for text in rendered_texts(posted.data):
            found += [f"{posted.kind}: live link {link}" for link in live_links(text)]
            found += [f"{posted.kind}: unescaped echo {t!r}" for t in typed if _echoed_raw(text, t)]
    return found


class CommandRecorder:
    """The runner `papers_group` hands its handlers: records the command each one builds."""

    def __init__(self) -> None:
        self.commands: list[object] = []

    async def run(self, interaction: object, make: Callable[[], object]) -> None:
        self.commands.append(make())

    async def keyword_choices(self, interaction: object, current: str) -> list[object]:
        return []

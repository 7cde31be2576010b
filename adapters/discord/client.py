"""The discord.py client: one connection or auto-sharded, minimal intents, redirectable URLs."""

from __future__ import annotations

from typing import Any, Protocol

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord.format import NO_MENTIONS
from bot.config import ConfigError, Settings


class Hooks(Protocol):
    """What the client hands over to the front end."""

    async def sync_commands(self) -> None: ...

    async def guild_removed(self, guild_id: int) -> None: ...


class _PapersHooks:
    """discord.py calls these on the client; they go to the front end."""

    hooks: Hooks

    async def setup_hook(self) -> None:
        await self.hooks.sync_commands()

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        await self.hooks.guild_removed(guild.id)


class PapersClient(_PapersHooks, discord.Client):
    """One gateway connection."""


class ShardedPapersClient(_PapersHooks, discord.AutoShardedClient):
    """The shards in DISCORD_SHARD_IDS of DISCORD_SHARD_COUNT (or all of them)."""


def make_client(settings: Settings, **overrides: Any) -> discord.Client:
    """A plain client, or an auto-sharded one when DISCORD_SHARD_IDS / DISCORD_SHARD_COUNT say so.

    `overrides` are further discord.py client options (tests pass `guild_ready_timeout`).
    """
    # The bot never joins voice: no start-up warnings about voice libraries it does not need.
    discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
    intents = discord.Intents.none()
    intents.guilds = True  # guild joins/leaves and the channel cache; no privileged intents
    options: dict[str, Any] = {
        "intents": intents,
        "allowed_mentions": NO_MENTIONS,
        "member_cache_flags": discord.MemberCacheFlags.none(),
        "chunk_guilds_at_startup": False,
        **overrides,
    }
    ids, count = settings.discord_shard_ids, settings.discord_shard_count
    if ids is None and count is None:
        return PapersClient(**options)
    if ids is not None and count is None:
        raise ConfigError("DISCORD_SHARD_IDS is set but DISCORD_SHARD_COUNT is missing")
    if ids is not None and count is not None and any(i >= count for i in ids):
        raise ConfigError(
            f"DISCORD_SHARD_IDS must be below DISCORD_SHARD_COUNT ({count}), got {list(ids)}"
        )
    if ids is not None:
        options["shard_ids"] = list(ids)
    return ShardedPapersClient(shard_count=count, **options)


def redirect(settings: Settings) -> list[tuple[type, str, Any]]:
    """Apply DISCORD_API_URL / DISCORD_GATEWAY_URL (discord.py reads two class attributes);
    returns what to put back with `restore`."""
    targets: list[tuple[type, str, Any]] = []
    if settings.discord_api_url:
        targets.append((Route, "BASE", settings.discord_api_url.rstrip("/")))
    if settings.discord_gateway_url:
        targets.append(
            (DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(settings.discord_gateway_url))
        )
    previous = []
    for owner, name, value in targets:
        previous.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)
    return previous


def restore(previous: list[tuple[type, str, Any]]) -> None:
    for owner, name, value in reversed(previous):
        setattr(owner, name, value)

"""The discord.py client: its dependencies come in through its constructor (discord.py's
examples/advanced_startup.py shape), the /papers tree is synced in `setup_hook`, and
DISCORD_API_URL / DISCORD_GATEWAY_URL redirect this client only, never the process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import HTTPClient, Route
from discord.webhook.async_ import AsyncWebhookAdapter, async_context

from adapters.discord.format import NO_MENTIONS
from bot.config import ConfigError, Settings


class Handlers(Protocol):
    """What the client hands over to the front end."""

    def tree_for(self, client: discord.Client) -> app_commands.CommandTree[Any]: ...

    async def sync_commands(self, tree: app_commands.CommandTree[Any]) -> None: ...

    async def guild_removed(self, guild_id: int) -> None: ...

    async def channel_deleted(self, guild_id: int, channel_id: int) -> None: ...

    async def save_pressed(self, interaction: discord.Interaction, arxiv_id: str) -> None: ...

    async def abstract_pressed(self, interaction: discord.Interaction, arxiv_id: str) -> None: ...


@dataclass(frozen=True)
class Endpoints:
    """Where this client's REST calls and gateway connection go (None: Discord's own)."""

    api: str | None = (
        None  # replaces https://discord.com/api/v10, e.g. http://127.0.0.1:8080/api/v10
    )
    gateway: str | None = None  # replaces wss://gateway.discord.gg/ for a first connection

    @property
    def redirected(self) -> bool:
        return bool(self.api or self.gateway)

    def route(self, route: Route) -> Route:
        """The route with its URL on our REST base (rate-limit buckets keep their keys)."""
        if self.api and route.url.startswith(Route.BASE):
            route.url = self.api.rstrip("/") + route.url[len(Route.BASE) :]
        return route

    def gateway_url(self, url: str) -> str:
        """Discord's default gateway URL replaced by ours, its query (version, encoding) kept;
        READY's resume URL is the gateway's own and stays."""
        wanted, default = yarl.URL(url), DiscordWebSocket.DEFAULT_GATEWAY
        if not self.gateway or (wanted.host, wanted.path) != (default.host, default.path):
            return url
        return str(yarl.URL(self.gateway).with_query(wanted.query))


class _EndpointsHTTP(HTTPClient):
    """discord.py's HTTP client with every REST route and the first gateway URL redirected."""

    def __init__(self, endpoints: Endpoints, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.endpoints = endpoints

    async def request(self, route: Route, **kwargs: Any) -> Any:
        return await super().request(self.endpoints.route(route), **kwargs)

    async def ws_connect(self, url: str, *, compress: int = 0) -> Any:
        return await super().ws_connect(self.endpoints.gateway_url(url), compress=compress)


class _EndpointsWebhooks(AsyncWebhookAdapter):
    """Interaction callbacks and follow-ups build their own routes: redirected here."""

    def __init__(self, endpoints: Endpoints) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # discord.py leaves it unannotated
        self.endpoints = endpoints

    async def request(self, route: Route, *args: Any, **kwargs: Any) -> Any:
        return await super().request(self.endpoints.route(route), *args, **kwargs)


class _Papers:
    """What the /papers client adds to discord.py's: its tree, its events, its endpoints."""

    http: HTTPClient

    def __init__(self, *, handlers: Handlers, endpoints: Endpoints, **options: Any) -> None:
        self.handlers = handlers
        self.endpoints = endpoints  # read by _get_state, which discord.py calls in __init__
        super().__init__(**options)
        self.tree = handlers.tree_for(self)  # type: ignore[arg-type]

    def _get_state(self, **options: Any) -> Any:
        # The connection state keeps the HTTP client it is built with: give it ours first.
        if self.endpoints.redirected:
            old = self.http
            self.http = _EndpointsHTTP(
                self.endpoints,
                old.loop,
                proxy=old.proxy,
                proxy_auth=old.proxy_auth,
                unsync_clock=not old.use_clock,
                http_trace=old.http_trace,
                max_ratelimit_timeout=old.max_ratelimit_timeout,
            )
        return super()._get_state(**options)  # type: ignore[misc]

    async def connect(self, *, reconnect: bool = True) -> None:
        # Interaction answers go through a context variable's webhook adapter; set in this
        # task, it reaches every handler task the gateway starts, and nothing else.
        if self.endpoints.redirected:
            async_context.set(_EndpointsWebhooks(self.endpoints))
        await super().connect(reconnect=reconnect)  # type: ignore[misc]

    async def setup_hook(self) -> None:
        await self.handlers.sync_commands(self.tree)

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        await self.handlers.guild_removed(guild.id)

    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        await self.handlers.channel_deleted(channel.guild.id, channel.id)


class PapersClient(_Papers, discord.Client):
    """One gateway connection."""


class ShardedPapersClient(_Papers, discord.AutoShardedClient):
    """The shards in DISCORD_SHARD_IDS of DISCORD_SHARD_COUNT (or all of them)."""


def make_client(settings: Settings, handlers: Handlers, **overrides: Any) -> discord.Client:
    """A plain client, or an auto-sharded one when DISCORD_SHARD_IDS / DISCORD_SHARD_COUNT say so.

    `overrides` are further discord.py client options (tests pass `guild_ready_timeout`).
    """
    # The bot never joins voice: no start-up warnings about voice libraries it does not need.
    discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
    intents = discord.Intents.none()
    intents.guilds = True  # guild joins/leaves, channel deletions; no privileged intents
    options: dict[str, Any] = {
        "handlers": handlers,
        "endpoints": Endpoints(settings.discord_api_url, settings.discord_gateway_url),
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

"""A loopback Discord REST + gateway stand-in for the *real* discord.py client.

``DiscordStandIn`` is an aiohttp server bound to 127.0.0.1 (port 0) that runs in the
test's event loop. discord.py connects to it after two globals are redirected
(``ds.patch_discord()``; restored by ``ds.stop()``)::

    async with DiscordStandIn() as ds:          # starts the server and patches discord.py
        client = MyClient(intents=discord.Intents.default(), guild_ready_timeout=0.1)
        await client.login(ds.token)            # GET /users/@me, /oauth2/applications/@me
        task = asyncio.create_task(client.connect())
        await ds.wait_until_ready()             # HELLO, IDENTIFY, READY, GUILD_CREATE sent
        sent = await ds.send_interaction("add", {"keyword": "diffusion"})
        await ds.wait_for(lambda: ds.followups(sent.token))
        ...
        await client.close()
        await task

Gateway: JSON text frames, no compression by default. discord.py 2.7 always asks for
``?v=10&encoding=json&compress=zlib-stream`` but only decompresses *binary* frames, so
plain text frames work; ``DiscordStandIn(compress=True)`` sends zlib-stream binary frames
instead (one shared zlib context per connection, each message ends in Z_SYNC_FLUSH).
The READY ``resume_gateway_url`` points at ``/gateway/resume`` on the same port.

REST: every request under ``/api/v10`` is recorded in ``ds.requests`` (including faulted
and unknown ones); JSON responses carry exactly ``Content-Type: application/json`` (what
discord.py requires to parse them). Interaction callbacks honour ``?with_response=1`` (which
discord.py always sends) with an ``InteractionCallbackResponse`` body, else 204.
Rules of the real API that catch bot bugs are enforced: unknown interaction (10062),
double acknowledgement (40060), follow-ups before the initial response (10015), message
and embed length limits and empty messages (50035 / 50006), autocomplete choice limits,
guild command sync for a guild the bot is not in (50001).

Quirks of discord.py 2.7 worth knowing:

* ``Client.login`` needs ``GET /users/@me`` and ``GET /oauth2/applications/@me`` (the
  application id used by ``tree.sync`` comes from there); ``setup_hook`` runs inside login.
* ``Client.connect`` never calls ``GET /gateway[/bot]`` (only AutoShardedClient does); it
  uses ``DiscordWebSocket.DEFAULT_GATEWAY``, then READY's ``resume_gateway_url``.
* A server close with 1000 or 4000 makes it RESUME at once; op 9 (d=false) makes it
  re-IDENTIFY, but ``Client.before_identify_hook`` sleeps 5 s before every non-initial
  IDENTIFY: override it in test clients.
* Pass ``guild_ready_timeout=0.1`` or ``on_ready`` waits 2 s for GUILD_CREATEs.

Main API: ``start/stop`` (or ``async with``), ``patch_discord/unpatch_discord``,
``send_interaction``, ``send_autocomplete``, ``send_dispatch``, ``send_op``,
``drop_gateway``, ``fail_next``, ``wait_for``, ``wait_until_ready``; records in
``requests``, ``unknown_requests``, ``server_errors``, ``gateway_ops``, ``connections``,
``sent_dispatches``, ``posted``; views ``callbacks``, ``followups``, ``edits``,
``original_message``, ``channel_messages``, ``registered_commands``, ``requests_to``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import re
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import WSMsgType, web

DISCORD_EPOCH_MS = 1420070400000
API_PREFIX = "/api/v10"
JSON_TYPE = "application/json"

# permission bits (https://discord.com/developers/docs/topics/permissions)
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
ADD_REACTIONS = 1 << 6
USE_APPLICATION_COMMANDS = 1 << 31
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ALL_PERMISSIONS = (1 << 51) - 1
EVERYONE_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | ADD_REACTIONS
    | USE_APPLICATION_COMMANDS
)

# gateway opcodes
OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_PRESENCE, OP_VOICE_STATE = 0, 1, 2, 3, 4
OP_RESUME, OP_RECONNECT, OP_REQUEST_MEMBERS, OP_INVALID_SESSION = 6, 7, 8, 9
OP_HELLO, OP_HEARTBEAT_ACK = 10, 11

# interaction callback types
CB_PONG, CB_MESSAGE, CB_DEFERRED_MESSAGE = 1, 4, 5
CB_DEFERRED_UPDATE, CB_UPDATE_MESSAGE, CB_AUTOCOMPLETE, CB_MODAL = 6, 7, 8, 9

# message flags
EPHEMERAL = 1 << 6
LOADING = 1 << 7

_ERROR_DEFAULTS: dict[int, tuple[str, int]] = {
    400: ("Invalid Form Body", 50035),
    401: ("401: Unauthorized", 0),
    403: ("Missing Access", 50001),
    404: ("Unknown Interaction", 10062),
    405: ("405: Method Not Allowed", 0),
    500: ("500: Internal Server Error", 0),
    502: ("502: Bad Gateway", 0),
}
_OPTION_TYPES = {bool: 5, int: 4, float: 10, str: 3}
_NAME_RE = re.compile(r"^[-_\w]{1,32}$")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


class _Snowflakes:
    """Real-looking snowflakes (``discord.utils.snowflake_time`` works on them)."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return str((ms << 22) | (next(self._counter) & 0x3FFFFF))


# --------------------------------------------------------------------------- payloads


def make_user(user_id: int | str, username: str, *, bot: bool = False) -> dict[str, Any]:
    """A Discord user object."""
    return {
        "id": str(user_id),
        "username": username,
        "discriminator": "0",
        "global_name": username.title(),
        "avatar": None,
        "bot": bot,
        "system": False,
        "public_flags": 0,
        "flags": 0,
    }


def make_member(user: dict[str, Any], role_ids: Iterable[int | str] = ()) -> dict[str, Any]:
    """A guild member object (without ``permissions``; interactions add it)."""
    return {
        "user": user,
        "roles": [str(r) for r in role_ids],
        "joined_at": _now_iso(),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "nick": None,
        "avatar": None,
        "communication_disabled_until": None,
    }


def make_role(role_id: int | str, name: str, permissions: int, position: int = 0) -> dict[str, Any]:
    """A role object; the @everyone role has the guild's id."""
    return {
        "id": str(role_id),
        "name": name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": position,
        "permissions": str(permissions),
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


def make_text_channel(
    channel_id: int | str, guild_id: int | str, name: str, position: int = 0
) -> dict[str, Any]:
    """A guild text channel object (type 0)."""
    return {
        "id": str(channel_id),
        "type": 0,
        "guild_id": str(guild_id),
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "topic": None,
        "rate_limit_per_user": 0,
        "last_message_id": None,
        "flags": 0,
    }


# --------------------------------------------------------------------------- records


@dataclass
class RecordedFile:
    """One uploaded multipart file (``files[n]``)."""

    field: str
    filename: str
    content_type: str | None
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


@dataclass
class RecordedRequest:
    """One HTTP request the client made (REST and webhooks)."""

    method: str
    path: str  # relative to /api/v10, e.g. "/webhooks/1/abc"
    query: dict[str, str]
    headers: dict[str, str]
    json: Any  # parsed JSON body, or ``payload_json`` of a multipart body, or None
    files: list[RecordedFile]
    time: float  # time.monotonic()
    status: int = 0  # response status the stand-in sent
    route: str = ""  # handler name, "" for unknown routes
    raw: bytes = b""


@dataclass
class Posted:
    """Something the bot posted: an interaction callback, follow-up, edit or message."""

    kind: str  # "callback", "followup", "edit", "channel_message"
    body: dict[str, Any]  # the JSON the client sent (payload_json for multipart)
    files: list[RecordedFile]
    request: RecordedRequest
    message: dict[str, Any] | None = None  # the message object the stand-in stored/returned

    @property
    def type(self) -> int | None:
        """Callback type (4 message, 5 deferred, 8 autocomplete, ...)."""
        return self.body.get("type")

    @property
    def data(self) -> dict[str, Any]:
        """The message part: ``body["data"]`` for callbacks, the body itself otherwise."""
        if self.kind == "callback":
            return self.body.get("data") or {}
        return self.body

    @property
    def content(self) -> str | None:
        return self.data.get("content")

    @property
    def flags(self) -> int:
        return int(self.data.get("flags") or 0)

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return self.data.get("embeds") or []

    @property
    def allowed_mentions(self) -> dict[str, Any] | None:
        return self.data.get("allowed_mentions")


@dataclass
class GatewayOp:
    """One gateway payload received from the client."""

    connection: int  # index into ds.connections
    op: int
    d: Any
    time: float


@dataclass
class SentInteraction:
    """What ``send_interaction`` pushed: use ``id``/``token`` to find the responses."""

    id: str
    token: str
    payload: dict[str, Any]

    @property
    def type(self) -> int:
        return self.payload["type"]


@dataclass
class _Fault:
    method: str | None
    pattern: re.Pattern[str]
    status: int
    retry_after: float
    remaining: int
    code: int | None
    message: str | None
    is_global: bool
    scope: str


@dataclass
class _Session:
    session_id: str
    seq: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)  # dispatches with "s"


@dataclass
class Connection:
    """One gateway websocket connection."""

    index: int
    path: str
    query: dict[str, str]
    ws: web.WebSocketResponse
    compressor: Any = None
    session: _Session | None = None
    ready: bool = False
    closed: bool = False
    close_code: int | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class _Interaction:
    id: str
    token: str
    type: int
    channel_id: str
    guild_id: str | None
    acknowledged: int | None = None  # callback type
    original_id: str | None = None
    ephemeral: bool = False


class _Reply(Exception):
    """Raised by handlers to send an error response."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        code: int | None = None,
        errors: dict[str, Any] | None = None,
    ) -> None:
        default_message, default_code = _ERROR_DEFAULTS.get(status, (f"{status}", 0))
        self.status = status
        self.body: dict[str, Any] = {
            "message": message or default_message,
            "code": default_code if code is None else code,
        }
        if errors:
            self.body["errors"] = errors
        super().__init__(f"{status} {self.body}")


def _json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    # discord.py parses bodies only when Content-Type is exactly "application/json";
    # web.json_response would append "; charset=utf-8".
    hdrs = {"Content-Type": JSON_TYPE}
    hdrs.update(headers or {})
    return web.Response(body=json.dumps(data).encode(), status=status, headers=hdrs)


# --------------------------------------------------------------------------- validation


def _message_errors(body: dict[str, Any], *, files: int = 0, edit: bool = False) -> _Reply | None:
    """Discord's message limits; returns an error to send, or None."""
    errors: dict[str, Any] = {}
    content = body.get("content")
    if content is not None and len(str(content)) > 2000:
        errors["content"] = "Must be 2000 or fewer in length."
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        errors["embeds"] = "Must be 10 or fewer in length."
    total = 0
    for i, embed in enumerate(embeds):
        for key, limit in (("title", 256), ("description", 4096)):
            value = embed.get(key) or ""
            total += len(value)
            if len(value) > limit:
                errors[f"embeds.{i}.{key}"] = f"Must be {limit} or fewer in length."
        fields = embed.get("fields") or []
        if len(fields) > 25:
            errors[f"embeds.{i}.fields"] = "Must be 25 or fewer in length."
        for j, f in enumerate(fields):
            name, value = str(f.get("name", "")), str(f.get("value", ""))
            total += len(name) + len(value)
            if not name or len(name) > 256:
                errors[f"embeds.{i}.fields.{j}.name"] = "Must be between 1 and 256 in length."
            if not value or len(value) > 1024:
                errors[f"embeds.{i}.fields.{j}.value"] = "Must be between 1 and 1024 in length."
        footer = (embed.get("footer") or {}).get("text") or ""
        author = (embed.get("author") or {}).get("name") or ""
        total += len(footer) + len(author)
        if len(footer) > 2048:
            errors[f"embeds.{i}.footer.text"] = "Must be 2048 or fewer in length."
        if len(author) > 256:
            errors[f"embeds.{i}.author.name"] = "Must be 256 or fewer in length."
    if total > 6000:
        errors["embeds"] = "Embed size exceeds maximum size of 6000"
    if errors:
        return _Reply(400, "Invalid Form Body", 50035, errors)
    if not edit and not (
        content
        or embeds
        or files
        or body.get("components")
        or body.get("poll")
        or body.get("sticker_ids")
    ):
        return _Reply(400, "Cannot send an empty message", 50006)
    return None


def _command_errors(cmd: dict[str, Any], where: str = "") -> dict[str, Any]:
    errors: dict[str, Any] = {}
    name = cmd.get("name", "")
    if not _NAME_RE.match(name) or name != name.lower():
        errors[f"{where}name"] = f"Invalid command name {name!r}"
    if cmd.get("type", 1) == 1 or where:
        desc = cmd.get("description", "")
        if not 1 <= len(desc) <= 100:
            errors[f"{where}description"] = "Must be between 1 and 100 in length."
    options = cmd.get("options") or []
    if len(options) > 25:
        errors[f"{where}options"] = "Must be 25 or fewer in length."
    for i, opt in enumerate(options):
        errors.update(_command_errors(opt, f"{where}options.{i}."))
    return errors


# --------------------------------------------------------------------------- judging

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


# --------------------------------------------------------------------------- the stand-in


class DiscordStandIn:
    """Loopback Discord REST + gateway for the real discord.py client (see module doc)."""

    def __init__(
        self,
        *,
        token: str = "standin-bot-token",
        application_id: int = 700000000000000001,
        bot_name: str = "papers-bot",
        guild_id: int = 800000000000000001,
        guild_name: str = "Test Guild",
        channel_id: int = 810000000000000001,
        user_id: int = 900000000000000001,
        owner_id: int = 900000000000000002,
        heartbeat_interval_ms: int = 41250,
        compress: bool = False,
        strict: bool = True,
        host: str = "127.0.0.1",
        patch: bool = True,
    ) -> None:
        self.patch = patch  # False: the client under test is pointed here by its own settings
        self.token = token
        self.application_id = str(application_id)
        self.bot_user = make_user(application_id, bot_name, bot=True)
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.compress = compress
        self.strict = strict
        self.host = host
        self.port = 0
        self.snowflake = _Snowflakes()

        # default world: one guild, one text channel, a user, an owner
        self.guild_id = str(guild_id)
        self.channel_id = str(channel_id)
        self.user_id = str(user_id)
        self.owner_id = str(owner_id)
        self.users: dict[str, dict[str, Any]] = {
            self.bot_user["id"]: self.bot_user,
            self.user_id: make_user(user_id, "alice"),
            self.owner_id: make_user(owner_id, "owner"),
        }
        self.guilds: dict[str, dict[str, Any]] = {}
        self.dm_channels: dict[str, str] = {}  # DM channel id -> user id
        self.add_guild(
            guild_id,
            guild_name,
            owner_id=owner_id,
            channel_id=channel_id,
            member_ids=[user_id, owner_id],
        )

        # records
        self.requests: list[RecordedRequest] = []
        self.unknown_requests: list[RecordedRequest] = []
        self.server_errors: list[BaseException] = []
        self.gateway_ops: list[GatewayOp] = []
        self.connections: list[Connection] = []
        self.sent_dispatches: list[dict[str, Any]] = []
        self.heartbeat_acks = 0
        self.posted: list[Posted] = []
        self.commands: dict[str | None, list[dict[str, Any]]] = {}
        self.messages: dict[str, dict[str, Any]] = {}  # message id -> message object
        self.attachments: dict[str, RecordedFile] = {}  # attachment id -> file
        self.typed: set[str] = set()  # every string option typed into an interaction
        # Channel messages, oldest first (GET /channels/{id}/messages reads them); the nonces
        # seen (enforce_nonce returns the first message again); a hook run after a message is
        # stored and before its answer (a slow or lost answer).
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.threads: dict[str, dict[str, Any]] = {}  # shape branch: threads started from messages
        self._nonces: dict[tuple[str, str], dict[str, Any]] = {}
        self.after_post: Callable[[str, dict[str, Any]], Any] | None = None

        self._faults: list[_Fault] = []
        self._interactions: dict[str, _Interaction] = {}
        self._by_token: dict[str, _Interaction] = {}
        self._sessions: dict[str, _Session] = {}
        self._active: Connection | None = None
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._patched: list[tuple[Any, str, Any]] = []
        self._routes = self._build_routes()

    # ------------------------------------------------------------------ lifecycle

    @property
    def api_base(self) -> str:
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/gateway/resume"

    async def start(self) -> DiscordStandIn:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway_handler)
        app.router.add_get("/gateway/resume", self._gateway_handler)
        app.router.add_get("/attachments/{attachment_id}/{filename}", self._attachment_handler)
        app.router.add_route("*", "/{tail:.*}", self._rest_handler)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for conn in list(self.connections):
            if not conn.closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.ws.close(code=1001), 2)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.unpatch_discord()

    async def __aenter__(self) -> DiscordStandIn:
        await self.start()
        if self.patch:
            self.patch_discord()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def patch_discord(self) -> None:
        """Point discord.py's REST base and default gateway at the stand-in."""
        import discord.gateway
        import discord.http
        import yarl

        if self._patched:
            return
        targets = [
            (discord.http.Route, "BASE", self.api_base),
            (discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(self.gateway_url)),
        ]
        for owner, name, value in targets:
            self._patched.append((owner, name, owner.__dict__[name]))
            setattr(owner, name, value)

    def unpatch_discord(self) -> None:
        """Restore what ``patch_discord`` changed (``stop`` calls it)."""
        while self._patched:
            owner, name, old = self._patched.pop()
            setattr(owner, name, old)

    # ------------------------------------------------------------------ world setup

    def add_user(self, user_id: int | str, username: str, *, bot: bool = False) -> dict[str, Any]:
        user = make_user(user_id, username, bot=bot)
        self.users[user["id"]] = user
        return user

    def add_guild(
        self,
        guild_id: int | str | None = None,
        name: str = "Another Guild",
        *,
        owner_id: int | str | None = None,
        channel_id: int | str | None = None,
        member_ids: Iterable[int | str] = (),
        everyone_permissions: int = EVERYONE_PERMISSIONS,
    ) -> dict[str, Any]:
        """Register a guild (with @everyone, an "admin" role and a #general channel).

        Before the client connects it is part of READY/GUILD_CREATE; afterwards call
        ``await ds.send_dispatch("GUILD_CREATE", ds.guilds[id])`` to announce a join.
        """
        gid = str(guild_id or self.snowflake())
        owner = str(owner_id or self.owner_id)
        cid = str(channel_id or self.snowflake())
        admin_role = str(int(gid) + 1)
        members = [make_member(self.bot_user)]
        for uid in member_ids:
            user = self.users.get(str(uid)) or self.add_user(uid, f"user{uid}")
            members.append(make_member(user))
        guild = {
            "id": gid,
            "name": name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": owner,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [
                make_role(gid, "@everyone", everyone_permissions, 0),
                make_role(admin_role, "admin", ADMINISTRATOR, 1),
            ],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": cid,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": None,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "joined_at": _now_iso(),
            "large": False,
            "member_count": len(members),
            "members": members,
            "channels": [make_text_channel(cid, gid, "general")],
            "threads": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "lazy": True,
        }
        self.guilds[gid] = guild
        return guild

    def admin_role_id(self, guild_id: int | str | None = None) -> str:
        return self.guilds[str(guild_id or self.guild_id)]["roles"][1]["id"]

    def add_text_channel(
        self, guild_id: int | str, name: str, channel_id: int | str | None = None
    ) -> dict[str, Any]:
        guild = self.guilds[str(guild_id)]
        channel = make_text_channel(
            channel_id or self.snowflake(), guild["id"], name, len(guild["channels"])
        )
        guild["channels"].append(channel)
        return channel

    def dm_channel_id(self, user_id: int | str) -> str:
        """The (stable) id of the bot's DM channel with ``user_id``."""
        return str(int(user_id) + 7)

    def _channel(self, channel_id: str) -> dict[str, Any] | None:
        for guild in self.guilds.values():
            for channel in guild["channels"]:
                if channel["id"] == channel_id:
                    return channel
        return self.threads.get(channel_id)  # shape branch: a thread is a channel too

    def member_permissions(
        self, guild_id: int | str, user_id: int | str, role_ids: Iterable[int | str] = ()
    ) -> int:
        """Base permissions: @everyone | roles; owner and ADMINISTRATOR get everything."""
        guild = self.guilds[str(guild_id)]
        if str(user_id) == guild["owner_id"]:
            return ALL_PERMISSIONS
        wanted = {guild["id"], *map(str, role_ids)}
        perms = 0
        for role in guild["roles"]:
            if role["id"] in wanted:
                perms |= int(role["permissions"])
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    # ------------------------------------------------------------------ notifications

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 3.0) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every recorded event)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                recent = [f"{r.method} {r.path} -> {r.status}" for r in self.requests[-10:]]
                raise TimeoutError(f"condition not met within {timeout}s; last requests: {recent}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.25))

    async def wait_until_ready(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``count`` gateway sessions were established (READY or RESUMED sent)."""
        await self.wait_for(lambda: self.ready_count >= count, timeout)

    # ------------------------------------------------------------------ gateway counters

    def ops(self, op: int) -> list[GatewayOp]:
        return [g for g in self.gateway_ops if g.op == op]

    @property
    def identify_count(self) -> int:
        return len(self.ops(OP_IDENTIFY))

    @property
    def resume_count(self) -> int:
        return len(self.ops(OP_RESUME))

    @property
    def heartbeat_count(self) -> int:
        return len(self.ops(OP_HEARTBEAT))

    @property
    def connection_count(self) -> int:
        return len(self.connections)

    @property
    def ready_count(self) -> int:
        return sum(1 for d in self.sent_dispatches if d["t"] in ("READY", "RESUMED"))

    @property
    def connected(self) -> bool:
        return self._active is not None and self._active.ready and not self._active.closed

    # ------------------------------------------------------------------ gateway

    async def _send(self, conn: Connection, payload: dict[str, Any]) -> None:
        text = json.dumps(payload)
        async with conn.lock:
            if conn.closed or conn.ws.closed:
                return
            if conn.compressor is not None:
                data = conn.compressor.compress(text.encode()) + conn.compressor.flush(
                    zlib.Z_SYNC_FLUSH
                )
                await conn.ws.send_bytes(data)
            else:
                await conn.ws.send_str(text)

    async def _dispatch(
        self, conn: Connection | None, event: str, data: Any, session: _Session | None = None
    ) -> dict[str, Any]:
        session = session or (conn.session if conn else None)
        assert session is not None
        session.seq += 1
        payload = {"op": OP_DISPATCH, "t": event, "s": session.seq, "d": data}
        session.log.append(payload)
        self.sent_dispatches.append(payload)
        if conn is not None:
            await self._send(conn, payload)
        self._notify()
        return payload

    async def _gateway_handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        conn = Connection(len(self.connections), request.path, dict(request.query), ws)
        if self.compress and request.query.get("compress") == "zlib-stream":
            conn.compressor = zlib.compressobj()
        self.connections.append(conn)
        self._active = conn
        self._notify()
        try:
            await self._send(
                conn,
                {
                    "op": OP_HELLO,
                    "s": None,
                    "t": None,
                    "d": {
                        "heartbeat_interval": self.heartbeat_interval_ms,
                        "_trace": ["standin-gateway"],
                    },
                },
            )
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                payload = json.loads(msg.data)
                self.gateway_ops.append(
                    GatewayOp(conn.index, payload.get("op"), payload.get("d"), time.monotonic())
                )
                self._notify()
                try:
                    await self._gateway_op(conn, payload)
                except Exception as exc:  # pragma: no cover - surfaced via server_errors
                    self.server_errors.append(exc)
                    raise
        finally:
            conn.closed = True
            conn.close_code = ws.close_code
            if self._active is conn:
                self._active = None
            self._notify()
        return ws

    async def _gateway_op(self, conn: Connection, payload: dict[str, Any]) -> None:
        op, d = payload.get("op"), payload.get("d")
        if op == OP_HEARTBEAT:
            await self._send(conn, {"op": OP_HEARTBEAT_ACK, "s": None, "t": None, "d": None})
            self.heartbeat_acks += 1
            self._notify()
        elif op == OP_IDENTIFY:
            if d.get("token") != self.token:
                await conn.ws.close(code=4004, message=b"Authentication failed.")
                return
            session = _Session(session_id=self.snowflake())
            self._sessions[session.session_id] = session
            conn.session = session
            ready = {
                "v": 10,
                "user": {**self.bot_user, "verified": True, "mfa_enabled": False, "email": None},
                "guilds": [{"id": gid, "unavailable": True} for gid in self.guilds],
                "session_id": session.session_id,
                "session_type": "normal",
                "resume_gateway_url": self.resume_gateway_url,
                "application": {"id": self.application_id, "flags": 0},
                "private_channels": [],
                "relationships": [],
                "user_settings": {},
                "presences": [],
                "geo_ordered_rtc_regions": [],
                "_trace": ["standin-gateway"],
            }
            if "shard" in d:
                ready["shard"] = d["shard"]
            await self._dispatch(conn, "READY", ready)
            for guild in list(self.guilds.values()):
                await self._dispatch(conn, "GUILD_CREATE", {**guild, "unavailable": False})
            conn.ready = True
            self._notify()
        elif op == OP_RESUME:
            session = self._sessions.get(d.get("session_id"))
            if session is None or d.get("token") != self.token:
                await self._send(conn, {"op": OP_INVALID_SESSION, "s": None, "t": None, "d": False})
                return
            conn.session = session
            client_seq = d.get("seq") or 0
            for missed in [p for p in session.log if p["s"] > client_seq]:
                await self._send(conn, missed)
            await self._dispatch(conn, "RESUMED", {"_trace": ["standin-gateway"]})
            conn.ready = True
            self._notify()
        elif op == OP_REQUEST_MEMBERS:
            guild = self.guilds.get(str(d.get("guild_id")))
            if guild is not None:
                chunk = {
                    "guild_id": guild["id"],
                    "members": guild["members"],
                    "chunk_index": 0,
                    "chunk_count": 1,
                    "not_found": [],
                }
                if d.get("nonce"):
                    chunk["nonce"] = d["nonce"]
                await self._dispatch(conn, "GUILD_MEMBERS_CHUNK", chunk)

    async def _live_connection(self, timeout: float) -> Connection:
        await self.wait_for(lambda: self.connected, timeout)
        assert self._active is not None
        return self._active

    async def send_dispatch(self, event: str, data: Any, *, timeout: float = 5.0) -> dict[str, Any]:
        """Send a DISPATCH (op 0) with ``t=event``; waits for a live session first."""
        conn = await self._live_connection(timeout)
        if event == "GUILD_DELETE" and not data.get("unavailable"):
            self.guilds.pop(str(data["id"]), None)
        return await self._dispatch(conn, event, data)

    async def send_op(self, op: int, d: Any = None, *, timeout: float = 5.0) -> None:
        """Send a raw non-dispatch opcode (e.g. 7 RECONNECT, 9 INVALID_SESSION)."""
        conn = await self._live_connection(timeout)
        await self._send(conn, {"op": op, "s": None, "t": None, "d": d})

    async def drop_gateway(self, code: int = 4000, *, invalidate: bool = False) -> None:
        """Close the live websocket from the server side.

        discord.py reconnects by itself and RESUMEs (for 1000 and 4000 alike). With
        ``invalidate=True`` the session is forgotten, so the RESUME gets op 9 and the
        client re-IDENTIFYs.
        """
        conn = self._active
        if conn is None:
            raise RuntimeError("no live gateway connection to drop")
        if invalidate and conn.session is not None:
            self._sessions.pop(conn.session.session_id, None)
        conn.ready = False
        self._active = None
        await conn.ws.close(code=code, message=b"stand-in dropped the connection")
        await self.wait_for(lambda: conn.closed, 5.0)

    # ------------------------------------------------------------------ interactions

    def _find_command(self, name: str, guild_id: str | None) -> dict[str, Any] | None:
        for scope in ([guild_id] if guild_id else []) + [None]:
            for cmd in self.commands.get(scope, []):
                if cmd["name"] == name and cmd.get("type", 1) == 1:
                    return cmd
        return None

    @staticmethod
    def _schema_for(cmd: dict[str, Any] | None, path: list[str]) -> list[dict[str, Any]]:
        options = (cmd or {}).get("options") or []
        for name in path:
            options = next((o.get("options") or [] for o in options if o["name"] == name), [])
        return options

    def _build_options(
        self, values: dict[str, Any], schema: list[dict[str, Any]], focused: str | None
    ) -> list[dict[str, Any]]:
        types = {o["name"]: o["type"] for o in schema}
        out = []
        for name, value in values.items():
            opt_type = types.get(name) or _OPTION_TYPES.get(type(value), 3)
            if opt_type in (6, 7, 8, 9):  # snowflake-valued: sent as strings
                value = str(value)
            opt: dict[str, Any] = {"name": name, "type": opt_type, "value": value}
            if name == focused:
                opt["focused"] = True
                opt["value"] = str(value)
            out.append(opt)
        return out

    async def send_interaction(
        self,
        subcommand: str | None = None,
        options: dict[str, Any] | None = None,
        *,
        command: str = "papers",
        group: str | None = None,
        interaction_type: int = 2,
        focused: str | None = None,
        guild_id: int | str | None = None,
        channel_id: int | str | None = None,
        user_id: int | str | None = None,
        roles: Iterable[int | str] = (),
        permissions: int | str | None = None,
        dm: bool = False,
        locale: str = "en-US",
        app_permissions: int | str | None = None,
        raw_options: list[dict[str, Any]] | None = None,
        resolved: dict[str, Any] | None = None,
        component: dict[str, Any] | None = None,
        message: dict[str, Any] | None = None,
        timeout: float = 5.0,
    ) -> SentInteraction:
        """Push INTERACTION_CREATE for ``/command [group] subcommand opt:value ...``.

        Option types come from the synced command schema when it is registered, else from
        the Python type (str 3, int 4, bool 5, float 10). ``dm=True`` sends a bot-DM
        interaction (no guild_id, ``user`` instead of ``member``). ``permissions`` defaults
        to @everyone | roles (everything for the owner or ADMINISTRATOR).
        """
        options = dict(options or {})
        uid = str(user_id or self.user_id)
        user = self.users.get(uid) or self.add_user(uid, f"user{uid}")
        gid = None if dm else str(guild_id or self.guild_id)
        if gid is not None and gid not in self.guilds:
            raise KeyError(f"unknown guild {gid}; add it with ds.add_guild() first")
        cmd = self._find_command(command, gid)

        path = [p for p in (group, subcommand) if p]
        if raw_options is not None:
            opts = raw_options
        else:
            opts = self._build_options(options, self._schema_for(cmd, path), focused)
            if subcommand:
                opts = [{"name": subcommand, "type": 1, "options": opts}]
            if group:
                opts = [{"name": group, "type": 2, "options": opts}]

        iid, token = self.snowflake(), f"itoken-{self.snowflake()}"
        data: dict[str, Any] = {
            "id": cmd["id"] if cmd else self.snowflake(),
            "name": command,
            "type": 1,
            "options": opts,
        }
        if cmd and cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        if resolved:
            data["resolved"] = resolved
        if component is not None:  # a MESSAGE_COMPONENT interaction carries the component's data
            data = dict(component)

        payload: dict[str, Any] = {
            "id": iid,
            "application_id": self.application_id,
            "type": interaction_type,
            "data": data,
            "token": token,
            "version": 1,
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if gid is not None:
            guild = self.guilds[gid]
            cid = str(channel_id or guild["channels"][0]["id"])
            channel = self._channel(cid) or make_text_channel(cid, gid, "unknown")
            if permissions is None:
                permissions = self.member_permissions(gid, uid, roles)
            member = make_member(user, roles)
            member["permissions"] = str(permissions)
            bot_perms = app_permissions
            if bot_perms is None:
                bot_perms = self.member_permissions(gid, self.bot_user["id"])
            payload.update(
                guild_id=gid,
                guild={"id": gid, "locale": guild["preferred_locale"], "features": []},
                guild_locale=guild["preferred_locale"],
                channel_id=cid,
                channel={**channel, "permissions": str(permissions)},
                member=member,
                app_permissions=str(bot_perms),
                authorizing_integration_owners={"0": gid},
                context=0,
            )
        else:
            cid = str(channel_id or self.dm_channel_id(uid))
            self.dm_channels[cid] = uid
            payload.update(
                channel_id=cid,
                channel={
                    "id": cid,
                    "type": 1,
                    "last_message_id": None,
                    "flags": 0,
                    "recipients": [user],
                },
                user=user,
                app_permissions=str(
                    app_permissions if app_permissions is not None else EVERYONE_PERMISSIONS
                ),
                authorizing_integration_owners={"0": "0"},
                context=1,
            )
        if message is not None:
            payload["message"] = message
        self._interactions[iid] = self._by_token[token] = _Interaction(
            iid, token, interaction_type, cid, gid
        )
        self.typed.update(v for v in options.values() if isinstance(v, str))
        await self.send_dispatch("INTERACTION_CREATE", payload, timeout=timeout)
        return SentInteraction(iid, token, payload)

    async def send_component(
        self, message: dict[str, Any], custom_id: str, **kwargs: Any
    ) -> SentInteraction:
        """Push a MESSAGE_COMPONENT (type 3) interaction: the button ``custom_id`` of ``message``
        (a message the bot posted, e.g. ``Posted.message``) pressed; ``kwargs`` as for
        ``send_interaction`` (``user_id``, ``permissions``, ...)."""
        if not any(
            part.get("custom_id") == custom_id
            for row in message.get("components") or []
            for part in row.get("components") or []
        ):
            raise KeyError(f"the message has no component {custom_id!r}")
        component = {"custom_id": custom_id, "component_type": 2}
        channel = kwargs.pop("channel_id", message["channel_id"])
        return await self.send_interaction(
            interaction_type=3, component=component, message=message, channel_id=channel, **kwargs
        )

    async def send_autocomplete(
        self, subcommand: str | None, options: dict[str, Any], focused: str, **kwargs: Any
    ) -> SentInteraction:
        """Push an AUTOCOMPLETE (type 4) interaction with ``focused`` marked."""
        return await self.send_interaction(
            subcommand, options, interaction_type=4, focused=focused, **kwargs
        )

    # ------------------------------------------------------------------ assertions

    def callbacks(self, interaction_id: str | SentInteraction) -> list[Posted]:
        iid = getattr(interaction_id, "id", interaction_id)
        return [
            p
            for p in self.posted
            if p.kind == "callback" and p.request.path.split("/")[2] == str(iid)
        ]

    def followups(self, token: str | SentInteraction) -> list[Posted]:
        tok = getattr(token, "token", token)
        return [
            p for p in self.posted if p.kind == "followup" and p.request.path.split("/")[3] == tok
        ]

    def edits(self, token: str | SentInteraction) -> list[Posted]:
        """PATCHes of ``@original`` or of follow-up messages for this interaction token."""
        tok = getattr(token, "token", token)
        return [p for p in self.posted if p.kind == "edit" and p.request.path.split("/")[3] == tok]

    def original_message(self, token: str | SentInteraction) -> dict[str, Any] | None:
        """Current state of the interaction's original response message, if any."""
        inter = self._by_token.get(getattr(token, "token", token))
        if inter is None or inter.original_id is None:
            return None
        return self.messages.get(inter.original_id)

    def channel_messages(self, channel_id: int | str) -> list[Posted]:
        return [
            p
            for p in self.posted
            if p.kind == "channel_message" and p.request.path.split("/")[2] == str(channel_id)
        ]

    def registered_commands(self, guild_id: int | str | None = None) -> list[dict[str, Any]]:
        return self.commands.get(str(guild_id) if guild_id else None, [])

    def judge(self) -> list[str]:
        """What a reader would see go wrong in everything posted: a masked link that is live and
        not arXiv's (each one, however many on a line), or typed text echoed with its markdown
        unescaped (a label "||x||" shown as a spoiler)."""
        found = []
        for posted in self.posted:
            for text in rendered_texts(posted.data):
                found += [f"{posted.kind}: live link {link}" for link in live_links(text)]
                found += [
                    f"{posted.kind}: unescaped echo {t!r}"
                    for t in self.typed
                    if _echoed_raw(text, t)
                ]
        return found

    def requests_to(self, method: str, pattern: str) -> list[RecordedRequest]:
        rx = re.compile(pattern)
        return [r for r in self.requests if r.method == method.upper() and rx.search(r.path)]

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        method: str | None,
        path_pattern: str,
        status: int = 429,
        retry_after: float = 0.2,
        count: int = 1,
        *,
        code: int | None = None,
        message: str | None = None,
        is_global: bool = False,
        scope: str = "user",
    ) -> None:
        """Make the next ``count`` requests matching ``method`` (None = any) and
        ``re.search(path_pattern, path)`` (path relative to /api/v10) fail with ``status``.

        429s look like Discord's: ``Via: 1.1 google``, ``Retry-After``, ``X-RateLimit-*``
        headers, JSON ``{"message", "retry_after", "global"}``; other statuses get
        ``{"message", "code"}`` (defaults: 403 -> 50001 Missing Access, 404 -> 10062).
        """
        self._faults.append(
            _Fault(
                method.upper() if method else None,
                re.compile(path_pattern),
                status,
                retry_after,
                count,
                code,
                message,
                is_global,
                scope,
            )
        )

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if (
                fault.remaining > 0
                and fault.method in (None, method)
                and fault.pattern.search(path)
            ):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    @staticmethod
    def _fault_response(fault: _Fault) -> web.Response:
        if fault.status != 429:
            err = _Reply(fault.status, fault.message, fault.code)
            return _json_response(err.body, fault.status)
        reset = time.time() + fault.retry_after
        headers = {
            "Via": "1.1 google",
            "Retry-After": str(max(1, math.ceil(fault.retry_after))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{reset:.3f}",
            "X-RateLimit-Reset-After": f"{fault.retry_after:.3f}",
            "X-RateLimit-Bucket": "standin0bucket0hash",
            "X-RateLimit-Scope": fault.scope,
        }
        if fault.is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {
            "message": "You are being rate limited.",
            "retry_after": fault.retry_after,
            "global": fault.is_global,
            "code": 0,
        }
        return _json_response(body, 429, headers)

    # ------------------------------------------------------------------ REST plumbing

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Callable[..., Any]]]:
        sf, tok, mid = r"(\d+)", r"([^/]+)", r"(@original|\d+)"
        table = [
            ("GET", r"/gateway", self._get_gateway),
            ("GET", r"/gateway/bot", self._get_gateway_bot),
            ("GET", r"/users/@me", self._get_me),
            ("POST", r"/users/@me/channels", self._create_dm),
            ("GET", r"/oauth2/applications/@me", self._get_application),
            ("GET", rf"/applications/{sf}/commands", self._get_commands),
            ("PUT", rf"/applications/{sf}/commands", self._put_commands),
            ("POST", rf"/applications/{sf}/commands", self._post_command),
            ("GET", rf"/applications/{sf}/guilds/{sf}/commands", self._get_commands),
            ("PUT", rf"/applications/{sf}/guilds/{sf}/commands", self._put_commands),
            ("POST", rf"/applications/{sf}/guilds/{sf}/commands", self._post_command),
            ("POST", rf"/interactions/{sf}/{tok}/callback", self._callback),
            ("POST", rf"/webhooks/{sf}/{tok}", self._followup),
            ("GET", rf"/webhooks/{sf}/{tok}/messages/{mid}", self._get_webhook_message),
            ("PATCH", rf"/webhooks/{sf}/{tok}/messages/{mid}", self._edit_webhook_message),
            ("DELETE", rf"/webhooks/{sf}/{tok}/messages/{mid}", self._delete_webhook_message),
            ("GET", rf"/channels/{sf}", self._get_channel),
            ("POST", rf"/channels/{sf}/messages", self._channel_message),
            ("GET", rf"/channels/{sf}/messages", self._channel_history),
            ("POST", rf"/channels/{sf}/messages/{sf}/threads", self._start_thread),  # shape
        ]
        return [(m, re.compile(f"^{p}$"), h) for m, p, h in table]

    async def _read_body(self, request: web.Request) -> tuple[Any, list[RecordedFile], bytes]:
        ctype = request.content_type
        if ctype.startswith("multipart/"):
            payload: Any = None
            files: list[RecordedFile] = []
            reader = await request.multipart()
            async for part in reader:
                data = await part.read(decode=False)  # type: ignore[union-attr]
                if part.name == "payload_json":
                    payload = json.loads(data.decode())
                elif part.filename is not None:
                    files.append(
                        RecordedFile(
                            part.name or "",
                            part.filename,
                            part.headers.get("Content-Type"),
                            bytes(data),
                        )
                    )
            return payload, files, b""
        raw = await request.read()
        if raw and ctype == JSON_TYPE:
            return json.loads(raw), [], raw
        return None, [], raw

    async def _rest_handler(self, request: web.Request) -> web.StreamResponse:
        full_path = request.path
        path = full_path[len(API_PREFIX) :] if full_path.startswith(API_PREFIX) else full_path
        body, files, raw = await self._read_body(request)
        rec = RecordedRequest(
            request.method,
            path,
            dict(request.query),
            dict(request.headers),
            body,
            files,
            time.monotonic(),
            raw=raw,
        )
        self.requests.append(rec)
        try:
            response = await self._route(request, rec, full_path.startswith(API_PREFIX))
        except _Reply as err:
            response = _json_response(err.body, err.status)
        except Exception as exc:
            self.server_errors.append(exc)
            response = _json_response({"message": f"stand-in error: {exc!r}", "code": 0}, 500)
        rec.status = response.status
        self._notify()
        return response

    async def _route(
        self, request: web.Request, rec: RecordedRequest, under_api: bool
    ) -> web.StreamResponse:
        handler, args = None, ()
        if under_api:
            for method, rx, h in self._routes:
                match = rx.match(rec.path)
                if match and method == rec.method:
                    handler, args = h, match.groups()
                    break
        if handler is None:
            self.unknown_requests.append(rec)
            return _json_response({"message": "404: Not Found", "code": 0}, 404)
        rec.route = handler.__name__.lstrip("_")
        fault = self._take_fault(rec.method, rec.path)
        if fault is not None:
            return self._fault_response(fault)
        bot_auth = ("/users", "/oauth2", "/applications", "/channels", "/gateway/bot")
        if rec.path.startswith(bot_auth) and request.headers.get("Authorization") != (
            f"Bot {self.token}"
        ):
            raise _Reply(401)
        result = await handler(rec, *args)
        if isinstance(result, web.StreamResponse):
            return result
        if result is None:
            return web.Response(status=204)
        return _json_response(result)

    async def _attachment_handler(self, request: web.Request) -> web.Response:
        stored = self.attachments.get(request.match_info["attachment_id"])
        if stored is None:
            return web.Response(status=404)
        return web.Response(
            body=stored.data, content_type=stored.content_type or "application/octet-stream"
        )

    # ------------------------------------------------------------------ REST handlers

    async def _get_gateway(self, rec: RecordedRequest) -> Any:
        return {"url": self.gateway_url}

    async def _get_gateway_bot(self, rec: RecordedRequest) -> Any:
        return {
            "url": self.gateway_url,
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 0,
                "max_concurrency": 1,
            },
        }

    async def _get_me(self, rec: RecordedRequest) -> Any:
        return {**self.bot_user, "verified": True, "mfa_enabled": False, "email": None}

    async def _create_dm(self, rec: RecordedRequest) -> Any:
        uid = str((rec.json or {}).get("recipient_id"))
        user = self.users.get(uid) or self.add_user(uid, f"user{uid}")
        cid = self.dm_channel_id(uid)
        self.dm_channels[cid] = uid
        return {"id": cid, "type": 1, "last_message_id": None, "flags": 0, "recipients": [user]}

    async def _get_application(self, rec: RecordedRequest) -> Any:
        return {
            "id": self.application_id,
            "name": self.bot_user["username"],
            "icon": None,
            "description": "stand-in application",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": self.users[self.owner_id],
            "team": None,
            "flags": 0,
            "bot": self.bot_user,
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": len(self.guilds),
            "integration_types_config": {"0": {}},
        }

    def _check_app(self, app_id: str, guild_id: str | None) -> None:
        if app_id != self.application_id:
            raise _Reply(403, "Missing Access", 50001)
        if guild_id is not None and guild_id not in self.guilds:
            raise _Reply(403, "Missing Access", 50001)

    def _store_command(
        self, cmd: dict[str, Any], guild_id: str | None, existing: list[dict[str, Any]]
    ) -> dict[str, Any]:
        old = next(
            (
                c
                for c in existing
                if c["name"] == cmd["name"] and c.get("type", 1) == cmd.get("type", 1)
            ),
            None,
        )
        stored = {
            "type": 1,
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "dm_permission": True,
            "nsfw": False,
            "contexts": None,
            "integration_types": [0],
            "name_localizations": None,
            "description_localizations": None,
            **cmd,
            "id": old["id"] if old else self.snowflake(),
            "application_id": self.application_id,
            "version": self.snowflake(),
        }
        if guild_id:
            stored["guild_id"] = guild_id
        return stored

    async def _get_commands(
        self, rec: RecordedRequest, app_id: str, guild_id: str | None = None
    ) -> Any:
        self._check_app(app_id, guild_id)
        return self.commands.get(guild_id, [])

    async def _put_commands(
        self, rec: RecordedRequest, app_id: str, guild_id: str | None = None
    ) -> Any:
        self._check_app(app_id, guild_id)
        body = rec.json
        if not isinstance(body, list):
            raise _Reply(400, "Invalid Form Body", 50035, {"_errors": "expected an array"})
        errors: dict[str, Any] = {}
        for i, cmd in enumerate(body):
            errors.update({f"{i}.{k}": v for k, v in _command_errors(cmd).items()})
        if errors:
            raise _Reply(400, "Invalid Form Body", 50035, errors)
        existing = self.commands.get(guild_id, [])
        self.commands[guild_id] = [self._store_command(c, guild_id, existing) for c in body]
        return self.commands[guild_id]

    async def _post_command(
        self, rec: RecordedRequest, app_id: str, guild_id: str | None = None
    ) -> Any:
        self._check_app(app_id, guild_id)
        errors = _command_errors(rec.json or {})
        if errors:
            raise _Reply(400, "Invalid Form Body", 50035, errors)
        existing = self.commands.setdefault(guild_id, [])
        stored = self._store_command(rec.json, guild_id, existing)
        existing[:] = [c for c in existing if c["id"] != stored["id"]] + [stored]
        return stored

    def _make_message(
        self,
        body: dict[str, Any],
        files: list[RecordedFile],
        *,
        channel_id: str,
        msg_type: int = 0,
        webhook: bool = False,
        flags: int = 0,
        message_id: str | None = None,
    ) -> dict[str, Any]:
        attachments = []
        meta = {str(a.get("id")): a for a in body.get("attachments") or []}
        for index, f in enumerate(files):
            att_id = self.snowflake()
            self.attachments[att_id] = f
            url = f"http://{self.host}:{self.port}/attachments/{att_id}/{quote(f.filename)}"
            extra = meta.get(str(index), {})
            attachments.append(
                {
                    "id": att_id,
                    "filename": f.filename,
                    "size": len(f.data),
                    "url": url,
                    "proxy_url": url,
                    "content_type": f.content_type,
                    **({"description": extra["description"]} if "description" in extra else {}),
                }
            )
        channel = self._channel(channel_id)
        message = {
            "id": message_id or self.snowflake(),
            "type": msg_type,
            "channel_id": channel_id,
            "author": self.bot_user,
            "content": body.get("content") or "",
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts")),
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments,
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "pinned": False,
            "flags": flags | int(body.get("flags") or 0),
        }
        if channel is not None:
            message["guild_id"] = channel["guild_id"]
        if webhook:
            message["webhook_id"] = self.application_id
            message["application_id"] = self.application_id
        self.messages[message["id"]] = message
        return message

    def _interaction(self, iid: str, token: str) -> _Interaction:
        inter = self._interactions.get(iid)
        if inter is None or inter.token != token:
            raise _Reply(404, "Unknown interaction", 10062)
        return inter

    def _webhook_interaction(self, app_id: str, token: str) -> _Interaction:
        inter = self._by_token.get(token)
        if app_id != self.application_id or inter is None:
            raise _Reply(404, "Unknown Webhook", 10015)
        if self.strict and inter.acknowledged is None:
            raise _Reply(404, "Unknown Webhook", 10015)  # follow-up before the callback
        return inter

    async def _callback(self, rec: RecordedRequest, iid: str, token: str) -> Any:
        inter = self._interaction(iid, token)
        body = rec.json if isinstance(rec.json, dict) else {}
        cb_type = body.get("type")
        data = body.get("data") or {}
        if inter.acknowledged is not None:
            raise _Reply(400, "Interaction has already been acknowledged.", 40060)
        allowed = {8} if inter.type == 4 else {1, 4, 5, 6, 7, 9, 12}
        if cb_type not in allowed:
            raise _Reply(
                400,
                "Invalid Form Body",
                50035,
                {"type": f"callback type {cb_type} invalid for interaction type {inter.type}"},
            )
        if cb_type == CB_AUTOCOMPLETE:
            choices = data.get("choices")
            if (
                choices is None
                or len(choices) > 25
                or any(not 1 <= len(str(c.get("name", ""))) <= 100 for c in choices)
            ):
                raise _Reply(
                    400,
                    "Invalid Form Body",
                    50035,
                    {"data.choices": "Must be at most 25 choices, names 1-100 chars"},
                )
        if cb_type in (CB_MESSAGE, CB_UPDATE_MESSAGE):
            err = _message_errors(data, files=len(rec.files), edit=cb_type == CB_UPDATE_MESSAGE)
            if err is not None:
                raise err
        message = None
        if cb_type in (CB_MESSAGE, CB_DEFERRED_MESSAGE):
            flags = LOADING if cb_type == CB_DEFERRED_MESSAGE else 0
            message = self._make_message(
                data, rec.files, channel_id=inter.channel_id, msg_type=20, webhook=True, flags=flags
            )
            inter.original_id = message["id"]
            inter.ephemeral = bool(message["flags"] & EPHEMERAL)
        inter.acknowledged = cb_type
        self.posted.append(Posted("callback", body, rec.files, rec, message))
        if rec.query.get("with_response") not in ("1", "true", "True"):
            return None
        resource: dict[str, Any] = {"type": cb_type}
        if message is not None:
            resource["message"] = message
        interaction = {"id": iid, "type": inter.type}
        if message is not None:
            interaction.update(
                response_message_id=message["id"],
                response_message_loading=cb_type == CB_DEFERRED_MESSAGE,
                response_message_ephemeral=inter.ephemeral,
            )
        return {"interaction": interaction, "resource": resource}

    async def _followup(self, rec: RecordedRequest, app_id: str, token: str) -> Any:
        inter = self._webhook_interaction(app_id, token)
        body = rec.json if isinstance(rec.json, dict) else {}
        err = _message_errors(body, files=len(rec.files))
        if err is not None:
            raise err
        original = self.messages.get(inter.original_id or "")
        if original is not None and original["flags"] & LOADING:
            # Discord: the first follow-up after a deferral replaces the "thinking" message
            message = self._make_message(
                body,
                rec.files,
                channel_id=inter.channel_id,
                msg_type=20,
                webhook=True,
                flags=original["flags"] & EPHEMERAL,
                message_id=original["id"],
            )
        else:
            message = self._make_message(
                body, rec.files, channel_id=inter.channel_id, msg_type=20, webhook=True
            )
        self.posted.append(Posted("followup", body, rec.files, rec, message))
        if rec.query.get("wait") in ("1", "true", "True"):
            return message
        return None

    def _webhook_message(self, inter: _Interaction, mid: str) -> dict[str, Any]:
        message_id = inter.original_id if mid == "@original" else mid
        message = self.messages.get(message_id or "")
        if message is None:
            raise _Reply(404, "Unknown Message", 10008)
        return message

    async def _get_webhook_message(
        self, rec: RecordedRequest, app_id: str, token: str, mid: str
    ) -> Any:
        inter = self._webhook_interaction(app_id, token)
        return self._webhook_message(inter, mid)

    async def _edit_webhook_message(
        self, rec: RecordedRequest, app_id: str, token: str, mid: str
    ) -> Any:
        inter = self._webhook_interaction(app_id, token)
        message = self._webhook_message(inter, mid)
        body = rec.json if isinstance(rec.json, dict) else {}
        err = _message_errors(body, files=len(rec.files), edit=True)
        if err is not None:
            raise err
        for key in ("content", "embeds", "components"):
            if key in body:
                message[key] = (
                    body[key] if body[key] is not None else ("" if key == "content" else [])
                )
        if "attachments" in body or rec.files:
            kept_ids = {str(a.get("id")) for a in body.get("attachments") or []}
            kept = [a for a in message["attachments"] if a["id"] in kept_ids]
            new = self._make_message(body, rec.files, channel_id=message["channel_id"])
            self.messages.pop(new["id"], None)
            message["attachments"] = kept + new["attachments"]
        message["flags"] &= ~LOADING
        message["edited_timestamp"] = _now_iso()
        self.posted.append(Posted("edit", body, rec.files, rec, message))
        return message

    async def _delete_webhook_message(
        self, rec: RecordedRequest, app_id: str, token: str, mid: str
    ) -> Any:
        inter = self._webhook_interaction(app_id, token)
        message = self._webhook_message(inter, mid)
        self.messages.pop(message["id"], None)
        return None

    async def _get_channel(self, rec: RecordedRequest, channel_id: str) -> Any:
        channel = self._channel(channel_id)
        if channel is None:
            raise _Reply(404, "Unknown Channel", 10003)
        return channel

    async def _channel_message(self, rec: RecordedRequest, channel_id: str) -> Any:
        body = rec.json if isinstance(rec.json, dict) else {}
        if self._channel(channel_id) is None and channel_id not in self.dm_channels:
            raise _Reply(404, "Unknown Channel", 10003)
        err = _message_errors(body, files=len(rec.files))
        if err is not None:
            raise err
        nonce = (channel_id, str(body.get("nonce")))
        if body.get("enforce_nonce") and nonce in self._nonces:
            return self._nonces[nonce]
        message = self._make_message(body, rec.files, channel_id=channel_id)
        self.posted.append(Posted("channel_message", body, rec.files, rec, message))
        self.history.setdefault(channel_id, []).append(message)
        if body.get("nonce") is not None:
            self._nonces[nonce] = message
        if self.after_post is not None and asyncio.iscoroutine(
            held := self.after_post(channel_id, message)
        ):
            await held
        return message

    async def _channel_history(self, rec: RecordedRequest, channel_id: str) -> Any:
        """Messages after ``after`` (a snowflake), at most ``limit``, newest first; no nonces."""
        if self._channel(channel_id) is None:
            raise _Reply(404, "Unknown Channel", 10003)
        after, limit = int(rec.query.get("after") or 0), int(rec.query.get("limit") or 50)
        later = [m for m in self.history.get(channel_id, []) if int(m["id"]) > after]
        return list(reversed(later[:limit]))

    # ---- shape branch (issue 13, threads): a thread started from a message -----------------
    async def _start_thread(self, rec: RecordedRequest, channel_id: str, message_id: str) -> Any:
        """POST /channels/{c}/messages/{m}/threads: a public thread whose id is the message's;
        a second start answers 400 with code 160004 (a thread exists for this message)."""
        channel, body = self._channel(channel_id), rec.json if isinstance(rec.json, dict) else {}
        if channel is None or not any(
            m["id"] == message_id for m in self.history.get(channel_id, [])
        ):
            raise _Reply(404, "Unknown Message", 10008)
        if message_id in self.threads:
            raise _Reply(400, "A thread has already been created for this message", 160004)
        if not 1 <= len(str(body.get("name") or "")) <= 100:
            raise _Reply(400, "Invalid Form Body", 50035)
        self.threads[message_id] = {
            "id": message_id,
            "type": 11,
            "guild_id": channel["guild_id"],
            "parent_id": channel_id,
            "owner_id": self.bot_user["id"],
            "name": body["name"],
            "message_count": 0,
            "member_count": 1,
            "rate_limit_per_user": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": int(body.get("auto_archive_duration") or 1440),
                "archive_timestamp": _now_iso(),
                "locked": False,
            },
        }
        return self.threads[message_id]

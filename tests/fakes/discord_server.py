"""A loopback Discord REST + gateway stand-in for the real discord.py client.

``DiscordStandIn`` is an aiohttp server on 127.0.0.1 in the test's event loop; the front end is
pointed at it by DISCORD_API_URL (``api_base``) and DISCORD_GATEWAY_URL (``gateway_url``).
It plays one guild with one text channel (more with ``add_guild`` / ``add_text_channel``):
the gateway (HELLO, IDENTIFY -> READY + GUILD_CREATE, heartbeats, RESUME or op 9 after
``drop_gateway``, any dispatch with ``send_dispatch``), a slash command pushed as
INTERACTION_CREATE (``send_interaction``), and the
REST routes our code and discord.py use, with Discord's rules that catch bot bugs: unknown
interaction (10062), double acknowledgement (40060), a follow-up before the response (10015),
message and embed limits (50035 / 50006), invalid command schemas. ``fail_next`` injects
faults (429 as Discord sends it). Everything the bot sent is in ``posted``; every request in
``requests``. discord.py 2.7 notes: JSON answers must carry exactly ``application/json``; a
re-IDENTIFY waits 5 s in ``before_identify_hook`` (tests override it); interaction
callbacks are sent with ``?with_response=1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

API_PREFIX = "/api/v10"

# permission bits (https://discord.com/developers/docs/topics/permissions)
ADMINISTRATOR, EMBED_LINKS = 1 << 3, 1 << 14
# view channel, send messages, embed links, attach files, read history, reactions, commands
EVERYONE_PERMISSIONS = (1 << 10) | (1 << 11) | EMBED_LINKS | (1 << 15) | (1 << 16) | (1 << 6)
EVERYONE_PERMISSIONS |= 1 << 31

OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_RESUME = 0, 1, 2, 6
OP_INVALID_SESSION, OP_HELLO, OP_HEARTBEAT_ACK = 9, 10, 11
CB_MESSAGE, CB_DEFERRED_MESSAGE = 4, 5
EPHEMERAL = 1 << 6

_ids = itertools.count(1)


def snowflake() -> str:
    """A real-looking snowflake (``discord.utils.snowflake_time`` works on it)."""
    return str(((int(time.time() * 1000) - 1420070400000) << 22) | (next(_ids) & 0x3FFFFF))


def _now() -> str:
    return datetime.now(UTC).isoformat()


def make_user(user_id: int | str, username: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": username,
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
    }


def _member(user: dict[str, Any], roles: list[str], permissions: int | None = None) -> dict:
    member = {"user": user, "roles": roles, "joined_at": _now(), "flags": 0}
    member |= {"deaf": False, "mute": False}
    return member if permissions is None else {**member, "permissions": str(permissions)}


def _text_channel(channel_id: int | str, guild_id: str, name: str, position: int = 0) -> dict:
    return {
        "id": str(channel_id),
        "type": 0,
        "guild_id": guild_id,
        "name": name,
        "position": position,
    }


def _role(role_id: str, name: str, permissions: int, position: int) -> dict[str, Any]:
    return {"id": role_id, "name": name, "permissions": str(permissions), "position": position}


# What discord.py reads of every message, besides what the bot sent.
_MESSAGE: dict[str, Any] = {"content": "", "embeds": [], "components": [], "tts": False}
_MESSAGE |= {"mention_everyone": False, "mentions": [], "mention_roles": [], "pinned": False}
_MESSAGE |= {"edited_timestamp": None}


@dataclass
class RecordedFile:
    """One uploaded multipart file (``files[n]``)."""

    filename: str
    content_type: str | None
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


@dataclass
class RecordedRequest:
    """One REST request the client made (path relative to /api/v10)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any  # the JSON body, or a multipart body's ``payload_json``
    files: list[RecordedFile]
    time: float  # time.monotonic()
    status: int = 0  # what the stand-in answered


class MessageParts:
    """How a recorded request reads as a message: a callback's ``data``, else the body itself
    (`Posted` here, `Sent` in tests/support/discord_direct.py)."""

    kind: str
    body: dict[str, Any]

    @property
    def data(self) -> dict[str, Any]:
        return (self.body.get("data") or {}) if self.kind == "callback" else self.body

    @property
    def content(self) -> str | None:
        return self.data.get("content")

    @property
    def flags(self) -> int:
        return int(self.data.get("flags") or 0)

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return self.data.get("embeds") or []


@dataclass
class Posted(MessageParts):
    """Something the bot posted: an interaction callback, follow-up, edit or channel message."""

    kind: str  # "callback", "followup", "edit", "channel_message"
    body: dict[str, Any]
    files: list[RecordedFile]
    request: RecordedRequest
    message: dict[str, Any] | None = None  # the message the stand-in stored

    @property
    def type(self) -> int | None:
        """The callback type (4 message, 5 deferred, 8 autocomplete...)."""
        return self.body.get("type")

    @property
    def allowed_mentions(self) -> dict[str, Any] | None:
        return self.data.get("allowed_mentions")


@dataclass
class GatewayOp:
    """One gateway payload received from the client."""

    connection: int
    op: int
    d: Any
    time: float


@dataclass
class SentInteraction:
    """What ``send_interaction`` pushed: its ``id`` and ``token`` find the answers."""

    id: str
    token: str
    payload: dict[str, Any]


@dataclass
class _Fault:
    method: str | None
    pattern: re.Pattern[str]
    status: int
    retry_after: float
    remaining: int
    code: int | None


@dataclass
class _Session:
    session_id: str
    seq: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)  # dispatches, to replay on RESUME


@dataclass
class Connection:
    """One gateway websocket."""

    ws: web.WebSocketResponse
    session: _Session | None = None
    ready: bool = False
    closed: bool = False


@dataclass
class _Interaction:
    channel_id: str
    acknowledged: int | None = None  # the callback type


class _Reply(Exception):
    """An error answer, as Discord words it."""

    def __init__(self, status: int, message: str, code: int, errors: dict | None = None) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.body: dict[str, Any] = {"message": message, "code": code}
        if errors:
            self.body["errors"] = errors


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py parses a body only when Content-Type is exactly "application/json"
    # (web.json_response would add "; charset=utf-8").
    headers = {"Content-Type": "application/json", **(headers or {})}
    return web.Response(body=json.dumps(data).encode(), status=status, headers=headers)


# -- Discord's rules on what is sent


def _too_long(text: Any, limit: int, low: int = 0) -> bool:
    return not low <= len(str(text or "")) <= limit


def message_errors(body: dict[str, Any], *, files: int = 0) -> _Reply | None:
    """Discord's message limits: an error to answer, or None."""
    errors: dict[str, str] = {}
    if _too_long(body.get("content"), 2000):
        errors["content"] = "Must be 2000 or fewer in length."
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        errors["embeds"] = "Must be 10 or fewer in length."
    total = 0
    for i, embed in enumerate(embeds):
        fields = embed.get("fields") or []
        parts = {
            "title": (embed.get("title"), 256, 0),
            "description": (embed.get("description"), 4096, 0),
            "footer.text": ((embed.get("footer") or {}).get("text"), 2048, 0),
            "author.name": ((embed.get("author") or {}).get("name"), 256, 0),
            "fields": ("x" * len(fields), 25, 0),
        }
        for j, f in enumerate(fields):
            parts[f"fields.{j}.name"] = (f.get("name"), 256, 1)
            parts[f"fields.{j}.value"] = (f.get("value"), 1024, 1)
        for where, (text, limit, low) in parts.items():
            total += len(str(text or "")) if where != "fields" else 0
            if _too_long(text, limit, low):
                errors[f"embeds.{i}.{where}"] = f"Must be between {low} and {limit} in length."
    if total > 6000:
        errors["embeds"] = "Embed size exceeds maximum size of 6000"
    if errors:
        return _Reply(400, "Invalid Form Body", 50035, errors)
    if not (body.get("content") or embeds or files or body.get("components")):
        return _Reply(400, "Cannot send an empty message", 50006)
    return None


def _command_errors(cmd: dict[str, Any], where: str = "") -> dict[str, str]:
    errors = {}
    name = cmd.get("name", "")
    if not re.fullmatch(r"[-_\w]{1,32}", name) or name != name.lower():
        errors[f"{where}name"] = f"Invalid command name {name!r}"
    if _too_long(cmd.get("description"), 100, 1):
        errors[f"{where}description"] = "Must be between 1 and 100 in length."
    options = cmd.get("options") or []
    if len(options) > 25:
        errors[f"{where}options"] = "Must be 25 or fewer in length."
    for i, opt in enumerate(options):
        errors.update(_command_errors(opt, f"{where}options.{i}."))
    return errors


class DiscordStandIn:
    """Loopback Discord REST + gateway (see the module's docstring)."""

    def __init__(self, *, heartbeat_interval_ms: int = 41250) -> None:
        self.token = "standin-bot-token"
        self.application_id = "700000000000000001"
        self.bot_user = make_user(self.application_id, "papers-bot", bot=True)
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.port = 0
        self.guild_id, self.channel_id = "800000000000000001", "810000000000000001"
        self.user_id, self.owner_id = "900000000000000001", "900000000000000002"
        self.users = {u["id"]: u for u in (self.bot_user, make_user(self.user_id, "alice"))}
        self.guilds: dict[str, dict[str, Any]] = {}
        self.add_guild(self.guild_id, "Test Guild", channel_id=self.channel_id)
        self.requests: list[RecordedRequest] = []
        self.unknown_requests: list[RecordedRequest] = []
        self.server_errors: list[BaseException] = []
        self.gateway_ops: list[GatewayOp] = []
        self.connections: list[Connection] = []
        self.sent_dispatches: list[dict[str, Any]] = []
        self.heartbeat_acks = 0
        self.posted: list[Posted] = []
        self.commands: dict[str | None, list[dict[str, Any]]] = {}
        self.typed: set[str] = set()  # every string option typed into an interaction
        # Channel messages, oldest first (GET /channels/{id}/messages reads them); the nonces
        # seen (enforce_nonce returns the first message again); a hook run after a message is
        # stored and before its answer (a slow or lost answer).
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.threads: dict[str, dict[str, Any]] = {}  # threads started from messages
        self._nonces: dict[tuple[str, str], dict[str, Any]] = {}
        self.after_post: Callable[[str, dict[str, Any]], Any] | None = None
        self._faults: list[_Fault] = []
        self._interactions: dict[str, _Interaction] = {}  # by id and by token
        self._sessions: dict[str, _Session] = {}
        self._active: Connection | None = None
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def __aenter__(self) -> DiscordStandIn:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for conn in self.connections:
            if not conn.closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.ws.close(code=1001), 2)
        if self._runner is not None:
            await self._runner.cleanup()

    # -- the world

    def add_guild(
        self, guild_id: str | None = None, name: str = "Another Guild", *, channel_id: str = ""
    ) -> dict[str, Any]:
        """A guild with @everyone, an "admin" role and a #general channel; once the client is
        connected, announce it with ``send_dispatch("GUILD_CREATE", guild)``."""
        gid = guild_id or snowflake()
        roles = [_role(gid, "@everyone", EVERYONE_PERMISSIONS, 0)]
        roles.append(_role(str(int(gid) + 1), "admin", ADMINISTRATOR, 1))
        members = [_member(self.bot_user, []), _member(self.users[self.user_id], [])]
        channel = _text_channel(channel_id or snowflake(), gid, "general")
        guild = {"id": gid, "name": name, "owner_id": self.owner_id, "roles": roles}
        guild |= {"members": members, "member_count": 2, "channels": [channel], "threads": []}
        guild |= {"emojis": [], "stickers": [], "features": [], "joined_at": _now()}
        guild |= {"preferred_locale": "en-US", "large": False}
        self.guilds[gid] = guild
        return guild

    def add_text_channel(self, guild_id: str, name: str) -> dict[str, Any]:
        guild = self.guilds[str(guild_id)]
        channel = _text_channel(snowflake(), guild["id"], name, len(guild["channels"]))
        guild["channels"].append(channel)
        return channel

    def _channel(self, channel_id: str) -> dict[str, Any] | None:
        channels = (c for g in self.guilds.values() for c in g["channels"])
        found = next((c for c in channels if c["id"] == channel_id), None)
        return found or self.threads.get(channel_id)  # a thread is a channel too

    # -- waiting

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 3.0) -> Any:
        """Wait until ``predicate()`` is truthy (checked again on every recorded event)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not (result := predicate()):
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                recent = [f"{r.method} {r.path} -> {r.status}" for r in self.requests[-10:]]
                raise TimeoutError(f"condition not met within {timeout}s; last requests: {recent}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.25))
        return result

    async def wait_until_ready(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``count`` gateway sessions were established (READY or RESUMED sent)."""
        await self.wait_for(lambda: self.ready_count >= count, timeout)

    def ops(self, op: int) -> list[GatewayOp]:
        return [g for g in self.gateway_ops if g.op == op]

    @property
    def identify_count(self) -> int:
        return len(self.ops(OP_IDENTIFY))

    @property
    def resume_count(self) -> int:
        return len(self.ops(OP_RESUME))

    @property
    def connection_count(self) -> int:
        return len(self.connections)

    @property
    def ready_count(self) -> int:
        return sum(1 for d in self.sent_dispatches if d["t"] in ("READY", "RESUMED"))

    # -- the gateway

    async def _send(self, conn: Connection, payload: dict[str, Any]) -> None:
        if not (conn.closed or conn.ws.closed):
            await conn.ws.send_str(json.dumps(payload))

    async def _dispatch(self, conn: Connection, event: str, data: Any) -> dict[str, Any]:
        assert conn.session is not None
        conn.session.seq += 1
        payload = {"op": OP_DISPATCH, "t": event, "s": conn.session.seq, "d": data}
        conn.session.log.append(payload)
        self.sent_dispatches.append(payload)
        await self._send(conn, payload)
        self._notify()
        return payload

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        conn = Connection(ws)
        self.connections.append(conn)
        self._active = conn
        try:
            hello = {"heartbeat_interval": self.heartbeat_interval_ms}
            await self._send(conn, {"op": OP_HELLO, "s": None, "t": None, "d": hello})
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    payload = json.loads(msg.data)
                    op, d = payload.get("op"), payload.get("d")
                    index = len(self.connections) - 1
                    self.gateway_ops.append(GatewayOp(index, op, d, time.monotonic()))
                    self._notify()
                    await self._gateway_op(conn, op, d)
        except Exception as exc:  # surfaced through server_errors
            self.server_errors.append(exc)
        finally:
            conn.closed = True
            if self._active is conn:
                self._active = None
            self._notify()
        return ws

    async def _gateway_op(self, conn: Connection, op: int, d: Any) -> None:
        if op == OP_HEARTBEAT:
            await self._send(conn, {"op": OP_HEARTBEAT_ACK, "s": None, "t": None, "d": None})
            self.heartbeat_acks += 1
        elif op == OP_IDENTIFY and d.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
        elif op == OP_IDENTIFY:
            conn.session = _Session(snowflake())
            self._sessions[conn.session.session_id] = conn.session
            ready = {
                "v": 10,
                "user": self.bot_user,
                "guilds": [{"id": gid, "unavailable": True} for gid in self.guilds],
                "session_id": conn.session.session_id,
                "resume_gateway_url": self.gateway_url,
                "application": {"id": self.application_id, "flags": 0},
                "private_channels": [],
            }
            await self._dispatch(
                conn, "READY", ready | ({"shard": d["shard"]} if "shard" in d else {})
            )
            for guild in list(self.guilds.values()):
                await self._dispatch(conn, "GUILD_CREATE", {**guild, "unavailable": False})
            conn.ready = True
        elif op == OP_RESUME:
            conn.session = self._sessions.get(d.get("session_id"))
            if conn.session is None:
                await self._send(conn, {"op": OP_INVALID_SESSION, "s": None, "t": None, "d": False})
                return
            for missed in [p for p in conn.session.log if p["s"] > (d.get("seq") or 0)]:
                await self._send(conn, missed)
            await self._dispatch(conn, "RESUMED", {})
            conn.ready = True
        self._notify()

    async def send_dispatch(self, event: str, data: Any, *, timeout: float = 5.0) -> dict[str, Any]:
        """Send a DISPATCH ``event`` once a session is live."""
        await self.wait_for(lambda: self._active is not None and self._active.ready, timeout)
        assert self._active is not None
        if event == "GUILD_DELETE" and not data.get("unavailable"):
            self.guilds.pop(str(data["id"]), None)
        return await self._dispatch(self._active, event, data)

    async def drop_gateway(self, code: int = 4000, *, invalidate: bool = False) -> None:
        """Close the live websocket: discord.py RESUMEs, or re-IDENTIFYs after op 9 when the
        session was forgotten (``invalidate``)."""
        conn = self._active
        assert conn is not None and conn.session is not None, "no live gateway connection"
        if invalidate:
            self._sessions.pop(conn.session.session_id, None)
        self._active, conn.ready = None, False
        await conn.ws.close(code=code, message=b"stand-in dropped the connection")
        await self.wait_for(lambda: conn.closed, 5.0)

    # -- interactions

    async def send_interaction(
        self, subcommand: str, options: dict[str, Any] | None = None, *, permissions: int = 0
    ) -> SentInteraction:
        """Push INTERACTION_CREATE for ``/papers subcommand opt:value ...`` from a member of the
        guild in its channel (option types from the synced schema); ``permissions``: the
        member's, @everyone's unless given. Every other kind of interaction is built directly
        in the adapter tests (tests/support/discord_direct.py)."""
        options = options or {}
        user = self.users[self.user_id]
        cmd = next((c for cs in self.commands.values() for c in cs if c["name"] == "papers"), {})
        sub = next((o for o in cmd.get("options", []) if o["name"] == subcommand), {})
        types = {o["name"]: o["type"] for o in sub.get("options", [])}
        opts = [{"name": k, "type": types.get(k, 3), "value": v} for k, v in options.items()]
        iid, token = snowflake(), f"itoken-{snowflake()}"
        data = {"id": cmd.get("id", snowflake()), "name": "papers", "type": 1}
        data["options"] = [{"name": subcommand, "type": 1, "options": opts}]
        data |= {"guild_id": cmd["guild_id"]} if "guild_id" in cmd else {}
        payload: dict[str, Any] = {"id": iid, "application_id": self.application_id, "type": 2}
        payload |= {"token": token, "version": 1, "locale": "en-US", "entitlements": []}
        payload |= {"attachment_size_limit": 10 * 1024 * 1024, "data": data}
        gid, cid, perms = self.guild_id, self.channel_id, permissions or EVERYONE_PERMISSIONS
        payload |= {"guild_id": gid, "guild": {"id": gid, "locale": "en-US", "features": []}}
        channel = self._channel(cid) or {}
        payload |= {"channel_id": cid, "channel": {**channel, "permissions": str(perms)}}
        payload |= {"member": _member(user, [], perms), "context": 0}
        payload["app_permissions"] = str(EVERYONE_PERMISSIONS)
        self._interactions[iid] = self._interactions[token] = _Interaction(cid)
        self.typed.update(v for v in options.values() if isinstance(v, str))
        await self.send_dispatch("INTERACTION_CREATE", payload)
        return SentInteraction(iid, token, payload)

    # -- what the bot posted

    def _posted(self, kind: str, key: str | SentInteraction, part: int) -> list[Posted]:
        value = key if isinstance(key, str) else (key.id if part == 2 else key.token)
        return [
            p for p in self.posted if p.kind == kind and p.request.path.split("/")[part] == value
        ]

    def callbacks(self, sent: str | SentInteraction) -> list[Posted]:
        return self._posted("callback", sent, 2)

    def followups(self, sent: str | SentInteraction) -> list[Posted]:
        return self._posted("followup", sent, 3)

    def channel_messages(self, channel_id: int | str) -> list[Posted]:
        return self._posted("channel_message", str(channel_id), 2)

    def registered_commands(self, guild_id: int | str | None = None) -> list[dict[str, Any]]:
        return self.commands.get(str(guild_id) if guild_id else None, [])

    def requests_to(self, method: str, pattern: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    def fail_next(
        self,
        method: str | None,
        path_pattern: str,
        status: int = 429,
        retry_after: float = 0.2,
        count: int = 1,
        *,
        code: int | None = None,
    ) -> None:
        """Fail the next ``count`` requests of ``method`` (None: any) whose path matches:
        429 as Discord sends it (``Via``, ``Retry-After``, ``retry_after``), else
        ``{"message", "code"}``."""
        self._faults.append(
            _Fault(method, re.compile(path_pattern), status, retry_after, count, code)
        )

    def _fault(self, rec: RecordedRequest) -> web.Response | None:
        fault = next(
            (
                f
                for f in self._faults
                if f.method in (None, rec.method) and f.pattern.search(rec.path)
            ),
            None,
        )
        if fault is None:
            return None
        fault.remaining -= 1
        if fault.remaining == 0:
            self._faults.remove(fault)
        if fault.status != 429:
            return _json({"message": "stand-in fault", "code": fault.code or 0}, fault.status)
        headers = {"Via": "1.1 google", "Retry-After": str(max(1, math.ceil(fault.retry_after)))}
        headers |= {"X-RateLimit-Scope": "user", "X-RateLimit-Reset-After": str(fault.retry_after)}
        body = {"message": "You are being rate limited.", "retry_after": fault.retry_after}
        return _json(body | {"global": False, "code": 0}, 429, headers)

    # -- REST

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        payload, files = None, []
        if request.content_type.startswith("multipart/"):
            async for part in await request.multipart():
                data = await part.read(decode=False)  # type: ignore[union-attr]
                if part.name == "payload_json":
                    payload = json.loads(data)
                elif part.filename is not None:
                    ctype = part.headers.get("Content-Type")
                    files.append(RecordedFile(part.filename, ctype, bytes(data)))
        elif raw := await request.read():
            payload = json.loads(raw)
        path = request.path.removeprefix(API_PREFIX)
        rec = RecordedRequest(
            request.method, path, dict(request.query), payload, files, time.monotonic()
        )
        self.requests.append(rec)
        try:
            response = await self._route(request, rec)
        except _Reply as err:
            response = _json(err.body, err.status)
        except Exception as exc:
            self.server_errors.append(exc)
            response = _json({"message": f"stand-in error: {exc!r}", "code": 0}, 500)
        rec.status = response.status
        self._notify()
        return response

    async def _route(self, request: web.Request, rec: RecordedRequest) -> web.StreamResponse:
        found = [
            (handler, match)
            for method, pattern, handler in _ROUTES
            if method == rec.method and (match := re.fullmatch(pattern, rec.path))
        ]
        if not found or not request.path.startswith(API_PREFIX):
            self.unknown_requests.append(rec)
            return _json({"message": "404: Not Found", "code": 0}, 404)
        ((handler, match),) = found
        if (fault := self._fault(rec)) is not None:
            return fault
        needs_bot = rec.path.startswith(("/users", "/oauth2", "/applications", "/channels"))
        if needs_bot and request.headers.get("Authorization") != f"Bot {self.token}":
            raise _Reply(401, "401: Unauthorized", 0)
        body = rec.json if isinstance(rec.json, dict) else {}
        result = await handler(self, rec, body, *match.groups())
        return web.Response(status=204) if result is None else _json(result)

    async def _get_gateway_bot(self, rec: RecordedRequest, body: dict) -> Any:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return {"url": self.gateway_url, "shards": 1, "session_start_limit": limit}

    async def _get_me(self, rec: RecordedRequest, body: dict) -> Any:
        return self.bot_user

    async def _get_application(self, rec: RecordedRequest, body: dict) -> Any:
        owner = make_user(self.owner_id, "owner")
        app = {"id": self.application_id, "name": "papers-bot", "description": "", "icon": None}
        app |= {"bot_public": True, "bot_require_code_grant": False, "verify_key": "0" * 64}
        return app | {"owner": owner, "team": None, "flags": 0}

    async def _put_commands(
        self, rec: RecordedRequest, body: dict, app_id: str, guild_id: str | None = None
    ) -> Any:
        if app_id != self.application_id or (guild_id and guild_id not in self.guilds):
            raise _Reply(403, "Missing Access", 50001)
        errors = {
            f"{i}.{k}": v for i, c in enumerate(rec.json) for k, v in _command_errors(c).items()
        }
        if errors:
            raise _Reply(400, "Invalid Form Body", 50035, errors)
        old = {c["name"]: c["id"] for c in self.commands.get(guild_id, [])}
        self.commands[guild_id] = [
            {"type": 1, "default_member_permissions": None, "dm_permission": True, **cmd}
            | {"id": old.get(cmd["name"]) or snowflake(), "application_id": app_id, "version": "1"}
            | ({"guild_id": guild_id} if guild_id else {})
            for cmd in rec.json
        ]
        return self.commands[guild_id]

    def _message(
        self,
        body: dict,
        files: list[RecordedFile],
        channel_id: str,
        *,
        webhook: bool = False,
    ) -> dict[str, Any]:
        url = "http://127.0.0.1:9/attachment"
        message = dict(_MESSAGE, id=snowflake(), channel_id=channel_id)
        message |= {"type": 20 if webhook else 0, "author": self.bot_user, "timestamp": _now()}
        message |= {k: body.get(k) or _MESSAGE[k] for k in ("content", "embeds", "components")}
        message["flags"] = int(body.get("flags") or 0)
        message["attachments"] = [
            {"id": snowflake(), "filename": f.filename, "size": len(f.data), "url": url}
            | {"proxy_url": url, "content_type": f.content_type}
            for f in files
        ]
        if channel := self._channel(channel_id):
            message["guild_id"] = channel["guild_id"]
        if webhook:
            message["webhook_id"] = message["application_id"] = self.application_id
        return message

    def _by_token(self, app_id: str, token: str) -> _Interaction:
        inter = self._interactions.get(token)
        if app_id != self.application_id or inter is None or inter.acknowledged is None:
            raise _Reply(404, "Unknown Webhook", 10015)  # also: a follow-up before the response
        return inter

    async def _callback(self, rec: RecordedRequest, body: dict, iid: str, token: str) -> Any:
        inter = self._interactions.get(iid)
        if inter is None or self._interactions.get(token) is not inter:
            raise _Reply(404, "Unknown interaction", 10062)
        if inter.acknowledged is not None:
            raise _Reply(400, "Interaction has already been acknowledged.", 40060)
        kind, data = body.get("type"), body.get("data") or {}
        if kind not in (CB_MESSAGE, CB_DEFERRED_MESSAGE):  # what a slash command is answered by
            raise _Reply(400, "Invalid Form Body", 50035, {"type": f"not for a command: {kind}"})
        if kind == CB_MESSAGE and (err := message_errors(data, files=len(rec.files))):
            raise err
        message = self._message(data, rec.files, inter.channel_id, webhook=True)
        inter.acknowledged = kind
        self.posted.append(Posted("callback", body, rec.files, rec, message))
        if rec.query.get("with_response") not in ("1", "true", "True"):
            return None
        answer: dict[str, Any] = {"interaction": {"id": iid, "type": 2}}
        answer["resource"] = {"type": kind, "message": message}
        answer["interaction"] |= {
            "response_message_id": message["id"],
            "response_message_loading": kind == CB_DEFERRED_MESSAGE,
            "response_message_ephemeral": bool(message["flags"] & EPHEMERAL),
        }
        return answer

    async def _followup(self, rec: RecordedRequest, body: dict, app_id: str, token: str) -> Any:
        inter = self._by_token(app_id, token)
        if err := message_errors(body, files=len(rec.files)):
            raise err
        message = self._message(body, rec.files, inter.channel_id, webhook=True)
        self.posted.append(Posted("followup", body, rec.files, rec, message))
        return message if rec.query.get("wait") in ("1", "true", "True") else None

    async def _delete_webhook_message(
        self, rec: RecordedRequest, body: dict, app_id: str, token: str, mid: str
    ) -> Any:
        self._by_token(app_id, token)  # the message itself is not kept

    async def _get_channel(self, rec: RecordedRequest, body: dict, channel_id: str) -> Any:
        if (channel := self._channel(channel_id)) is None:
            raise _Reply(404, "Unknown Channel", 10003)
        return channel

    async def _channel_message(self, rec: RecordedRequest, body: dict, channel_id: str) -> Any:
        if self._channel(channel_id) is None:
            raise _Reply(404, "Unknown Channel", 10003)
        if err := message_errors(body, files=len(rec.files)):
            raise err
        nonce = (channel_id, str(body.get("nonce")))
        if body.get("enforce_nonce") and nonce in self._nonces:
            return self._nonces[nonce]
        message = self._message(body, rec.files, channel_id)
        self.posted.append(Posted("channel_message", body, rec.files, rec, message))
        self.history.setdefault(channel_id, []).append(message)
        if body.get("nonce") is not None:
            self._nonces[nonce] = message
        if self.after_post is not None and asyncio.iscoroutine(
            held := self.after_post(channel_id, message)
        ):
            await held
        return message

    async def _channel_history(self, rec: RecordedRequest, body: dict, channel_id: str) -> Any:
        """Messages after ``after`` (a snowflake), at most ``limit``, newest first."""
        await self._get_channel(rec, body, channel_id)
        after, limit = int(rec.query.get("after") or 0), int(rec.query.get("limit") or 50)
        later = [m for m in self.history.get(channel_id, []) if int(m["id"]) > after]
        return list(reversed(later[:limit]))

    async def _start_thread(
        self, rec: RecordedRequest, body: dict, channel_id: str, message_id: str
    ) -> Any:
        """A public thread started from a message: its id is the message's; a second start
        answers 400 with code 160004 (a thread exists for this message)."""
        channel = self._channel(channel_id)
        if channel is None or not any(
            m["id"] == message_id for m in self.history.get(channel_id, [])
        ):
            raise _Reply(404, "Unknown Message", 10008)
        if message_id in self.threads:
            raise _Reply(400, "A thread has already been created for this message", 160004)
        if not 1 <= len(str(body.get("name") or "")) <= 100:
            raise _Reply(400, "Invalid Form Body", 50035)
        archive = {"archived": False, "locked": False, "archive_timestamp": _now()}
        archive["auto_archive_duration"] = int(body.get("auto_archive_duration") or 1440)
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
            "thread_metadata": archive,
        }
        return self.threads[message_id]


_SF, _TOKEN, _MID = r"(\d+)", r"([^/]+)", r"(@original|\d+)"
_ROUTES: list[tuple[str, str, Callable[..., Any]]] = [
    ("GET", "/gateway/bot", DiscordStandIn._get_gateway_bot),
    ("GET", "/users/@me", DiscordStandIn._get_me),
    ("GET", "/oauth2/applications/@me", DiscordStandIn._get_application),
    ("PUT", f"/applications/{_SF}/commands", DiscordStandIn._put_commands),
    ("PUT", f"/applications/{_SF}/guilds/{_SF}/commands", DiscordStandIn._put_commands),
    ("POST", f"/interactions/{_SF}/{_TOKEN}/callback", DiscordStandIn._callback),
    ("POST", f"/webhooks/{_SF}/{_TOKEN}", DiscordStandIn._followup),
    ("DELETE", f"/webhooks/{_SF}/{_TOKEN}/messages/{_MID}", DiscordStandIn._delete_webhook_message),
    ("GET", f"/channels/{_SF}", DiscordStandIn._get_channel),
    ("POST", f"/channels/{_SF}/messages", DiscordStandIn._channel_message),
    ("GET", f"/channels/{_SF}/messages", DiscordStandIn._channel_history),
    ("POST", f"/channels/{_SF}/messages/{_SF}/threads", DiscordStandIn._start_thread),
]

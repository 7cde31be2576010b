"""Loopback stand-ins for Slack, for end-to-end tests of a real slack_bolt AsyncApp.

Nothing here mocks slack_sdk or slack_bolt: the stand-ins speak HTTP / WebSocket on
127.0.0.1 and the real clients talk to them.

* ``SlackWebAPI``      - aiohttp server playing the Web API (``/api/<method>``), the
                         ``response_url`` endpoint, the files_upload_v2 upload URL and
                         the Socket Mode websocket (``/socket``).
* ``SignedSlackClient`` - plays Slack *calling the app*: signed slash commands,
                         block_actions, Events API bodies POSTed to ``/slack/events``.
* ``serve_web_app``    - serves an ``aiohttp.web.Application`` (e.g. ``AsyncApp.web_app()``)
                         on 127.0.0.1 at a free port.
* builders              - ``slash_command_payload``, ``block_actions_payload``,
                         ``event_callback_body``, ``url_verification_body``,
                         ``app_uninstalled_event``, ``tokens_revoked_event``.

Wiring (HTTP mode)::

    async with SlackWebAPI() as api:
        app = AsyncApp(token="xoxb-test-token", signing_secret=SECRET,
                       client=AsyncWebClient(base_url=api.base_url))
        async with serve_web_app(app.web_app()) as events_url, \
                   SignedSlackClient(events_url, SECRET) as slack:
            res = await slack.send_slash_command("hi", response_url=api.response_url("r1"))

Wiring (Socket Mode): ``AsyncSocketModeHandler(app, app_token="xapp-test")`` uses
``app.client`` for ``apps.connections.open``, so the same ``base_url`` is enough;
``await handler.connect_async()``, then ``await api.socket_send_slash_command({...})``.
Close the handler *before* leaving ``async with SlackWebAPI()`` (otherwise the SDK
client sees the close frame and keeps trying to reconnect to a dead port).

Everything runs on the test's event loop. A *sync* ``WebClient`` pointed at the
stand-in must be called from another thread (``asyncio.to_thread``), or it blocks
the loop the server runs on.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import inspect
import itertools
import json
import math
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiohttp
from aiohttp import WSMsgType, web

__all__ = [
    "Call",
    "FaultRule",
    "HTTPResult",
    "ResponsePost",
    "SignedSlackClient",
    "SlackWebAPI",
    "SocketAck",
    "SocketConnection",
    "Tamper",
    "UploadedFile",
    "Workspace",
    "app_uninstalled_event",
    "block_actions_payload",
    "event_callback_body",
    "serve_web_app",
    "sign",
    "signed_headers",
    "slash_command_payload",
    "tokens_revoked_event",
    "url_verification_body",
]

LOOPBACK = "127.0.0.1"


# --------------------------------------------------------------------------- records


@dataclass
class Workspace:
    """What a token resolves to (auth.test / team.info / oauth answers)."""

    team_id: str = "T0TEST"
    team_name: str = "Test Team"
    team_domain: str = "test-team"
    enterprise_id: str | None = None
    enterprise_name: str | None = None
    is_enterprise_install: bool = False
    bot_user_id: str = "U0BOT"
    bot_id: str = "B0BOT"
    app_id: str = "A0TEST"
    user_name: str = "arxiv-bot"


@dataclass
class Call:
    """One Web API request as received (recorded even when it failed)."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    token: str | None
    at: float  # time.monotonic()
    http_method: str = "POST"
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)  # e.g. Retry-After

    @property
    def ok(self) -> bool:
        """True when answered HTTP 200 with ``"ok": true``."""
        return self.status == 200 and bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return None if self.ok else self.response.get("error")


@dataclass
class UploadedFile:
    """A file that went through getUploadURLExternal -> upload -> completeUploadExternal."""

    file_id: str
    filename: str
    length: int | None
    content: bytes | None = None  # None until the raw upload POST arrived
    title: str | None = None
    channel_id: str | None = None
    channels: list[str] = field(default_factory=list)
    initial_comment: str | None = None
    thread_ts: str | None = None
    completed: bool = False
    token: str | None = None

    def as_slack_file(self, base: str, user: str) -> dict[str, Any]:
        chans = self.channels or ([self.channel_id] if self.channel_id else [])
        name = self.filename or "file"
        ext = name.rsplit(".", 1)[-1] if "." in name else "binary"
        now = int(time.time())
        return {
            "id": self.file_id,
            "created": now,
            "timestamp": now,
            "name": name,
            "title": self.title or name,
            "mimetype": "application/octet-stream",
            "filetype": ext,
            "pretty_type": ext.upper(),
            "user": user,
            "size": len(self.content or b""),
            "mode": "hosted",
            "is_external": False,
            "is_public": True,
            "url_private": f"{base}files/{self.file_id}/{urllib.parse.quote(name)}",
            "permalink": f"{base}files/{self.file_id}",
            "channels": [c for c in chans if c.startswith("C")],
            "groups": [c for c in chans if c.startswith("G")],
            "ims": [c for c in chans if c.startswith("D")],
            "comments_count": 0,
        }


@dataclass
class ResponsePost:
    """One POST to a ``response_url`` (what ``respond()`` sends)."""

    name: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float


@dataclass
class SocketAck:
    """An acknowledgement the Socket Mode client sent back for an envelope."""

    envelope_id: str
    payload: dict[str, Any] | None
    raw: dict[str, Any]
    at: float


@dataclass
class SocketConnection:
    ws: web.WebSocketResponse
    app_token: str | None
    ticket: str
    connected_at: float
    closed_at: float | None = None
    received: list[dict[str, Any]] = field(default_factory=list)  # every JSON text frame

    @property
    def open(self) -> bool:
        return self.closed_at is None and not self.ws.closed


@dataclass
class FaultRule:
    method: str
    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    delay: float = 0.0
    remaining: int = 1


class _Reply(Exception):
    """Internal: short-circuit a handler with a Slack-shaped error."""

    def __init__(self, error: str, status: int = 200, headers: dict[str, str] | None = None):
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = headers or {}


# --------------------------------------------------------------------------- server


class SlackWebAPI:
    """aiohttp stand-in for slack.com: Web API, response_url, file upload, Socket Mode.

    Use ``async with SlackWebAPI() as api:`` inside the test (same event loop as the app).

    Tokens: any token not registered with ``add_token`` resolves to ``default_workspace``
    unless ``strict_tokens=True`` (then ``invalid_auth``). Revoked tokens (``auth.revoke``
    or ``revoke_token``) answer ``token_revoked``.
    """

    def __init__(
        self,
        *,
        default_workspace: Workspace | None = None,
        strict_tokens: bool = False,
        strict_ids: bool = False,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> None:
        self.default_workspace = default_workspace or Workspace()
        self.strict_tokens = strict_tokens
        self.strict_ids = strict_ids  # unknown channel/user ids -> *_not_found
        self.client_id = client_id  # if set, oauth.v2.access checks it
        self.client_secret = client_secret

        self.tokens: dict[str, Workspace] = {}
        self.revoked_tokens: set[str] = set()
        self.channels: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        # Messages posted per channel, oldest first (conversations.history reads them), and a
        # hook run after a message is stored and before its answer (a slow or lost answer).
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.after_post: Callable[[str, dict[str, Any]], Any] | None = None
        self.oauth_codes: dict[str, dict[str, Any]] = {}

        self.calls: list[Call] = []
        self.files: dict[str, UploadedFile] = {}
        self.response_posts: list[ResponsePost] = []
        self.socket_connections: list[SocketConnection] = []
        self.socket_acks: dict[str, SocketAck] = {}
        self.rate_limited_count = 0  # every 429 served (injected or enforced)

        self._custom_handlers: dict[str, Callable[[Call], Any]] = {}
        self._faults: list[FaultRule] = []
        self._rate_interval: float | None = None
        self._last_post_by_channel: dict[str, float] = {}
        self._socket_tickets: dict[str, str | None] = {}
        self._last_ts = 0.0
        self._id_counter = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # ---- lifecycle
    async def start(self) -> SlackWebAPI:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/v1/{file_id}", self._upload)
        app.router.add_post("/response/{name}", self._response_url)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        for conn in self.socket_connections:
            if not conn.ws.closed:
                await conn.ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"server shutdown")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackWebAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- URLs
    @property
    def root_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    @property
    def base_url(self) -> str:
        """Give this to ``AsyncWebClient(base_url=...)`` (trailing slash included)."""
        return f"{self.root_url}api/"

    def response_url(self, name: str = "default") -> str:
        """A loopback URL whose POSTs are recorded under ``name`` (see ``responses``)."""
        return f"{self.root_url}response/{urllib.parse.quote(name, safe='')}"

    # ---- configuration
    def add_token(self, token: str, workspace: Workspace | None = None, **fields: Any) -> Workspace:
        """Map ``token`` to a workspace (a ``Workspace`` or its fields as kwargs)."""
        ws = workspace or Workspace(**fields)
        self.tokens[token] = ws
        self.revoked_tokens.discard(token)
        return ws

    def revoke_token(self, token: str) -> None:
        self.revoked_tokens.add(token)

    def add_channel(self, channel_id: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
        ch = self._synth_channel(channel_id)
        if name:
            ch["name"] = ch["name_normalized"] = name
        ch.update(extra)
        self.channels[channel_id] = ch
        return ch

    def add_user(self, user_id: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
        u = self._synth_user(user_id, self.default_workspace)
        if name:
            u["name"] = name
            u["real_name"] = u["profile"]["real_name"] = name
        u.update(extra)
        self.users[user_id] = u
        return u

    def add_oauth_code(
        self,
        code: str,
        *,
        bot_token: str = "xoxb-test-oauth-token",
        workspace: Workspace | None = None,
        installer_user_id: str = "U0INSTALLER",
        user_token: str | None = None,
        scope: str = "commands,chat:write,files:write",
        user_scope: str = "",
        **workspace_fields: Any,
    ) -> Workspace:
        """Make ``oauth.v2.access(code=code)`` succeed; registers ``bot_token`` too."""
        ws = workspace or Workspace(**workspace_fields)
        self.oauth_codes[code] = {
            "bot_token": bot_token,
            "workspace": ws,
            "installer_user_id": installer_user_id,
            "user_token": user_token,
            "scope": scope,
            "user_scope": user_scope,
        }
        self.add_token(bot_token, ws)
        if user_token:
            self.add_token(user_token, ws)
        return ws

    def set_handler(self, method: str, handler: Callable[[Call], Any]) -> None:
        """Answer ``method`` with ``handler(call) -> dict`` (sync or async); overrides built-ins.

        Raise nothing: return ``{"ok": False, "error": ...}`` for Slack-style errors.
        Faults from ``fail_next`` still apply first.
        """
        self._custom_handlers[method] = handler

    def fail_next(
        self,
        method: str,
        *,
        status: int | None = None,
        error: str | None = None,
        retry_after: int | None = None,
        count: int = 1,
        delay: float = 0.0,
    ) -> FaultRule:
        """Fault the next ``count`` calls of ``method`` (also "response_url", "upload").

        * ``status=429`` -> HTTP 429 + ``Retry-After`` (default 1) + ``{"ok": false, "error": "ratelimited"}``
        * ``error="channel_not_found"`` -> HTTP 200 ``{"ok": false, "error": ...}``
        * other ``status`` (e.g. 500) -> that status with an error body
        * only ``delay`` -> the normal answer, held ``delay`` seconds
        """
        if status is None:
            status = 200
        if status == 429:
            error = error or "ratelimited"
            retry_after = 1 if retry_after is None else retry_after
        elif status != 200:
            error = error or "fatal_error"
        rule = FaultRule(method, status, error, retry_after, delay, count)
        self._faults.append(rule)
        return rule

    def enforce_rate_limit(self, per_channel_per_second: float | None = 1) -> None:
        """429 chat.postMessage to a channel sooner than 1/rate s after its last accepted one.

        ``None`` turns enforcement off.
        """
        self._rate_interval = None if not per_channel_per_second else 1.0 / per_channel_per_second
        self._last_post_by_channel.clear()

    def clear(self) -> None:
        """Forget recorded calls, uploads, responses and acks (config and tokens stay)."""
        self.calls.clear()
        self.files.clear()
        self.response_posts.clear()
        self.socket_acks.clear()
        self.rate_limited_count = 0

    # ---- inspection
    def calls_to(self, method: str, *, ok: bool | None = None) -> list[Call]:
        """Recorded calls to ``method``; ``ok=True`` only accepted ones, ``False`` only failed."""
        return [c for c in self.calls if c.method == method and (ok is None or c.ok == ok)]

    def accepted(self, method: str) -> list[Call]:
        return self.calls_to(method, ok=True)

    @property
    def uploaded_files(self) -> list[UploadedFile]:
        """Completed uploads (files.completeUploadExternal done), in upload order."""
        return [f for f in self.files.values() if f.completed]

    def responses(self, name: str = "default") -> list[dict[str, Any]]:
        """JSON bodies POSTed to ``response_url(name)``."""
        return [r.body for r in self.response_posts if r.name == name]

    async def wait_for(
        self,
        predicate_or_method: str | Callable[[Call], bool],
        timeout: float = 5.0,
        *,
        count: int = 1,
        ok: bool | None = None,
    ) -> Call:
        """Wait until ``count`` matching calls exist; return the ``count``-th one.

        A string matches the method name (``ok`` filters accepted/failed); a callable
        is a predicate on ``Call``.
        """
        if isinstance(predicate_or_method, str):
            name = predicate_or_method

            def pred(c: Call) -> bool:
                return c.method == name and (ok is None or c.ok == ok)
        else:
            pred = predicate_or_method

        def check() -> Call | None:
            hits = [c for c in self.calls if pred(c)]
            return hits[count - 1] if len(hits) >= count else None

        return await self._poll(check, timeout, f"call matching {predicate_or_method!r} (x{count})")

    async def wait_for_response(
        self, name: str = "default", timeout: float = 5.0, *, count: int = 1
    ) -> dict[str, Any]:
        """Wait for the ``count``-th POST to ``response_url(name)``; return its body."""

        def check() -> dict[str, Any] | None:
            bodies = self.responses(name)
            return bodies[count - 1] if len(bodies) >= count else None

        return await self._poll(check, timeout, f"response_url post #{count} to {name!r}")

    async def wait_for_upload(self, timeout: float = 5.0, *, count: int = 1) -> UploadedFile:
        def check() -> UploadedFile | None:
            done = self.uploaded_files
            return done[count - 1] if len(done) >= count else None

        return await self._poll(check, timeout, f"completed upload #{count}")

    async def _poll(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            hit = check()
            if hit is not None:
                return hit
            if time.monotonic() >= deadline:
                seen = [(c.method, c.status, c.response.get("error")) for c in self.calls]
                raise TimeoutError(
                    f"timed out after {timeout}s waiting for {what}; calls so far: {seen}"
                )
            await asyncio.sleep(0.01)

    # ---- Socket Mode
    @property
    def open_sockets(self) -> list[SocketConnection]:
        return [c for c in self.socket_connections if c.open]

    async def wait_for_socket_connection(
        self, timeout: float = 5.0, *, count: int | None = None
    ) -> SocketConnection:
        """Newest open connection; with ``count``, wait until the ``count``-th ever made is open."""

        def check() -> SocketConnection | None:
            if count is None:
                return (self.open_sockets or [None])[-1]
            if len(self.socket_connections) >= count and self.socket_connections[count - 1].open:
                return self.socket_connections[count - 1]
            return None

        return await self._poll(check, timeout, f"Socket Mode connection (count={count})")

    async def socket_send(self, envelope: dict[str, Any], timeout: float = 5.0) -> str:
        """Send a raw envelope to the newest open socket (waits for one); returns envelope_id."""
        envelope = dict(envelope)
        envelope.setdefault("envelope_id", str(uuid.uuid4()))
        conn = await self.wait_for_socket_connection(timeout)
        await conn.ws.send_str(json.dumps(envelope))
        return envelope["envelope_id"]

    async def socket_send_slash_command(
        self, payload: dict[str, Any], *, envelope_id: str | None = None, timeout: float = 5.0
    ) -> str:
        """Push a ``slash_commands`` envelope (payload as from ``slash_command_payload``)."""
        return await self.socket_send(
            {
                "envelope_id": envelope_id or str(uuid.uuid4()),
                "type": "slash_commands",
                "payload": payload,
                "accepts_response_payload": True,
            },
            timeout,
        )

    async def socket_send_interactive(
        self, payload: dict[str, Any], *, timeout: float = 5.0
    ) -> str:
        """Push an ``interactive`` envelope (e.g. a ``block_actions_payload``)."""
        return await self.socket_send(
            {"type": "interactive", "payload": payload, "accepts_response_payload": False}, timeout
        )

    async def socket_send_event(
        self, body: dict[str, Any], *, retry_attempt: int = 0, timeout: float = 5.0
    ) -> str:
        """Push an ``events_api`` envelope (body as from ``event_callback_body``)."""
        return await self.socket_send(
            {
                "type": "events_api",
                "payload": body,
                "accepts_response_payload": False,
                "retry_attempt": retry_attempt,
                "retry_reason": "" if retry_attempt == 0 else "timeout",
            },
            timeout,
        )

    async def socket_request_disconnect(self, reason: str = "refresh_requested") -> None:
        """Send Slack's ``{"type": "disconnect"}``: the SDK then reopens via apps.connections.open."""
        conn = await self.wait_for_socket_connection()
        await conn.ws.send_str(
            json.dumps(
                {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-standin"}}
            )
        )

    async def wait_for_socket_ack(self, envelope_id: str, timeout: float = 5.0) -> SocketAck:
        return await self._poll(
            lambda: self.socket_acks.get(envelope_id),
            timeout,
            f"socket ack for envelope {envelope_id}",
        )

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._socket_tickets:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(autoping=True)  # aiohttp answers the SDK's pings with pongs
        await ws.prepare(request)
        conn = SocketConnection(ws, self._socket_tickets[ticket], ticket, time.monotonic())
        self.socket_connections.append(conn)
        await ws.send_str(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": len(self.open_sockets),
                    "debug_info": {
                        "host": "applink-standin",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.default_workspace.app_id},
                }
            )
        )
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                if not isinstance(data, dict):
                    continue
                conn.received.append(data)
                if "envelope_id" in data:
                    eid = data["envelope_id"]
                    self.socket_acks[eid] = SocketAck(
                        eid, data.get("payload"), data, time.monotonic()
                    )
        finally:
            conn.closed_at = time.monotonic()
        return ws

    # ---- HTTP plumbing
    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method in ("POST", "PUT") and request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    body = None
                if isinstance(body, dict):
                    params.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for k, v in form.items():
                    if isinstance(v, web.FileField):
                        params[k] = {"filename": v.filename, "content": v.file.read()}
                    else:
                        params[k] = v
            else:
                raw = await request.read()
                if raw:
                    params["_raw_body"] = raw
        return params

    @staticmethod
    def _token_of(request: web.Request, params: dict[str, Any]) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[len("Bearer ") :].strip()
        tok = params.get("token")
        return tok if isinstance(tok, str) else None

    def _take_fault(self, method: str) -> FaultRule | None:
        for rule in self._faults:
            if rule.method == method and rule.remaining > 0:
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._faults.remove(rule)
                return rule
        return None

    def _fault_response(self, rule: FaultRule) -> web.Response | None:
        if rule.status == 200 and rule.error is None:
            return None  # delay only
        headers = {}
        if rule.status == 429:
            self.rate_limited_count += 1
            headers["Retry-After"] = str(rule.retry_after)
        return web.json_response(
            {"ok": False, "error": rule.error}, status=rule.status, headers=headers
        )

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._read_params(request)
        token = self._token_of(request, params)
        call = Call(
            method=method,
            params=params,
            headers=dict(request.headers),
            token=token,
            at=time.monotonic(),
            http_method=request.method,
        )
        self.calls.append(call)

        resp: web.Response | None = None
        rule = self._take_fault(method)
        if rule is not None:
            if rule.delay:
                await asyncio.sleep(rule.delay)
            resp = self._fault_response(rule)
        if resp is None:
            custom = self._custom_handlers.get(method)
            handler = self._handlers.get(method)
            try:
                if custom is not None:
                    body = custom(call)
                    if inspect.isawaitable(body):
                        body = await body
                elif handler is None:
                    raise _Reply("unknown_method")
                else:
                    body = await handler(self, call)
                resp = web.json_response(body)
            except _Reply as r:
                if r.status == 429:
                    self.rate_limited_count += 1
                resp = web.json_response(
                    {"ok": False, "error": r.error}, status=r.status, headers=r.headers
                )
        call.status = resp.status
        call.response = json.loads(resp.text or "{}")
        call.response_headers = {
            k: v for k, v in resp.headers.items() if k.lower() != "content-type"
        }
        return resp

    async def _response_url(self, request: web.Request) -> web.Response:
        name = urllib.parse.unquote(request.match_info["name"])
        try:
            body = await request.json()
        except ValueError:
            body = {"_raw_body": await request.text()}
        rule = self._take_fault("response_url")
        if rule is not None:
            if rule.delay:
                await asyncio.sleep(rule.delay)
            if rule.status != 200 or rule.error:
                return web.Response(
                    status=rule.status if rule.status != 200 else 404, text=rule.error or ""
                )
        self.response_posts.append(
            ResponsePost(name, body, dict(request.headers), time.monotonic())
        )
        return web.json_response({"ok": True})

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        f = self.files.get(file_id)
        if f is None:
            return web.Response(status=404, text="unknown file_id", content_type="text/plain")
        rule = self._take_fault("upload")
        if rule is not None:
            if rule.delay:
                await asyncio.sleep(rule.delay)
            if rule.status != 200 or rule.error:
                return web.Response(
                    status=rule.status if rule.status != 200 else 500, text=rule.error or ""
                )
        data = await request.read()  # slack_sdk POSTs the raw bytes as the body
        f.content = data
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    # ---- helpers for handlers
    def _next_ts(self) -> str:
        # Real time, unique and increasing, as Slack's: `oldest` compares against it.
        self._last_ts = max(round(time.time(), 6), round(self._last_ts + 1e-6, 6))
        return f"{self._last_ts:.6f}"

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}0STANDIN{next(self._id_counter):04d}"

    def _workspace(self, call: Call, *, allow_app_token: bool = False) -> Workspace:
        tok = call.token
        if not tok:
            raise _Reply("not_authed")
        if tok in self.revoked_tokens:
            raise _Reply("token_revoked")
        if tok.startswith("xapp-") and not allow_app_token:
            raise _Reply("not_allowed_token_type")
        ws = self.tokens.get(tok)
        if ws is None:
            if self.strict_tokens:
                raise _Reply("invalid_auth")
            ws = self.default_workspace
        return ws

    @staticmethod
    def _synth_channel(channel_id: str) -> dict[str, Any]:
        is_im = channel_id.startswith("D")
        is_private = channel_id.startswith("G")
        return {
            "id": channel_id,
            "name": channel_id.lower(),
            "name_normalized": channel_id.lower(),
            "is_channel": not (is_im or is_private),
            "is_group": is_private,
            "is_im": is_im,
            "is_mpim": False,
            "is_private": is_private or is_im,
            "is_archived": False,
            "is_general": False,
            "is_member": True,
            "is_ext_shared": False,
            "is_shared": False,
            "is_org_shared": False,
            "created": 1600000000,
            "creator": "U0CREATOR",
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }

    @staticmethod
    def _synth_user(user_id: str, ws: Workspace) -> dict[str, Any]:
        name = user_id.lower()
        return {
            "id": user_id,
            "team_id": ws.team_id,
            "name": name,
            "deleted": False,
            "real_name": name,
            "tz": "Etc/UTC",
            "tz_label": "Coordinated Universal Time",
            "tz_offset": 0,
            "is_admin": False,
            "is_owner": False,
            "is_bot": False,
            "is_app_user": False,
            "updated": 1600000000,
            "profile": {
                "real_name": name,
                "display_name": name,
                "email": f"{name}@example.invalid",
            },
        }

    def _message(self, ws: Workspace, p: dict[str, Any], ts: str) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "text": p.get("text", ""),
            "user": ws.bot_user_id,
            "bot_id": ws.bot_id,
            "app_id": ws.app_id,
            "team": ws.team_id,
            "ts": ts,
        }
        for k in ("blocks", "attachments", "thread_ts", "metadata"):
            v = p.get(k)
            if v is not None:
                msg[k] = (
                    json.loads(v)
                    if isinstance(v, str) and k != "thread_ts" and v[:1] in "[{"
                    else v
                )
        return msg

    # ---- method handlers (each: (self, call) -> dict; raise _Reply for errors)
    async def _auth_test(self, call: Call) -> dict[str, Any]:
        ws = self._workspace(call)
        out: dict[str, Any] = {
            "ok": True,
            "url": f"https://{ws.team_domain}.slack.com/",
            "team": ws.team_name,
            "user": ws.user_name,
            "team_id": ws.team_id,
            "user_id": ws.bot_user_id,
            "is_enterprise_install": ws.is_enterprise_install,
        }
        if call.token and call.token.startswith("xoxb-"):
            out["bot_id"] = ws.bot_id
        if ws.enterprise_id:
            out["enterprise_id"] = ws.enterprise_id
        return out

    async def _chat_post_message(self, call: Call) -> dict[str, Any]:
        ws = self._workspace(call)
        p = call.params
        channel = p.get("channel")
        if not channel:
            raise _Reply("channel_not_found")
        if self.strict_ids and channel not in self.channels:
            raise _Reply("channel_not_found")
        if not (p.get("text") or p.get("blocks") or p.get("attachments")):
            raise _Reply("no_text")
        if self._rate_interval is not None:
            now = time.monotonic()
            last = self._last_post_by_channel.get(channel)
            if last is not None and now - last < self._rate_interval:
                wait = max(1, math.ceil(self._rate_interval - (now - last)))
                raise _Reply("ratelimited", status=429, headers={"Retry-After": str(wait)})
            self._last_post_by_channel[channel] = now
        ts = self._next_ts()
        message = self._message(ws, p, ts)
        self.history.setdefault(channel, []).append(message)
        if self.after_post is not None and inspect.isawaitable(
            held := self.after_post(channel, message)
        ):
            await held
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    async def _conversations_history(self, call: Call) -> dict[str, Any]:
        """Newest first, after ``oldest``; metadata only with ``include_all_metadata``."""
        self._workspace(call)
        p = call.params
        oldest = float(p.get("oldest") or 0)
        with_metadata = str(p.get("include_all_metadata", "")).lower() in ("1", "true")
        found = [
            m if with_metadata else {k: v for k, v in m.items() if k != "metadata"}
            for m in reversed(self.history.get(str(p.get("channel")), []))
            if float(m["ts"]) > oldest and m.get("thread_ts", m["ts"]) == m["ts"]  # no replies
        ]
        return self._page(p, found)

    # ---- shape branch (issue 13, threads): conversations.replies -------------------------
    async def _conversations_replies(self, call: Call) -> dict[str, Any]:
        """A thread: its parent and replies (``thread_ts`` = ``ts``), oldest first, after
        ``oldest``; metadata only with ``include_all_metadata``; unknown parent: thread_not_found."""
        self._workspace(call)
        p = call.params
        channel, ts = self.history.get(str(p.get("channel")), []), str(p.get("ts"))
        if not any(m["ts"] == ts for m in channel):
            raise _Reply("thread_not_found")
        with_metadata = str(p.get("include_all_metadata", "")).lower() in ("1", "true")
        found = [
            m if with_metadata else {k: v for k, v in m.items() if k != "metadata"}
            for m in channel
            if (m["ts"] == ts or m.get("thread_ts") == ts)
            and float(m["ts"]) > float(p.get("oldest") or 0)
        ]
        return self._page(p, found)

    @staticmethod
    def _page(p: dict[str, Any], found: list[dict[str, Any]]) -> dict[str, Any]:
        # ---- end of the shape branch's block (the pagination was _conversations_history's)
        start, limit = int(p.get("cursor") or 0), int(p.get("limit") or 100)
        more = start + limit < len(found)
        return {
            "ok": True,
            "messages": found[start : start + limit],
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    async def _chat_post_ephemeral(self, call: Call) -> dict[str, Any]:
        self._workspace(call)
        p = call.params
        if not p.get("channel"):
            raise _Reply("channel_not_found")
        if not p.get("user"):
            raise _Reply("user_not_found")
        if not (p.get("text") or p.get("blocks") or p.get("attachments")):
            raise _Reply("no_text")
        return {"ok": True, "message_ts": self._next_ts()}

    async def _chat_update(self, call: Call) -> dict[str, Any]:
        ws = self._workspace(call)
        p = call.params
        if not p.get("channel"):
            raise _Reply("channel_not_found")
        if not p.get("ts"):
            raise _Reply("message_not_found")
        msg = self._message(ws, p, p["ts"])
        return {
            "ok": True,
            "channel": p["channel"],
            "ts": p["ts"],
            "text": p.get("text", ""),
            "message": msg,
        }

    async def _conversations_info(self, call: Call) -> dict[str, Any]:
        self._workspace(call)
        cid = call.params.get("channel")
        if not cid or (self.strict_ids and cid not in self.channels):
            raise _Reply("channel_not_found")
        return {"ok": True, "channel": self.channels.get(cid) or self._synth_channel(cid)}

    async def _conversations_open(self, call: Call) -> dict[str, Any]:
        """The direct message with one user (the same D… id each time), as Slack opens it."""
        self._workspace(call)
        users = [u for u in str(call.params.get("users") or "").split(",") if u]
        if len(users) != 1:
            raise _Reply("users_list_not_supplied" if not users else "not_supported")
        return {"ok": True, "channel": {"id": "D" + users[0].lstrip("UW"), "is_im": True}}

    async def _users_info(self, call: Call) -> dict[str, Any]:
        ws = self._workspace(call)
        uid = call.params.get("user")
        if not uid or (self.strict_ids and uid not in self.users):
            raise _Reply("user_not_found")
        return {"ok": True, "user": self.users.get(uid) or self._synth_user(uid, ws)}

    async def _team_info(self, call: Call) -> dict[str, Any]:
        ws = self._workspace(call)
        team: dict[str, Any] = {
            "id": ws.team_id,
            "name": ws.team_name,
            "domain": ws.team_domain,
            "email_domain": "example.invalid",
            "icon": {"image_default": True},
        }
        if ws.enterprise_id:
            team["enterprise_id"] = ws.enterprise_id
            team["enterprise_name"] = ws.enterprise_name
        return {"ok": True, "team": team}

    async def _files_get_upload_url(self, call: Call) -> dict[str, Any]:
        self._workspace(call)
        p = call.params
        filename = p.get("filename")
        if not filename:
            raise _Reply("invalid_arguments")
        try:
            length = int(p.get("length"))
        except (TypeError, ValueError):
            raise _Reply("invalid_arguments") from None
        fid = self._new_id("F")
        self.files[fid] = UploadedFile(
            file_id=fid, filename=filename, length=length, token=call.token
        )
        return {"ok": True, "upload_url": f"{self.root_url}upload/v1/{fid}", "file_id": fid}

    async def _files_complete_upload(self, call: Call) -> dict[str, Any]:
        ws = self._workspace(call)
        p = call.params
        try:
            items = p["files"]
            items = json.loads(items) if isinstance(items, str) else items
        except (KeyError, ValueError):
            raise _Reply("invalid_arguments") from None
        channels = [c for c in str(p.get("channels") or "").split(",") if c]
        done = []
        for item in items:
            f = self.files.get(item.get("id", ""))
            if f is None or f.content is None:
                raise _Reply("file_not_found")
            f.title = item.get("title") or f.filename
            f.channel_id = p.get("channel_id")
            f.channels = channels
            f.initial_comment = p.get("initial_comment")
            f.thread_ts = p.get("thread_ts")
            f.completed = True
            done.append(f.as_slack_file(self.root_url, ws.bot_user_id))
        return {"ok": True, "files": done}

    async def _files_info(self, call: Call) -> dict[str, Any]:
        ws = self._workspace(call)
        f = self.files.get(call.params.get("file", ""))
        if f is None or not f.completed:
            raise _Reply("file_not_found")
        return {"ok": True, "file": f.as_slack_file(self.root_url, ws.bot_user_id), "comments": []}

    async def _oauth_v2_access(self, call: Call) -> dict[str, Any]:
        p = call.params
        client_id, client_secret = p.get("client_id"), p.get("client_secret")
        auth = call.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                raise _Reply("invalid_client_id") from None
        if not client_id:
            raise _Reply("invalid_client_id")
        if self.client_id is not None and client_id != self.client_id:
            raise _Reply("invalid_client_id")
        if self.client_secret is not None and client_secret != self.client_secret:
            raise _Reply("bad_client_secret")
        grant = self.oauth_codes.pop(p.get("code", ""), None)  # codes are single-use
        if grant is None:
            raise _Reply("invalid_code")
        ws: Workspace = grant["workspace"]
        authed_user: dict[str, Any] = {"id": grant["installer_user_id"]}
        if grant["user_token"]:
            authed_user.update(
                {
                    "scope": grant["user_scope"],
                    "access_token": grant["user_token"],
                    "token_type": "user",
                }
            )
        return {
            "ok": True,
            "app_id": ws.app_id,
            "authed_user": authed_user,
            "scope": grant["scope"],
            "token_type": "bot",
            "access_token": grant["bot_token"],
            "bot_user_id": ws.bot_user_id,
            "team": None if ws.is_enterprise_install else {"id": ws.team_id, "name": ws.team_name},
            "enterprise": {"id": ws.enterprise_id, "name": ws.enterprise_name}
            if ws.enterprise_id
            else None,
            "is_enterprise_install": ws.is_enterprise_install,
        }

    async def _apps_connections_open(self, call: Call) -> dict[str, Any]:
        tok = call.token
        if not tok:
            raise _Reply("not_authed")
        if tok in self.revoked_tokens:
            raise _Reply("token_revoked")
        if not tok.startswith("xapp-"):
            raise _Reply("not_allowed_token_type")
        ticket = str(uuid.uuid4())
        self._socket_tickets[ticket] = tok
        app_id = self.default_workspace.app_id
        return {
            "ok": True,
            "url": f"ws://{LOOPBACK}:{self.port}/socket?ticket={ticket}&app_id={app_id}",
        }

    async def _auth_revoke(self, call: Call) -> dict[str, Any]:
        self._workspace(call, allow_app_token=True)
        test = str(call.params.get("test", "0")).lower() in ("1", "true")
        if not test and call.token:
            self.revoked_tokens.add(call.token)
        return {"ok": True, "revoked": not test}

    _handlers: ClassVar[dict[str, Callable[[SlackWebAPI, Call], Any]]] = {
        "auth.test": _auth_test,
        "auth.revoke": _auth_revoke,
        "chat.postMessage": _chat_post_message,
        "chat.postEphemeral": _chat_post_ephemeral,
        "chat.update": _chat_update,
        "conversations.info": _conversations_info,
        "conversations.history": _conversations_history,
        "conversations.replies": _conversations_replies,  # shape branch (threads)
        "conversations.open": _conversations_open,
        "users.info": _users_info,
        "team.info": _team_info,
        "files.getUploadURLExternal": _files_get_upload_url,
        "files.completeUploadExternal": _files_complete_upload,
        "files.info": _files_info,
        "oauth.v2.access": _oauth_v2_access,
        "apps.connections.open": _apps_connections_open,
    }


# --------------------------------------------------------------------------- serving an app


@asynccontextmanager
async def serve_web_app(
    web_app: web.Application, path: str = "/slack/events"
) -> AsyncIterator[str]:
    """Serve ``web_app`` (e.g. ``AsyncApp.web_app()``) on 127.0.0.1:<free port>; yield the URL of ``path``."""
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, LOOPBACK, 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://{LOOPBACK}:{port}{path}"
    finally:
        await runner.cleanup()


# --------------------------------------------------------------------------- Slack -> app side


def sign(signing_secret: str, timestamp: str | int, body: str | bytes) -> str:
    """``v0=`` + HMAC-SHA256(secret, ``v0:{timestamp}:{body}``), over the raw bytes."""
    raw = body if isinstance(body, bytes) else body.encode("utf-8")
    base = f"v0:{timestamp}:".encode() + raw
    return "v0=" + hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


def signed_headers(
    signing_secret: str, body: str | bytes, timestamp: str | int | None = None
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(signing_secret, ts, body)}


class Tamper:
    """Values for ``SignedSlackClient.post(..., tamper=...)``."""

    BAD_SIGNATURE = "bad_signature"
    OLD_TIMESTAMP = "old_timestamp"  # 10 minutes old, correctly signed for that timestamp
    NON_NUMERIC_TIMESTAMP = "non_numeric_timestamp"
    MISSING_HEADERS = "missing_headers"
    MISSING_SIGNATURE = "missing_signature"
    MISSING_TIMESTAMP = "missing_timestamp"
    MALFORMED_SIGNATURE = "malformed_signature"  # not "v0=<hex>" at all


@dataclass
class HTTPResult:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


_DEFAULT_IDS = {
    "team_id": "T0TEST",
    "team_domain": "test-team",
    "channel_id": "C0TEST",
    "channel_name": "general",
    "user_id": "U0USER",
    "user_name": "alice",
    "api_app_id": "A0TEST",
}


def _trigger_id() -> str:
    return f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}"


def slash_command_payload(
    text: str = "",
    *,
    command: str = "/papers",
    response_url: str = "http://127.0.0.1:9/response/unset",
    team_id: str = _DEFAULT_IDS["team_id"],
    team_domain: str = _DEFAULT_IDS["team_domain"],
    enterprise_id: str | None = None,
    enterprise_name: str | None = None,
    channel_id: str = _DEFAULT_IDS["channel_id"],
    channel_name: str = _DEFAULT_IDS["channel_name"],
    user_id: str = _DEFAULT_IDS["user_id"],
    user_name: str = _DEFAULT_IDS["user_name"],
    api_app_id: str = _DEFAULT_IDS["api_app_id"],
    is_enterprise_install: bool = False,
    verification_token: str = "verification-token-test",
    trigger_id: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """Slash command fields exactly as Slack form-encodes them (all strings)."""
    d = {
        "token": verification_token,
        "team_id": team_id,
        "team_domain": team_domain,
    }
    if enterprise_id:
        d["enterprise_id"] = enterprise_id
        d["enterprise_name"] = enterprise_name or "Test Grid"
    d.update(
        {
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": api_app_id,
            "is_enterprise_install": "true" if is_enterprise_install else "false",
            "response_url": response_url,
            "trigger_id": trigger_id or _trigger_id(),
        }
    )
    d.update(extra)
    return d


def block_actions_payload(
    action_id: str,
    value: str = "",
    *,
    block_id: str = "block-1",
    button_text: str = "Click",
    response_url: str = "http://127.0.0.1:9/response/unset",
    team_id: str = _DEFAULT_IDS["team_id"],
    team_domain: str = _DEFAULT_IDS["team_domain"],
    enterprise_id: str | None = None,
    channel_id: str = _DEFAULT_IDS["channel_id"],
    channel_name: str = _DEFAULT_IDS["channel_name"],
    user_id: str = _DEFAULT_IDS["user_id"],
    user_name: str = _DEFAULT_IDS["user_name"],
    api_app_id: str = _DEFAULT_IDS["api_app_id"],
    message_ts: str = "1700000000.000100",
    message: dict[str, Any] | None = None,
    is_enterprise_install: bool = False,
    verification_token: str = "verification-token-test",
) -> dict[str, Any]:
    """A ``block_actions`` interaction for a button click in a channel message."""
    now = f"{time.time():.6f}"
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": verification_token,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": _trigger_id(),
        "team": {
            "id": team_id,
            "domain": team_domain,
            **({"enterprise_id": enterprise_id} if enterprise_id else {}),
        },
        "enterprise": {"id": enterprise_id, "name": "Test Grid"} if enterprise_id else None,
        "is_enterprise_install": is_enterprise_install,
        "channel": {"id": channel_id, "name": channel_name},
        "message": message
        or {
            "type": "message",
            "user": "U0BOT",
            "ts": message_ts,
            "text": "",
            "bot_id": "B0BOT",
            "team": team_id,
        },
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": button_text, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": now,
            }
        ],
    }


def app_uninstalled_event() -> dict[str, Any]:
    return {"type": "app_uninstalled"}


def tokens_revoked_event(
    oauth: list[str] | None = None, bot: list[str] | None = None
) -> dict[str, Any]:
    """``oauth``: user ids whose user tokens were revoked; ``bot``: bot user ids."""
    return {"type": "tokens_revoked", "tokens": {"oauth": oauth or [], "bot": bot or []}}


def event_callback_body(
    event: dict[str, Any],
    *,
    team_id: str = _DEFAULT_IDS["team_id"],
    enterprise_id: str | None = None,
    api_app_id: str = _DEFAULT_IDS["api_app_id"],
    authed_user_id: str = "U0BOT",
    is_enterprise_install: bool = False,
    event_id: str | None = None,
    verification_token: str = "verification-token-test",
) -> dict[str, Any]:
    """An Events API ``event_callback`` envelope around ``event``."""
    now = int(time.time())
    event = dict(event)
    event.setdefault("event_ts", f"{now}.000100")
    body: dict[str, Any] = {
        "token": verification_token,
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": now,
        "authorizations": [
            {
                "enterprise_id": enterprise_id,
                "team_id": team_id,
                "user_id": authed_user_id,
                "is_bot": True,
                "is_enterprise_install": is_enterprise_install,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-standin-{uuid.uuid4().hex[:8]}",
    }
    if enterprise_id:
        body["enterprise_id"] = enterprise_id
    return body


def url_verification_body(
    challenge: str = "challenge-test", verification_token: str = "verification-token-test"
) -> dict:
    return {"token": verification_token, "challenge": challenge, "type": "url_verification"}


class SignedSlackClient:
    """Plays Slack calling the app: signed POSTs to the app's Request URL.

    ``async with SignedSlackClient(events_url, signing_secret) as slack:`` (owns an
    aiohttp session; or pass ``session=`` and skip the context manager).
    """

    def __init__(
        self,
        url: str,
        signing_secret: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.signing_secret = signing_secret
        self._session = session
        self._own_session = session is None
        self.timeout = timeout

    async def __aenter__(self) -> SignedSlackClient:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def build_headers(
        self, body: str | bytes, *, tamper: str | None = None, timestamp: int | str | None = None
    ):
        ts: str = str(int(time.time()) if timestamp is None else timestamp)
        if tamper == Tamper.OLD_TIMESTAMP:
            ts = str(int(time.time()) - 600)
        if tamper == Tamper.NON_NUMERIC_TIMESTAMP:
            ts = "not-a-number"
        headers = {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sign(self.signing_secret, ts, body),
        }
        if tamper == Tamper.BAD_SIGNATURE:
            headers["X-Slack-Signature"] = sign(self.signing_secret + "-wrong", ts, body)
        if tamper == Tamper.MALFORMED_SIGNATURE:
            headers["X-Slack-Signature"] = "v0=not-hex; sha256=?"
        if tamper in (Tamper.MISSING_HEADERS, Tamper.MISSING_SIGNATURE):
            headers.pop("X-Slack-Signature")
        if tamper in (Tamper.MISSING_HEADERS, Tamper.MISSING_TIMESTAMP):
            headers.pop("X-Slack-Request-Timestamp")
        return headers

    async def post(
        self,
        body: str | bytes,
        content_type: str,
        *,
        tamper: str | None = None,
        timestamp: int | str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> HTTPResult:
        """POST a raw body (any bytes, not only text), signed (or tampered as asked)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        headers = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        headers.update(self.build_headers(body, tamper=tamper, timestamp=timestamp))
        headers.update(extra_headers or {})
        async with self._session.post(
            self.url,
            data=body if isinstance(body, bytes) else body.encode("utf-8"),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        ) as res:
            return HTTPResult(res.status, dict(res.headers), await res.text())

    async def send_form(self, fields: dict[str, Any], **kw: Any) -> HTTPResult:
        body = urllib.parse.urlencode(fields)
        return await self.post(body, "application/x-www-form-urlencoded", **kw)

    async def send_json(self, payload: dict[str, Any], **kw: Any) -> HTTPResult:
        return await self.post(json.dumps(payload), "application/json", **kw)

    async def send_slash_command(
        self,
        text: str = "",
        *,
        tamper: str | None = None,
        timestamp: int | str | None = None,
        **fields: Any,
    ) -> HTTPResult:
        """Signed slash command (fields: see ``slash_command_payload``, e.g. ``response_url=``)."""
        return await self.send_form(
            slash_command_payload(text, **fields), tamper=tamper, timestamp=timestamp
        )

    async def send_block_action(
        self, action_id: str, value: str = "", *, tamper: str | None = None, **fields: Any
    ) -> HTTPResult:
        """Signed button click: form-encoded ``payload=<json>`` (see ``block_actions_payload``)."""
        payload = block_actions_payload(action_id, value, **fields)
        return await self.send_form({"payload": json.dumps(payload)}, tamper=tamper)

    async def send_interaction(
        self, payload: dict[str, Any], *, tamper: str | None = None
    ) -> HTTPResult:
        return await self.send_form({"payload": json.dumps(payload)}, tamper=tamper)

    async def send_event(
        self, event: dict[str, Any], *, tamper: str | None = None, **fields: Any
    ) -> HTTPResult:
        """Signed Events API ``event_callback`` (JSON) wrapping ``event``."""
        return await self.send_json(event_callback_body(event, **fields), tamper=tamper)

    async def send_url_verification(
        self, challenge: str = "challenge-test", *, tamper: str | None = None
    ):
        return await self.send_json(url_verification_body(challenge), tamper=tamper)

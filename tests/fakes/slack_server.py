"""A loopback stand-in for Slack, for the Slack tests: the real slack_sdk / slack_bolt talk to it.

* ``SlackWebAPI``: an aiohttp server playing the Web API methods our code and Bolt call
  (``/api/<method>``), ``response_url``, the files_upload_v2 upload URL and the Socket Mode
  websocket, with fault injection (``fail_next``) and Slack's per-channel posting limit.
* ``SignedSlackClient``: Slack calling the app: signed slash commands, button clicks and events.
* ``serve_web_app``: an ``aiohttp.web.Application`` served on 127.0.0.1 at a free port.

Everything runs on the test's event loop (a sync ``WebClient`` must be called from a thread).
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
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web
from slack_sdk.signature import SignatureVerifier

LOOPBACK = "127.0.0.1"


@dataclass
class Workspace:
    """What a token resolves to (auth.test and oauth.v2.access answers)."""

    team_id: str = "T0TEST"
    team_name: str = "Test Team"
    enterprise_id: str | None = None
    enterprise_name: str | None = None
    is_enterprise_install: bool = False
    bot_user_id: str = "U0BOT"
    bot_id: str = "B0BOT"
    app_id: str = "A0TEST"


@dataclass
class Call:
    """One Web API request as received (recorded even when it failed)."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    token: str | None
    at: float  # time.monotonic()
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return None if self.ok else self.response.get("error")


@dataclass
class UploadedFile:
    """A file through getUploadURLExternal -> upload -> completeUploadExternal."""

    file_id: str
    filename: str
    content: bytes | None = None  # None until the upload POST arrived
    title: str | None = None
    channel_id: str | None = None
    initial_comment: str | None = None
    thread_ts: str | None = None
    completed: bool = False
    token: str | None = None  # the token that asked for the upload URL


@dataclass
class ResponsePost:
    """One POST to a ``response_url`` (what ``respond()`` sends)."""

    name: str
    body: dict[str, Any]
    at: float


@dataclass
class SocketAck:
    """The acknowledgement a Socket Mode client sent back for an envelope."""

    envelope_id: str
    payload: dict[str, Any] | None


@dataclass
class SocketConnection:
    ws: web.WebSocketResponse
    app_token: str
    closed: bool = False

    @property
    def open(self) -> bool:
        return not self.closed and not self.ws.closed


@dataclass
class FaultRule:
    method: str
    status: int
    error: str | None
    retry_after: int | None
    delay: float
    remaining: int


class _Reply(Exception):
    """A Slack-shaped error answer ("ok": false)."""

    def __init__(self, error: str, status: int = 200, headers: dict[str, str] | None = None):
        super().__init__(error)
        self.error, self.status, self.headers = error, status, headers or {}


class SlackWebAPI:
    """slack.com on loopback; ``async with SlackWebAPI() as api:`` inside the test.

    A token not given to ``add_token`` is the default workspace's unless ``strict_tokens``
    (then ``invalid_auth``); a revoked one answers ``token_revoked``."""

    def __init__(
        self,
        *,
        strict_tokens: bool = False,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> None:
        self.default_workspace = Workspace()
        self.strict_tokens = strict_tokens
        self.client_id, self.client_secret = client_id, client_secret  # oauth.v2.access checks
        self.tokens: dict[str, Workspace] = {}
        self.revoked_tokens: set[str] = set()
        self.oauth_codes: dict[str, dict[str, Any]] = {}
        # Messages posted per channel, oldest first (conversations.history reads them), and a
        # hook run after a message is stored and before its answer (a slow or lost answer).
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.after_post: Callable[[str, dict[str, Any]], Any] | None = None
        self.calls: list[Call] = []
        self.files: dict[str, UploadedFile] = {}
        self.response_posts: list[ResponsePost] = []
        self.socket_connections: list[SocketConnection] = []
        self.socket_acks: dict[str, SocketAck] = {}
        self.rate_limited_count = 0  # every 429 served (injected or enforced)
        self._faults: list[FaultRule] = []
        self._rate_interval: float | None = None
        self._last_post: dict[str, float] = {}
        self._tickets: dict[str, str] = {}  # ticket -> the app token that asked for it
        self._last_ts = 0.0
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def __aenter__(self) -> SlackWebAPI:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/response/{name}", self._response_url)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, LOOPBACK, 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for conn in self.socket_connections:
            await conn.ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"server shutdown")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def root_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    @property
    def base_url(self) -> str:
        """For ``AsyncWebClient(base_url=...)`` (trailing slash included)."""
        return f"{self.root_url}api/"

    def response_url(self, name: str = "default") -> str:
        """A loopback URL whose POSTs are recorded under ``name`` (see ``responses``)."""
        return f"{self.root_url}response/{urllib.parse.quote(name, safe='')}"

    # -- configuration

    def add_token(self, token: str, workspace: Workspace | None = None, **fields: Any) -> Workspace:
        ws = workspace or Workspace(**fields)
        self.tokens[token] = ws
        self.revoked_tokens.discard(token)
        return ws

    def revoke_token(self, token: str) -> None:
        self.revoked_tokens.add(token)

    def add_oauth_code(
        self,
        code: str,
        *,
        bot_token: str = "xoxb-test-oauth-token",
        installer_user_id: str = "U0INSTALLER",
        scope: str = "commands,chat:write,files:write",
        **workspace_fields: Any,
    ) -> Workspace:
        """Make ``oauth.v2.access(code=code)`` succeed (once), granting ``bot_token``."""
        ws = self.add_token(bot_token, **workspace_fields)
        self.oauth_codes[code] = {"token": bot_token, "ws": ws, "user": installer_user_id}
        self.oauth_codes[code]["scope"] = scope
        return ws

    def fail_next(
        self,
        method: str,
        *,
        status: int = 200,
        error: str | None = None,
        retry_after: int | None = None,
        count: int = 1,
        delay: float = 0.0,
    ) -> FaultRule:
        """Fault the next ``count`` calls of ``method`` (also "response_url", "upload"):
        429 with Retry-After (default 1), another status with an error body, ``error=`` as
        HTTP 200 ``{"ok": false}``, or only ``delay`` before the normal answer."""
        if status == 429:
            error, retry_after = error or "ratelimited", 1 if retry_after is None else retry_after
        elif status != 200:
            error = error or "fatal_error"
        rule = FaultRule(method, status, error, retry_after, delay, count)
        self._faults.append(rule)
        return rule

    def enforce_rate_limit(self, per_channel_per_second: float | None = 1) -> None:
        """429 a chat.postMessage to a channel sooner than 1/rate s after its last one."""
        self._rate_interval = 1.0 / per_channel_per_second if per_channel_per_second else None
        self._last_post.clear()

    def clear(self) -> None:
        """Forget recorded calls, uploads, responses and acks (tokens stay)."""
        self.calls.clear()
        self.files.clear()
        self.response_posts.clear()
        self.socket_acks.clear()
        self.rate_limited_count = 0

    # -- inspection

    def calls_to(self, method: str, *, ok: bool | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == method and (ok is None or c.ok == ok)]

    def accepted(self, method: str) -> list[Call]:
        return self.calls_to(method, ok=True)

    def responses(self, name: str = "default") -> list[dict[str, Any]]:
        """JSON bodies POSTed to ``response_url(name)``."""
        return [r.body for r in self.response_posts if r.name == name]

    async def wait_for(
        self, method: str | Callable[[Call], bool], timeout: float = 5.0, *, count: int = 1
    ) -> Call:
        """The ``count``-th call of ``method`` (or matching a predicate), once it came."""
        match = method if callable(method) else lambda c: c.method == method
        return await self._poll(
            lambda: _nth([c for c in self.calls if match(c)], count), timeout, repr(method)
        )

    async def wait_for_response(
        self, name: str = "default", timeout: float = 5.0, *, count: int = 1
    ) -> dict[str, Any]:
        return await self._poll(lambda: _nth(self.responses(name), count), timeout, name)

    async def wait_for_upload(self, timeout: float = 5.0, *, count: int = 1) -> UploadedFile:
        done = lambda: _nth([f for f in self.files.values() if f.completed], count)  # noqa: E731
        return await self._poll(done, timeout, "upload")

    async def _poll(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while (hit := check()) is None:
            if time.monotonic() >= deadline:
                seen = [(c.method, c.status, c.response.get("error")) for c in self.calls]
                raise TimeoutError(f"no {what} after {timeout}s; calls so far: {seen}")
            await asyncio.sleep(0.01)
        return hit

    # -- Socket Mode

    async def wait_for_socket_connection(
        self, timeout: float = 5.0, *, count: int | None = None
    ) -> SocketConnection:
        """The newest open connection; with ``count``, the ``count``-th ever made, once open."""

        def check() -> SocketConnection | None:
            conns = self.socket_connections
            if count is None:
                return next((c for c in reversed(conns) if c.open), None)
            return conns[count - 1] if len(conns) >= count and conns[count - 1].open else None

        return await self._poll(check, timeout, "Socket Mode connection")

    async def _socket_send(self, kind: str, payload: dict[str, Any], **extra: Any) -> str:
        envelope_id = str(uuid.uuid4())
        conn = await self.wait_for_socket_connection()
        envelope = {"envelope_id": envelope_id, "type": kind, "payload": payload, **extra}
        await conn.ws.send_str(json.dumps(envelope))
        return envelope_id

    async def socket_send_slash_command(self, payload: dict[str, Any]) -> str:
        return await self._socket_send("slash_commands", payload, accepts_response_payload=True)

    async def socket_send_interactive(self, payload: dict[str, Any]) -> str:
        return await self._socket_send("interactive", payload, accepts_response_payload=False)

    async def wait_for_socket_ack(self, envelope_id: str, timeout: float = 5.0) -> SocketAck:
        return await self._poll(lambda: self.socket_acks.get(envelope_id), timeout, "socket ack")

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        app_token = self._tickets.get(request.query.get("ticket", ""))
        if app_token is None:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(autoping=True)  # aiohttp answers the SDK's pings
        await ws.prepare(request)
        conn = SocketConnection(ws, app_token)
        self.socket_connections.append(conn)
        app_id = self.default_workspace.app_id
        hello = {"type": "hello", "num_connections": 1, "connection_info": {"app_id": app_id}}
        await ws.send_str(json.dumps(hello))
        try:
            async for msg in ws:
                data = json.loads(msg.data) if msg.type == WSMsgType.TEXT else None
                if isinstance(data, dict) and "envelope_id" in data:
                    eid = data["envelope_id"]
                    self.socket_acks[eid] = SocketAck(eid, data.get("payload"))
        finally:
            conn.closed = True
        return ws

    # -- HTTP plumbing

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body = await request.json()
            params.update(body if isinstance(body, dict) else {})
        elif request.can_read_body:
            params.update(await request.post())
        return params

    def _take_fault(self, method: str) -> FaultRule | None:
        rule = next((r for r in self._faults if r.method == method), None)
        if rule is not None:
            rule.remaining -= 1
            if rule.remaining == 0:
                self._faults.remove(rule)
        return rule

    async def _fault(self, method: str) -> web.Response | None:
        """The injected answer for this call of ``method``, if any (after its delay)."""
        rule = self._take_fault(method)
        if rule is None:
            return None
        await asyncio.sleep(rule.delay)
        if rule.status == 200 and rule.error is None:
            return None  # a delay only
        headers = {}
        if rule.status == 429:
            self.rate_limited_count += 1
            headers["Retry-After"] = str(rule.retry_after)
        return web.json_response(
            {"ok": False, "error": rule.error}, status=rule.status, headers=headers
        )

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else params.get("token")
        call = Call(method, params, dict(request.headers), token, time.monotonic())
        self.calls.append(call)
        resp = await self._fault(method)
        if resp is None:
            try:
                handler = _HANDLERS.get(method)
                if handler is None:
                    raise _Reply("unknown_method")
                resp = web.json_response(await handler(self, call))
            except _Reply as r:
                self.rate_limited_count += r.status == 429
                body = {"ok": False, "error": r.error}
                resp = web.json_response(body, status=r.status, headers=r.headers)
        call.status, call.response = resp.status, json.loads(resp.text or "{}")
        return resp

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await request.json()
        rule = self._take_fault("response_url")
        if rule is not None:
            await asyncio.sleep(rule.delay)
            if rule.status != 200 or rule.error:
                return web.Response(status=rule.status if rule.status != 200 else 404)
        name = urllib.parse.unquote(request.match_info["name"])
        self.response_posts.append(ResponsePost(name, body, time.monotonic()))
        return web.json_response({"ok": True})

    async def _upload(self, request: web.Request) -> web.Response:
        f = self.files.get(request.match_info["file_id"])
        if f is None:
            return web.Response(status=404, text="unknown file_id")
        if (fault := await self._fault("upload")) is not None:
            return web.Response(status=fault.status if fault.status != 200 else 500)
        f.content = await request.read()  # slack_sdk POSTs the raw bytes
        return web.Response(text=f"OK - {len(f.content)}")

    # -- the methods (each: (self, call) -> answer; raise _Reply for an error)

    def _workspace(self, call: Call) -> Workspace:
        token = call.token
        if not token:
            raise _Reply("not_authed")
        if token in self.revoked_tokens:
            raise _Reply("token_revoked")
        if token.startswith("xapp-"):
            raise _Reply("not_allowed_token_type")
        if token not in self.tokens and self.strict_tokens:
            raise _Reply("invalid_auth")
        return self.tokens.get(token, self.default_workspace)

    def _next_ts(self) -> str:
        # Real time, unique and increasing, as Slack's: `oldest` compares against it.
        self._last_ts = max(round(time.time(), 6), round(self._last_ts + 1e-6, 6))
        return f"{self._last_ts:.6f}"

    async def _auth_test(self, call: Call) -> dict[str, Any]:
        ws = self._workspace(call)
        return {
            "ok": True,
            "url": "https://test-team.slack.com/",
            "team": ws.team_name,
            "user": "arxiv-bot",
            "team_id": ws.team_id,
            "user_id": ws.bot_user_id,
            "bot_id": ws.bot_id,
            "enterprise_id": ws.enterprise_id,
            "is_enterprise_install": ws.is_enterprise_install,
        }

    async def _chat_post_message(self, call: Call) -> dict[str, Any]:
        ws, p = self._workspace(call), call.params
        channel = p.get("channel")
        if not channel:
            raise _Reply("channel_not_found")
        if not (p.get("text") or p.get("blocks")):
            raise _Reply("no_text")
        now, last = time.monotonic(), self._last_post.get(channel)
        interval = self._rate_interval
        if interval is not None and last is not None and now - last < interval:
            wait = max(1, math.ceil(interval - (now - last)))
            raise _Reply("ratelimited", status=429, headers={"Retry-After": str(wait)})
        self._last_post[channel] = now
        ts = self._next_ts()
        message = {"type": "message", "text": p.get("text", ""), "user": ws.bot_user_id}
        message |= {"bot_id": ws.bot_id, "ts": ts}
        for key in ("blocks", "thread_ts", "metadata"):
            if (value := p.get(key)) is not None:
                as_json = isinstance(value, str) and key != "thread_ts" and value[:1] in "[{"
                message[key] = json.loads(value) if as_json else value
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
        with_metadata = str(p.get("include_all_metadata", "")).lower() in ("1", "true")
        found = [
            m if with_metadata else {k: v for k, v in m.items() if k != "metadata"}
            for m in reversed(self.history.get(str(p.get("channel")), []))
            if float(m["ts"]) > float(p.get("oldest") or 0)
            and m.get("thread_ts", m["ts"]) == m["ts"]  # no replies, as Slack
        ]
        return self._page(p, found)

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
        if not (call.params.get("channel") and call.params.get("user")):
            raise _Reply("channel_not_found")
        return {"ok": True, "message_ts": self._next_ts()}

    async def _conversations_open(self, call: Call) -> dict[str, Any]:
        """The direct message with one user (the same D… id each time)."""
        self._workspace(call)
        users = [u for u in str(call.params.get("users") or "").split(",") if u]
        if len(users) != 1:
            raise _Reply("not_supported")
        return {"ok": True, "channel": {"id": "D" + users[0].lstrip("UW"), "is_im": True}}

    async def _files_get_upload_url(self, call: Call) -> dict[str, Any]:
        self._workspace(call)
        fid = f"F0STANDIN{next(self._ids):04d}"
        self.files[fid] = UploadedFile(fid, call.params["filename"], token=call.token)
        return {"ok": True, "upload_url": f"{self.root_url}upload/{fid}", "file_id": fid}

    async def _files_complete_upload(self, call: Call) -> dict[str, Any]:
        self._workspace(call)
        p, done = call.params, []
        for item in json.loads(p["files"]) if isinstance(p["files"], str) else p["files"]:
            f = self.files.get(item.get("id", ""))
            if f is None or f.content is None:
                raise _Reply("file_not_found")
            f.title, f.channel_id = item.get("title") or f.filename, p.get("channel_id")
            f.initial_comment, f.thread_ts = p.get("initial_comment"), p.get("thread_ts")
            f.completed = True
            done.append({"id": f.file_id, "name": f.filename, "title": f.title})
        return {"ok": True, "files": done}

    async def _oauth_v2_access(self, call: Call) -> dict[str, Any]:
        p = call.params
        client_id, client_secret = p.get("client_id"), p.get("client_secret")
        auth = call.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
        if not client_id or self.client_id not in (None, client_id):
            raise _Reply("invalid_client_id")
        if self.client_secret not in (None, client_secret):
            raise _Reply("bad_client_secret")
        grant = self.oauth_codes.pop(p.get("code", ""), None)  # codes are single-use
        if grant is None:
            raise _Reply("invalid_code")
        ws: Workspace = grant["ws"]
        enterprise = {"id": ws.enterprise_id, "name": ws.enterprise_name}
        return {
            "ok": True,
            "app_id": ws.app_id,
            "authed_user": {"id": grant["user"]},
            "scope": grant["scope"],
            "token_type": "bot",
            "access_token": grant["token"],
            "bot_user_id": ws.bot_user_id,
            "team": None if ws.is_enterprise_install else {"id": ws.team_id, "name": ws.team_name},
            "enterprise": enterprise if ws.enterprise_id else None,
            "is_enterprise_install": ws.is_enterprise_install,
        }

    async def _apps_connections_open(self, call: Call) -> dict[str, Any]:
        if call.token in self.revoked_tokens:
            raise _Reply("token_revoked")
        if not (call.token or "").startswith("xapp-"):
            raise _Reply("not_allowed_token_type")
        ticket = str(uuid.uuid4())
        self._tickets[ticket] = call.token
        return {"ok": True, "url": f"ws://{LOOPBACK}:{self.port}/socket?ticket={ticket}"}


def _nth(items: list[Any], count: int) -> Any:
    return items[count - 1] if len(items) >= count else None


_HANDLERS: dict[str, Callable[[SlackWebAPI, Call], Any]] = {
    "auth.test": SlackWebAPI._auth_test,
    "chat.postMessage": SlackWebAPI._chat_post_message,
    "chat.postEphemeral": SlackWebAPI._chat_post_ephemeral,
    "conversations.history": SlackWebAPI._conversations_history,
    "conversations.replies": SlackWebAPI._conversations_replies,
    "conversations.open": SlackWebAPI._conversations_open,
    "files.getUploadURLExternal": SlackWebAPI._files_get_upload_url,
    "files.completeUploadExternal": SlackWebAPI._files_complete_upload,
    "oauth.v2.access": SlackWebAPI._oauth_v2_access,
    "apps.connections.open": SlackWebAPI._apps_connections_open,
}


@asynccontextmanager
async def serve_web_app(
    web_app: web.Application, path: str = "/slack/events"
) -> AsyncIterator[str]:
    """Serve ``web_app`` on 127.0.0.1 at a free port; yield the URL of ``path``."""
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, LOOPBACK, 0).start()
        yield f"http://{LOOPBACK}:{runner.addresses[0][1]}{path}"
    finally:
        await runner.cleanup()


# -- Slack calling the app


class Tamper:
    """What ``SignedSlackClient.post(..., tamper=...)`` breaks in the signature headers."""

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


def slash_command_payload(
    text: str = "",
    *,
    response_url: str = "http://127.0.0.1:9/response/unset",
    team_id: str = "T0TEST",
    channel_id: str = "C0TEST",
    user_id: str = "U0USER",
    enterprise_id: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """Slash command fields as Slack form-encodes them (all strings)."""
    fields = {"token": "verification-token-test", "team_id": team_id, "team_domain": "test-team"}
    if enterprise_id:
        fields["enterprise_id"] = enterprise_id
    fields |= {"channel_id": channel_id, "channel_name": "general", "user_id": user_id}
    fields |= {"user_name": "alice", "command": "/papers", "text": text, "api_app_id": "A0TEST"}
    fields |= {"is_enterprise_install": "false", "response_url": response_url}
    return fields | {"trigger_id": uuid.uuid4().hex} | extra


def block_actions_payload(
    action_id: str,
    value: str = "",
    *,
    response_url: str = "http://127.0.0.1:9/response/unset",
    team_id: str = "T0TEST",
    channel_id: str = "C0TEST",
    user_id: str = "U0USER",
    message_ts: str = "1700000000.000100",
    message: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``block_actions`` interaction: a button clicked in a channel message."""
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": "alice", "name": "alice", "team_id": team_id},
        "api_app_id": "A0TEST",
        "token": "verification-token-test",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel_id},
        "trigger_id": uuid.uuid4().hex,
        "team": {"id": team_id, "domain": "test-team"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": "general"},
        "message": message or {"type": "message", "user": "U0BOT", "ts": message_ts, "text": ""},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": "block-1",
                "text": {"type": "plain_text", "text": "Click"},
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
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


def event_callback_body(event: dict[str, Any], *, team_id: str = "T0TEST") -> dict[str, Any]:
    """An Events API ``event_callback`` envelope around ``event``."""
    now = int(time.time())
    return {
        "token": "verification-token-test",
        "team_id": team_id,
        "api_app_id": "A0TEST",
        "event": {"event_ts": f"{now}.000100", **event},
        "type": "event_callback",
        "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": now,
        "authorizations": [{"team_id": team_id, "user_id": "U0BOT", "is_bot": True}],
    }


def _sign(secret: str, timestamp: str, body: bytes) -> str:
    try:
        signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
        return signature or ""
    except UnicodeDecodeError:  # slack_sdk signs text only; a forger may sign any bytes
        base = f"v0:{timestamp}:".encode() + body
        return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SignedSlackClient:
    """Slack calling the app: signed POSTs to its Request URL (slack_sdk's own signer)."""

    def __init__(self, url: str, signing_secret: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self.secret = signing_secret
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SignedSlackClient:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    def build_headers(self, body: str | bytes, *, tamper: str | None = None) -> dict[str, str]:
        ts = str(int(time.time()) - (600 if tamper == Tamper.OLD_TIMESTAMP else 0))
        if tamper == Tamper.NON_NUMERIC_TIMESTAMP:
            ts = "not-a-number"
        secret = self.secret + ("-wrong" if tamper == Tamper.BAD_SIGNATURE else "")
        signature = _sign(secret, ts, body if isinstance(body, bytes) else body.encode())
        if tamper == Tamper.MALFORMED_SIGNATURE:
            signature = "v0=not-hex; sha256=?"
        headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}
        if tamper in (Tamper.MISSING_HEADERS, Tamper.MISSING_SIGNATURE):
            del headers["X-Slack-Signature"]
        if tamper in (Tamper.MISSING_HEADERS, Tamper.MISSING_TIMESTAMP):
            del headers["X-Slack-Request-Timestamp"]
        return headers

    async def post(
        self,
        body: str | bytes,
        content_type: str,
        *,
        tamper: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> HTTPResult:
        """POST a raw body, signed (or tampered as asked)."""
        assert self._session is not None, "use `async with SignedSlackClient(...)`"
        headers = {"Content-Type": content_type, **self.build_headers(body, tamper=tamper)}
        async with self._session.post(
            self.url,
            data=body if isinstance(body, bytes) else body.encode("utf-8"),
            headers=headers | (extra_headers or {}),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        ) as res:
            return HTTPResult(res.status, dict(res.headers), await res.text())

    async def send_form(self, fields: dict[str, Any], **kw: Any) -> HTTPResult:
        body = urllib.parse.urlencode(fields)
        return await self.post(body, "application/x-www-form-urlencoded", **kw)

    async def send_slash_command(
        self, text: str = "", *, tamper: str | None = None, **fields: Any
    ) -> HTTPResult:
        """A signed slash command (fields: see ``slash_command_payload``)."""
        return await self.send_form(slash_command_payload(text, **fields), tamper=tamper)

    async def send_block_action(
        self, action_id: str, value: str = "", *, tamper: str | None = None, **fields: Any
    ) -> HTTPResult:
        """A signed button click: form-encoded ``payload=<json>``."""
        payload = block_actions_payload(action_id, value, **fields)
        return await self.send_form({"payload": json.dumps(payload)}, tamper=tamper)

    async def send_event(
        self, event: dict[str, Any], *, tamper: str | None = None, **fields: Any
    ) -> HTTPResult:
        """A signed Events API ``event_callback`` (JSON) around ``event``."""
        body = json.dumps(event_callback_body(event, **fields))
        return await self.post(body, "application/json", tamper=tamper)

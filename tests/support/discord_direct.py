"""Discord interactions built directly, discord.py's own way (its tests build an `Interaction`
over a `ConnectionState`): the front end's real client, never connected, is handed
INTERACTION_CREATE payloads through `ConnectionState.parse_interaction_create`, as the gateway
would, and every REST request the answers make (callbacks, follow-ups, the original response,
channel messages) is recorded and answered here. What goes over the wire to Discord is the
loopback stand-in's, in the one end-to-end test (tests/test_standins.py, test_discord_bot.py)."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import discord
from discord.webhook.async_ import AsyncWebhookAdapter, async_context
from pydantic import SecretStr

from adapters.command_service import CommandService
from adapters.discord.bot import DiscordFrontEnd
from bot.commands.core import Core
from tests.fakes.discord_server import MessageParts, message_errors, snowflake

GUILD, CHANNEL, USER, OWNER = "800000000000000001", "810000000000000001", "4001", "4000"
APPLICATION = "700000000000000001"
EPHEMERAL = 1 << 6
VIEW, SEND, EMBED_LINKS = 1 << 10, 1 << 11, 1 << 14
# @everyone's: view, send, embed links, attach, read history, reactions, use commands
EVERYONE = VIEW | SEND | EMBED_LINKS | (1 << 15) | (1 << 16) | (1 << 6) | (1 << 31)
ALL = (1 << 51) - 1


@dataclass
class Sent(MessageParts):
    """One REST request an answer made: `kind` callback, followup, delete or channel_message."""

    kind: str
    path: str
    body: dict[str, Any]
    files: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def type(self) -> int | None:
        return self.body.get("type") if self.kind == "callback" else None

    @property
    def message(self) -> dict[str, Any]:
        """The message as Discord would store it (what a later button press carries)."""
        channel = self.path.split("/")[2] if self.kind == "channel_message" else CHANNEL
        return _message(self.data, channel)


def _message(data: dict[str, Any], channel_id: str) -> dict[str, Any]:
    user = {"id": APPLICATION, "username": "papers-bot", "discriminator": "0", "avatar": None}
    message = {"id": snowflake(), "channel_id": channel_id, "author": user | {"bot": True}}
    message |= {"content": data.get("content") or "", "embeds": data.get("embeds") or []}
    message |= {"components": data.get("components") or [], "attachments": [], "tts": False}
    message |= {"mention_everyone": False, "mentions": [], "mention_roles": [], "pinned": False}
    return message | {"timestamp": "2026-01-01T00:00:00+00:00", "edited_timestamp": None, "type": 0}


def _body(payload: Any, multipart: Any, files: Any) -> tuple[dict[str, Any], list]:
    """The JSON body (a multipart body's payload_json) and the files, by name."""
    for part in multipart or []:
        if part.get("name") == "payload_json":
            payload = json.loads(part["value"])
    uploads = [(f.filename, f.fp.getvalue()) for f in files or []]
    return (payload or {}), uploads


class Recorder(AsyncWebhookAdapter):
    """The webhook adapter interaction answers go through, and the client's REST for channel
    messages: records every request and answers it; `fail` makes the next matching one raise
    what discord.py raises for Discord's error (``code`` 10062: the interaction expired)."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.sent: list[Sent] = []
        self.faults: list[tuple[str, int, int]] = []
        # what Discord would refuse: a message over its limits or empty, a follow-up before
        # the interaction was answered (the stand-in's rules, tests/fakes/discord_server.py)
        self.refused: list[str] = []

    def fail(self, pattern: str, status: int = 500, code: int = 0, count: int = 1) -> None:
        self.faults += [(pattern, status, code)] * count

    async def request(self, route: Any, session: Any = None, **kwargs: Any) -> Any:
        body, files = _body(kwargs.get("payload"), kwargs.get("multipart"), kwargs.get("files"))
        return self._answer(route, body, files)

    async def rest(self, route: Any, *, files: Any = None, form: Any = None, **kwargs: Any) -> Any:
        body, uploads = _body(kwargs.get("json"), form, files)
        return self._answer(route, body, uploads)

    def _answer(self, route: Any, body: dict[str, Any], files: list) -> Any:
        path = route.url.split("/api/v10", 1)[-1]
        await_fault = next((f for f in self.faults if re.search(f[0], path)), None)
        if await_fault is not None:
            self.faults.remove(await_fault)
            _, status, code = await_fault
            response = SimpleNamespace(status=status, reason="stand-in fault")
            error = discord.NotFound if status == 404 else discord.HTTPException
            raise error(response, {"message": "stand-in fault", "code": code})  # type: ignore[arg-type]
        if route.method == "GET":  # fetch_channel: the poster's channels are all text channels
            cid = path.split("/")[2]
            return {"id": cid, "type": 0, "guild_id": GUILD, "name": "general", "position": 0}
        kind = {"DELETE": "delete"}.get(route.method) or _kind(path)
        sent = Sent(kind, path, body, files)
        self._judge(sent)
        self.sent.append(sent)
        if kind == "callback":
            iid = path.split("/")[2]
            return {"interaction": {"id": iid, "type": 2}}
        if kind == "channel_message":
            return _message(body, path.split("/")[2])
        return _message(body, CHANNEL) if kind == "followup" else None

    def _judge(self, sent: Sent) -> None:
        token = sent.path.split("/")[3]
        if sent.kind in ("followup", "delete") and not any(
            s.kind == "callback" and token in s.path.split("/") for s in self.sent
        ):
            self.refused.append(f"{sent.kind} before the interaction was answered")
        if sent.kind != "delete" and sent.type in (None, 4):
            error = message_errors(sent.data, files=len(sent.files))
            if error is not None:
                self.refused.append(f"{sent.kind}: {error.body}")


def _kind(path: str) -> str:
    if path.endswith("/callback"):
        return "callback"
    return "channel_message" if path.startswith("/channels/") else "followup"


@dataclass
class Interacted:
    """What `Direct` sent: its token finds the answers."""

    token: str
    payload: dict[str, Any]


def front_end(core: Core, service: CommandService | None = None) -> DiscordFrontEnd:
    """A Discord front end of `core`'s store, for `Direct` (never started)."""
    changes = {"discord_bot_token": SecretStr("token"), "discord_guild_id": int(GUILD)}
    settings = core.settings.model_copy(update=changes)
    core = Core(settings, core.engine, core.gateway, clock=core.clock)
    return DiscordFrontEnd(core, service=service)


def _handlers(tasks: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    """The tasks handling an event, without the 15 minutes an ephemeral view waits to expire."""
    me = asyncio.current_task()
    return {t for t in tasks if t is not me and "timeout_task" not in repr(t.get_coro())}


class Direct:
    """Interactions handed to a front end's client, their answers recorded (module docstring)."""

    def __init__(self, front_end: DiscordFrontEnd) -> None:
        self.fe = front_end
        self.client = front_end.client
        self.recorder = Recorder()
        self.typed: set[str] = set()  # every string option typed
        self.guild_id, self.channel_id = GUILD, CHANNEL
        if front_end.guild is not None:
            self.guild_id = str(front_end.guild.id)

    async def __aenter__(self) -> Direct:
        if not self.client.is_ready():  # never connected: the loop discord.py keeps, our REST
            await self.client._async_setup_hook()  # type: ignore[attr-defined]
            me = {"id": APPLICATION, "username": "papers-bot", "discriminator": "0", "bot": True}
            state = self.client._connection
            state.user = discord.ClientUser(state=state, data=me | {"avatar": None})  # type: ignore[typeddict-item]
        self.fe.logged_in.set()  # the poster may send
        async_context.set(self.recorder)  # the tasks the client starts inherit it
        self.client.http.request = self.recorder.rest  # type: ignore[method-assign]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.fe.service.drain(5)
        self.fe.service.close()

    async def command(
        self, subcommand: str, options: dict[str, Any] | None = None, **kwargs: Any
    ) -> Interacted:
        """`/papers subcommand opt:value ...` (option types from the group's schema)."""
        data = self._command_data(subcommand, options or {}, focused=None)
        self.typed.update(v for v in (options or {}).values() if isinstance(v, str))
        return await self.interact(2, data, **kwargs)

    async def autocomplete(
        self, subcommand: str, options: dict[str, Any], focused: str, **kwargs: Any
    ) -> list[dict[str, Any]]:
        """The choices offered while `focused` is typed."""
        sent = await self.interact(4, self._command_data(subcommand, options, focused), **kwargs)
        (callback,) = self.of(sent)
        assert callback.type == 8, callback
        choices = callback.data["choices"]  # Discord takes at most 25, each named 1-100 long
        assert len(choices) <= 25 and all(1 <= len(c["name"]) <= 100 for c in choices)
        return choices

    async def press(self, message: dict[str, Any], custom_id: str, **kwargs: Any) -> Interacted:
        """The button `custom_id` of `message` (one the bot sent) pressed."""
        buttons = [b for row in message.get("components") or [] for b in row["components"]]
        assert any(b.get("custom_id") == custom_id for b in buttons), custom_id
        data = {"custom_id": custom_id, "component_type": 2}
        kwargs.setdefault("channel_id", message["channel_id"])
        return await self.interact(3, data, message=message, **kwargs)

    def _command_data(
        self, subcommand: str, options: dict[str, Any], focused: str | None
    ) -> dict[str, Any]:
        schema = self.fe.interactions.group.to_dict(self.fe.client.tree)  # type: ignore[arg-type]
        sub = next(o for o in schema["options"] if o["name"] == subcommand)
        types = {o["name"]: o["type"] for o in sub.get("options", [])}
        opts = [
            {"name": k, "type": types[k], "value": v} | ({"focused": True} if k == focused else {})
            for k, v in options.items()
        ]
        data = {"id": snowflake(), "name": "papers", "type": 1}
        data["options"] = [{"name": subcommand, "type": 1, "options": opts}]
        return data | ({"guild_id": self.guild_id} if self.fe.guild is not None else {})

    async def interact(
        self,
        kind: int,
        data: dict[str, Any],
        *,
        user_id: str = USER,
        permissions: int = EVERYONE,
        app_permissions: int = ALL,
        dm: bool = False,
        channel_id: str | None = None,
        message: dict[str, Any] | None = None,
        wait: bool = True,
    ) -> Interacted:
        """INTERACTION_CREATE handed to the client; returns once every task it started ended
        (at once unless `wait`)."""
        user = {"id": user_id, "username": f"user{user_id}", "discriminator": "0", "avatar": None}
        token = f"itoken-{snowflake()}"
        payload: dict[str, Any] = {"id": snowflake(), "application_id": APPLICATION}
        payload |= {"type": kind, "token": token, "version": 1, "data": data, "locale": "en-US"}
        payload |= {"attachment_size_limit": 10 * 1024 * 1024, "entitlements": []}
        cid = channel_id or self.channel_id
        if dm:
            channel = {"id": cid, "type": 1, "recipients": [user]}
            payload |= {"channel_id": cid, "channel": channel, "user": user, "context": 1}
        else:
            channel = {
                "id": cid,
                "type": 0,
                "guild_id": self.guild_id,
                "name": "general",
                "position": 0,
            }
            member = {"user": user, "roles": [], "joined_at": "2026-01-01T00:00:00+00:00"}
            member |= {"deaf": False, "mute": False, "flags": 0, "permissions": str(permissions)}
            payload |= {"guild_id": self.guild_id, "channel_id": cid, "member": member}
            payload |= {"guild": {"id": self.guild_id, "locale": "en-US", "features": []}}
            payload["guild"]["name"] = "Test Guild"
            payload |= {"channel": channel | {"permissions": str(permissions)}, "context": 0}
            payload["app_permissions"] = str(app_permissions)
        if message is not None:
            payload["message"] = message
        await self.dispatch("INTERACTION_CREATE", payload, wait=wait)
        return Interacted(token, payload)

    async def dispatch(self, event: str, data: dict[str, Any], *, wait: bool = True) -> None:
        """A gateway event handed to the client's state, as the gateway would; then every task
        it started is awaited (unless not `wait`)."""
        before = asyncio.all_tasks()
        getattr(self.client._connection, f"parse_{event.lower()}")(data)
        while wait and (started := _handlers(asyncio.all_tasks() - before)):
            await asyncio.gather(*started)
            before |= started
        if wait:
            await self.fe.service.drain(5)  # work the answer left running, if any

    def guild(self, guild_id: str, *channel_ids: str) -> dict[str, Any]:
        """GUILD_CREATE's data for a guild with these text channels."""
        channels = [
            {"id": c, "type": 0, "guild_id": guild_id, "name": f"c{c}", "position": i}
            for i, c in enumerate(channel_ids)
        ]
        guild = {"id": guild_id, "name": "Test Guild", "owner_id": OWNER, "roles": []}
        guild |= {"members": [], "channels": channels, "threads": [], "emojis": []}
        return guild | {"stickers": [], "features": [], "member_count": 1, "large": False}

    def of(self, sent: Interacted) -> list[Sent]:
        """Every request made for `sent`: its callback, follow-ups, deletions."""
        return [s for s in self.recorder.sent if sent.token in s.path.split("/")]

    def answers(self, sent: Interacted) -> list[Sent]:
        """The messages answering `sent`: its response (unless a deferral), its follow-ups."""
        return [s for s in self.of(sent) if s.kind in ("callback", "followup") and s.type != 5]

    def channel_messages(self, channel_id: str | None = None) -> list[Sent]:
        cid = channel_id or self.channel_id
        return [s for s in self.recorder.sent if s.path == f"/channels/{cid}/messages"]


def assert_nothing_public(direct: Direct, sent: Interacted) -> None:
    """An ephemeral answer leaves no public message: either it was the first response, or the
    public "thinking" message of a deferral was deleted before the ephemeral follow-up (Discord
    makes the first follow-up after a deferral that very message, ephemeral flag or not)."""
    first, *rest = direct.of(sent)
    if first.type == 4:
        assert first.flags & EPHEMERAL
        return
    kinds = [s.kind for s in rest]
    assert kinds.count("delete") == 1 and kinds.index("delete") < kinds.index("followup")

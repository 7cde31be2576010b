"""The Slack stand-ins drive a real slack_bolt AsyncApp end to end over loopback."""

from __future__ import annotations

import asyncio
import logging

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_server import (
    SignedSlackClient,
    SlackWebAPI,
    Tamper,
    app_uninstalled_event,
    serve_web_app,
    slash_command_payload,
    tokens_revoked_event,
)

SECRET = "signing-secret-test"
BOT_TOKEN = "xoxb-test-token"
FILE_BYTES = b"%PDF-1.4 fake paper bytes \x00\x01\x02"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # slack_sdk routes every request through HTTP(S)_PROXY when set (NO_PROXY is ignored).
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)


def build_app(api: SlackWebAPI, *, retry_429: bool = False) -> AsyncApp:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=api.base_url)
    if retry_429:
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    # NB: with client= given, Bolt ignores token= and uses client.token (and raises
    # BoltError if that is None), so the token goes on the AsyncWebClient.
    app = AsyncApp(signing_secret=SECRET, client=client, logger=logging.getLogger("standin-app"))

    @app.command("/papers")
    async def papers(ack, command, respond, client):
        await ack()
        await respond(text=f"searching for {command['text']}", response_type="ephemeral")
        await client.chat_postMessage(
            channel=command["channel_id"], text=f"papers: {command['text']}"
        )
        await client.files_upload_v2(
            channel=command["channel_id"],
            filename="digest.pdf",
            title="Digest",
            content=FILE_BYTES,
            initial_comment="here you go",
        )

    return app


@pytest.mark.asyncio
async def test_signed_slash_command_round_trip():
    async with SlackWebAPI() as api:
        app = build_app(api)
        async with serve_web_app(app.web_app()) as url, SignedSlackClient(url, SECRET) as slack:
            res = await slack.send_slash_command(
                "hi", response_url=api.response_url("r1"), channel_id="C0PAPERS"
            )
            assert res.status == 200, res.text

            post = await api.wait_for("chat.postMessage", ok=True)
            upload = await api.wait_for_upload()
            body = await api.wait_for_response("r1")

        assert api.accepted("auth.test"), "Bolt should authorize via auth.test"
        assert api.calls_to("auth.test")[0].headers["Authorization"] == f"Bearer {BOT_TOKEN}"
        assert body["text"] == "searching for hi"
        assert body["response_type"] == "ephemeral"
        assert post.params["channel"] == "C0PAPERS"
        assert post.params["text"] == "papers: hi"
        assert post.token == BOT_TOKEN
        assert upload.content == FILE_BYTES
        assert upload.filename == "digest.pdf"
        assert upload.title == "Digest"
        assert upload.channel_id == "C0PAPERS"
        assert upload.initial_comment == "here you go"
        methods = [c.method for c in api.calls]
        assert methods.index("files.getUploadURLExternal") < methods.index(
            "files.completeUploadExternal"
        )
        assert all(c.ok for c in api.calls), [(c.method, c.response) for c in api.calls]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "tamper", [Tamper.BAD_SIGNATURE, Tamper.OLD_TIMESTAMP, Tamper.MISSING_HEADERS]
)
async def test_bad_signatures_are_rejected(tamper):
    async with SlackWebAPI() as api:
        app = build_app(api)
        async with serve_web_app(app.web_app()) as url, SignedSlackClient(url, SECRET) as slack:
            res = await slack.send_slash_command(
                "hi", response_url=api.response_url("r1"), tamper=tamper
            )
            # a correctly signed control request proves the app *would* have acted
            await asyncio.sleep(0.2)
            assert res.status == 401, res.text
            assert api.calls == []
            assert api.responses("r1") == []
            ok = await slack.send_slash_command("hi", response_url=api.response_url("r2"))
            assert ok.status == 200
            await api.wait_for("chat.postMessage")


@pytest.mark.asyncio
async def test_non_numeric_timestamp_is_refused():
    async with SlackWebAPI() as api:
        app = build_app(api)
        async with serve_web_app(app.web_app()) as url, SignedSlackClient(url, SECRET) as slack:
            res = await slack.send_slash_command(
                "hi", response_url=api.response_url("r"), tamper=Tamper.NON_NUMERIC_TIMESTAMP
            )
            await asyncio.sleep(0.2)
        # slack_bolt 1.30 answers 500 here (int() raises inside its verifier), not 401
        assert res.status in (401, 500)
        assert api.calls == [] and api.responses("r") == []


@pytest.mark.asyncio
async def test_block_actions_events_and_url_verification():
    async with SlackWebAPI() as api:
        app = build_app(api)
        uninstalled: list[dict] = []

        @app.action("more")
        async def more(ack, body, respond):
            await ack()
            await respond(text=f"more for {body['actions'][0]['value']}", replace_original=True)

        @app.event("app_uninstalled")
        async def gone(body):
            uninstalled.append(body)

        async with serve_web_app(app.web_app()) as url, SignedSlackClient(url, SECRET) as slack:
            challenge = await slack.send_url_verification("chal-123")
            assert challenge.status == 200 and challenge.json() == {"challenge": "chal-123"}

            click = await slack.send_block_action(
                "more", "2401.00001", response_url=api.response_url("btn")
            )
            assert click.status == 200, click.text
            body = await api.wait_for_response("btn")
            assert body == {"text": "more for 2401.00001", "replace_original": True}

            ev = await slack.send_event(app_uninstalled_event())
            assert ev.status == 200, ev.text
            for _ in range(100):
                if uninstalled:
                    break
                await asyncio.sleep(0.01)
            assert uninstalled and uninstalled[0]["team_id"] == "T0TEST"

            unhandled = await slack.send_event(tokens_revoked_event(bot=["U0BOT"]))
            assert unhandled.status == 404  # no listener registered for it


@pytest.mark.asyncio
async def test_429_is_retried_after_retry_after():
    async with SlackWebAPI() as api:
        api.fail_next("chat.postMessage", status=429, retry_after=1)
        app = build_app(api, retry_429=True)
        async with serve_web_app(app.web_app()) as url, SignedSlackClient(url, SECRET) as slack:
            res = await slack.send_slash_command("retry me", response_url=api.response_url("r"))
            assert res.status == 200
            accepted = await api.wait_for("chat.postMessage", ok=True, timeout=6)
            await api.wait_for_upload(timeout=6)

        attempts = api.calls_to("chat.postMessage")
        assert [c.status for c in attempts] == [429, 200]
        assert attempts[0].error == "ratelimited"
        assert attempts[0].response_headers["Retry-After"] == "1"
        assert len(api.accepted("chat.postMessage")) == 1
        assert accepted.params["text"] == "papers: retry me"
        assert api.rate_limited_count == 1
        assert accepted.at > attempts[0].at


@pytest.mark.asyncio
async def test_fault_injection_and_enforced_rate_limit_without_bolt():
    async with SlackWebAPI() as api:
        client = AsyncWebClient(token=BOT_TOKEN, base_url=api.base_url)
        api.fail_next("chat.postMessage", error="channel_not_found", count=2)
        for _ in range(2):
            with pytest.raises(SlackApiError) as exc:
                await client.chat_postMessage(channel="C0GONE", text="x")
            assert exc.value.response["error"] == "channel_not_found"
        assert (await client.chat_postMessage(channel="C0GONE", text="x"))["ok"]

        api.enforce_rate_limit(per_channel_per_second=1)
        await client.chat_postMessage(channel="C1", text="first")
        with pytest.raises(SlackApiError) as exc:
            await client.chat_postMessage(channel="C1", text="too soon")
        assert exc.value.response.status_code == 429
        assert exc.value.response.headers["Retry-After"] == "1"
        await client.chat_postMessage(channel="C2", text="other channel is fine")
        assert api.rate_limited_count == 1

        with pytest.raises(SlackApiError) as exc:
            await client.api_call("no.such.method")
        assert exc.value.response["error"] == "unknown_method"
        assert api.calls[-1].method == "no.such.method"


@pytest.mark.asyncio
async def test_two_workspaces_oauth_and_revoke():
    async with SlackWebAPI(client_id="111.222") as api:
        api.add_token("xoxb-test-team-a", team_id="T0AAA", bot_id="B0AAA")
        api.add_oauth_code(
            "code-test-1", bot_token="xoxb-test-team-b", team_id="T0BBB", enterprise_id="E0GRID"
        )
        client = AsyncWebClient(base_url=api.base_url)

        a = await client.auth_test(token="xoxb-test-team-a")
        assert (a["team_id"], a["bot_id"]) == ("T0AAA", "B0AAA")

        grant = await client.oauth_v2_access(
            client_id="111.222", client_secret="secret-test", code="code-test-1"
        )
        assert grant["access_token"] == "xoxb-test-team-b"
        assert grant["team"]["id"] == "T0BBB" and grant["enterprise"]["id"] == "E0GRID"
        with pytest.raises(SlackApiError):  # codes are single use
            await client.oauth_v2_access(
                client_id="111.222", client_secret="secret-test", code="code-test-1"
            )

        b = await client.auth_test(token="xoxb-test-team-b")
        assert (b["team_id"], b["enterprise_id"]) == ("T0BBB", "E0GRID")
        assert (await client.team_info(token="xoxb-test-team-b"))["team"]["id"] == "T0BBB"

        assert (await client.auth_revoke(token="xoxb-test-team-b"))["revoked"] is True
        with pytest.raises(SlackApiError) as exc:
            await client.auth_test(token="xoxb-test-team-b")
        assert exc.value.response["error"] == "token_revoked"


@pytest.mark.asyncio
async def test_socket_mode_slash_command():
    async with SlackWebAPI() as api:
        app = build_app(api)
        handler = AsyncSocketModeHandler(app, app_token="xapp-test")
        try:
            await handler.connect_async()
            conn = await api.wait_for_socket_connection()
            assert conn.app_token == "xapp-test"
            opened = api.accepted("apps.connections.open")
            assert len(opened) == 1 and opened[0].token == "xapp-test"

            payload = slash_command_payload("socket hi", response_url=api.response_url("sock"))
            envelope_id = await api.socket_send_slash_command(payload)
            ack = await api.wait_for_socket_ack(envelope_id)
            body = await api.wait_for_response("sock")
            await api.wait_for_upload()

            # Slack's {"type": "disconnect"} makes the SDK open a fresh URL and reconnect
            await api.socket_request_disconnect()
            second = await api.wait_for_socket_connection(count=2)
            assert len(api.accepted("apps.connections.open")) == 2
            await asyncio.sleep(0.05)
            assert not conn.open and api.open_sockets == [second]
            again = await api.socket_send_slash_command(
                slash_command_payload("again", response_url=api.response_url("sock2"))
            )
            await api.wait_for_socket_ack(again)
            assert (await api.wait_for_response("sock2"))["text"] == "searching for again"
        finally:
            await handler.close_async()

        assert ack.envelope_id == envelope_id
        assert ack.payload is None  # plain ack() sends {"envelope_id": ...} only
        assert body["text"] == "searching for socket hi"
        assert api.accepted("chat.postMessage")[0].params["text"] == "papers: socket hi"


@pytest.mark.asyncio
async def test_other_methods_custom_handlers_and_delay():
    async with SlackWebAPI() as api:
        api.add_channel("C0NAMED", name="papers")
        api.add_user("U0BOB", name="bob", tz="Europe/Paris")
        client = AsyncWebClient(token=BOT_TOKEN, base_url=api.base_url)

        assert (await client.conversations_info(channel="C0NAMED"))["channel"]["name"] == "papers"
        user = (await client.users_info(user="U0BOB"))["user"]
        assert (user["name"], user["tz"]) == ("bob", "Europe/Paris")
        eph = await client.chat_postEphemeral(channel="C0NAMED", user="U0BOB", text="psst")
        assert eph["message_ts"]
        posted = await client.chat_postMessage(channel="C0NAMED", text="v1")
        upd = await client.chat_update(channel="C0NAMED", ts=posted["ts"], text="v2")
        assert (upd["ts"], upd["message"]["text"]) == (posted["ts"], "v2")

        up = await client.files_upload_v2(channel="C0NAMED", filename="a.txt", content="abc")
        info = await client.files_info(file=up["file"]["id"])
        assert info["file"]["name"] == "a.txt" and info["file"]["channels"] == ["C0NAMED"]
        assert api.uploaded_files[0].content == b"abc"

        api.set_handler("reactions.add", lambda call: {"ok": call.params["name"] == "tada"})
        assert (await client.reactions_add(channel="C0NAMED", timestamp="1.2", name="tada"))["ok"]

        api.fail_next("auth.test", delay=0.3)
        t0 = asyncio.get_running_loop().time()
        assert (await client.auth_test())["ok"]
        assert asyncio.get_running_loop().time() - t0 >= 0.25

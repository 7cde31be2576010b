"""SPEC section 8 for Slack, as an attacker and a careless user try it: signatures before parsing,
commands that run once (across replicas), a refused app token, help and refusals in Slack's words."""

from __future__ import annotations

import json
import logging
import urllib.parse
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from adapters.command_service import REPEATED
from adapters.slack.app import SlackFrontEnd
from bot.commands.core import Core
from bot.config import ConfigError
from bot.health import health_report
from tests.fakes.arxiv_server import ArxivStandIn, make_entry
from tests.fakes.slack_server import (
    SignedSlackClient,
    SlackWebAPI,
    Tamper,
    block_actions_payload,
    serve_web_app,
    slash_command_payload,
)
from tests.support.common import snapshot
from tests.support.slack import (
    APP_TOKEN,
    SECRET,
    eventually,
    labels,
    running,
    slack_core,
)

FORM = "application/x-www-form-urlencoded"
_CLICK = block_actions_payload("show_abstract:2401.00001", "2401.00001")  # a well-formed click
MALFORMED_BODIES = [
    (b"\xff\xfe\x00 not text at all \xc3\x28", FORM),
    (b"[1, 2, 3]", "application/json"),
    (b"null", "application/json"),
    (b'{"type": "event_callback", "event": ', "application/json"),
    (b"payload=%7Bnot-json", FORM),
    (b"payload=null", FORM),
    (urllib.parse.urlencode(slash_command_payload("add Forged")).encode(), FORM),
    (urllib.parse.urlencode({"payload": json.dumps(_CLICK)}).encode(), FORM),
]
TAMPERS = [
    Tamper.BAD_SIGNATURE,
    Tamper.OLD_TIMESTAMP,
    Tamper.NON_NUMERIC_TIMESTAMP,
    Tamper.MALFORMED_SIGNATURE,
    Tamper.MISSING_HEADERS,
    Tamper.MISSING_SIGNATURE,
    Tamper.MISSING_TIMESTAMP,
]


def _serious(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_any_unverified_request_gets_401_whatever_its_body_and_logs_no_error(
    memory_core: Core,
    arxiv_api: ArxivStandIn,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    front = SlackFrontEnd(slack_core(memory_core, slack_api_url="http://127.0.0.1:9/api/"))
    web_app = web.Application()
    front.mount(web_app)
    before = snapshot(memory_core.engine)
    async with serve_web_app(web_app) as url, SignedSlackClient(url, SECRET) as slack:
        statuses = {
            (body[:12], tamper): (await slack.post(body, kind, tamper=tamper)).status
            for body, kind in MALFORMED_BODIES
            for tamper in TAMPERS
        }
    assert set(statuses.values()) == {401}, statuses
    assert _serious(caplog) == []
    assert snapshot(memory_core.engine) == before and arxiv_api.requests == []


async def test_a_signed_but_malformed_body_is_refused_without_a_traceback(
    memory_core: Core,
    caplog: pytest.LogCaptureFixture,
) -> None:
    front = SlackFrontEnd(slack_core(memory_core, slack_api_url="http://127.0.0.1:9/api/"))
    web_app = web.Application()
    front.mount(web_app)
    async with serve_web_app(web_app) as url, SignedSlackClient(url, SECRET) as slack:
        # bytes that are not text cannot be Slack's (slack_sdk signs text): 401 even when signed
        statuses = [(await slack.post(body, kind)).status for body, kind in MALFORMED_BODIES[:6]]
    assert statuses == [401, 400, 400, 400, 400, 400]
    assert _serious(caplog) == []


async def test_a_redelivered_replayed_or_doubled_command_runs_once(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("Once", [make_entry(arxiv_id="2501.00001")])
    async with SlackWebAPI() as api, running(core, api) as slack:
        fields = slash_command_payload("add Once", response_url=api.response_url("add"))
        first = await slack.slack.send_form(fields)
        retried = await slack.slack.send_form(
            fields, extra_headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        )
        replayed = await slack.slack.send_form(fields)
        doubled = await slack.command("add Once", "again")  # a second submit, its own trigger
        await api.wait_for_response("add")

    assert first.status == retried.status == replayed.status == 200
    assert retried.text == replayed.text == ""  # the first delivery answers
    assert doubled.json() == {**doubled.json(), "response_type": "ephemeral"}
    assert doubled.json()["text"] == REPEATED
    assert [r.params["search_query"] for r in arxiv_api.requests] == ['ti:"Once" AND abs:"Once"']
    assert len(api.responses("add")) == 1 and api.responses("again") == []
    assert labels(core.engine, "T0TEST") == ["Once"]


async def test_a_command_runs_once_across_replicas_sharing_the_database(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("Shared", [make_entry(arxiv_id="2501.00002")])
    async with (
        SlackWebAPI() as api,
        running(core, api) as one,
        running(core, api) as two,
    ):
        fields = slash_command_payload("add Shared", response_url=api.response_url("add"))
        await one.slack.send_form(fields)
        await two.slack.send_form(fields, extra_headers={"X-Slack-Retry-Num": "1"})
        doubled = await two.command("add Shared", "again")
        await api.wait_for_response("add")

    assert doubled.json()["text"] == REPEATED
    assert len(arxiv_api.requests) == 1 and len(api.responses("add")) == 1


async def test_help_marks_managers_only_when_slack_managers_restricts_them(
    memory_core: Core,
    arxiv_api: ArxivStandIn,
) -> None:
    async with SlackWebAPI() as api:
        async with running(memory_core, api) as open_channel:
            everyone = (await open_channel.command("help")).json()["text"]
        async with running(memory_core, api, slack_managers=frozenset({"U0BOSS"})) as listed:
            restricted = (await listed.command("help")).json()["text"]
            refused = (await listed.command("fetch", user_id="U0USER")).json()

    assert "`/papers add &lt;keyword&gt;`: follow a keyword here" in everyone
    assert "(managers)" not in everyone and "Managers here" not in everyone
    assert "`/papers add &lt;keyword&gt;`: follow a keyword here; fetches it if new (managers)" in (
        restricted
    )
    assert "`/papers list [keyword] [limit]`: newest papers (default 5, at most 20)\n" in restricted
    assert refused["response_type"] == "ephemeral"
    assert "SLACK_MANAGERS" in refused["text"] and "Discord" not in refused["text"]
    assert "Manage Channels" not in refused["text"]


async def test_a_refused_app_token_fails_start_up_naming_slack_app_token(
    memory_core: Core,
) -> None:
    async with SlackWebAPI() as api:
        api.revoke_token(APP_TOKEN)
        configured = slack_core(
            memory_core, slack_api_url=api.base_url, slack_app_token=SecretStr(APP_TOKEN)
        )
        front = SlackFrontEnd(configured)
        with pytest.raises(ConfigError) as refused:
            await front.start()
        await front.stop()

    assert "SLACK_APP_TOKEN" in str(refused.value) and "token_revoked" in str(refused.value)
    assert APP_TOKEN not in str(refused.value)
    assert api.socket_connections == []


async def test_healthz_reports_socket_mode_down_when_the_connection_is_lost(
    memory_core: Core,
) -> None:
    async with (
        SlackWebAPI() as api,
        running(memory_core, api, slack_app_token=SecretStr(APP_TOKEN)) as slack,
    ):
        connection = await api.wait_for_socket_connection()
        assert await slack.front.status() == await slack.front.status()  # stable
        up = health_report(slack.core, [await slack.front.status()])
        api.revoke_token(APP_TOKEN)  # Slack will not hand out a new connection
        await connection.ws.close()

        async def down() -> bool:
            return not (await slack.front.status()).up

        await eventually(down)
        report: dict[str, Any] = health_report(slack.core, [await slack.front.status()])

    assert up["status"] == "ok" and up["front_ends"] == {"slack": "ok"}
    assert report["status"] == "unhealthy" and report["database"] == "ok"
    assert report["front_ends"]["slack"].startswith("down: Socket Mode is not connected")

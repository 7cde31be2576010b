"""Socket Mode: with SLACK_APP_TOKEN the front end connects out (apps.connections.open + WebSocket)
and answers the same commands; no /slack/events route is served."""

from __future__ import annotations

import aiohttp
from pydantic import SecretStr

from bot.commands.core import Core
from tests.fakes.arxiv_server import ArxivStandIn, make_entry
from tests.fakes.slack_server import SlackWebAPI, block_actions_payload, slash_command_payload
from tests.support.slack import (
    APP_TOKEN,
    block_texts,
    eventually,
    labels,
    running,
)


async def test_socket_mode_command_round_trip(core: Core, arxiv_api: ArxivStandIn) -> None:
    arxiv_api.add_entries("Alpha", [make_entry(arxiv_id="2501.00001", summary="Alpha abstract.")])
    async with (
        SlackWebAPI() as api,
        running(core, api, slack_app_token=SecretStr(APP_TOKEN)) as slack,
    ):
        connection = await api.wait_for_socket_connection()
        assert connection.app_token == APP_TOKEN

        add = await api.socket_send_slash_command(
            slash_command_payload("add Alpha", response_url=api.response_url("add"))
        )
        ack = await api.wait_for_socket_ack(add)
        added = await api.wait_for_response("add")

        bad = await api.socket_send_slash_command(
            slash_command_payload("list 99", response_url=api.response_url("bad"))
        )
        refused = await api.wait_for_socket_ack(bad)

        listed = await api.socket_send_slash_command(
            slash_command_payload("list", response_url=api.response_url("list"))
        )
        await api.wait_for_socket_ack(listed)
        body = await api.wait_for_response("list")
        button = next(b["accessory"] for b in body["blocks"] if "accessory" in b)
        await api.socket_send_interactive(
            block_actions_payload(
                button["action_id"], button["value"], response_url=api.response_url("click")
            )
        )
        shown = await api.wait_for_response("click")

        async with (
            aiohttp.ClientSession() as http,
            http.post(slack.url, data="token=x") as no_route,
        ):
            no_events_route = no_route.status

    assert not ack.payload  # a quick add is answered through its response_url
    assert added["response_type"] == "in_channel" and "1 paper found" in added["text"]
    assert refused.payload is not None and refused.payload["response_type"] == "ephemeral"
    assert "The limit must be a number from 1 to 20" in refused.payload["text"]
    assert api.responses("bad") == []
    assert "Alpha abstract." in block_texts(shown) and shown["response_type"] == "ephemeral"
    assert labels(core.engine, "T0TEST") == ["Alpha"]
    assert no_events_route in (404, 405)
    assert len(api.accepted("apps.connections.open")) == 1


async def test_socket_mode_disconnects_on_stop(core: Core, arxiv_api: ArxivStandIn) -> None:
    async with SlackWebAPI() as api:
        async with running(core, api, slack_app_token=SecretStr(APP_TOKEN)):
            connection = await api.wait_for_socket_connection()
            assert connection.open
        await eventually(lambda: not connection.open)
        assert len(api.socket_connections) == 1  # closed for good, not reconnecting

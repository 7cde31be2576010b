"""Many workspaces: the OAuth install flow, tokens from the installation store in our database,
tenants kept apart, and uninstalls that stop a workspace."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import MetaData, inspect

from adapters.slack.installations import ThreadedInstallationStore, ThreadedOAuthStateStore
from adapters.slack.tenancy import split_tenant, tenant_id
from bot.commands.core import Core
from bot.posts.poster import Part, PostFailed
from bot.storage import store
from bot.storage.db import read_session
from tests.fakes.arxiv_server import ArxivStandIn, make_entry
from tests.fakes.slack_server import (
    SlackWebAPI,
    app_uninstalled_event,
    tokens_revoked_event,
)
from tests.support.common import snapshot
from tests.support.slack import (
    CLIENT_ID,
    CLIENT_SECRET,
    Running,
    block_texts,
    eventually,
    labels,
    running,
    workspace_active,
)

STATE_COOKIE = "slack-app-oauth-state"


@asynccontextmanager
async def multi_workspace(core: Core) -> AsyncIterator[Running]:
    """OAuth configured (no single bot token); the stand-in knows only tokens it issued."""
    async with (
        SlackWebAPI(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, strict_tokens=True) as api,
        running(
            core,
            api,
            slack_bot_token=None,
            slack_client_id=CLIENT_ID,
            slack_client_secret=SecretStr(CLIENT_SECRET),
        ) as slack,
    ):
        yield slack


async def install(slack: Running, team_id: str, token: str) -> None:
    """What a finished OAuth install leaves behind (the flow itself is tested below)."""
    slack.api.add_token(token, team_id=team_id, team_name=f"Team {team_id}")
    assert slack.front.installations is not None
    await slack.front.installations.async_save(
        Installation(
            app_id="A0TEST",
            team_id=team_id,
            team_name=f"Team {team_id}",
            bot_token=token,
            bot_id=f"B{team_id}",
            bot_user_id="U0BOT",
            bot_scopes="commands,chat:write",
            user_id="U0INSTALLER",
            installed_at=datetime.now(UTC).timestamp(),
        )
    )


def _base(slack: Running) -> str:
    return slack.url.removesuffix("/slack/events")


async def _install_page_state(http: aiohttp.ClientSession, base: str) -> str:
    async with http.get(f"{base}/slack/install") as page:
        assert page.status == 200
        html = await page.text()
        cookie = page.cookies[STATE_COOKIE].value
    match = re.search(r"state=([0-9a-f-]{36})", html)
    assert match is not None and match.group(1) == cookie
    assert f"client_id={CLIENT_ID}" in html
    assert "scope=commands,chat:write,chat:write.public,files:write,im:write" in html
    return cookie


async def _callback(http: aiohttp.ClientSession, base: str, code: str, state: str) -> int:
    async with http.get(
        f"{base}/slack/oauth_redirect",
        params={"code": code, "state": state},
        headers={"Cookie": f"{STATE_COOKIE}={state}"},
    ) as answer:
        return answer.status


async def test_oauth_callback_stores_the_installation_and_commands_use_its_token(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("Alpha", [make_entry(arxiv_id="2501.00001", title="Alpha paper")])
    async with multi_workspace(core) as slack:
        slack.api.add_oauth_code("code-b", bot_token="xoxb-test-team-b", team_id="T0BBB")
        base = _base(slack)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            state = await _install_page_state(http, base)
            assert await _callback(http, base, "code-b", state) == 200

        assert slack.front.installations is not None
        assert await slack.front.installations.bot_token("T0BBB") == "xoxb-test-team-b"
        body = await slack.answer("add Alpha", "add", team_id="T0BBB")

    assert body["response_type"] == "in_channel"
    assert labels(core.engine, "T0BBB") == ["Alpha"]
    assert {c.token for c in slack.api.calls if c.method == "auth.test"} == {"xoxb-test-team-b"}
    exchange = slack.api.calls_to("oauth.v2.access")
    assert len(exchange) == 1 and exchange[0].ok


@pytest.mark.parametrize("how", ["unknown", "reused", "no cookie"])
async def test_oauth_callback_refuses_a_bad_or_reused_state(
    core: Core, arxiv_api: ArxivStandIn, how: str
) -> None:
    async with multi_workspace(core) as slack:
        slack.api.add_oauth_code("code-a", bot_token="xoxb-test-team-a", team_id="T0AAA")
        slack.api.add_oauth_code("code-b", bot_token="xoxb-test-team-b", team_id="T0BBB")
        base = _base(slack)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            state = await _install_page_state(http, base)
            if how == "reused":
                assert await _callback(http, base, "code-a", state) == 200
                refused = await _callback(http, base, "code-b", state)
            elif how == "unknown":
                refused = await _callback(
                    http, base, "code-b", "0" * 8 + "-0000-0000-0000-" + "0" * 12
                )
            else:
                async with http.get(
                    f"{base}/slack/oauth_redirect", params={"code": "code-b", "state": state}
                ) as answer:
                    refused = answer.status

        assert slack.front.installations is not None
        stored_b = await slack.front.installations.bot_token("T0BBB")

    assert refused in (400, 401, 403)
    assert stored_b is None
    assert "code-b" in slack.api.oauth_codes  # never exchanged


async def test_two_workspaces_cannot_see_or_change_each_others_keywords(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("Alpha", [make_entry(arxiv_id="2501.00001", title="Alpha paper")])
    arxiv_api.add_entries("Beta", [make_entry(arxiv_id="2502.00002", title="Beta paper")])
    async with multi_workspace(core) as slack:
        await install(slack, "T0AAA", "xoxb-test-team-a")
        await install(slack, "T0BBB", "xoxb-test-team-b")
        a, b = (
            {"team_id": "T0AAA", "channel_id": "C0SAME"},
            {"team_id": "T0BBB", "channel_id": "C0SAME"},
        )
        await slack.answer("add Alpha", "a-add", **a)
        await slack.answer("add Beta", "b-add", **b)

        a_list = await slack.answer("list", "a-list", **a)
        a_remove = await slack.reply("remove Beta", "a-rm", **a)
        b_keywords = await slack.answer("keywords", "b-kw", **b)
        await slack.command("readme all", "a-readme", **a)
        readme = await slack.api.wait_for_upload()

    assert "Alpha paper" in block_texts(a_list) and "Beta paper" not in block_texts(a_list)
    assert a_remove["response_type"] == "ephemeral" and "does not follow" in a_remove["text"]
    assert "Beta" in block_texts(b_keywords) and "Alpha" not in block_texts(b_keywords)
    assert b"## Alpha" in readme.content and b"Beta" not in readme.content
    assert labels(core.engine, "T0AAA", "C0SAME") == ["Alpha"]
    assert labels(core.engine, "T0BBB", "C0SAME") == ["Beta"]
    assert readme.token == "xoxb-test-team-a"


async def test_uninstall_stops_one_workspace_and_forgets_its_token(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("Alpha", [make_entry(arxiv_id="2501.00001")])
    async with multi_workspace(core) as slack:
        installations = slack.front.installations
        assert installations is not None
        await install(slack, "T0AAA", "xoxb-test-team-a")
        await install(slack, "T0BBB", "xoxb-test-team-b")
        await slack.answer("add Alpha", "a", team_id="T0AAA")
        await slack.answer("add Alpha", "b", team_id="T0BBB")
        event = await slack.slack.send_event(app_uninstalled_event(), team_id="T0AAA")
        assert event.status == 200
        await eventually(lambda: not workspace_active(core.engine, "T0AAA"))
        await eventually(lambda: _no_token(installations, "T0AAA"))

        with pytest.raises(PostFailed) as gone:
            await slack.front.poster.send(
                workspace="T0AAA", channel="C0TEST", part=Part(1, {"text": "x"})
            )
        before = snapshot(core.engine)
        refused = await slack.answer("add Beta", "after", team_id="T0AAA")
        after = snapshot(core.engine)
        await slack.front.poster.send(
            workspace="T0BBB", channel="C0TEST", part=Part(1, {"text": "still here"})
        )

    assert gone.value.permanent is True
    assert after == before
    assert "not installed in this workspace" in refused["text"]
    assert arxiv_api.requests and all(
        "Beta" not in r.params["search_query"] for r in arxiv_api.requests
    )
    assert workspace_active(core.engine, "T0BBB")
    with read_session(core.engine) as session:
        assert store.followed_phrases(session) == ["Alpha"]  # B still follows it
    assert slack.api.accepted("chat.postMessage")[-1].token == "xoxb-test-team-b"


async def _no_token(installations: ThreadedInstallationStore, workspace_id: str) -> bool:
    return await installations.bot_token(workspace_id) is None


async def test_tokens_revoked_stops_the_workspace_only_for_the_bot_token(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    arxiv_api.add_entries("Alpha", [make_entry(arxiv_id="2501.00001")])
    async with multi_workspace(core) as slack:
        installations = slack.front.installations
        assert installations is not None
        await install(slack, "T0AAA", "xoxb-test-team-a")
        await slack.answer("add Alpha", "a", team_id="T0AAA")

        users = await slack.slack.send_event(
            tokens_revoked_event(oauth=["U0INSTALLER"]), team_id="T0AAA"
        )
        assert users.status == 200
        await eventually(lambda: _installer_forgotten(installations))
        assert workspace_active(core.engine, "T0AAA")
        assert await installations.bot_token("T0AAA") == "xoxb-test-team-a"

        bot = await slack.slack.send_event(tokens_revoked_event(bot=["U0BOT"]), team_id="T0AAA")
        assert bot.status == 200
        await eventually(lambda: not workspace_active(core.engine, "T0AAA"))
        await eventually(lambda: _no_token(installations, "T0AAA"))


async def _installer_forgotten(installations: ThreadedInstallationStore) -> bool:
    found = await installations.async_find_installation(
        enterprise_id=None, team_id="T0AAA", user_id="U0INSTALLER"
    )
    return found is None


@pytest.mark.parametrize(
    ("enterprise", "team", "org_wide", "expected"),
    [
        (None, "T456", False, "T456"),
        ("E123", "T456", False, "E123:T456"),
        ("E123", "T456", True, "E123"),  # an org-wide install is one tenant
        ("E123", None, False, "E123"),
    ],
)
def test_tenant_ids_round_trip(
    enterprise: str | None, team: str | None, org_wide: bool, expected: str
) -> None:
    made = tenant_id(enterprise_id=enterprise, team_id=team, is_enterprise_install=org_wide)
    assert made == expected
    back_enterprise, back_team, back_org = split_tenant(made)
    assert back_enterprise == enterprise
    assert back_team == (None if org_wide else team)
    assert back_org == (org_wide or team is None)


async def test_installation_store_finds_the_newest_bot_and_org_wide_installs(core: Core) -> None:
    installations = ThreadedInstallationStore(
        client_id=CLIENT_ID, engine=core.engine, write_engine=core.write_engine
    )
    for when, token in ((1_700_000_000.0, "xoxb-test-old"), (1_700_000_600.0, "xoxb-test-new")):
        await installations.async_save(
            Installation(
                app_id="A0TEST",
                team_id="T0AAA",
                bot_token=token,
                user_id="U0INSTALLER",
                installed_at=when,
            )
        )
    await installations.async_save(
        Installation(
            app_id="A0TEST",
            enterprise_id="E0GRID",
            bot_token="xoxb-test-org",
            user_id="U0ADMIN",
            is_enterprise_install=True,
            installed_at=1_700_000_000.0,
        )
    )
    found = await installations.async_find_installation(enterprise_id=None, team_id="T0AAA")

    assert await installations.bot_token("T0AAA") == "xoxb-test-new"
    assert found is not None and found.bot_token == "xoxb-test-new"
    assert found.installed_at == 1_700_000_600.0  # stored as naive UTC, read back as UTC
    assert await installations.bot_token("E0GRID") == "xoxb-test-org"
    assert await installations.bot_token("E0GRID:T0ANY") == "xoxb-test-org"
    assert await installations.bot_token("T0NONE") is None
    other_app = ThreadedInstallationStore(
        client_id="999.999", engine=core.engine, write_engine=core.write_engine
    )
    assert await other_app.bot_token("T0AAA") is None


def test_oauth_state_is_consumed_once_and_expires(core: Core) -> None:
    states = ThreadedOAuthStateStore(write_engine=core.write_engine)
    state = states.issue()
    assert states.consume(state) is True
    assert states.consume(state) is False
    expired = ThreadedOAuthStateStore(write_engine=core.write_engine, expiration_seconds=-1).issue()
    assert states.consume(expired) is False
    assert states.consume("never-issued") is False


def test_racing_callbacks_cannot_both_consume_a_state(core: Core) -> None:
    states = ThreadedOAuthStateStore(write_engine=core.write_engine)
    issued = [states.issue() for _ in range(10)]
    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(states.consume, [s for s in issued for _ in range(4)]))
    assert sum(wins) == len(issued)  # each state won exactly once, no "database is locked"


def _layout(columns: list[Any]) -> dict[str, tuple[bool, int | None]]:
    """name -> (nullable, string length) of a table's columns, declared or reflected."""
    return {
        c["name"] if isinstance(c, dict) else c.name: (
            bool(c["nullable"] if isinstance(c, dict) else c.nullable),
            getattr(c["type"] if isinstance(c, dict) else c.type, "length", None),
        )
        for c in columns
    }


def test_slack_sdk_stores_read_and_write_the_tables_of_migration_0003(core: Core) -> None:
    """slack_sdk's stores run their SQL on tables our migration made: a library upgrade that
    changes their layout must show up here, not as a failed install."""
    meta = MetaData()
    declared = [
        SQLAlchemyInstallationStore.build_installations_table(meta, "slack_installations"),
        SQLAlchemyInstallationStore.build_bots_table(meta, "slack_bots"),
        SQLAlchemyOAuthStateStore.build_oauth_states_table(meta, "slack_oauth_states"),
    ]
    database = inspect(core.engine)
    for table in declared:
        assert _layout(database.get_columns(table.name)) == _layout(list(table.columns))

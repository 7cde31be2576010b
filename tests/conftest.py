"""Shared fixtures: a fresh database per test (SQLite, or PostgreSQL via TEST_DATABASE_URL),
a loopback arXiv stand-in, a `Core` wired to both, and the chat platforms' stand-ins. No test may
reach the real network."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import Engine, text

from adapters.discord.bot import DiscordFrontEnd
from bot.arxiv.gateway import ArxivGateway
from bot.commands.core import Core
from bot.config import Settings
from bot.storage.db import ensure_schema, make_engine
from tests.fakes.arxiv_server import ArxivStandIn
from tests.fakes.discord_server import DiscordStandIn
from tests.support.cli import DEAD_ARXIV
from tests.support.common import test_settings
from tests.support.discord import MESSAGE, judge, started
from tests.support.discord_direct import Direct
from tests.support.discord_direct import front_end as discord_front_end

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: object) -> object:
    """Fail loudly on any connection that would leave this machine."""
    host = address[0] if isinstance(address, tuple) else None
    if host is not None and not (str(host).startswith("127.") or host in ("::1", "localhost")):
        raise RuntimeError(f"test tried to reach {address!r}: only loopback is allowed")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`Settings(...)` fills what it is not given from the environment: a developer's
    SLACK_BOT_TOKEN or LOG_LEVEL must not reach the tests."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    # ...and a `papers` subprocess that inherits this environment never tries the real arXiv
    for name in ("ARXIV_API_URL", "ARXIV_OAI_URL"):
        monkeypatch.setenv(name, DEAD_ARXIV[name])


def _postgres_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL") or None


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if _postgres_url() else ["sqlite"]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'papers.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema of its own, dropped afterwards."""
    base = _postgres_url()
    if base is None:
        pytest.skip("TEST_DATABASE_URL is not set")
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on SQLite and, with TEST_DATABASE_URL set, on PostgreSQL too."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'papers.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    ensure_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def arxiv_api() -> Iterator[ArxivStandIn]:
    with ArxivStandIn() as server:
        yield server


@pytest.fixture
def settings(arxiv_api: ArxivStandIn, database_url: str) -> Settings:
    return test_settings(arxiv_api, database_url)


@pytest.fixture
def core(settings: Settings, engine: Engine) -> Core:
    return Core(settings, engine, ArxivGateway(settings, engine))


# -- chat platforms -------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # slack_sdk sends every request through HTTP(S)_PROXY when set (it ignores NO_PROXY).
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def memory_core(arxiv_api: ArxivStandIn) -> Iterator[Core]:
    """A core on one in-memory SQLite database, for tests whose point is not the store
    (the store-facing Slack tests run on every backend through conftest's `core`)."""
    settings = test_settings(arxiv_api)
    engine = make_engine("sqlite://")
    ensure_schema(engine)
    yield Core(settings, engine, ArxivGateway(settings, engine))
    engine.dispose()


@pytest_asyncio.fixture
async def ds() -> AsyncIterator[DiscordStandIn]:
    async with DiscordStandIn(heartbeat_interval_ms=200) as standin:
        yield standin
        assert standin.server_errors == []
        assert standin.unknown_requests == []
        assert (
            judge(standin.posted, standin.typed) == []
        )  # no live link, no typed markdown in anything posted


@pytest_asyncio.fixture
async def fe(
    ds: DiscordStandIn, core: Core, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[DiscordFrontEnd]:
    caplog.set_level(logging.INFO)
    front_end = await started(core, ds)
    try:
        yield front_end
    finally:
        await front_end.stop()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    # everything that carried a message said "mention nobody"
    messages = [p for p in ds.posted if p.kind != "callback" or p.type == MESSAGE]
    assert all(p.allowed_mentions == {"parse": []} for p in messages)


@pytest_asyncio.fixture
async def direct(core: Core, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Direct]:
    """The Discord front end's client, never connected, handed interactions directly."""
    caplog.set_level(logging.INFO)
    front_end = discord_front_end(core)
    async with Direct(front_end) as interactions:
        yield interactions
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    sent = [s for s in interactions.recorder.sent if s.kind != "delete" and s.type in (None, 4)]
    assert all(s.data.get("allowed_mentions") == {"parse": []} for s in sent)
    assert judge(sent, interactions.typed) == []  # no live link, no typed markdown shown
    assert interactions.recorder.refused == []

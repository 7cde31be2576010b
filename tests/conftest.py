"""Shared fixtures: a fresh database per test (SQLite, or PostgreSQL via TEST_DATABASE_URL),
a loopback arXiv stand-in, and a `Core` wired to both. No test may reach the real network."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy import inspect as inspect_db

from bot.arxiv.gateway import ArxivGateway
from bot.commands.core import Core
from bot.config import Settings
from bot.storage.db import ensure_schema, make_engine
from tests.fakes.arxiv_server import ArxivStandIn

# Test data lives in the repository: the suite runs on a fresh clone with nothing beside it.
FIXTURES = Path(__file__).resolve().parent / "fixtures"

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


def test_settings(
    arxiv_api: ArxivStandIn, database_url: str = "sqlite://", **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "arxiv_api_url": arxiv_api.url,
        "arxiv_oai_url": arxiv_api.oai_url,
        "arxiv_delay_seconds": 0.0,
        "arxiv_timeout_seconds": 2.0,
        "arxiv_retries": 2,
        "arxiv_backoff_seconds": 0.01,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


test_settings.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
def settings(arxiv_api: ArxivStandIn, database_url: str) -> Settings:
    return test_settings(arxiv_api, database_url)


@pytest.fixture
def core(settings: Settings, engine: Engine) -> Core:
    return Core(settings, engine, ArxivGateway(settings, engine))


def snapshot(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table: "nothing stored" means this did not change (the bookkeeping of
    commands received, which makes a command run once, aside)."""
    with engine.connect() as conn:
        return {
            t: sorted(map(tuple, conn.execute(text(f"SELECT * FROM {t}")).all()), key=repr)
            for t in inspect_db(engine).get_table_names()
            if t not in ("alembic_version", "command_claims")
        }

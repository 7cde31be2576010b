"""The settings every test core starts from, the repository's test data, and a store snapshot."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy import inspect as inspect_db

from bot.config import Settings
from tests.fakes.arxiv_server import ArxivStandIn

# Test data lives in the repository: the suite runs on a fresh clone with nothing beside it.
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


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


def snapshot(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table: "nothing stored" means this did not change (the bookkeeping of
    commands received, which makes a command run once, aside)."""
    with engine.connect() as conn:
        return {
            t: sorted(map(tuple, conn.execute(text(f"SELECT * FROM {t}")).all()), key=repr)
            for t in inspect_db(engine).get_table_names()
            if t not in ("alembic_version", "command_claims")
        }

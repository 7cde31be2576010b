"""The store itself: schema from migrations, constraints, concurrency, backups."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bot.arxiv.gateway import FetchedPaper
from bot.commands.core import TERMINAL, Core
from bot.commands.grammar import parse
from bot.storage import catalog, store
from bot.storage.db import (
    BackupRefused,
    backup,
    downgrade,
    ensure_schema,
    make_engine,
    read_session,
    table_names,
    upgrade,
    write_session,
)
from bot.storage.models import Channel, DigestClaim, Match, Paper, Subscription, Workspace
from tests.support.common import snapshot

TABLES = {
    "workspaces",
    "channels",
    "keywords",
    "subscriptions",
    "papers",
    "matches",
    "deliveries",
    "digest_claims",
    "leases",
}


def _paper(i: int, version: int = 1, *, hours: int = 0) -> FetchedPaper:
    moment = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=hours or i)
    return FetchedPaper(f"2501.{i:05d}", version, f"T{i}", ("A",), "abs", "", moment, moment)


def test_schema_comes_from_migrations_and_downgrades(engine: Engine) -> None:
    assert set(table_names(engine)) >= TABLES
    downgrade(engine, "base")
    assert not TABLES & set(table_names(engine))
    upgrade(engine)
    assert set(table_names(engine)) >= TABLES


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with pytest.raises(IntegrityError), write_session(engine) as session:
        session.add(Channel(workspace_id=999_999, external_id="C1"))
        session.flush()


def test_unique_constraints_make_duplicates_impossible(engine: Engine) -> None:
    with write_session(engine) as session:
        ws = store.ensure_workspace(session, platform="slack", external_id="T1")
        again = store.ensure_workspace(session, platform="slack", external_id="T1")
        assert ws.id == again.id
        channel = store.ensure_channel(session, workspace=ws, external_id="C1")
        keyword = store.ensure_keyword(session, "Virtual  Try-On")
        assert store.ensure_keyword(session, "virtual try-on").id == keyword.id
        assert store.subscribe(session, channel=channel, keyword=keyword, label="Virtual Try-On")
        assert not store.subscribe(
            session, channel=channel, keyword=keyword, label="virtual try-on"
        )
    with pytest.raises(IntegrityError), write_session(engine) as session:
        session.add(Workspace(platform="slack", external_id="T1"))
        session.flush()


def test_stale_version_never_overwrites_a_newer_one(engine: Engine) -> None:
    with write_session(engine) as session:
        catalog.upsert_papers(session, [_paper(1, version=3, hours=50)])
    with write_session(engine) as session:
        catalog.upsert_papers(session, [_paper(1, version=2, hours=10)])
    with read_session(engine) as session:
        paper = session.exec(select(Paper)).one()
    assert paper.version == 3
    assert store.as_utc(paper.updated) == datetime(2025, 1, 3, 2, tzinfo=UTC)


def test_timestamps_come_back_in_utc(engine: Engine) -> None:
    with write_session(engine) as session:
        catalog.upsert_papers(session, [_paper(7)])
        keyword = store.ensure_keyword(session, "k")
        catalog.add_matches(session, keyword_id=keyword.id, paper_ids=["2501.00007"])
    with read_session(engine) as session:
        views = catalog.newest_papers(session, [keyword.id], limit=5)
    assert views[0].updated == datetime(2025, 1, 1, 7, tzinfo=UTC)


def test_newest_per_keyword_orders_by_date_then_id_and_limits(engine: Engine) -> None:
    papers = [_paper(i, hours=5) for i in range(3)] + [_paper(i) for i in range(10, 20)]
    with write_session(engine) as session:
        catalog.upsert_papers(session, papers)
        a = store.ensure_keyword(session, "a")
        b = store.ensure_keyword(session, "b")
        catalog.add_matches(session, keyword_id=a.id, paper_ids=[p.arxiv_id for p in papers])
        catalog.add_matches(session, keyword_id=b.id, paper_ids=["2501.00001"])
    with read_session(engine) as session:
        result = catalog.newest_per_keyword(session, [a.id, b.id], limit=6)
    assert [p.arxiv_id for p in result[a.id]] == [
        "2501.00019",
        "2501.00018",
        "2501.00017",
        "2501.00016",
        "2501.00015",
        "2501.00014",
    ]
    assert [p.arxiv_id for p in result[b.id]] == ["2501.00001"]
    with read_session(engine) as session:
        tied = catalog.newest_per_keyword(session, [a.id], limit=20)[a.id]
    assert [p.arxiv_id for p in tied if p.updated.hour == 5] == [
        "2501.00002",
        "2501.00001",
        "2501.00000",
    ]


def test_deactivating_a_workspace_stops_its_channels_and_keeps_data(
    core: Core, engine: Engine
) -> None:
    from bot.commands.core import Place

    place = Place(platform="discord", workspace="G1", channel="100")
    core.execute(place, parse("add Keeps Data"))
    with write_session(engine) as session:
        assert store.deactivate_workspace(session, platform="discord", external_id="G1") == 1
    with read_session(engine) as session:
        assert session.exec(select(Channel)).one().active is False
        assert len(session.exec(select(Subscription)).all()) == 1
    assert core.followed_keywords() == []
    core.execute(place, parse("add Keeps Data"))  # the bot is back and someone uses it
    with read_session(engine) as session:
        assert session.exec(select(Channel)).one().active is True
    assert core.followed_keywords() == ["Keeps Data"]


def test_concurrent_read_then_write_transactions_never_fail_locked(sqlite_url: str) -> None:
    """Eight threads each run read-then-write transactions on one SQLite file at once."""
    engine = make_engine(sqlite_url)
    ensure_schema(engine)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        try:
            start.wait()
            for i in range(25):
                with write_session(engine) as session:
                    ws = store.ensure_workspace(session, platform="slack", external_id=f"T{n}")
                    channel = store.ensure_channel(session, workspace=ws, external_id=f"C{i}")
                    keyword = store.ensure_keyword(session, f"shared {i % 3}")
                    store.subscribe(
                        session, channel=channel, keyword=keyword, label=f"shared {i % 3}"
                    )
                    catalog.upsert_papers(session, [_paper(n * 100 + i)])
                    catalog.add_matches(
                        session, keyword_id=keyword.id, paper_ids=[f"2501.{n * 100 + i:05d}"]
                    )
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with read_session(engine) as session:
        assert len(session.exec(select(Channel)).all()) == 8 * 25
        assert len(session.exec(select(Match)).all()) == 8 * 25
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_backup_then_restore_gives_the_same_rows(
    core: Core, engine: Engine, tmp_path: Path, database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        with pytest.raises(BackupRefused, match="pg_dump 'postgresql://"):
            backup(engine, tmp_path / "copy.db")
        return
    core.execute(TERMINAL, parse("add Backed Up"))
    core.execute(TERMINAL, parse("digest 10:00"))
    target = tmp_path / "copy.db"
    backup(engine, target)
    restored = make_engine(f"sqlite:///{target}")
    for table in sorted(TABLES):
        with engine.connect() as a, restored.connect() as b:
            query = text(f"SELECT * FROM {table}")
            assert sorted(map(tuple, a.execute(query).all())) == sorted(
                map(tuple, b.execute(query).all())
            ), table
    restored.dispose()


def test_an_older_schema_with_data_upgrades_to_the_last_migration(database_url: str) -> None:
    """A database left at the first migration, with rows in it, upgrades step by step to head."""
    from alembic.script import ScriptDirectory

    from bot.storage.db import alembic_config

    engine = make_engine(database_url)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO workspaces (platform, external_id, name, active, created_at) VALUES ('slack', 'T1', '', true, '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO channels (workspace_id, external_id, active, digest_enabled, paused, failed_days, created_at) VALUES (1, 'C1', true, true, false, 0, '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO digest_claims (channel_id, local_date, status, owner, lease_until, claimed_at) VALUES (1, '2026-01-01', 'sent', 'x', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
    ensure_schema(engine)
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
        assert conn.execute(text("SELECT status, attempts FROM digest_claims")).one() == ("sent", 0)
        assert conn.execute(text("SELECT external_id FROM channels")).scalar() == "C1"
    assert {"slack_installations", "slack_bots", "slack_oauth_states"} <= set(table_names(engine))
    engine.dispose()


# Migration 0011: each of these repeated the first column of the table's unique constraint.
REDUNDANT = {
    "channels": ("ix_channels_workspace_id", "workspace_id"),
    "subscriptions": ("ix_subscriptions_channel_id", "channel_id"),
    "digest_claims": ("ix_digest_claims_channel_id", "channel_id"),
}


def _indexes(engine: Engine, table: str) -> set[str]:
    return {index["name"] or "" for index in inspect(engine).get_indexes(table)}


def _plan(engine: Engine, table: str, column: str) -> str:
    """How the database finds a table's rows by `column` (PostgreSQL: any index over a scan)."""
    query = f"SELECT * FROM {table} WHERE {column} = 1"
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            return " ".join(row[-1] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {query}")))
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        return " ".join(row[0] for row in conn.execute(text(f"EXPLAIN {query}")))


def _channel_at_0011(engine: Engine) -> None:
    """Workspace 1 and its channel 1 (C1), as a database before migration 0012 stores them."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO workspaces (platform, external_id, name, active, created_at) "
                "VALUES ('slack', 'T1', '', true, '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO channels (workspace_id, external_id, active, digest_enabled, "
                "digest_time, paused, failed_days, created_at) "
                "VALUES (1, 'C1', true, true, '08:30', false, 0, '2026-01-01 00:00:00')"
            )
        )


def test_indexes_repeating_a_unique_constraints_first_column_go_and_rows_stay(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    upgrade(engine, "0009")
    _channel_at_0011(engine)  # the models know later columns: rows of that time, in SQL
    with write_session(engine) as session:
        keyword = store.ensure_keyword(session, "Alpha")
        session.add(Subscription(channel_id=1, keyword_id=keyword.id, label="Alpha"))
        session.add(
            DigestClaim(channel_id=1, local_date=date(2026, 1, 1), lease_until=datetime.now(UTC))
        )
    before = snapshot(engine)
    assert all(name in _indexes(engine, t) for t, (name, _) in REDUNDANT.items())

    upgrade(engine, "0011")
    assert snapshot(engine) == before
    for table, (name, column) in REDUNDANT.items():
        assert name not in _indexes(engine, table)
        plan = _plan(engine, table, column)  # the unique constraint's index answers instead
        assert "INDEX" in plan.upper() and "Seq Scan" not in plan and "SCAN " not in plan, plan
    with pytest.raises(IntegrityError), write_session(engine) as session:
        session.add(Subscription(channel_id=1, keyword_id=keyword.id, label="again"))

    downgrade(engine, "0009")
    assert all(name in _indexes(engine, t) for t, (name, _) in REDUNDANT.items())
    assert snapshot(engine) == before
    engine.dispose()


def test_recording_an_answer_again_stores_only_what_changed(engine: Engine) -> None:
    from dataclasses import replace

    from bot.storage import catalog

    answer = [_paper(i) for i in range(5)]
    with write_session(engine) as session:
        keyword = store.ensure_keyword(session, "again")
        assert catalog.record_answer(session, keyword_id=keyword.id, papers=answer) == 5
    edited = [replace(answer[0], comment="Accepted at ICLR"), *answer[1:], _paper(9)]
    with write_session(engine) as session:
        assert catalog.record_answer(session, keyword_id=keyword.id, papers=edited) == 1
    with read_session(engine) as session:
        papers = {p.arxiv_id: p for p in session.exec(select(Paper)).all()}
    assert papers["2501.00000"].comment == "Accepted at ICLR"
    assert len(papers) == 6


def test_the_schema_check_knows_the_newest_migration_without_alembic() -> None:
    """`ensure_schema` compares the database's revision with the head read from the migration
    files (Alembic is imported only to upgrade): it must be Alembic's own head."""
    from alembic.script import ScriptDirectory

    from bot.storage.db import alembic_config, head_revision

    head = ScriptDirectory.from_config(alembic_config(make_engine("sqlite://"))).get_current_head()
    assert head_revision() == head

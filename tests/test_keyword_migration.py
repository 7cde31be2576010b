"""Migration 0007 on a database with keywords in it: they keep working under the rule grammar
(listed, removed, refreshed), and two that now share a key become one."""

from __future__ import annotations

from sqlalchemy import text

from bot.arxiv.gateway import ArxivGateway
from bot.commands.core import Core, Place
from bot.commands.grammar import parse
from bot.replies import KeywordTable, Papers, Text
from bot.storage.db import ensure_schema, make_engine, upgrade
from tests.fakes.arxiv_server import ArxivStandIn, make_entry
from tests.support.common import test_settings

T0 = "'2026-01-01 00:00:00'"
ROWS = [
    "INSERT INTO workspaces (id, platform, external_id, name, active, created_at) "
    f"VALUES (1, 'slack', 'T1', '', true, {T0})",
    *(
        "INSERT INTO channels (id, workspace_id, external_id, active, digest_enabled, paused, "
        f"failed_days, created_at) VALUES ({n}, 1, 'C{n}', true, true, false, 0, {T0})"
        for n in (1, 2)
    ),
    *(
        "INSERT INTO keywords (id, key, phrase, fetch_status, last_success_at, created_at) "
        f"VALUES ({n}, '{phrase.casefold()}', '{phrase}', 'ok', {T0}, {T0})"
        for n, phrase in ((1, "AR/VR"), (2, "Virtual Try-On"), (3, "AR VR"), (4, "Foo -bar"))
    ),
    *(
        "INSERT INTO papers (arxiv_id, version, title, authors, abstract, comment, published, "
        f"updated, stored_at) VALUES ('2501.0000{n}', 1, 'P{n}', '[]', 'a', '', {T0}, {T0}, {T0})"
        for n in (1, 2)
    ),
    *(
        f"INSERT INTO matches (keyword_id, paper_id, first_seen_at) VALUES ({k}, '{p}', {T0})"
        for k, p in ((1, "2501.00001"), (3, "2501.00001"), (3, "2501.00002"))
    ),
    *(
        "INSERT INTO subscriptions (id, channel_id, keyword_id, label, created_at) "
        f"VALUES ({i}, {c}, {k}, '{label}', {T0})"
        for i, c, k, label in (
            (1, 1, 1, "AR/VR"),
            (2, 1, 3, "ar vr"),
            (3, 2, 3, "AR VR"),
            (4, 1, 2, "Virtual Try-On"),
            (5, 2, 4, "Foo -bar"),
        )
    ),
    "INSERT INTO harvest_candidates (keyword_id, paper_id) VALUES (3, '2501.00009')",
]


def test_existing_keywords_keep_working_after_the_rules_migration(
    database_url: str, arxiv_api: ArxivStandIn
) -> None:
    engine = make_engine(database_url)
    upgrade(engine, "0005")
    with engine.begin() as conn:
        for row in ROWS:
            conn.execute(text(row))
    ensure_schema(engine)
    with engine.connect() as conn:
        keywords = conn.execute(
            text("SELECT id, key, phrase, words, exclude, categories FROM keywords ORDER BY id")
        ).all()
        subscriptions = conn.execute(
            text("SELECT channel_id, keyword_id, label FROM subscriptions ORDER BY id")
        ).all()
        matches = conn.execute(text("SELECT keyword_id, paper_id FROM matches")).all()
        candidates = conn.execute(text("SELECT keyword_id FROM harvest_candidates")).all()
    assert [tuple(k) for k in keywords] == [
        (1, "ar vr", "AR VR", "AR VR", "[]", ""),
        (2, "virtual try-on", "Virtual Try-On", "Virtual Try-On", "[]", ""),
        (4, '"foo -bar"', '"Foo -bar"', "Foo -bar", "[]", ""),
    ]
    # The newer AR VR merged into the older: C1 followed both (one subscription stays),
    # C2's moves over, the matches join, the candidates go.
    assert [tuple(s) for s in subscriptions] == [
        (1, 1, "AR/VR"),
        (2, 1, "AR VR"),
        (1, 2, "Virtual Try-On"),
        (2, 4, "Foo -bar"),
    ]
    assert sorted(map(tuple, matches)) == [(1, "2501.00001"), (1, "2501.00002")]
    assert candidates == []

    settings = test_settings(arxiv_api, database_url)
    core = Core(settings, engine, ArxivGateway(settings, engine))
    c1 = Place(platform="slack", workspace="T1", channel="C1")
    c2 = Place(platform="slack", workspace="T1", channel="C2")
    (table,) = core.execute(c1, parse("keywords"))
    assert isinstance(table, KeywordTable)
    assert [(r.label, r.papers) for r in table.rows] == [("AR/VR", 2), ("Virtual Try-On", 0)]
    (listed,) = core.execute(c1, parse("list AR/VR"))
    assert isinstance(listed, Papers) and listed.count == 2
    # "Foo -bar" now reads as a rule; the label as shown still names the old keyword.
    (removed,) = core.execute(c2, parse("remove Foo -bar"))
    assert isinstance(removed, Text) and not removed.error, removed
    arxiv_api.add_entries("Foo -bar", [make_entry(arxiv_id="2501.00003")])
    assert core.refresh('"Foo -bar"').ok
    assert arxiv_api.requests[-1].params["search_query"] == 'ti:"Foo -bar" OR abs:"Foo -bar"'
    outcomes = core.refresh_all()
    assert sorted(o.label for o in outcomes) == ["AR VR", "Virtual Try-On"]
    engine.dispose()

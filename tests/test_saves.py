"""Saved papers in the core (SPEC 10): personal, idempotent, listed newest first, exported as
BibTeX that bibtexparser reads back; the papers' categories that `primaryClass` needs, from
API answers and from the harvest; the migration that adds them to a database with rows."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bibtexparser
import pytest
from bibtexparser.middlewares import LatexDecodingMiddleware
from sqlalchemy import Engine, text

from bot.arxiv.answers import FetchedPaper
from bot.arxiv.gateway import ArxivGateway
from bot.commands.core import TERMINAL, Core, Place
from bot.commands.grammar import BadInput, Save, Saved, Unsave, parse
from bot.replies import File, Text
from bot.storage import catalog, saves, store
from bot.storage.db import ensure_schema, make_engine, read_session, upgrade, write_session
from bot.storage.models import Paper
from tests.fakes.arxiv_server import ArxivStandIn, make_entry
from tests.support.cli import run_papers
from tests.support.common import snapshot, test_settings

ADA = Place("slack", "T1", "C1", user_id="U_ADA")
BOB = Place("slack", "T1", "C1", user_id="U_BOB")
HOSTILE = "Braces {and} 100% R&D: Café Müller — naïve } {"
PUBLIC_URL = "https://papers.example.org"


def _follow(core: Core, arxiv_api: ArxivStandIn, n: int = 3, **fields: object) -> None:
    """`Diffusion` followed in C1 with `n` papers (2501.00001 … newest last)."""
    entries = []
    for i in range(1, n + 1):
        values: dict[str, object] = {
            "arxiv_id": f"2501.{i:05d}",
            "version": 2,
            "title": f"Diffusion paper {i}",
            "authors": ("José Álvarez", "Ann Smith"),
            "published": datetime(2024, 12, 30, tzinfo=UTC),
            "updated": datetime(2025, 1, i, tzinfo=UTC),
            "categories": ("cs.CV", "cs.GR"),
        }
        entries.append(make_entry(**{**values, **fields}))  # type: ignore[arg-type]
    arxiv_api.add_entries("Diffusion", entries)
    core.execute(ADA, parse("add Diffusion"))


def _text(core: Core, place: Place, typed: str) -> Text:
    (reply,) = core.execute(place, parse(typed))
    assert isinstance(reply, Text), reply
    return reply


def test_two_people_in_one_channel_each_see_only_their_own_saves(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    _follow(core, arxiv_api)
    _text(core, ADA, "save 2501.00001")
    _text(core, BOB, "save 2501.00002")
    _text(core, BOB, "save arXiv:2501.00003v2")  # as people paste it
    ada, bob = _text(core, ADA, "saved"), _text(core, BOB, "saved")
    assert ada.ephemeral and bob.ephemeral
    assert "2501.00001" in ada.text and "2501.00002" not in ada.text
    assert "2501.00001" not in bob.text and "2501.00002" in bob.text
    other_workspace = dataclasses.replace(ADA, workspace="T2")  # the same user id elsewhere
    assert "no papers yet" in _text(core, other_workspace, "saved").text


def test_saving_twice_keeps_one(core: Core, arxiv_api: ArxivStandIn) -> None:
    _follow(core, arxiv_api)
    first = _text(core, ADA, "save 2501.00002")
    before = snapshot(core.engine)
    again = core.execute(ADA, Save("2501.00002"))
    assert first.ephemeral and "Saved “Diffusion paper 2”" in first.text
    assert again == [
        Text("“Diffusion paper 2” is already among your saved papers.", ephemeral=True)
    ]
    assert snapshot(core.engine) == before
    assert _text(core, ADA, "saved").text.count("2501.00002") == 1


def test_saved_lists_newest_saved_first_and_unsave_removes_one(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    _follow(core, arxiv_api)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for minutes, arxiv_id in enumerate(("2501.00002", "2501.00003", "2501.00001")):
        at = Core(
            core.settings,
            core.engine,
            core.gateway,
            clock=lambda m=minutes: start + timedelta(minutes=m),
        )
        at.execute(ADA, Save(arxiv_id))
    listed = _text(core, ADA, "saved").text.splitlines()
    assert listed[0] == "Your saved papers (3), newest saved first:"
    assert [line.split(" · ")[-1] for line in listed[1:]] == [
        "https://arxiv.org/abs/2501.00001v2",
        "https://arxiv.org/abs/2501.00003v2",
        "https://arxiv.org/abs/2501.00002v2",
    ]
    assert _text(core, ADA, "unsave https://arxiv.org/abs/2501.00003v2").text == (
        "Removed arXiv:2501.00003 from your saved papers."
    )
    assert "2501.00003" not in _text(core, ADA, "saved").text
    gone = _text(core, BOB, "unsave 2501.00001")  # Bob cannot remove Ada's save
    assert gone.error and gone.ephemeral
    assert "2501.00001" in _text(core, ADA, "saved").text


def test_bad_ids_and_unknown_papers_are_refused_and_change_nothing(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    _follow(core, arxiv_api)
    before = snapshot(core.engine)
    for typed in ("save 12345", "save", "save 2501.00001 2501.00002", "unsave x", "saved all"):
        with pytest.raises(BadInput):
            parse(typed)
    unknown = _text(core, ADA, "save 2601.99999")
    assert unknown.error and unknown.ephemeral and "not among the papers stored" in unknown.text
    nobody = dataclasses.replace(ADA, user_id="")
    assert _text(core, nobody, "saved").error
    assert snapshot(core.engine) == before


def test_saved_bibtex_parses_with_bibtexparser_in_arxivs_style(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    _follow(core, arxiv_api, n=2)
    _text(core, ADA, "save 2501.00001")
    _text(core, ADA, "save 2501.00002")
    (bib,) = core.execute(ADA, Saved(bibtex=True))
    assert isinstance(bib, File) and bib.filename == "saved.bib" and bib.private
    library = bibtexparser.parse_string(bib.content, append_middleware=[LatexDecodingMiddleware()])
    assert library.failed_blocks == []
    entries = {entry.key: entry for entry in library.entries}
    assert set(entries) == {"2501.00001", "2501.00002"}
    entry = entries["2501.00001"]
    assert entry.entry_type == "misc"
    assert {field.key: field.value for field in entry.fields} == {
        "title": "Diffusion paper 1",
        "author": "José Álvarez and Ann Smith",
        "year": "2024",  # the first version's year, as arXiv writes it
        "eprint": "2501.00001",
        "archivePrefix": "arXiv",
        "primaryClass": "cs.CV",
        "url": "https://arxiv.org/abs/2501.00001",
    }
    assert _text(core, BOB, "saved bibtex").text.startswith("You have saved no papers")


def test_a_title_with_braces_percent_ampersand_and_accents_round_trips(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    _follow(core, arxiv_api, n=1, title=HOSTILE)
    _text(core, ADA, "save 2501.00001")
    (bib,) = core.execute(ADA, Saved(bibtex=True))
    assert isinstance(bib, File)
    raw = bibtexparser.parse_string(bib.content)
    assert raw.failed_blocks == [] and "\\%" in raw.entries[0]["title"]  # LaTeX-safe as written
    decoded = bibtexparser.parse_string(bib.content, append_middleware=[LatexDecodingMiddleware()])
    assert decoded.entries[0]["title"] == HOSTILE


def test_the_terminal_saves_as_the_local_user(core: Core, arxiv_api: ArxivStandIn) -> None:
    _follow(core, arxiv_api, n=1)
    assert "Saved" in _text(core, TERMINAL, "save 2501.00001").text
    (bib,) = core.execute(TERMINAL, Saved(bibtex=True))
    assert isinstance(bib, File) and "@misc{2501.00001," in bib.content
    assert core.execute(TERMINAL, Unsave("2501.00001"))[0] == Text(
        "Removed arXiv:2501.00001 from your saved papers.", ephemeral=True
    )


# -- the categories primaryClass needs -----------------------------------------------------


def _categories(engine: Engine, arxiv_id: str) -> tuple[str, str]:
    with read_session(engine) as session:
        paper = session.get(Paper, arxiv_id)
        assert paper is not None
        return paper.primary_category, paper.categories


def test_categories_are_stored_from_api_answers(core: Core, arxiv_api: ArxivStandIn) -> None:
    _follow(core, arxiv_api, n=1)
    assert _categories(core.engine, "2501.00001") == ("cs.CV", "cs.CV cs.GR")


def _fetched(categories: tuple[str, ...], primary: str = "") -> FetchedPaper:
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    return FetchedPaper(
        "2501.00009", 1, "T", ("A",), "abs", "", moment, moment, primary, categories
    )


def test_an_answer_without_categories_keeps_the_stored_ones(engine: Engine) -> None:
    with write_session(engine) as session:
        keyword = store.ensure_keyword(session, "kept")
        assert keyword.id is not None
        catalog.record_answer(
            session, keyword_id=keyword.id, papers=[_fetched(("cs.LG", "stat.ML"), "cs.LG")]
        )
    with write_session(engine) as session:
        changed = dataclasses.replace(_fetched(()), comment="Accepted", version=2)
        catalog.record_answer(session, keyword_id=keyword.id, papers=[changed])
    with read_session(engine) as session:
        paper = session.get(Paper, "2501.00009")
        assert paper is not None and paper.comment == "Accepted" and paper.version == 2
    assert _categories(engine, "2501.00009") == ("cs.LG", "cs.LG stat.ML")


def test_categories_are_stored_from_the_harvest(core: Core, arxiv_api: ArxivStandIn) -> None:
    old = make_entry("2501.00001", title="Alpha study", summary="Alpha.", categories=("cs.CV",))
    arxiv_api.add_entries("Alpha", [old])
    arxiv_api.add_entries("Beta", [make_entry("2501.00002", title="Beta", summary="Beta.")])
    core.execute(TERMINAL, parse("add Alpha"))
    core.execute(TERMINAL, parse("add Beta"))
    core.execute(TERMINAL, parse("remove Alpha"))  # its paper stays stored, not refreshed
    cross_listed = make_entry(
        "2501.00001", title="Alpha study", summary="Alpha.", categories=("cs.LG", "cs.CV")
    )
    arxiv_api.announce([cross_listed], day=datetime.now(UTC).date())
    before = len(arxiv_api.requests)
    assert all(outcome.ok for outcome in core.refresh_all())
    assert [r.path for r in arxiv_api.requests[before:]] == ["/oai"]  # no API request
    assert _categories(core.engine, "2501.00001") == ("cs.LG", "cs.LG cs.CV")


# -- the migration ----------------------------------------------------------------------------


def test_the_migration_adds_saves_feeds_and_categories_to_a_database_with_rows(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    upgrade(engine, "0008")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO workspaces (platform, external_id, name, active, created_at) "
                "VALUES ('slack', 'T1', '', true, '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO papers (arxiv_id, version, title, authors, abstract, comment, "
                "published, updated, stored_at) VALUES ('2501.00001', 1, 'Old', '[\"A\"]', 'abs', "
                "'', '2025-01-01 00:00:00', '2025-01-01 00:00:00', '2025-01-01 00:00:00')"
            )
        )
    upgrade(engine, "0009")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0009"
        row = conn.execute(text("SELECT title, primary_category, categories FROM papers")).one()
        assert tuple(row) == ("Old", "", "")
    with write_session(engine) as session:
        workspace = store.find_workspace(session, platform="slack", external_id="T1")
        assert workspace is not None and workspace.id is not None
        saved = saves.save(
            session,
            workspace_id=workspace.id,
            user_id="U1",
            paper_id="2501.00001",
            now=datetime(2026, 1, 2, tzinfo=UTC),
        )
    assert saved
    engine.dispose()


# -- the terminal -------------------------------------------------------------------------------


def test_papers_save_saved_bibtex_to_a_file_and_feed_in_the_terminal(
    tmp_path: Path, arxiv_api: ArxivStandIn
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    ensure_schema(engine)
    local = Core(test_settings(arxiv_api), engine, ArxivGateway(test_settings(arxiv_api), engine))
    _follow(local, arxiv_api, n=1)
    engine.dispose()

    saved = run_papers(tmp_path, "save", "2501.00001", PUBLIC_URL=PUBLIC_URL)
    assert saved.returncode == 0 and "Saved “Diffusion paper 1”" in saved.stdout
    written = run_papers(tmp_path, "saved", "bibtex", "-o", "mine.bib", PUBLIC_URL=PUBLIC_URL)
    assert written.returncode == 0 and written.stdout == ""
    assert (tmp_path / "mine.bib").read_text(encoding="utf-8").startswith("@misc{2501.00001,")
    feed = run_papers(tmp_path, "feed", PUBLIC_URL=PUBLIC_URL)
    assert feed.returncode == 0
    assert re.search(r"^https://papers\.example\.org/feeds/[\w-]{32}\.atom$", feed.stdout, re.M)
    wrong = run_papers(tmp_path, "save", "12345", PUBLIC_URL=PUBLIC_URL)
    assert wrong.returncode == 2 and "is not an arXiv id" in wrong.stderr

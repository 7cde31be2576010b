"""The README export equals the real Daily Papers README, byte for byte."""

from __future__ import annotations

import re

import pytest

from bot.commands.core import TERMINAL, Core
from bot.commands.grammar import parse
from bot.replies import Papers, Text
from tests.fakes.arxiv_server import ArxivStandIn
from tests.support.common import FIXTURES

EXPECTED = (FIXTURES / "dailyarxiv" / "expected-README.md").read_text(encoding="utf-8")
LAST_UPDATE = re.compile(r"^Last update: \d{4}-\d{2}-\d{2}$", re.M)


def _sections(readme: str) -> dict[str, str]:
    parts = re.split(r"^(?=## )", readme, flags=re.M)
    return {p.split("\n", 1)[0]: p for p in parts[1:]}


def _without_date(readme: str) -> str:
    return LAST_UPDATE.sub("Last update: YYYY-MM-DD", readme)


def _add(core: Core, keyword: str) -> None:
    replies = core.execute(TERMINAL, parse(f"add {keyword}"))
    assert isinstance(replies[0], Papers), replies


def test_export_matches_the_real_readme(core: Core, arxiv_api: ArxivStandIn) -> None:
    arxiv_api.load_dailyarxiv()
    _add(core, "Clothes Changing Person ReID")
    _add(core, "Virtual Try-On")
    readme = core.readme(TERMINAL)
    assert LAST_UPDATE.search(readme), "the Last update line carries a date"
    assert _without_date(readme) == EXPECTED
    assert readme.endswith("|\n\n")
    assert "P(Y\\|X)" in readme and "P(Y\\|do(X))" in readme


def test_export_follows_the_order_keywords_were_added(core: Core, arxiv_api: ArxivStandIn) -> None:
    arxiv_api.load_dailyarxiv()
    _add(core, "Virtual Try-On")
    _add(core, "Clothes Changing Person ReID")
    readme = _without_date(core.readme(TERMINAL))
    expected = _sections(EXPECTED)
    header = EXPECTED.split("## ", 1)[0]
    assert readme == (
        header + expected["## Virtual Try-On"] + expected["## Clothes Changing Person ReID"]
    )


def test_keyword_without_papers_keeps_heading_and_table_header(core: Core) -> None:
    replies = core.execute(TERMINAL, parse("add Nothing Matches This"))
    assert isinstance(replies[0], Text) and "0 papers" in replies[0].text
    readme = core.readme(TERMINAL)
    assert readme.endswith(
        "## Nothing Matches This\n| **Title** | **Date** | **Abstract** | **Comment** |\n"
        "| --- | --- | --- | --- |\n\n"
    )


@pytest.mark.parametrize(
    ("comment", "cell"),
    [
        ("", "|  |"),
        ("Accepted by CVPR2021", "| Accepted by CVPR2021 |"),
        (
            "Accepted by CVPR 2021",
            "| <details><summary>Accep...</summary><p>Accepted by CVPR 2021</p></details> |",
        ),
        ("a |\n  b", "| a \\| b |"),
    ],
)
def test_comment_cells(comment: str, cell: str) -> None:
    from datetime import UTC, datetime

    from bot.commands.readme import paper_row
    from bot.replies import PaperView

    paper = PaperView("2401.00001", 2, "T", (), datetime(2024, 1, 2, tzinfo=UTC), comment, "A")
    row = paper_row(paper)
    assert row.endswith(cell)
    assert "(https://arxiv.org/pdf/2401.00001v2)** | 2024-01-02 |" in row

"""Keyword rules (issue 12): the grammar, the arXiv query each rule adds (as the arXiv stand-in
records it), bad rules, keys, `keywords` and the README export of rule keywords."""

from __future__ import annotations

import random
import re

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from bot.arxiv.query import arxiv_query
from bot.commands.core import TERMINAL, Core, Place
from bot.commands.grammar import BadInput, parse
from bot.keywords import BadKeyword, clean_label, complete_rules, is_term, parse_keyword
from bot.replies import KeywordTable, Papers, Text
from bot.storage.db import read_session
from bot.storage.models import Keyword, Subscription
from tests.fakes.arxiv_server import ArxivStandIn, make_entry
from tests.support.common import FIXTURES, snapshot

EDITING = '(ti:"image editing" OR abs:"image editing")'


def _query_of(core: Core, arxiv_api: ArxivStandIn, typed: str) -> str:
    core.execute(TERMINAL, parse(f"add {typed}"))
    (request,) = arxiv_api.requests
    return request.params["search_query"]


@pytest.mark.parametrize(
    ("typed", "query"),
    [
        ("diffusion", 'ti:"diffusion" AND abs:"diffusion"'),
        ("image editing", 'ti:"image editing" OR abs:"image editing"'),
        ("image editing -medical", EDITING + ' ANDNOT (ti:"medical" OR abs:"medical")'),
        (
            'image editing -"remote sensing"',
            EDITING + ' ANDNOT (ti:"remote sensing" OR abs:"remote sensing")',
        ),
        (
            "diffusion in:cs.CV,eess.IV",
            '(ti:"diffusion" AND abs:"diffusion") AND (cat:cs.CV OR cat:eess.IV)',
        ),
        ("image editing in:cs.cv", EDITING + " AND (cat:cs.CV)"),
        ('image editing by:"Kaiming He"', EDITING + ' AND au:"Kaiming He"'),
        ("image editing by:He", EDITING + ' AND au:"He"'),
        ('by:"Kaiming He"', 'au:"Kaiming He"'),
        (
            "by:He in:cs.CV -medical",
            'au:"He" ANDNOT (ti:"medical" OR abs:"medical") AND (cat:cs.CV)',
        ),
        (
            'image editing in:cs.GR,cs.CV by:"Kaiming He" -"remote sensing" -Medical',
            EDITING + ' ANDNOT (ti:"Medical" OR abs:"Medical")'
            ' ANDNOT (ti:"remote sensing" OR abs:"remote sensing")'
            ' AND (cat:cs.CV OR cat:cs.GR) AND au:"Kaiming He"',
        ),
        (
            "Virtual Try-On -Metropolis",
            '(ti:"Virtual Try-On" OR abs:"Virtual Try-On")'
            ' ANDNOT (ti:"Metropolis" OR abs:"Metropolis")',
        ),
        ("Bayes' rule", 'ti:"Bayes\' rule" OR abs:"Bayes\' rule"'),
        ("don’t stop", 'ti:"don\'t stop" OR abs:"don\'t stop"'),
        ("“smart” quotes", 'ti:"smart quotes" OR abs:"smart quotes"'),
        ('"Foo -bar"', 'ti:"Foo -bar" OR abs:"Foo -bar"'),
        # Injection: the quotes group words, the rest is searched for as words.
        ('foo" OR ti:"bar', 'ti:"foo OR ti bar" OR abs:"foo OR ti bar"'),
        ('x" AND all:"*', 'ti:"x AND all" OR abs:"x AND all"'),
        ("C++/CUDA (GPU)", 'ti:"C++ CUDA GPU" OR abs:"C++ CUDA GPU"'),
    ],
)
def test_each_rule_adds_its_part_of_the_query(
    core: Core, arxiv_api: ArxivStandIn, typed: str, query: str
) -> None:
    assert _query_of(core, arxiv_api, typed) == query


BAD_RULES = [
    ("image editing in:cs.XX", "'cs.XX' is not an arXiv category"),
    ("image editing in:cs.CV) OR (cat:math", "'cs.CV)' is not an arXiv category"),
    ("image editing in:", "in: needs a category"),
    ('image editing -""', "An exclusion needs a word"),
    ("image editing -", "An exclusion needs a word"),
    ("x -a -b -c -d -e -f", "6 exclusions; at most 5"),
    ("x in:cs.CV,cs.GR,cs.LG,cs.AI,cs.CL,cs.RO", "6 categories; at most 5"),
    ("x by:He by:Kaiming", "One author per keyword"),
    ('x by:"Kaiming He', "A quote is not closed"),
    ('-"x" OR all:*', "'OR' comes after a rule"),
    ("image -medical editing", "'editing' comes after a rule"),
    ("in:cs.CV -medical", "Rules need words to apply to"),
    ("x by:!!!", "An author needs a word"),
    ("x " + "-" + "y" * 101, "An exclusion is 101 characters long"),
]


@pytest.mark.parametrize("command", ["add", "preview"])
@pytest.mark.parametrize(("typed", "problem"), BAD_RULES)
def test_bad_rules_get_usage_replies_and_change_nothing(
    core: Core, engine: Engine, arxiv_api: ArxivStandIn, command: str, typed: str, problem: str
) -> None:
    with pytest.raises(BadInput) as caught:
        parse(f"{command} {typed}")
    assert problem in str(caught.value) and f"Usage: {command} <keyword>" in str(caught.value)
    before = snapshot(engine)
    # A command built around the grammar (as an adapter could) meets the same check in the core.
    from bot.commands.grammar import Add, Preview

    made = Add(clean_label(typed)) if command == "add" else Preview(clean_label(typed))
    (reply,) = core.execute(TERMINAL, made)
    assert isinstance(reply, Text) and reply.error and reply.ephemeral and problem in reply.text
    assert snapshot(engine) == before and arxiv_api.requests == []


def test_typed_text_never_changes_the_query_structure() -> None:
    """Random text built from the grammar's characters (quotes of every kind, parentheses,
    colons, field names, operators, backslashes): whatever the parser accepts becomes a query
    of exactly the documented shape, every term a plain quoted term."""
    pieces = ['"', "“", "”", "'", "(", ")", ":", "\\", "-", ",", "*", " ", " ", " ", "in:",
              "by:", "ti:", "au:", "cat:", "OR", "AND", "ANDNOT", "cs.CV", "eess.IV", "x", "y z",
              "Try-On", "é", "\u202e", "\t", "+", ".", "ü"]  # fmt: skip
    term = r'"([^"]*)"'
    base = rf"(ti:{term} AND abs:{term}|ti:{term} OR abs:{term})"
    shape = re.compile(
        rf"^(?:{base}|\({base}\)|au:{term})"
        rf"(?: ANDNOT \(ti:{term} OR abs:{term}\))*"
        r"(?: AND \(cat:[a-zA-Z.-]+(?: OR cat:[a-zA-Z.-]+)*\))?"
        rf"(?: AND au:{term})?$"
    )
    rng = random.Random(12)
    accepted = 0
    for _ in range(4000):
        typed = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 14)))
        try:
            spec = parse_keyword(clean_label(typed))
        except BadKeyword:
            continue
        accepted += 1
        query = arxiv_query(spec)
        assert shape.match(query), (typed, query)
        assert all(is_term(t) for t in re.findall(term, query)), (typed, query)
        assert parse_keyword(spec.text) == spec, "the canonical text reads back"
    assert accepted > 500


def test_two_spellings_of_the_same_rules_share_a_key_and_are_fetched_once(
    core: Core, engine: Engine, arxiv_api: ArxivStandIn
) -> None:
    same = [
        "image editing -medical in:cs.CV",
        "Image  Editing in:CS.cv -Medical",
        '"image editing" in:cs.CV -"medical"',
        "image editing in:cs.CV, cs.CV -medical -MEDICAL",
    ]
    assert len({parse_keyword(text).key for text in same}) == 1
    others = ["image editing", "image editing -medical", "image editing in:cs.CV",
              "image editing -medical in:cs.CV,cs.GR", "image editing -medical in:cs.CV by:He"]  # fmt: skip
    assert len({parse_keyword(text).key for text in [same[0], *others]}) == 6

    for channel, typed in enumerate(same[:2]):
        place = Place(platform="slack", workspace="T1", channel=f"C{channel}")
        core.execute(place, parse(f"add {typed}"))
    assert len(arxiv_api.requests) == 1, "fetched once for both channels"
    core.execute(TERMINAL, parse("add image editing"))
    assert len(arxiv_api.requests) == 2, "without the rules it is another keyword"
    with read_session(engine) as session:
        keywords = session.exec(select(Keyword).order_by(Keyword.id)).all()  # type: ignore[arg-type]
        labels = session.exec(select(Subscription.label).order_by(Subscription.id)).all()  # type: ignore[arg-type]
    assert [k.phrase for k in keywords] == ["image editing -medical in:cs.CV", "image editing"]
    assert (keywords[0].words, keywords[0].exclude, keywords[0].categories) == (
        "image editing",
        '["medical"]',
        "cs.CV",
    )
    assert labels == [same[0], "Image Editing in:CS.cv -Medical", "image editing"], "as typed"


def test_keywords_list_and_remove_show_and_take_the_label_as_typed(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    typed = 'image editing -medical -"remote sensing" in:cs.GR,cs.CV'
    arxiv_api.add_entries("image editing", [make_entry(arxiv_id="2501.00001")])
    core.execute(TERMINAL, parse(f"add {typed}"))
    core.execute(TERMINAL, parse('add by:"Kaiming He"'))
    (table,) = core.execute(TERMINAL, parse("keywords"))
    assert isinstance(table, KeywordTable)
    assert [(r.label, r.rules) for r in table.rows] == [
        (typed, "excluding medical, remote sensing · in cs.CV, cs.GR"),
        ('by:"Kaiming He"', "by Kaiming He"),
    ]
    (listed,) = core.execute(
        TERMINAL, parse("list image editing in:cs.CV,cs.GR -medical -“remote sensing” 3")
    )
    assert isinstance(listed, Papers) and listed.heading.endswith(f"for “{typed}”")
    (removed,) = core.execute(TERMINAL, parse('remove by:"kaiming he"'))
    assert isinstance(removed, Text) and 'Stopped following “by:"Kaiming He"”' in removed.text


def test_complete_rules_offers_the_categories_that_fit() -> None:
    assert complete_rules("image editing in:cs.C")[:3] == [
        "image editing in:cs.CC",
        "image editing in:cs.CE",
        "image editing in:cs.CG",
    ]
    assert complete_rules("x in:cs.CV,EESS.i") == ["x in:cs.CV,eess.IV"]
    assert "x in:cs.CV,cs.CV" not in complete_rules("x in:cs.CV,cs.")
    assert len(complete_rules("x in:")) == 25
    assert complete_rules("image editing") == complete_rules("x -in:cs") == []


def test_readme_of_rule_keywords_has_the_headings_as_typed(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    """The stand-in answers a keyword's phrase whatever its rules: the sections are the real
    README's, byte for byte, under the headings as typed."""
    expected = (FIXTURES / "dailyarxiv" / "expected-README.md").read_text(encoding="utf-8")
    arxiv_api.load_dailyarxiv()
    first = "Clothes Changing Person ReID in:cs.CV -“3D”"
    second = 'Virtual Try-On -"Multiple-try Metropolis" by:Doe in:cs.GR,cs.CV'
    for typed in (first, second):
        assert isinstance(core.execute(TERMINAL, parse(f"add {typed}"))[0], Papers)
    readme = re.sub(r"Last update: \S+", "Last update: YYYY-MM-DD", core.readme(TERMINAL))
    renamed = expected.replace(
        "## Clothes Changing Person ReID\n", '## Clothes Changing Person ReID in:cs.CV -"3D"\n'
    ).replace("## Virtual Try-On\n", f"## {second}\n")
    assert readme == renamed
    assert f"## {second}\n| **Title** |" in readme


def test_the_daily_post_groups_papers_under_the_label_as_typed(
    core: Core, arxiv_api: ArxivStandIn
) -> None:
    typed = "image editing in:cs.CV -medical"
    core.execute(TERMINAL, parse(f"add {typed}"))
    arxiv_api.add_entries("image editing", [make_entry(arxiv_id="2501.00007", title="New")])
    assert core.refresh(typed).new == 1
    (post,) = core.digest_now(TERMINAL)
    assert isinstance(post, Papers)
    assert [(g.label, [p.arxiv_id for p in g.papers]) for g in post.groups] == [
        (typed, ["2501.00007"])
    ]

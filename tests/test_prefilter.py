"""The harvest's prefilter: arXiv's stemmed, stop-word-free matching as a superset test."""

from __future__ import annotations

import csv

from lxml import etree

from bot.arxiv.answers import HarvestedPaper, split_entry_id
from bot.arxiv.harvest import parse_file
from bot.arxiv.prefilter import KeywordIndex, terms
from bot.keywords import parse_keyword
from tests.fakes.arxiv_server import DAILYARXIV_FEEDS, DAILYARXIV_PHRASES, slug
from tests.support.common import FIXTURES

A = "{http://www.w3.org/2005/Atom}"


def _feed_papers() -> dict[str, HarvestedPaper]:
    papers = {}
    for phrase in DAILYARXIV_PHRASES:
        root = etree.parse(str(DAILYARXIV_FEEDS / f"{slug(phrase)}.atom.xml")).getroot()
        for entry in root.iterfind(f"{A}entry"):
            arxiv_id, _ = split_entry_id(entry.findtext(f"{A}id") or "")
            cats = frozenset(c.get("term") for c in entry.iterfind(f"{A}category"))
            papers[arxiv_id] = HarvestedPaper(
                arxiv_id,
                entry.findtext(f"{A}title") or "",
                entry.findtext(f"{A}summary") or "",
                cats,
            )
    return papers


def test_every_seed_readme_row_passes_for_its_own_sections_keyword() -> None:
    with (FIXTURES / "dailyarxiv" / "papers.tsv").open() as rows:
        expected = [(row["id"], row["section"]) for row in csv.DictReader(rows, delimiter="\t")]
    papers = _feed_papers()
    keyword_ids = {phrase: n for n, phrase in enumerate(DAILYARXIV_PHRASES)}
    index = KeywordIndex((n, parse_keyword(phrase)) for phrase, n in keyword_ids.items())
    found = set(index.match(list(papers.values())))
    missed = [
        (pid, section) for pid, section in expected if (keyword_ids[section], pid) not in found
    ]
    assert len(expected) == 145 and missed == []


def test_the_prefilter_leaves_out_papers_without_every_term() -> None:
    index = KeywordIndex(
        [(1, parse_keyword("Virtual Try-On")), (2, parse_keyword("protein folding in:q-bio.BM"))]
    )
    papers = [
        HarvestedPaper("2601.00001", "Virtual garments", "We dress people.", frozenset()),
        HarvestedPaper("2601.00002", "Trying on", "virtual try-ons of garments", frozenset()),
        HarvestedPaper("2601.00003", "Protein folding", "Folded proteins.", frozenset({"cs.LG"})),
        HarvestedPaper("2601.00004", "Protein folding", "Folded.", frozenset({"q-bio.BM"})),
    ]
    # Stemming joins "try-ons"/"Try-On" and "folding"/"Folded"; the category rule is checked.
    assert sorted(index.match(papers)) == [(1, "2601.00002"), (2, "2601.00004")]


def test_normalisation_strips_accents_stop_words_and_stems() -> None:
    assert terms("The Schrödinger equations of a Café") == {"schroding", "equat", "cafe"}


def test_category_rules_are_checked_and_exclusions_and_authors_left_to_the_confirm() -> None:
    """The index reads the stored rules: categories (with their alias partners) narrow the
    candidates; an exclusion or an author does not, as the harvest cannot judge them."""
    keywords = {
        1: 'image editing -medical -"remote sensing" in:cs.CV,cs.GR by:"Kaiming He"',
        2: "control barrier in:cs.SY",  # harvested as eess.SY only
        3: "image editing",
    }
    index = KeywordIndex((n, parse_keyword(text)) for n, text in keywords.items())
    editing = "Image editing of medical scans"
    papers = [
        HarvestedPaper("2601.00001", editing, "remote sensing too", frozenset({"cs.CV"})),
        HarvestedPaper("2601.00002", editing, "x", frozenset({"eess.IV"})),
        HarvestedPaper("2601.00003", "Control barrier functions", "x", frozenset({"eess.SY"})),
    ]
    assert sorted(index.match(papers)) == [
        (1, "2601.00001"),
        (2, "2601.00003"),
        (3, "2601.00001"),
        (3, "2601.00002"),
    ]


def test_a_keyword_of_stop_words_or_an_author_alone_is_not_prefiltered() -> None:
    texts = ["The", 'by:"Kaiming He" in:cs.CV', "diffusion"]
    index = KeywordIndex((n, parse_keyword(text)) for n, text in enumerate(texts, 1))
    assert index.unindexed == [1, 2] and index.keyword_ids == [3]


def test_arxivraw_records_of_the_real_fixture_are_read() -> None:
    papers = parse_file((FIXTURES / "arxiv-oai" / "listrecords_arxivraw_page1.xml").read_bytes())
    assert len(papers) == 6 and papers[0].arxiv_id == "0704.0471"
    assert papers[0].title.startswith("Density dependence of the symmetry energy and the nuclear")
    assert "\n" not in papers[0].abstract and '"stiff"' in papers[0].abstract.replace(" ", "")
    assert papers[1].categories == frozenset({"math-ph", "math.MP"})

"""arXiv's category taxonomy: the ids an `in:` rule may name (SPEC 3), checked and completed.

The ids are the active categories of `CATEGORIES` in
arXiv/arxiv-base, arxiv/taxonomy/definitions.py, as of its commit 0f94fa0 of 2026-06-29 (the
file itself last changed on 2024-04-01): 155 ids, the list https://arxiv.org/category_taxonomy shows.
Withdrawn archives (cmp-lg, alg-geom, …) are left out: nothing new is announced in them.
"""

from __future__ import annotations

import difflib

# Archive -> its subject classes ("" for an archive that is a category by itself).
_TAXONOMY = {
    "astro-ph": "CO EP GA HE IM SR",
    "cond-mat": "dis-nn mes-hall mtrl-sci other quant-gas soft stat-mech str-el supr-con",
    "cs": (
        "AI AR CC CE CG CL CR CV CY DB DC DL DM DS ET FL GL GR GT HC IR IT LG LO MA MM MS NA "
        "NE NI OH OS PF PL RO SC SD SE SI SY"
    ),
    "econ": "EM GN TH",
    "eess": "AS IV SP SY",
    "gr-qc": "",
    "hep-ex": "",
    "hep-lat": "",
    "hep-ph": "",
    "hep-th": "",
    "math-ph": "",
    "math": (
        "AC AG AP AT CA CO CT CV DG DS FA GM GN GR GT HO IT KT LO MG MP NA NT OA OC PR QA RA "
        "RT SG SP ST"
    ),
    "nlin": "AO CD CG PS SI",
    "nucl-ex": "",
    "nucl-th": "",
    "physics": (
        "acc-ph ao-ph app-ph atm-clus atom-ph bio-ph chem-ph class-ph comp-ph data-an ed-ph "
        "flu-dyn gen-ph geo-ph hist-ph ins-det med-ph optics plasm-ph pop-ph soc-ph space-ph"
    ),
    "q-bio": "BM CB GN MN NC OT PE QM SC TO",
    "q-fin": "CP EC GN MF PM PR RM ST TR",
    "quant-ph": "",
    "stat": "AP CO ME ML OT TH",
}

CATEGORIES: tuple[str, ...] = tuple(
    f"{archive}.{subject}" if subject else archive
    for archive, subjects in _TAXONOMY.items()
    for subject in (subjects.split() or [""])
)
_BY_FOLDED = {c.casefold(): c for c in CATEGORIES}

# Pairs arXiv treats as one category (the same definitions file's CATEGORY_ALIASES): a paper
# listed in one may be harvested with only the other.
ALIASES = {
    "math.MP": "math-ph",
    "stat.TH": "math.ST",
    "math.IT": "cs.IT",
    "q-fin.EC": "econ.GN",
    "cs.SY": "eess.SY",
    "cs.NA": "math.NA",
}
_PARTNER = {**ALIASES, **{b: a for a, b in ALIASES.items()}}


def canonical(category: str) -> str | None:
    """arXiv's spelling of a category id typed in any case (`CS.cv` -> `cs.CV`), or None."""
    return _BY_FOLDED.get(category.strip().casefold())


def with_aliases(categories: frozenset[str]) -> frozenset[str]:
    """The categories and their alias partners."""
    return categories | {_PARTNER[c] for c in categories if c in _PARTNER}


def close_to(typed: str, limit: int = 3) -> list[str]:
    """Category ids that look like a mistyped one, for the error message."""
    folded = typed.strip().casefold()
    starts = [c for c in CATEGORIES if c.casefold().startswith(folded)] if folded else []
    similar = difflib.get_close_matches(folded, list(_BY_FOLDED), n=limit, cutoff=0.6)
    found = starts + [_BY_FOLDED[s] for s in similar if _BY_FOLDED[s] not in starts]
    return found[:limit]


def starting_with(prefix: str) -> list[str]:
    """Category ids starting with what is typed (any case), in taxonomy order."""
    folded = prefix.strip().casefold()
    return [c for c in CATEGORIES if c.casefold().startswith(folded)]

"""The catalogue: papers and their keyword matches, written from arXiv answers (`writes`),
read newest first for lists, previews and the README (`newest`) and for the daily posts
(`undelivered`). Callers say `catalog.…`; each room is a module of its own."""

from bot.storage.catalog.newest import match_count as match_count
from bot.storage.catalog.newest import newest_papers as newest_papers
from bot.storage.catalog.newest import newest_per_keyword as newest_per_keyword
from bot.storage.catalog.undelivered import undelivered_groups as undelivered_groups
from bot.storage.catalog.undelivered import undelivered_groups_many as undelivered_groups_many
from bot.storage.catalog.views import paper_view as paper_view
from bot.storage.catalog.writes import add_matches as add_matches
from bot.storage.catalog.writes import record_answer as record_answer
from bot.storage.catalog.writes import upsert_papers as upsert_papers

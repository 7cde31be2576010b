"""keyword rules: the keyword's parts in columns, longer keys and labels, the preview cooldown

Existing keywords become phrases without rules under the new normalisation (a term keeps
letters, digits, spaces and - . + '): `AR/VR` is now the phrase `AR VR`. Two old keywords
that now share a key are merged into the older one (subscriptions and matches move to it).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 09:00:00
"""

from __future__ import annotations

import unicodedata
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite does not enforce VARCHAR lengths, and widening there would rebuild the tables,
    # which with foreign keys on would cascade into their matches: PostgreSQL only.
    if op.get_bind().dialect.name != "sqlite":
        for table, column in (
            ("keywords", "key"),
            ("keywords", "phrase"),
            ("subscriptions", "label"),
        ):
            op.alter_column(
                table,
                column,
                existing_type=sa.String(100),
                type_=sa.String(400),
                existing_nullable=False,
            )
    op.add_column("keywords", sa.Column("words", sa.String(100), nullable=False, server_default=""))
    op.add_column("keywords", sa.Column("exclude", sa.Text(), nullable=False, server_default="[]"))
    op.add_column(
        "keywords", sa.Column("categories", sa.String(200), nullable=False, server_default="")
    )
    op.add_column("keywords", sa.Column("author", sa.String(100), nullable=True))
    op.add_column(
        "channels", sa.Column("last_preview_request_at", sa.DateTime(timezone=True), nullable=True)
    )
    _normalise_keywords(op.get_bind())


def downgrade() -> None:
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+): a batch rebuild would cascade.
    op.drop_column("channels", "last_preview_request_at")
    for name in ("author", "categories", "exclude", "words"):
        op.drop_column("keywords", name)
    if op.get_bind().dialect.name != "sqlite":
        for table, column in (
            ("keywords", "key"),
            ("keywords", "phrase"),
            ("subscriptions", "label"),
        ):
            op.alter_column(
                table,
                column,
                existing_type=sa.String(400),
                type_=sa.String(100),
                existing_nullable=False,
            )


# -- the data: frozen copies of the rules of bot/keywords.py as they were at this revision --


def _words(phrase: str) -> str:
    text = unicodedata.normalize("NFC", phrase)
    kept = "".join(
        ch if ch in "-.+' " or unicodedata.category(ch)[0] in "LMN" else " " for ch in text
    )
    words = " ".join(kept.split())
    return words if any(ch.isalnum() for ch in words) else ""


def _text(words: str) -> str:
    # A word starting with "-" would read back as an exclusion: such a phrase is quoted.
    return f'"{words}"' if any(w.startswith("-") for w in words.split(" ")) else words


def _normalise_keywords(conn: Any) -> None:
    rows = conn.execute(sa.text("SELECT id, phrase FROM keywords ORDER BY id")).all()
    survivors: dict[str, int] = {}
    final: list[tuple[int, str, str, str]] = []
    for keyword_id, phrase in rows:
        words = _words(phrase)
        if not words:  # nothing searchable: left as it was; its refresh says so
            continue
        text = _text(words)
        key = text.casefold()
        if key in survivors:
            _merge(conn, duplicate=keyword_id, into=survivors[key])
            continue
        survivors[key] = keyword_id
        final.append((keyword_id, key, text, words))
    # Keys change in two steps, so that no row ever holds a key another row still has.
    for keyword_id, *_ in final:
        conn.execute(
            sa.text("UPDATE keywords SET key = :key WHERE id = :id"),
            {"key": f"#0007 {keyword_id}", "id": keyword_id},  # "#" is in no key
        )
    for keyword_id, key, text, words in final:
        conn.execute(
            sa.text(
                "UPDATE keywords SET key = :key, phrase = :text, words = :words WHERE id = :id"
            ),
            {"key": key, "text": text, "words": words, "id": keyword_id},
        )


def _merge(conn: Any, *, duplicate: int, into: int) -> None:
    """The duplicate's channels follow the survivor; its matches become the survivor's."""
    ids = {"dup": duplicate, "into": into}
    conn.execute(
        sa.text(
            "UPDATE subscriptions SET keyword_id = :into WHERE keyword_id = :dup AND channel_id "
            "NOT IN (SELECT channel_id FROM subscriptions WHERE keyword_id = :into)"
        ),
        ids,
    )
    conn.execute(
        sa.text(
            "INSERT INTO matches (keyword_id, paper_id, first_seen_at) "
            "SELECT :into, paper_id, first_seen_at FROM matches WHERE keyword_id = :dup "
            "AND paper_id NOT IN (SELECT paper_id FROM matches WHERE keyword_id = :into)"
        ),
        ids,
    )
    for table in ("subscriptions", "matches", "harvest_candidates"):
        conn.execute(sa.text(f"DELETE FROM {table} WHERE keyword_id = :dup"), ids)
    conn.execute(sa.text("DELETE FROM keywords WHERE id = :dup"), ids)

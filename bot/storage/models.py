"""The store's tables (SPEC sections 2 and 9); unique constraints make duplicates impossible."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from sqlalchemy import Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.keywords import KeywordSpec


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=nullable, index=index)


class Workspace(SQLModel, table=True):
    """One tenant: a Slack team (enterprise + team), a Discord guild, or the local terminal."""

    __tablename__ = "workspaces"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    external_id: str = Field(max_length=64)
    name: str = Field(default="", max_length=200)
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Channel(SQLModel, table=True):
    """Where keywords are followed and the daily post goes."""

    __tablename__ = "channels"
    # The unique constraint's index serves lookups by workspace_id too (no index of its own).
    __table_args__ = (UniqueConstraint("workspace_id", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE")
    external_id: str = Field(max_length=64)
    active: bool = Field(default=True)
    digest_enabled: bool = Field(default=True)
    digest_time: str | None = Field(default=None, max_length=5)
    digest_timezone: str | None = Field(default=None, max_length=64)
    # The post's shape (migration 0012): weekly on that day (0 = Monday), or daily (None).
    digest_weekday: int | None = Field(default=None)
    digest_threads: bool = Field(default=False)
    digest_style: str = Field(default="full", max_length=8)  # "full" or "compact"
    digest_max: int = Field(default=100)  # papers in one post, 1-200
    paused: bool = Field(default=False)
    failed_days: int = Field(default=0)
    last_failure: str | None = Field(default=None, max_length=300)
    last_fetch_request_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_preview_request_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Keyword(SQLModel, table=True):
    """A phrase and its rules, stored once per deployment under its normalised key (phrase
    plus sorted rules), fetched once per refresh."""

    __tablename__ = "keywords"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=400, unique=True)
    # The keyword as text, rules included and sorted (`KeywordSpec.text`): what refreshes
    # pass around, and what parses back to this keyword. The parts below are the same
    # keyword in columns, for the harvest's prefilter.
    phrase: str = Field(max_length=400)
    words: str = Field(default="", max_length=100)  # the phrase alone; "" for an author alone
    exclude: str = Field(default="[]", sa_column=Column(Text, nullable=False, server_default="[]"))
    categories: str = Field(default="", max_length=200)  # arXiv ids, space-separated
    author: str | None = Field(default=None, max_length=100)
    fetch_status: str = Field(default="never", max_length=16)
    fetch_error: str | None = Field(default=None, max_length=500)
    fetched_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_success_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())

    @property
    def spec(self) -> KeywordSpec:
        return KeywordSpec(
            phrase=self.words,
            exclude=tuple(json.loads(self.exclude)),
            categories=tuple(self.categories.split()),
            author=self.author,
        )


class Subscription(SQLModel, table=True):
    """A channel follows a keyword, under the label as it was first typed there."""

    __tablename__ = "subscriptions"
    # The unique constraint's index serves lookups by channel_id too (no index of its own).
    __table_args__ = (UniqueConstraint("channel_id", "keyword_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel_id: int = Field(foreign_key="channels.id", ondelete="CASCADE")
    keyword_id: int = Field(foreign_key="keywords.id", ondelete="CASCADE", index=True)
    label: str = Field(max_length=400)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Paper(SQLModel, table=True):
    """An arXiv paper keyed by its id without version; a newer version updates the row."""

    __tablename__ = "papers"
    __table_args__ = (Index("ix_papers_updated_id", "updated", "arxiv_id"),)

    arxiv_id: str = Field(primary_key=True, max_length=40)
    version: int = Field(default=1)
    title: str = Field(sa_column=Column(Text, nullable=False))
    authors: str = Field(default="", sa_column=Column(Text, nullable=False))
    abstract: str = Field(default="", sa_column=Column(Text, nullable=False))
    comment: str = Field(default="", sa_column=Column(Text, nullable=False))
    # arXiv's primary category and every category, space-separated as arXiv lists them
    # ("" where no answer said them yet: stored before migration 0008).
    primary_category: str = Field(
        default="", max_length=40, sa_column_kwargs={"server_default": ""}
    )
    categories: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    published: datetime = Field(sa_column=_ts())
    updated: datetime = Field(sa_column=_ts())
    stored_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Match(SQLModel, table=True):
    """Keyword ↔ paper, with when it was first seen; history accumulates."""

    __tablename__ = "matches"
    __table_args__ = (Index("ix_matches_paper", "paper_id"),)

    keyword_id: int = Field(foreign_key="keywords.id", ondelete="CASCADE", primary_key=True)
    paper_id: str = Field(foreign_key="papers.arxiv_id", ondelete="CASCADE", primary_key=True)
    first_seen_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Delivery(SQLModel, table=True):
    """Paper ↔ channel once posted (or counted as seen when the keyword was added)."""

    __tablename__ = "deliveries"

    channel_id: int = Field(foreign_key="channels.id", ondelete="CASCADE", primary_key=True)
    paper_id: str = Field(foreign_key="papers.arxiv_id", ondelete="CASCADE", primary_key=True)
    delivered_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class DigestClaim(SQLModel, table=True):
    """One daily post per channel and local date, held by one process at a time (a lease it
    renews while it works); "open" until it settles as sent, empty or failed."""

    __tablename__ = "digest_claims"
    # The unique constraint's index serves lookups by channel_id too (no index of its own).
    __table_args__ = (
        UniqueConstraint("channel_id", "local_date"),
        Index("ix_digest_claims_status", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel_id: int = Field(foreign_key="channels.id", ondelete="CASCADE")
    local_date: date
    status: str = Field(default="open", max_length=16)
    owner: str = Field(default="", max_length=100)  # "" once handed back
    lease_until: datetime = Field(sa_column=_ts())
    claimed_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    detail: str | None = Field(default=None, max_length=500)
    attempts: int = Field(default=0)  # transient failures so far: the next backoff step
    retry_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class DigestPart(SQLModel, table=True):
    """One platform message of a daily post, rendered before anything is sent:
    pending -> sending (its request is leaving) -> sent (with the platform's message id)."""

    __tablename__ = "digest_parts"
    __table_args__ = (UniqueConstraint("claim_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="digest_claims.id", ondelete="CASCADE")
    number: int
    status: str = Field(default="pending", max_length=16)
    message_id: str | None = Field(default=None, max_length=64)
    papers: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON arXiv ids
    body: str | None = Field(
        default=None, sa_column=Column(Text, nullable=True)
    )  # JSON; None once sent
    sent_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class Lease(SQLModel, table=True):
    """A named lease (the daily refresh) held by one process at a time."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=100)
    owner: str = Field(max_length=100)
    lease_until: datetime = Field(sa_column=_ts())
    last_run_date: date | None = None
    last_status: str | None = Field(default=None, max_length=500)
    last_run_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class ArxivPacer(SQLModel, table=True):
    """The deployment's one turn at arXiv (SPEC 4): who holds it, when the next request may
    start, and how many requests failed in a row. Times are epoch seconds of the database's
    clock, so replicas on several machines agree on them."""

    __tablename__ = "arxiv_pacer"

    name: str = Field(primary_key=True, max_length=32)
    holder: str | None = Field(default=None, max_length=100)
    held_until: float = Field(default=0.0)
    not_before: float = Field(default=0.0)
    failures: int = Field(default=0)
    outage_round: int = Field(default=0)
    retry_at: float | None = Field(default=None)
    last_failure: str | None = Field(default=None, max_length=300)


class HarvestState(SQLModel, table=True):
    """Where the daily OAI-PMH harvest stands: its `from` day and resumption token while it
    runs (a restart resumes there), and the figures of the last one."""

    __tablename__ = "harvest_state"

    name: str = Field(primary_key=True, max_length=32)
    status: str = Field(default="running", max_length=16)  # running, complete, failed
    from_day: date
    next_from: date | None = None  # the day the last complete harvest began
    token: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    started_at: datetime = Field(sa_column=_ts())
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    pages: int = Field(default=0)
    records: int = Field(default=0)
    confirms: int = Field(default=0)
    fallback: bool = Field(default=False)
    error: str | None = Field(default=None, max_length=500)


class HarvestCandidate(SQLModel, table=True):
    """A harvested paper the prefilter found for a keyword, kept until its confirm request
    answers (a restart confirms what is left)."""

    __tablename__ = "harvest_candidates"

    keyword_id: int = Field(foreign_key="keywords.id", ondelete="CASCADE", primary_key=True)
    paper_id: str = Field(primary_key=True, max_length=40)


class CommandClaim(SQLModel, table=True):
    """A command received, remembered for a while so that it runs once (SPEC section 8): the same
    delivery again (a platform's retry, a replay), or the same change typed twice in a minute.
    Replicas share it through the database."""

    __tablename__ = "command_claims"

    key: str = Field(primary_key=True, max_length=64)  # sha-256: a delivery, or who typed where
    command: str = Field(default="", max_length=64)  # sha-256 of what they typed last
    expires_at: datetime = Field(sa_column=_ts(index=True))


class SavedPaper(SQLModel, table=True):
    """Paper ↔ person (SPEC 10): a platform user id within a workspace saved it. Personal:
    read only by that person."""

    __tablename__ = "saved_papers"
    __table_args__ = (Index("ix_saved_papers_person", "workspace_id", "user_id", "saved_at"),)

    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE", primary_key=True)
    user_id: str = Field(primary_key=True, max_length=64)
    paper_id: str = Field(foreign_key="papers.arxiv_id", ondelete="CASCADE", primary_key=True)
    saved_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class FeedToken(SQLModel, table=True):
    """A private Atom feed URL of a channel (SPEC 10), kept as the SHA-256 of its token only:
    the URL itself is shown once, to the manager who asked."""

    __tablename__ = "feed_tokens"

    token_hash: str = Field(primary_key=True, max_length=64)
    channel_id: int = Field(foreign_key="channels.id", ondelete="CASCADE", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())

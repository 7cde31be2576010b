"""`feed`, `feed reset` (SPEC 10): private Atom feed URLs of a channel's papers, and the feed
document the listener serves for one. A token is shown once, to the manager who asked, and
kept only as its SHA-256: a leaked database names no working URL."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from bot.atom import render_atom
from bot.commands.grammar import BadInput, Feed
from bot.replies import PaperView, Reply, Text
from bot.storage import feeds
from bot.storage.db import read_session, write_session
from bot.text import squash

if TYPE_CHECKING:
    from bot.commands.context import Context, Place

TOKEN_BYTES = 24  # 192 random bits (SPEC: at least 128)
FEED_PAPERS = 50
MAX_URLS = 20  # live URLs a channel may have; `feed reset` starts again from one


@dataclass(frozen=True)
class FeedDocument:
    """What the listener answers for a known token. The ETag is a digest of what the document
    is made of, so a reader whose copy is current gets its 304 without the document being
    written."""

    url: str
    title: str
    papers: tuple[PaperView, ...]
    last_modified: datetime  # whole seconds, UTC (HTTP dates have no fractions)

    @property
    def etag(self) -> str:
        """Without quotes; the same papers, title and date give the same tag in any process."""
        made_of = repr((self.url, self.title, self.papers, self.last_modified))
        return hashlib.sha256(made_of.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def body(self) -> bytes:
        return render_atom(
            url=self.url, title=self.title, papers=self.papers, updated=self.last_modified
        )


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def feed_url(base: str, token: str) -> str:
    return f"{base}/feeds/{token}.atom"


def run(ctx: Context, place: Place, command: Feed) -> list[Reply]:
    """A new URL for the channel's feed; with `reset`, the channel's earlier URLs stop first."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with write_session(ctx.engine) as session:
        channel = ctx.channel(session, place)
        assert channel.id is not None
        if command.reset:
            feeds.drop_tokens(session, channel_id=channel.id)
        elif feeds.token_count(session, channel_id=channel.id) >= MAX_URLS:
            raise BadInput(
                f"This channel has {MAX_URLS} feed URLs already; `feed reset` replaces them all "
                "with one new URL.",
                "feed",
            )
        feeds.add_token(
            session, channel_id=channel.id, token_hash=token_hash(token), now=ctx.clock()
        )
    url = feed_url(ctx.settings.listener_url, token)
    if command.reset:
        note = "Every earlier feed URL of this channel stopped working. The new one, only for you:"
    else:
        note = "A private Atom feed of this channel's newest papers, only for you:"
    after = "Anyone with this URL can read the feed; `feed reset` stops every URL of this channel."
    return [Text(f"{note}\n{url}\n{after}", ephemeral=True)]


def document(ctx: Context, token: str) -> FeedDocument | None:
    """The feed of the channel whose token this is; None for an unknown (or reset) token, found
    by the token's hash exactly as a known one is."""
    with read_session(ctx.engine) as session:
        channel = feeds.channel_of(session, token_hash(token))
        if channel is None:
            return None
        rows = feeds.feed_papers(session, channel, limit=FEED_PAPERS)
        labels = feeds.channel_labels(session, channel)
        changed = feeds.channel_changed_at(session, channel)
    papers = tuple(paper for paper, _seen in rows)
    # The feed changes when a paper is updated, newly matched, or a keyword is added here.
    moments = [changed, *(p.updated for p in papers), *(seen for _p, seen in rows)]
    return FeedDocument(
        url=feed_url(ctx.settings.listener_url, token),
        title="Daily Papers: " + (squash(", ".join(labels))[:200] or "no keywords yet"),
        papers=papers,
        last_modified=max(moments).replace(microsecond=0),
    )

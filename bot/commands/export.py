"""`readme [all]`: the Daily Papers README of the channel's or the workspace's keywords."""

from __future__ import annotations

from sqlmodel import Session

from bot.commands.context import Context, Place
from bot.commands.readme import PAPERS_PER_SECTION, render_readme
from bot.replies import File
from bot.storage import catalog, store
from bot.storage.db import read_session


def readme_file(ctx: Context, place: Place, whole_workspace: bool) -> File:
    content = readme(ctx, place, whole_workspace=whole_workspace)
    scope = "this workspace" if whole_workspace else "this channel"
    return File(filename="README.md", content=content, comment=f"Daily Papers README of {scope}.")


def readme(ctx: Context, place: Place, *, whole_workspace: bool = False) -> str:
    """The README export of the channel's (or workspace's) keywords, in the order added."""
    with read_session(ctx.engine) as session:
        sections = _sections(session, place, whole_workspace)
        ids = [keyword_id for _, keyword_id in sections]
        papers = catalog.newest_per_keyword(
            session, ids, limit=PAPERS_PER_SECTION, with_authors=False
        )
    return render_readme(((label, papers[k]) for label, k in sections), day=ctx.today())


def _sections(session: Session, place: Place, whole_workspace: bool) -> list[tuple[str, int]]:
    """(label, keyword id) of each section, first added first."""
    workspace = store.find_workspace(session, platform=place.platform, external_id=place.workspace)
    if workspace is None:
        return []
    if whole_workspace:
        return store.workspace_subscriptions(session, workspace)
    channel = store.find_channel(session, workspace=workspace, external_id=place.channel)
    if channel is None:
        return []
    return [(s.label, k.id) for s, k in store.channel_subscriptions(session, channel) if k.id]

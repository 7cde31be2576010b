"""`save`, `unsave`, `saved [bibtex]` (SPEC 10): a person's saved papers. A save belongs to the
platform user who made it, within the workspace of the verified request, and every answer goes
to that person only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from bot.bibtex import render_bibtex
from bot.commands.grammar import BadInput, Save, Saved, Unsave
from bot.replies import File, Reply, Text
from bot.storage import saves, store
from bot.storage.db import read_session, write_session
from bot.storage.models import Paper, Workspace
from bot.text import quoted, squash

if TYPE_CHECKING:
    from bot.commands.context import Context, Place

SHOWN = 50  # papers listed by `saved`; `saved bibtex` has them all
NOTHING_SAVED = (
    "You have saved no papers yet. Press Save under a paper of a daily post or a `list` "
    "answer, or use `save <arxiv id>`."
)


def run(ctx: Context, place: Place, command: Save | Unsave | Saved) -> list[Reply]:
    if not place.user_id:  # every front end names the person; refuse rather than share
        raise BadInput("Saved papers are personal, and this request does not say who you are.")
    match command:
        case Save(arxiv_id=arxiv_id):
            return [_save(ctx, place, arxiv_id)]
        case Unsave(arxiv_id=arxiv_id):
            return [_unsave(ctx, place, arxiv_id)]
        case Saved(bibtex=True):
            return [_bibtex(ctx, place)]
        case Saved():
            return [_list(ctx, place)]
    raise AssertionError(f"unhandled command {command!r}")


def _save(ctx: Context, place: Place, arxiv_id: str) -> Reply:
    with write_session(ctx.engine) as session:
        paper = session.get(Paper, arxiv_id)
        if paper is None:
            raise BadInput(
                f"arXiv:{arxiv_id} is not among the papers stored here; save papers shown by "
                "a daily post or `list`.",
                "save",
            )
        workspace = store.ensure_workspace(
            session,
            platform=place.platform,
            external_id=place.workspace,
            name=place.workspace_name,
        )
        new = saves.save(
            session,
            workspace_id=_id(workspace),
            user_id=place.user_id,
            paper_id=arxiv_id,
            now=ctx.clock(),
        )
        title = quoted(squash(paper.title))
    if not new:
        return Text(f"{title} is already among your saved papers.", ephemeral=True)
    return Text(
        f"Saved {title} for you. Only you see your saved papers: `saved` lists them, "
        "`saved bibtex` exports them.",
        ephemeral=True,
    )


def _unsave(ctx: Context, place: Place, arxiv_id: str) -> Reply:
    with write_session(ctx.engine) as session:
        person = _person(session, place)
        removed = bool(person) and saves.unsave(session, **person, paper_id=arxiv_id)
    if not removed:
        raise BadInput(
            f"arXiv:{arxiv_id} is not among your saved papers; `saved` lists them.", "unsave"
        )
    return Text(f"Removed arXiv:{arxiv_id} from your saved papers.", ephemeral=True)


def _list(ctx: Context, place: Place) -> Reply:
    with read_session(ctx.engine) as session:
        person = _person(session, place)
        rows = saves.saved_papers(session, **person, limit=SHOWN) if person else []
        total = saves.saved_count(session, **person) if rows else 0
    if not rows:
        return Text(NOTHING_SAVED, ephemeral=True)
    lines = [f"Your saved papers ({total}), newest saved first:"]
    lines += [
        f"{number}. {quoted(squash(paper.title))} · {paper.day.isoformat()} · {paper.abs_url}"
        for number, (paper, _saved_at) in enumerate(rows, 1)
    ]
    if total > len(rows):
        lines.append(f"… and {total - len(rows)} more: `saved bibtex` has them all.")
    return Text("\n".join(lines), ephemeral=True)


def _bibtex(ctx: Context, place: Place) -> Reply:
    with read_session(ctx.engine) as session:
        person = _person(session, place)
        rows = saves.saved_papers(session, **person) if person else []
    if not rows:
        return Text(NOTHING_SAVED, ephemeral=True)
    plural = "s" if len(rows) != 1 else ""
    return File(
        filename="saved.bib",
        content=render_bibtex(paper for paper, _saved_at in rows),
        comment=f"Your {len(rows)} saved paper{plural} as BibTeX.",
        private=True,
    )


def _person(session: Session, place: Place) -> dict[str, Any]:
    """The store's names for the asker (workspace id, user id); {} before their workspace is."""
    workspace = _workspace(session, place)
    return {} if workspace is None else {"workspace_id": _id(workspace), "user_id": place.user_id}


def _workspace(session: Session, place: Place) -> Workspace | None:
    return store.find_workspace(session, platform=place.platform, external_id=place.workspace)


def _id(workspace: Workspace) -> int:
    assert workspace.id is not None
    return workspace.id

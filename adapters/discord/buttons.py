"""The Save button under every paper of Discord posts and lists, and the Abstract button of
compact posts: persistent dynamic items whose custom_id carries the arXiv id, so a press is
understood after any restart (nothing is kept in memory per message). Pure discord.ui: the
presses are answered by saves.py."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import discord

SAVE_PREFIX = "papers:save:"
ABSTRACT_PREFIX = "papers:abstract:"


def _template(prefix: str) -> str:
    return re.escape(prefix) + r"(?P<arxiv_id>[A-Za-z0-9./-]{1,40})"


class PaperButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"(?!)"):
    """A button naming one paper in its custom_id ("<prefix><arXiv id>"); the subclasses, each
    with its own template, say what a press does. This base matches no custom_id."""

    LABEL: ClassVar[str]
    PREFIX: ClassVar[str]

    def __init__(self, arxiv_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label=f"{self.LABEL} {arxiv_id}",
                style=discord.ButtonStyle.secondary,
                custom_id=f"{self.PREFIX}{arxiv_id}",
            )
        )
        self.arxiv_id = arxiv_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(match["arxiv_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        # The client was built with the front end as its handlers (client.py): no global state.
        handlers = getattr(interaction.client, "handlers", None)
        if handlers is not None:
            await self.pressed(handlers, interaction)

    async def pressed(self, handlers: Any, interaction: discord.Interaction) -> None:
        raise NotImplementedError


class SaveButton(PaperButton, template=_template(SAVE_PREFIX)):
    """ "Save <arXiv id>": the paper, saved for who pressed."""

    LABEL, PREFIX = "Save", SAVE_PREFIX

    async def pressed(self, handlers: Any, interaction: discord.Interaction) -> None:
        await handlers.save_pressed(interaction, self.arxiv_id)


class AbstractButton(PaperButton, template=_template(ABSTRACT_PREFIX)):
    """ "Abstract <arXiv id>" under a compact post: the abstract, only for who pressed."""

    LABEL, PREFIX = "Abstract", ABSTRACT_PREFIX

    async def pressed(self, handlers: Any, interaction: discord.Interaction) -> None:
        await handlers.abstract_pressed(interaction, self.arxiv_id)


def save_view(arxiv_ids: Sequence[str], abstracts: Sequence[str] = ()) -> discord.ui.View:
    """A Save button per paper, laid out 5 to a row (10 papers a message: 2 of the 5 rows),
    then an Abstract button per paper of a compact post (2 more rows). Built where it is
    sent: a discord.py view needs the running event loop."""
    view = discord.ui.View(timeout=None)  # never times out: the buttons live in the custom_ids
    for arxiv_id in arxiv_ids:
        view.add_item(SaveButton(arxiv_id))
    for arxiv_id in abstracts:
        view.add_item(AbstractButton(arxiv_id))
    return view

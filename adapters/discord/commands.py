"""The /papers command group: typed Discord options to the core's `Command`s, with its validation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol
from zoneinfo import available_timezones

import discord
from discord import app_commands

from adapters.discord.format import discord_wording
from bot.commands.digest_grammar import WEEKDAYS
from bot.commands.grammar import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    USAGES,
    Add,
    Command,
    Fetch,
    Help,
    Keywords,
    List,
    Preview,
    Remove,
    build,
    make_digest,
    make_readme,
    validate_keyword,
    validate_limit,
)
from bot.keywords import complete_rules

Choices = list[app_commands.Choice[str]]
_SUMMARY = {u.name: u for u in USAGES}
_ZONES = sorted(available_timezones())
KEYWORD_HELP = 'A phrase, then rules if you like: Virtual Try-On -medical in:cs.CV by:"Kaiming He"'


class Runner(Protocol):
    """What the handlers need from the front end."""

    async def run(self, interaction: discord.Interaction, make: Callable[[], Command]) -> None:
        """Build the command (the core's validation may raise `BadInput`), check, execute, answer."""
        ...

    async def keyword_choices(self, interaction: discord.Interaction, current: str) -> Choices:
        """This channel's keywords matching what is typed so far."""
        ...


def describe(name: str) -> str:
    """A subcommand's description: the summary the text help uses, in Discord's words."""
    summary = summary_of(name)
    return (summary[:1].upper() + summary[1:])[:100]


def summary_of(name: str) -> str:
    if name == "help":
        return "usage of every /papers command"
    return discord_wording(_SUMMARY[name].summary)


# Pure builders: typed options in, a validated `Command` out (or `BadInput`).


def add_command(keyword: str) -> Add:
    return Add(validate_keyword(keyword, "add"))


def remove_command(keyword: str) -> Remove:
    return Remove(validate_keyword(keyword, "remove"))


def preview_command(keyword: str) -> Preview:
    return Preview(validate_keyword(keyword, "preview"))


def rule_choices(current: str) -> Choices:
    """The typed keyword with its `in:` list completed by each category that fits (Discord
    takes at most 25 choices of at most 100 characters)."""
    texts = [text for text in complete_rules(current) if len(text) <= 100]
    return [app_commands.Choice(name=text, value=text) for text in texts[:25]]


def list_command(keyword: str | None, limit: int | None) -> List:
    return List(
        keyword=None if keyword is None else validate_keyword(keyword, "list"),
        limit=DEFAULT_LIMIT if limit is None else validate_limit(limit),
    )


# What `/papers digest time` offers as it is typed: the whole digest grammar in one option.
DIGEST_SUGGESTIONS = (
    "09:00",
    "off",
    "now",
    *(f"weekly {day} 09:00" for day in WEEKDAYS),
    "threads on",
    "threads off",
    "style compact",
    "style full",
    "max 50",
    "max 100",
    "max 200",
)


def digest_choices(current: str) -> Choices:
    """The digest settings that start with what is typed, then those containing it (what is
    typed itself first when it is none of them: the option takes any text)."""
    typed = " ".join(current.casefold().split())
    starts = [s for s in DIGEST_SUGGESTIONS if s.startswith(typed)]
    within = [s for s in DIGEST_SUGGESTIONS if typed in s and s not in starts]
    own = [current.strip()[:100]] if typed and typed not in DIGEST_SUGGESTIONS else []
    return [app_commands.Choice(name=s, value=s) for s in (own + starts + within)[:25]]


def zone_choices(current: str) -> Choices:
    """IANA zones containing what is typed (prefix matches first), at most 25."""
    typed = current.strip().casefold().replace(" ", "_")
    starts = [z for z in _ZONES if z.casefold().startswith(typed)]
    within = [z for z in _ZONES if typed in z.casefold() and z not in starts]
    return [app_commands.Choice(name=z, value=z) for z in (starts + within)[:25]]


def papers_group(runner: Runner) -> app_commands.Group:
    """The `/papers` group; each handler only turns its options into a `Command`."""
    # Guild-only: keywords are followed per server channel, so Discord does not offer /papers in
    # direct messages at all (the handler still refuses a DM, should one arrive).
    group = app_commands.Group(
        name="papers",
        description="Follow arXiv keywords in this channel",
        guild_only=True,
        allowed_contexts=app_commands.AppCommandContext(
            guild=True, dm_channel=False, private_channel=False
        ),
    )

    async def keywords_here(interaction: discord.Interaction, current: str) -> Choices:
        return await runner.keyword_choices(interaction, current)

    async def zones(_interaction: discord.Interaction, current: str) -> Choices:
        return zone_choices(current)

    async def settings(_interaction: discord.Interaction, current: str) -> Choices:
        return digest_choices(current)

    async def rules(_interaction: discord.Interaction, current: str) -> Choices:
        return rule_choices(current)

    def run(interaction: discord.Interaction, make: Callable[[], Command]) -> Awaitable[None]:
        return runner.run(interaction, make)

    @group.command(name="add", description=describe("add"))
    @app_commands.describe(keyword=KEYWORD_HELP)
    @app_commands.autocomplete(keyword=rules)
    async def add(interaction: discord.Interaction, keyword: str) -> None:
        await run(interaction, lambda: add_command(keyword))

    @group.command(name="remove", description=describe("remove"))
    @app_commands.describe(keyword="One of this channel's keywords")
    @app_commands.autocomplete(keyword=keywords_here)
    async def remove(interaction: discord.Interaction, keyword: str) -> None:
        await run(interaction, lambda: remove_command(keyword))

    @group.command(name="keywords", description=describe("keywords"))
    async def keywords(interaction: discord.Interaction) -> None:
        await run(interaction, Keywords)

    @group.command(name="list", description=describe("list"))
    @app_commands.describe(
        keyword="One of this channel's keywords (all of them when left out)",
        limit=f"How many papers, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})",
    )
    @app_commands.autocomplete(keyword=keywords_here)
    async def list_(
        interaction: discord.Interaction,
        keyword: str | None = None,
        limit: app_commands.Range[int, 1, MAX_LIMIT] | None = None,
    ) -> None:
        await run(interaction, lambda: list_command(keyword, limit))

    @group.command(name="digest", description=describe("digest"))
    @app_commands.describe(
        time="HH:MM daily, weekly mon 09:00, off, now, threads on|off, style full|compact, max N",
        timezone="IANA timezone such as Europe/Berlin (default: the bot's TIMEZONE)",
    )
    @app_commands.autocomplete(time=settings, timezone=zones)
    async def digest(
        interaction: discord.Interaction, time: str, timezone: str | None = None
    ) -> None:
        await run(interaction, lambda: make_digest(time, timezone))

    @group.command(name="readme", description=describe("readme"))
    @app_commands.describe(scope="channel: this channel's keywords; all: the whole server's")
    @app_commands.choices(
        scope=[
            app_commands.Choice(name="channel", value="channel"),
            app_commands.Choice(name="all", value="all"),
        ]
    )
    async def readme(interaction: discord.Interaction, scope: str | None = None) -> None:
        await run(interaction, lambda: make_readme(scope))

    @group.command(name="fetch", description=describe("fetch"))
    async def fetch(interaction: discord.Interaction) -> None:
        await run(interaction, Fetch)

    @group.command(name="preview", description=describe("preview"))
    @app_commands.describe(keyword=KEYWORD_HELP)
    @app_commands.autocomplete(keyword=rules)
    async def preview(interaction: discord.Interaction, keyword: str) -> None:
        await run(interaction, lambda: preview_command(keyword))

    @group.command(name="save", description=describe("save"))
    @app_commands.describe(paper="The paper's arXiv id, e.g. 2303.08597, or its arXiv link")
    async def save(interaction: discord.Interaction, paper: str) -> None:
        await run(interaction, lambda: build("save", [paper]))

    @group.command(name="saved", description=describe("saved"))
    @app_commands.describe(format="list: shown here, only to you; bibtex: a saved.bib file")
    @app_commands.choices(
        format=[
            app_commands.Choice(name="list", value="list"),
            app_commands.Choice(name="bibtex", value="bibtex"),
        ]
    )
    async def saved(interaction: discord.Interaction, format: str | None = None) -> None:
        await run(interaction, lambda: build("saved", ["bibtex"] if format == "bibtex" else []))

    @group.command(name="unsave", description=describe("unsave"))
    @app_commands.describe(paper="The arXiv id of one of your saved papers")
    async def unsave(interaction: discord.Interaction, paper: str) -> None:
        await run(interaction, lambda: build("unsave", [paper]))

    @group.command(name="feed", description=describe("feed"))
    @app_commands.describe(reset="True: every earlier feed URL of this channel stops working")
    async def feed(interaction: discord.Interaction, reset: bool = False) -> None:
        await run(interaction, lambda: build("feed", ["reset"] if reset else []))

    @group.command(name="help", description=describe("help"))
    async def help_(interaction: discord.Interaction) -> None:
        await run(interaction, Help)

    return group


def slash_syntax(group: app_commands.Group) -> dict[str, str]:
    """Each subcommand as typed on Discord (`/papers list [keyword] [limit]`), from the group."""
    syntax = {}
    for command in group.commands:
        if isinstance(command, app_commands.Command):
            params = [p.name if p.required else f"[{p.name}]" for p in command.parameters]
            syntax[command.name] = " ".join([f"/{group.name}", command.name, *params])
    return syntax

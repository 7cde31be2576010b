"""The `papers` command: the terminal front end, plus `serve`, `fetch` and `db` for operators."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from adapters.terminal_format import format_reply
from bot.arxiv.gateway import ArxivGateway
from bot.commands.core import TERMINAL, Core, RefreshOutcome, describe
from bot.commands.grammar import BadInput, Saved, build, help_text
from bot.config import ConfigError, Settings, load_settings
from bot.logs import configure_logging
from bot.replies import File, Text
from bot.storage.db import backup, ensure_schema, make_engine, upgrade

OK, FAILURE, BAD_INPUT = 0, 1, 2
logger = logging.getLogger("papers")

USAGE = f"""usage: papers <command> [arguments]

Chat commands, run in this machine's terminal channel:
{help_text("  papers ")}

Terminal and operator commands:
  papers readme [all] [-o FILE]   write the README to FILE instead of stdout
  papers saved bibtex [-o FILE]   write your saved papers' saved.bib to FILE instead of stdout
  papers fetch                    refresh every followed keyword (progress bar)
  papers serve                    run Slack, Discord, the scheduler and /healthz
  papers db upgrade               apply database migrations
  papers db backup FILE           copy a SQLite database safely (PostgreSQL: use pg_dump)
"""


def make_core(settings: Settings) -> Core:
    engine = make_engine(settings.database_url)
    ensure_schema(engine)
    return Core(settings, engine, ArxivGateway(settings, engine))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return OK
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"papers: configuration error: {exc}", file=sys.stderr)
        return BAD_INPUT
    configure_logging(settings)
    try:
        return _run(settings, args)
    except BadInput as exc:
        print(f"papers: {exc}", file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt:
        return FAILURE
    except Exception as exc:  # the last line of defence: a message, not a traceback
        logger.exception("papers %s failed", args[0])
        print(f"papers: {args[0]} failed: {exc}", file=sys.stderr)
        return FAILURE


def _run(settings: Settings, args: list[str]) -> int:
    name, rest = args[0].casefold(), args[1:]
    match name:
        case "serve":
            from adapters.serve import serve

            return serve(settings)
        case "db":
            return _db(settings, rest)
        case "fetch" if not rest:
            return _fetch_all(make_core(settings))
        case "readme":
            return _readme(make_core(settings), rest)
        case "saved" if "-o" in rest or "--output" in rest:
            return _saved_bibtex(make_core(settings), rest)
    command = build(name, rest)
    return _print(make_core(settings).execute(TERMINAL, command))


def _print(replies: Sequence[object]) -> int:
    code = OK
    for reply in replies:
        text = format_reply(reply)  # type: ignore[arg-type]
        if isinstance(reply, Text) and reply.error:
            print(text, file=sys.stderr)
            code = BAD_INPUT
        else:
            print(text, end="" if text.endswith("\n") else "\n")
    return code


def _readme(core: Core, rest: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="papers readme", exit_on_error=False, add_help=False)
    parser.add_argument("scope", nargs="?")
    parser.add_argument("-o", "--output")
    try:
        options, extra = parser.parse_known_args(rest)
    except argparse.ArgumentError as exc:
        raise BadInput(str(exc), "readme") from None
    if extra:
        raise BadInput(f"Unexpected {' '.join(extra)!r}.", "readme")
    command = build("readme", [options.scope] if options.scope else [])
    content = core.readme(TERMINAL, whole_workspace=command.whole_workspace)  # type: ignore[union-attr]
    if options.output:
        Path(options.output).write_text(content, encoding="utf-8", newline="")
        print(f"wrote {options.output}", file=sys.stderr)
    else:
        sys.stdout.write(content)
    return OK


def _saved_bibtex(core: Core, rest: list[str]) -> int:
    """`papers saved bibtex -o FILE`: saved.bib written to FILE."""
    parser = argparse.ArgumentParser(prog="papers saved", exit_on_error=False, add_help=False)
    parser.add_argument("words", nargs="*")
    parser.add_argument("-o", "--output", required=True)
    try:
        options = parser.parse_args(rest)
    except argparse.ArgumentError as exc:
        raise BadInput(str(exc), "saved") from None
    command = build("saved", options.words)
    if command != Saved(bibtex=True):
        raise BadInput("`-o FILE` goes with `saved bibtex`.", "saved")
    (reply,) = core.execute(TERMINAL, command)
    if not isinstance(reply, File):
        return _print([reply])  # nothing saved yet: said, and no file written
    Path(options.output).write_text(reply.content, encoding="utf-8", newline="")
    print(f"wrote {options.output}", file=sys.stderr)
    return OK


def _fetch_all(core: Core) -> int:
    from tqdm import tqdm

    labels = core.followed_keywords()
    if not labels:
        print("No keywords are followed yet. Start with `papers add <keyword>`.")
        return OK
    # The same refresh as the scheduler's: harvest, prefilter, confirm.
    with tqdm(total=len(labels), unit="keyword", file=sys.stderr) as bar:

        def progress(outcome: RefreshOutcome) -> None:
            if not outcome.ok or outcome.found:
                bar.write(describe(outcome), file=sys.stderr)
            bar.update()

        outcomes = core.refresh_all(labels, progress=progress)
    return FAILURE if any(not o.ok for o in outcomes) else OK


def _db(settings: Settings, rest: list[str]) -> int:
    engine = make_engine(settings.database_url)
    match rest:
        case ["upgrade"]:
            upgrade(engine)
            print("database is up to date")
            return OK
        case ["backup", target]:
            ensure_schema(engine)
            backup(engine, Path(target))
            print(f"backed up to {target}")
            return OK
    raise BadInput("Use `papers db upgrade` or `papers db backup FILE`.")


if __name__ == "__main__":
    raise SystemExit(main())

"""The `papers` command: the terminal front end, plus `serve`, `fetch` and `db` for operators.

Start-up is part of every command's cost, so this module imports next to nothing at the top:
`papers help` loads no settings and no database layer, and `list` or `readme` never load the
arXiv client, Alembic or a chat SDK (bench/bench_startup.py measures it). Output: answers on
stdout, errors on stderr; exit 0 on success, 2 on bad input, 1 on failure.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, which would cost `papers help` an import
if TYPE_CHECKING:
    from bot.commands.core import Core
    from bot.config import Settings

OK, FAILURE, BAD_INPUT = 0, 1, 2

TERMINAL_USAGE = """\
  papers digest now               the papers not seen here yet (the terminal has no daily
                                  post: `papers serve` posts to Slack and Discord channels)
  papers readme [all] [-o FILE]   the Daily Papers README on stdout, or written to FILE
  papers saved bibtex [-o FILE]   your saved papers as saved.bib on stdout, or written to FILE
  papers fetch                    refresh every followed keyword (results on stdout)

Operator commands:
  papers serve                    run Slack, Discord, the scheduler and /healthz
                                  (settings from the environment and .env, no arguments)
  papers db upgrade               apply database migrations
  papers db backup FILE           copy a SQLite database safely (PostgreSQL: pg_dump)
  papers --version                the installed version
"""
# The chat commands whose terminal form differs are described in TERMINAL_USAGE instead.
_TERMINAL_FORMS = ("digest", "readme", "fetch")


class UsageError(Exception):
    """Bad arguments to a terminal-only command: the problem and that command's usage."""

    def __init__(self, problem: str, usage: str) -> None:
        super().__init__(f"{problem}\nUsage: {usage}")


def usage() -> str:
    from bot.commands.usage import USAGES

    chat = [
        f"  papers {u.syntax:<23}  {u.summary}" for u in USAGES if u.name not in _TERMINAL_FORMS
    ]
    return (
        "usage: papers <command> [arguments]\n\n"
        "Commands, run in this machine's terminal channel:\n"
        + "\n".join(chat)
        + "\n"
        + TERMINAL_USAGE
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(usage(), end="", file=sys.stderr)
        return BAD_INPUT
    name = args[0].casefold()
    if name in ("-h", "--help", "help"):
        print(usage(), end="")
        return OK
    if name in ("-v", "--version"):
        from importlib.metadata import version

        print(f"papers {version('daily-papers-bot')}")
        return OK
    try:
        return _command(name, args[1:])
    except KeyboardInterrupt:
        return FAILURE


def _command(name: str, rest: list[str]) -> int:
    from bot.commands.grammar import BadInput, parse
    from bot.config import ConfigError

    writes_file = name == "saved" and any(w.startswith(("-o", "--output")) for w in rest)
    operator = name in ("serve", "db", "readme") or (name == "fetch" and not rest) or writes_file
    try:
        # A chat command is checked before anything opens the database.
        command = None if operator else parse(" ".join([name, *rest]))
        if name == "serve" and rest:
            raise UsageError(
                f"`serve` takes no arguments, got {' '.join(rest)!r}; its settings come from "
                "the environment and .env, e.g. `PORT=4000 papers serve`.",
                "papers serve",
            )
        settings = _settings(name)
    except ConfigError as exc:
        print(f"papers: configuration error: {exc}", file=sys.stderr)
        return BAD_INPUT
    except (BadInput, UsageError) as exc:
        print(f"papers: {exc}", file=sys.stderr)
        return BAD_INPUT
    try:
        if command is None:
            return _operator(settings, name, rest)
        from bot.commands.core import TERMINAL

        return _print(_core(settings).execute(TERMINAL, command))
    except (BadInput, UsageError) as exc:
        print(f"papers: {exc}", file=sys.stderr)
        return BAD_INPUT
    except Exception as exc:
        from adapters.cli_failures import explain

        print(f"papers: {explain(exc, settings, name)}", file=sys.stderr)
        return FAILURE


def _settings(name: str) -> Settings:
    from adapters.composition import build_settings
    from bot.logs import configure_logging

    settings = build_settings()
    configure_logging(settings, default_level="INFO" if name == "serve" else "WARNING")
    return settings


def _core(settings: Settings) -> Core:
    from adapters.composition import build_core

    return build_core(settings, fetch_on_demand=True)


def _operator(settings: Settings, name: str, rest: list[str]) -> int:
    match name:
        case "serve":
            from adapters.serve import serve

            return serve(settings)
        case "db":
            return _db(settings, rest)
        case "readme":
            return _readme(settings, rest)
        case "saved":
            return _saved_bibtex(settings, rest)
    return _fetch_all(_core(settings))


def _print(replies: Sequence[object]) -> int:
    from adapters.terminal_format import format_reply
    from bot.replies import Text

    code = OK
    for reply in replies:
        text = format_reply(reply)  # type: ignore[arg-type]
        if isinstance(reply, Text) and (reply.error or reply.failed):
            print(text, file=sys.stderr)
            code = BAD_INPUT if reply.error else FAILURE
        else:
            print(text, end="" if text.endswith("\n") else "\n")
    return code


def _readme(settings: Settings, rest: list[str]) -> int:
    from bot.commands.core import TERMINAL
    from bot.commands.grammar import make_readme

    scope, output = _words_and_output(rest, "papers readme [all] [-o FILE]")
    command = make_readme(scope[0] if scope else None)
    content = _core(settings).readme(TERMINAL, whole_workspace=command.whole_workspace)
    return _write(content, output)


def _saved_bibtex(settings: Settings, rest: list[str]) -> int:
    """`papers saved bibtex -o FILE`: the terminal user's saved.bib written to FILE."""
    from bot.commands.core import TERMINAL
    from bot.commands.grammar import Saved, build
    from bot.replies import File

    words, output = _words_and_output(rest, "papers saved bibtex [-o FILE]")
    if build("saved", words) != Saved(bibtex=True):
        raise UsageError("`-o FILE` goes with `saved bibtex`.", "papers saved bibtex [-o FILE]")
    (reply,) = _core(settings).execute(TERMINAL, Saved(bibtex=True))
    if not isinstance(reply, File):
        return _print([reply])  # nothing saved yet: said, and no file written
    return _write(reply.content, output)


def _write(content: str, output: str | None) -> int:
    """`content` on stdout, or into the file `output`."""
    if output is None:
        sys.stdout.write(content)
        return OK
    with open(output, "w", encoding="utf-8", newline="") as file:
        file.write(content)
    print(f"wrote {output}", file=sys.stderr)
    return OK


def _words_and_output(rest: list[str], usage: str) -> tuple[list[str], str | None]:
    """A word and `-o FILE`, in any order -> ([word], output file)."""
    words, scope, output = iter(rest), [], None
    for word in words:
        if word in ("-o", "--output"):
            output = next(words, None)
            if not output:
                raise UsageError(f"`{word}` needs a file name.", usage)
        elif word.startswith("--output="):
            output = word.split("=", 1)[1]
        elif word.startswith("-"):
            raise UsageError(f"Unknown option {word!r}.", usage)
        else:
            scope.append(word)
    if len(scope) > 1:
        raise UsageError(f"Unexpected {' '.join(scope[1:])!r}.", usage)
    return scope, output


def _fetch_all(core: Core) -> int:
    """The same refresh as the scheduler's (harvest, prefilter, confirm), each keyword's
    result on stdout."""
    from bot.commands.core import describe

    labels = core.followed_keywords()
    if not labels:
        print("No keywords are followed yet. Start with `papers add <keyword>`.")
        return OK
    with _progress(len(labels)) as report:
        outcomes = core.refresh_all(labels, progress=lambda outcome: report(describe(outcome)))
    return FAILURE if any(not o.ok for o in outcomes) else OK


@contextmanager
def _progress(total: int) -> Iterator[Callable[[str], None]]:
    """Each keyword's result goes to stdout, as it comes; a progress bar goes to stderr only
    when stderr is a terminal (a redirected log gets no carriage returns)."""
    if not sys.stderr.isatty():
        yield lambda line: print(line, flush=True)
        return
    from tqdm import tqdm

    with tqdm(total=total, unit="keyword", file=sys.stderr) as bar:

        def report(line: str) -> None:
            bar.write(line, file=sys.stdout)
            bar.update()

        yield report


def _db(settings: Settings, rest: list[str]) -> int:
    from pathlib import Path

    from adapters.composition import build_engine
    from bot.storage.db import BackupRefused, backup, upgrade

    if rest != ["upgrade"] and not (len(rest) == 2 and rest[0] == "backup"):
        raise UsageError("Say what to do.", "papers db upgrade | papers db backup FILE")
    engine = build_engine(settings, upgrade=False)
    if rest == ["upgrade"]:
        upgrade(engine)
        print("database is up to date")
        return OK
    try:  # the database as it is: a backup comes before an upgrade
        backup(engine, Path(rest[1]))
    except BackupRefused as exc:
        print(f"papers: {exc}", file=sys.stderr)
        return BAD_INPUT
    print(f"backed up to {rest[1]}")
    return OK


if __name__ == "__main__":
    raise SystemExit(main())

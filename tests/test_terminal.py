"""The `papers` command as a user meets it: exit codes, where output goes, errors that read as
one line naming what to fix, and commands that load (and touch) only what they need."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from adapters.cli import main
from bot.storage.db import ensure_schema, make_engine
from tests.fakes.arxiv_server import ArxivStandIn, status

UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/none"


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """`main` configures the root logger as a process would; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arxiv_api: ArxivStandIn) -> Path:
    """A folder to run `papers` in, with its SQLite database and the arXiv stand-in."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'papers.db'}")
    monkeypatch.setenv("ARXIV_API_URL", arxiv_api.url)
    monkeypatch.setenv("ARXIV_DELAY_SECONDS", "0")
    monkeypatch.setenv("ARXIV_RETRIES", "0")
    monkeypatch.setenv("ARXIV_TIMEOUT_SECONDS", "2")
    arxiv_api.load_dailyarxiv()
    return tmp_path


def papers(*args: str) -> int:
    return main(list(args))


def run_python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter, to see what a whole `papers` process imports and touches."""
    clean = {"PATH": "/usr/bin:/bin", "DATABASE_URL": UNREACHABLE, **env}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=clean, capture_output=True, text=True
    )


LOADED = """
import json, sys
from adapters.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def loaded(cwd: Path, *args: str, **env: str) -> tuple[int, set[str]]:
    done = run_python(LOADED.replace("sys.argv[1:]", repr(list(args))), cwd, **env)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["code"], set(result["modules"])


def test_help_touches_no_database_and_loads_none(tmp_path: Path) -> None:
    for flag in ("help", "--help", "-h"):
        code, modules = loaded(tmp_path, flag)
        assert code == 0
        assert not {m for m in modules if m.startswith(("sqlalchemy", "sqlmodel", "pydantic"))}
    assert list(tmp_path.iterdir()) == []  # no papers.db, whatever DATABASE_URL says


def test_help_shows_the_terminal_and_operator_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert papers("help") == 0
    shown = capsys.readouterr().out
    for usage in ("papers serve", "papers db upgrade", "papers db backup FILE", "-o FILE"):
        assert usage in shown
    assert "papers digest now" in shown and "no daily" in shown


def test_list_and_readme_load_no_migrations_progress_bar_or_chat_sdk(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'papers.db'}"
    engine = make_engine(url)
    ensure_schema(engine)  # a current schema: the command itself must not need Alembic
    engine.dispose()
    heavy = ("alembic", "mako", "tqdm", "psycopg", "slack_bolt", "slack_sdk", "discord")
    heavy += ("apscheduler", "aiohttp", "sqlalchemy.dialects.postgresql")
    for command in ("list", "readme"):
        code, modules = loaded(tmp_path, command, DATABASE_URL=url)
        assert code == 0, command
        assert not {m for m in modules if m.startswith(heavy)}, command


def test_no_arguments_is_bad_input_with_the_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert papers() == 2
    assert "usage: papers" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert papers("--version") == 0
    assert capsys.readouterr().out.startswith("papers 0.")


@pytest.mark.parametrize("extra", [["extra"], ["--port", "4000"]])
def test_serve_refuses_arguments_instead_of_ignoring_them(
    home: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    assert papers("serve", *extra) == 2
    err = capsys.readouterr().err
    assert "takes no arguments" in err and "PORT=4000" in err
    assert not (home / "papers.db").exists()  # refused before anything started


def test_a_bad_log_level_is_a_configuration_error(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "LOUD")
    assert papers("keywords") == 2
    err = capsys.readouterr().err
    assert err.startswith("papers: configuration error: LOG_LEVEL") and "Traceback" not in err


def test_add_exits_1_when_the_fetch_failed_and_keywords_says_why(
    home: Path, arxiv_api: ArxivStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    arxiv_api.always(status(503))
    assert papers("add", "Virtual", "Try-On") == 1
    assert "could not be asked" in capsys.readouterr().err
    assert papers("keywords") == 0
    assert "failed" in capsys.readouterr().out


def test_a_limit_inside_one_argument_is_still_the_limit(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert papers("add", "Virtual Try-On") == 0
    capsys.readouterr()
    assert papers("list", "Virtual Try-On 2") == 0
    assert capsys.readouterr().out.startswith("Newest 2 papers for “Virtual Try-On”")


def test_fetch_into_a_file_writes_results_and_no_progress_bar(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    papers("add", "Virtual Try-On")
    papers("add", "Clothes Changing Person ReID")
    capsys.readouterr()
    assert papers("fetch") == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "“Virtual Try-On”: 100 papers, 0 new",
        "“Clothes Changing Person ReID”: 45 papers, 0 new",
    ]
    assert "\r" not in out + err


def test_a_terminal_command_logs_warnings_only_unless_log_level_says_so(
    home: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    assert papers("keywords") == 0  # creates the schema: an INFO line at serve's level
    assert " INFO " not in capfd.readouterr().err
    (home / "papers.db").unlink()
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    assert papers("keywords") == 0
    assert "INFO bot.storage.db upgrading database schema" in capfd.readouterr().err


def test_readme_o_without_a_file_shows_the_readme_usage(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert papers("readme", "-o") == 2
    assert "Usage: papers readme [all] [-o FILE]" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command", [["readme", "-o", "/nonexistent/R.md"], ["db", "backup", "/nonexistent/x"]]
)
def test_a_missing_folder_is_one_line_not_a_traceback(
    home: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    papers("keywords")  # a database to read from
    capsys.readouterr()
    assert papers(*command) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [f"papers: {command[-1]}: No such file or directory"]


def _damage(path: Path) -> None:
    """Scribble over one data page: the database still opens, but SQLite's VACUUM INTO used to
    fail on it with "database or disk is full"."""
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the file itself
    good = path.read_bytes()
    for page in range(len(good) // 4096 - 1, 1, -1):
        damaged = bytearray(good)
        damaged[page * 4096 + 100 : page * 4096 + 400] = b"\xab" * 300
        path.write_bytes(bytes(damaged))
        with closing(sqlite3.connect(path)) as db:
            if db.execute("PRAGMA quick_check").fetchall() != [("ok",)]:
                return
    raise AssertionError("no page to damage")


def test_a_backup_of_a_damaged_database_says_so_and_leaves_no_file(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    papers("add", "Virtual Try-On")
    good = (home / "papers.db").read_bytes()
    _damage(home / "papers.db")
    capsys.readouterr()
    assert papers("db", "backup", "copy.db") == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"papers: the database {home / 'papers.db'} is damaged ("
        + err.split(" is damaged (", 1)[1].rstrip()
    ]
    assert "full" not in err and "nothing was written" in err
    assert [p.name for p in home.iterdir() if p.name.startswith(("copy", ".copy"))] == []
    (home / "papers.db").write_bytes(good)
    assert papers("db", "backup", "copy.db") == 0  # no "exists already" from the failed try
    assert (home / "copy.db").stat().st_size > 0


@pytest.mark.parametrize("kind", ["garbage", "unopenable", "unreachable server"])
def test_a_database_that_cannot_be_used_is_one_line_naming_it(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    named = str(home / "papers.db")
    if kind == "garbage":
        (home / "papers.db").write_bytes(b"not a database, " * 512)
    elif kind == "unopenable":
        named = str(home / "missing-folder" / "papers.db")
        monkeypatch.setenv("DATABASE_URL", f"sqlite:///{named}")
    else:  # named by its URL, without the password
        monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody:s3cret@127.0.0.1:1/none")
        named = "postgresql+psycopg://nobody:***@127.0.0.1:1/none"
    assert papers("list") == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and f"cannot use the database {named}: " in err
    assert "SELECT" not in err and "Traceback" not in err and "s3cret" not in err


def test_the_terminal_refuses_digest_at_a_time(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert papers("digest", "00:01") == 2
    assert "no daily post" in capsys.readouterr().err

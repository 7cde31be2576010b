"""Shipping: container files, /healthz, logs without secrets, and the README's quick start."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest
import yaml
from pydantic import SecretStr

from bot.arxiv.gateway import ArxivGateway
from bot.commands.core import Core
from bot.config import Settings
from bot.logs import RedactingFormatter, secrets_of
from bot.storage.db import make_engine

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_dockerfile_is_slim_non_root_and_serves_with_a_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim$", text, re.M)
    user = re.search(r"^USER (\S+)$", text, re.M)
    assert user and user.group(1) not in ("root", "0")
    assert "HOST=0.0.0.0" in text
    assert re.search(r'^CMD \["papers", "serve"\]$', text, re.M)
    assert re.search(r"^HEALTHCHECK .*", text, re.M) and "/healthz" in text
    for source in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for name in source.split():
            assert (ROOT / name).exists(), f"Dockerfile copies missing {name}"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'papers = "adapters.cli:main"' in pyproject


def test_compose_runs_the_bot_against_postgres() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    bot, db = compose["services"]["bot"], compose["services"]["db"]
    assert db["image"].startswith("postgres:")
    assert bot["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    # A deploy's SIGTERM must leave the bot its grace (20 s) before Docker's SIGKILL.
    assert int(bot["stop_grace_period"].removesuffix("s")) > Settings().shutdown_grace_seconds
    known = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert set(bot["environment"]) <= known


def test_env_example_comments_every_setting() -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    names = [line.split("=", 1)[0] for line in lines if re.match(r"^[A-Z_]+=", line)]
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z_]+=", line):
            above = lines[index - 1]
            assert above.startswith("#") or above.split("=", 1)[0] in names, line


def test_the_readme_backup_line_gives_pg_dump_a_url_it_can_read() -> None:
    """pg_dump takes a libpq URL: SQLAlchemy's `postgresql+psycopg://` is not one."""
    from psycopg.conninfo import conninfo_to_dict

    notes = (ROOT / "README.md").read_text().split("## Operating notes", 1)[1]
    (line,) = re.findall(r"`(pg_dump [^`]+)`", notes)
    argument = line.removeprefix("pg_dump ").removesuffix(" > backup.sql")
    env = {"PATH": os.defpath, "DATABASE_URL": "postgresql+psycopg://papers:pw@db:5432/papers"}
    given = subprocess.run(
        ["bash", "-c", f"printf '%s' {argument}"], env=env, capture_output=True, text=True
    ).stdout
    assert conninfo_to_dict(given) == {
        "user": "papers",
        "password": "pw",
        "host": "db",
        "port": "5432",
        "dbname": "papers",
    }


async def _healthz(core: Core) -> tuple[int, dict[str, object]]:
    from adapters.serve import run

    stop = asyncio.Event()
    server = asyncio.create_task(run(core, stop=stop))
    url = f"http://127.0.0.1:{core.settings.port}/healthz"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(url) as response:
                        return response.status, await response.json()
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        raise AssertionError("serve never listened")
    finally:
        stop.set()
        await asyncio.wait_for(server, 10)


async def test_healthz_is_200_with_the_database_reachable(core: Core) -> None:
    settings = core.settings.model_copy(update={"port": free_port()})
    status, body = await _healthz(Core(settings, core.engine, core.gateway))
    assert status == 200
    assert body["database"] == "ok" and "last_refresh" in body


async def test_healthz_is_503_when_the_database_is_unreachable(settings: Settings) -> None:
    settings = settings.model_copy(
        update={"port": free_port(), "database_url": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    )
    engine = make_engine(settings.database_url, connect_args={"connect_timeout": 1})
    status, body = await _healthz(Core(settings, engine, ArxivGateway(settings, engine)))
    assert status == 503 and body["database"] == "unreachable"


def test_logs_never_show_tokens() -> None:
    settings = Settings(
        slack_bot_token=SecretStr("xoxb-1111-2222-abcdefabcdef"),
        slack_signing_secret=SecretStr("8f742231b10e8888abcd99yyyzzz85a5"),
        discord_bot_token=SecretStr("not-shaped-like-a-token-but-secret"),
        database_url="postgresql+psycopg://papers:hunter2hunter@db/papers",
    )
    formatter = RedactingFormatter(secrets_of(settings))
    record = logging.LogRecord(
        "papers",
        logging.ERROR,
        __file__,
        1,
        "auth failed for %s / %s / %s / %s / %s",
        (
            "xoxb-1111-2222-abcdefabcdef",
            "8f742231b10e8888abcd99yyyzzz85a5",
            "not-shaped-like-a-token-but-secret",
            "xapp-1-" + "A0123456789-abcdef",  # assembled: no token-shaped literal in the repo
            "postgresql+psycopg://papers:hunter2hunter@db/papers",
        ),
        None,
    )
    record.workspace, record.channel = "T123", "C456"
    line = formatter.format(record)
    for secret in ("xoxb-1111", "8f742231", "not-shaped", "xapp-1-A0", "hunter2"):
        assert secret not in line
    assert "ERROR papers workspace=T123 channel=C456 auth failed" in line
    assert repr(settings.slack_bot_token) == "SecretStr('**********')"
    assert "xoxb" not in repr(settings)


def _quickstart_commands() -> tuple[str, str]:
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", quick, re.S)
    run_bot, run_tests = blocks[0].strip(), blocks[1].strip()
    assert "papers serve" in run_bot and "pytest" in run_tests
    ci = (ROOT / ".ci" / "run").read_text()
    assert run_tests in ci, "CI runs the README's own test command"
    return run_bot, run_tests


@pytest.mark.skipif(
    os.environ.get("PAPERS_QUICKSTART_NESTED") == "1", reason="already inside the quick-start check"
)
def test_quick_start_commands_work_in_a_fresh_directory(tmp_path: Path) -> None:
    """Copies the project, runs README.md's two commands there: serve answers /healthz, tests pass."""
    run_bot, run_tests = _quickstart_commands()
    project = tmp_path / "project"
    shutil.copytree(
        ROOT,
        project,
        ignore=shutil.ignore_patterns(
            ".venv",
            ".git",
            "__pycache__",
            "*.db*",
            ".pytest_cache",
            ".mypy_cache",
            ".ruff_cache",
            "*.egg-info",
        ),
    )
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VIRTUAL_ENV", "PYTEST", "DATABASE_URL", "SLACK_", "DISCORD_"))
    }
    env.update(
        PORT=str(port),
        PAPERS_QUICKSTART_NESTED="1",
        PATH=os.defpath + ":" + os.path.dirname(sys.executable),
    )
    env.pop("TEST_DATABASE_URL", None)
    bot = subprocess.Popen(
        ["bash", "-c", run_bot],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        body = _wait_for_health(port, bot, timeout=600)
        assert '"database": "ok"' in body
    finally:
        os.killpg(bot.pid, 15)
        output = bot.communicate(timeout=30)[0]
    assert "no chat front end configured" in output, output[-2000:]
    assert (project / "papers.db").exists()
    env["PYTEST_ADDOPTS"] = "tests/test_commands.py -k test_parse -p no:cacheprovider"
    tests = subprocess.run(
        ["bash", "-c", run_tests], cwd=project, env=env, capture_output=True, text=True, timeout=900
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert re.search(r"\d+ passed", tests.stdout)


def _wait_for_health(port: int, process: subprocess.Popen[str], *, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"papers serve exited with {process.returncode}: {process.stdout.read() if process.stdout else ''}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                return str(response.read().decode())
        except OSError:
            time.sleep(0.5)
    raise AssertionError("papers serve never answered /healthz")

"""The `papers` terminal command run as a subprocess, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

# A loopback port nothing listens on: a `papers` subprocess never reaches arXiv by accident.
DEAD_ARXIV = {
    "ARXIV_API_URL": "http://127.0.0.1:9/api/query",
    "ARXIV_OAI_URL": "http://127.0.0.1:9/oai",
    "ARXIV_RETRIES": "0",
}


def run_papers(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`papers <args>` in `tmp_path` on the database `cli.db` there, arXiv unreachable unless
    `env` says otherwise, and nothing else from this process's environment."""
    values = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        **DEAD_ARXIV,
        "PATH": "",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", *args],
        capture_output=True,
        text=True,
        env=values,
        cwd=tmp_path,
        timeout=60,
    )


def start_papers(env: dict[str, str], *args: str, **popen: Any) -> subprocess.Popen[bytes]:
    """`papers <args>` started in the background with exactly `env` (e.g. against the stand-in)."""
    return subprocess.Popen([sys.executable, "-m", "adapters.cli", *args], env=env, **popen)

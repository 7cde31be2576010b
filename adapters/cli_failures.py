"""What `papers` says when a command fails: one line an operator can act on (a file, the
database, a damaged SQLite file), and a traceback in the log for anything else (a bug).
adapters/cli.py imports this only once a command has failed: no command pays for it."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bot.config import Settings
from bot.storage.db import DamagedDatabase


def explain(exc: Exception, settings: Settings, name: str) -> str:
    """One line for a failure an operator can act on; an unexpected one is logged with its
    traceback first (that is a bug)."""
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    if isinstance(exc, DBAPIError | sqlite3.Error):  # the latter raw, from `db backup`
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        return f"cannot use the database {where(settings)}: {' '.join(str(cause).split())}"
    if isinstance(exc, DamagedDatabase):
        return f"the database {where(settings)} is damaged ({exc}); nothing was written."
    logging.getLogger("papers").exception("papers %s failed", name)
    return f"{name} failed: {exc}"


def where(settings: Settings) -> str:
    """The database a message names: the SQLite file's full path, or the URL sans password."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return str(Path(url.database).resolve())
    return url.render_as_string(hide_password=True)

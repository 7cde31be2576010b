"""The health report served at /healthz: database reachability and the last refresh."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import text
from sqlmodel import select

from bot.commands.core import Core
from bot.storage.db import read_session
from bot.storage.models import Lease

logger = logging.getLogger(__name__)


def health_report(core: Core) -> dict[str, Any]:
    try:
        with read_session(core.engine) as session:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            lease = session.exec(select(Lease).where(Lease.name == "daily-refresh")).first()
    except Exception as exc:  # any driver error means "unreachable" to an orchestrator
        logger.warning("health check: database unreachable: %s", type(exc).__name__)
        return {"status": "unhealthy", "database": "unreachable"}
    refresh = None
    if lease is not None and lease.last_run_at is not None:
        refresh = {"at": lease.last_run_at.isoformat(), "status": lease.last_status}
    return {"status": "ok", "database": "ok", "last_refresh": refresh}

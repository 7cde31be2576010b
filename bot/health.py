"""The health report served at /healthz: database reachability, the last refresh, the last
harvest (when, records, requests, fallback or not) and an arXiv outage if there is one."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import text
from sqlmodel import select

from bot.arxiv.announced import last_harvest
from bot.commands.core import Core
from bot.storage.db import read_session
from bot.storage.models import Lease

logger = logging.getLogger(__name__)


def health_report(core: Core) -> dict[str, Any]:
    try:
        with read_session(core.engine) as session:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            lease = session.exec(select(Lease).where(Lease.name == "daily-refresh")).first()
            harvest = last_harvest(session)
        outage = core.gateway.outage()
    except Exception as exc:  # any driver error means "unreachable" to an orchestrator
        logger.warning("health check: database unreachable: %s", type(exc).__name__)
        return {"status": "unhealthy", "database": "unreachable"}
    refresh = None
    if lease is not None and lease.last_run_at is not None:
        refresh = {"at": lease.last_run_at.isoformat(), "status": lease.last_status}
    return {
        "status": "ok",
        "database": "ok",
        "last_refresh": refresh,
        "last_harvest": harvest,
        "arxiv": outage.describe() if outage else "ok",
    }

"""The health report served at /healthz: database reachability, the last refresh, the last
harvest (when, records, requests, fallback or not), an arXiv outage if there is one, and the
front ends."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlmodel import select

from bot.arxiv.announced import last_harvest
from bot.commands.core import Core
from bot.storage.db import read_session
from bot.storage.models import Lease

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrontEndStatus:
    """What a chat front end says about itself: up, or down and why (never a secret)."""

    name: str  # "slack", "discord"
    up: bool
    detail: str = ""


def health_report(core: Core, front_ends: Iterable[FrontEndStatus] = ()) -> dict[str, Any]:
    """`status` is "ok" only when the database answers and every front end is up."""
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
    report: dict[str, Any] = {
        "status": "ok",
        "database": "ok",
        "last_refresh": refresh,
        "last_harvest": harvest,
        "arxiv": outage.describe() if outage else "ok",
    }
    statuses = list(front_ends)
    if statuses:
        report["front_ends"] = {
            s.name: "ok" if s.up else f"down: {s.detail}".rstrip(": ") for s in statuses
        }
        if not all(s.up for s in statuses):
            report["status"] = "unhealthy"
    return report

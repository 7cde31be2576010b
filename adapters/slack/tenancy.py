"""Tenants: a Slack workspace id taken from the verified installation, never from command text."""

from __future__ import annotations

from typing import Any


def tenant_id(
    *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool = False
) -> str:
    """The workspace id of an installation: `E123:T456`, `T456`, or `E123` for an org-wide install."""
    if is_enterprise_install and enterprise_id:
        return enterprise_id
    if enterprise_id and team_id:
        return f"{enterprise_id}:{team_id}"
    if team_id or enterprise_id:
        return team_id or enterprise_id  # type: ignore[return-value]
    raise ValueError("a Slack request without team or enterprise id")


def split_tenant(workspace: str) -> tuple[str | None, str | None, bool]:
    """(enterprise_id, team_id, is_enterprise_install) of a `tenant_id`."""
    if ":" in workspace:
        enterprise, team = workspace.split(":", 1)
        return enterprise, team, False
    if workspace.startswith("E"):
        return workspace, None, True
    return None, workspace, False


def context_tenant(context: Any) -> str:
    """The tenant of a verified request: the installation that authorized it.

    In a Slack Connect channel the payload's team is the acting user's workspace; the
    authorize result names the installation's team instead, and that is whose data it is.
    """
    result = context.authorize_result
    enterprise = (result.enterprise_id if result else None) or context.enterprise_id
    team = (result.team_id if result else None) or context.team_id
    org_wide = bool(context.is_enterprise_install)
    return tenant_id(enterprise_id=enterprise, team_id=team, is_enterprise_install=org_wide)

"""Bolt listeners: `/papers`, the "Show abstract" and "Save" buttons, and uninstall events."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.command_service import SLOW_COMMANDS, CommandService, Deadline
from adapters.slack.answers import Answers, ack_payload, fits_in_ack, progress_note
from adapters.slack.format import (
    SAVE_PAPER,
    SHOW_ABSTRACT,
    abstract_message,
    asked_by,
    to_messages,
)
from adapters.slack.installations import ThreadedInstallationStore
from adapters.slack.mrkdwn import unescape
from adapters.slack.poster import ChannelPacer
from adapters.slack.saves import on_save
from adapters.slack.tenancy import context_tenant
from bot.commands.core import Place
from bot.commands.grammar import Add, BadInput, Command, Fetch, Help, parse
from bot.replies import Reply, error
from bot.text import quoted

logger = logging.getLogger(__name__)

COMMAND = "/papers"
PLATFORM = "slack"
MANAGERS = "the people this app's SLACK_MANAGERS setting names"
# A response_url takes answers for 30 minutes; later ones go through the Web API.
RESPONSE_URL_WINDOW = timedelta(minutes=29)


def register(app: AsyncApp, listeners: Listeners) -> None:
    """Every listener of the Slack front end, in one place."""
    app.command(COMMAND)(listeners.on_command)
    app.action(re.compile(f"^{SHOW_ABSTRACT}"))(listeners.on_show_abstract)
    app.action(re.compile(f"^{SAVE_PAPER}:"))(on_save(listeners.service, listeners.answers))
    app.event("app_uninstalled")(listeners.on_app_uninstalled)
    app.event("tokens_revoked")(listeners.on_tokens_revoked)


class Listeners:
    """Slack payloads to the core's commands (through the command service), replies to Slack."""

    def __init__(
        self,
        service: CommandService,
        *,
        pacer: ChannelPacer,
        installations: ThreadedInstallationStore | None = None,
    ) -> None:
        self.service = service
        self.core = service.core
        self.managers = self.core.settings.slack_managers
        self.installations = installations
        self.answers = Answers(pacer)

    # -- /papers ----------------------------------------------------------------

    async def on_command(
        self, ack: Any, command: dict[str, Any], client: AsyncWebClient, context: Any
    ) -> None:
        """Acknowledge within 3 s. Bad input and help are answered in the ack; add and fetch
        wait a moment for the core, so that a quick private answer (a refusal, a duplicate) is
        the ack itself; everything else is acknowledged at once. Answers follow through the
        command's response_url."""
        received = datetime.now(UTC)
        typed = unescape(command.get("text") or "")
        try:
            parsed = parse(typed)
        except BadInput as exc:
            await ack(**ack_payload(error(str(exc))))
            return
        place = self.place(command, context)
        if isinstance(parsed, Help):  # no store, no thread: the usage table
            await ack(**ack_payload(self.core.execute(place, parsed)[0]))
            return
        delivery = command.get("trigger_id")
        with self.service.track():
            if isinstance(parsed, SLOW_COMMANDS):
                replies = await self._slow(ack, place, parsed, delivery)
            else:
                await ack()
                replies = await self.service.execute(place, parsed, delivery=delivery)
            if replies:
                await self.answers.deliver(
                    place,
                    replies,
                    asked=asked_by(command.get("user_name") or "", typed),
                    respond=self.answers.responder(command.get("response_url")),
                    client=client,
                    deadline=Deadline.after(received, RESPONSE_URL_WINDOW),
                )

    async def _slow(
        self, ack: Any, place: Place, command: Command, delivery: str | None
    ) -> list[Reply]:
        """Acknowledge add or fetch: with the answer when it is quick and private (or with
        nothing for a redelivery), else with a note that it is working; returns what is left
        to answer."""
        work = self.service.start(place, command, delivery=delivery)
        if not await self.service.settled(work):
            await ack(**_progress(command))
            return await work
        replies = work.result()
        if replies and not fits_in_ack(replies):
            await ack()
            return replies
        await ack(**(ack_payload(replies[0]) if replies else {}))
        return []

    def place(self, command: dict[str, Any], context: Any) -> Place:
        """Where the command comes from: the verified installation, never the command text."""
        user = command.get("user_id") or ""
        name = getattr(context.authorize_result, "team", None) or command.get("team_domain")
        return Place(
            platform=PLATFORM,
            workspace=context_tenant(context),
            channel=command["channel_id"],
            user_id=user,
            is_manager=not self.managers or user in self.managers,
            workspace_name=(name or "")[:200],
            managers=MANAGERS if self.managers else "",
        )

    # -- "Show abstract" ------------------------------------------------------------

    async def on_show_abstract(
        self, ack: Any, action: dict[str, Any], body: dict[str, Any]
    ) -> None:
        """The abstract, only for the person who clicked."""
        await ack()
        respond = self.answers.responder(body.get("response_url"))
        arxiv_id = str(action.get("value") or "")[:40]
        paper = await self.service.ask(self.core.paper, arxiv_id)
        if paper is None:
            gone = f"The paper {quoted(arxiv_id)} is no longer stored; its arXiv page has the abstract."
            message = to_messages(error(gone))[0]
        else:
            message = abstract_message(paper)
        try:
            await respond(message)
        except Exception as exc:
            logger.warning("answering Show abstract failed: %s", exc.__class__.__name__)

    # -- uninstalls -------------------------------------------------------------------

    async def on_app_uninstalled(self, context: Any) -> None:
        """The app left the workspace: forget its tokens, stop its channels (their data stays)."""
        if self.installations is not None:
            await self.installations.async_delete_all(
                enterprise_id=context.enterprise_id, team_id=context.team_id
            )
        await self._leave(context_tenant(context), "app uninstalled")

    async def on_tokens_revoked(self, event: dict[str, Any], context: Any) -> None:
        """Revoked user tokens are forgotten; a revoked bot token also stops the workspace."""
        tokens = event.get("tokens") or {}
        if self.installations is not None:
            for user_id in tokens.get("oauth") or []:
                await self.installations.async_delete_installation(
                    enterprise_id=context.enterprise_id, team_id=context.team_id, user_id=user_id
                )
            if tokens.get("bot"):
                await self.installations.async_delete_bot(
                    enterprise_id=context.enterprise_id, team_id=context.team_id
                )
        if tokens.get("bot"):
            await self._leave(context_tenant(context), "bot token revoked")

    async def _leave(self, workspace: str, why: str) -> None:
        stopped = await self.service.ask(self.core.leave_workspace, PLATFORM, workspace)
        logger.info("%s: %d channel(s) stopped", why, stopped, extra={"workspace": workspace})


def _progress(command: Command) -> dict[str, Any]:
    """What the ack says while a slow command works (nothing for the others)."""
    if isinstance(command, Add):
        return progress_note(
            f"Adding {quoted(command.keyword)} (fetching it from arXiv if it is new)…"
        )
    if isinstance(command, Fetch):
        return progress_note("Fetching this channel's keywords from arXiv…")
    return {}

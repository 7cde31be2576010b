"""Bolt listeners: `/papers`, the "Show abstract" button, and uninstall events."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack.format import (
    SHOW_ABSTRACT,
    SlackMessage,
    abstract_message,
    attribute,
    escape,
    to_messages,
    unescape,
)
from adapters.slack.installations import ThreadedInstallationStore
from adapters.slack.poster import ChannelPacer, failure_of, send
from adapters.slack.tenancy import context_tenant
from bot.commands.core import Core, Place
from bot.commands.grammar import (
    MANAGER_COMMANDS,
    USAGES,
    Add,
    BadInput,
    Command,
    Fetch,
    Help,
    Preview,
    parse,
)
from bot.posts.poster import PostFailed
from bot.replies import PaperView, Reply, Text, error
from bot.storage import catalog, store
from bot.storage.db import read_session, write_session
from bot.storage.models import Paper
from bot.text import squash

logger = logging.getLogger(__name__)
Respond = Callable[[SlackMessage], Awaitable[None]]

COMMAND = "/papers"
# measured with bench_slack_ack: more threads only contend with the event loop for the GIL
QUICK_THREADS = 2
ARXIV_THREADS = 8  # add/fetch mostly wait for the one arXiv gateway
RESPONSE_URL_USES = 5  # Slack accepts five posts to one response_url; further ones go by the API
SORRY = "Sorry, that failed on our side. Please try again in a minute."


def register(app: AsyncApp, listeners: Listeners) -> None:
    """Every listener of the Slack front end, in one place."""
    app.command(COMMAND)(listeners.on_command)
    app.action(re.compile(f"^{SHOW_ABSTRACT}"))(listeners.on_show_abstract)
    app.event("app_uninstalled")(listeners.on_app_uninstalled)
    app.event("tokens_revoked")(listeners.on_tokens_revoked)


class Listeners:
    """Slack payloads to the core's commands and its replies to Slack messages."""

    def __init__(
        self,
        core: Core,
        *,
        pacer: ChannelPacer,
        installations: ThreadedInstallationStore | None = None,
    ) -> None:
        self.core = core
        self.managers = core.settings.slack_managers
        self.pacer = pacer
        self.installations = installations
        self.inflight: set[asyncio.Task[Any]] = set()
        self.session: aiohttp.ClientSession | None = None  # the front end's, once started
        # Commands run in threads of their own: a burst of Slack commands neither floods the
        # loop's default executor (Discord, the scheduler) nor, through the GIL, delays acks;
        # commands that may wait on arXiv get their own threads so that `list` never queues
        # behind a slow fetch.
        self.quick_threads = ThreadPoolExecutor(QUICK_THREADS, thread_name_prefix="slack-cmd")
        self.arxiv_threads = ThreadPoolExecutor(ARXIV_THREADS, thread_name_prefix="slack-arxiv")

    def close(self) -> None:
        self.quick_threads.shutdown(wait=False, cancel_futures=True)
        self.arxiv_threads.shutdown(wait=False, cancel_futures=True)

    # -- /papers ----------------------------------------------------------------

    async def on_command(
        self, ack: Any, command: dict[str, Any], client: AsyncWebClient, context: Any
    ) -> None:
        """Acknowledge at once (errors and help right in the ack); the rest answers through the
        command's response_url, as Bolt's respond() would, on the front end's shared session."""
        typed = unescape(command.get("text") or "")
        try:
            parsed = parse(typed)
        except BadInput as exc:
            await ack(**_ack_payload(error(str(exc))))
            return
        if isinstance(parsed, Help):
            await ack(**_ack_payload(Text(usage_text(), ephemeral=True)))
            return
        place = self.place(command, context)
        await ack(**self._progress_note(place, parsed))
        task = asyncio.current_task()
        if task is not None:
            self.inflight.add(task)
        try:
            replies = await self._execute(place, parsed)
            asked = f"<@{escape(place.user_id)}> used `{escape(squash(f'{COMMAND} {typed}'))}`"
            respond = self.responder(command.get("response_url"))
            await self._deliver(place, replies, asked=asked, respond=respond, client=client)
        finally:
            if task is not None:
                self.inflight.discard(task)

    def place(self, command: dict[str, Any], context: Any) -> Place:
        """Where the command comes from: the verified installation, never the command text."""
        user = command.get("user_id") or ""
        name = getattr(context.authorize_result, "team", None) or command.get("team_domain")
        return Place(
            platform="slack",
            workspace_id=context_tenant(context),
            channel_id=command["channel_id"],
            user_id=user,
            is_manager=not self.managers or user in self.managers,
            workspace_name=(name or "")[:200],
        )

    def _progress_note(self, place: Place, command: Command) -> dict[str, Any]:
        if isinstance(command, MANAGER_COMMANDS) and not place.is_manager:
            return {}
        if isinstance(command, Add):
            note = f"Adding “{command.keyword}” (fetching it from arXiv if it is new)…"
        elif isinstance(command, Fetch):
            note = "Fetching this channel's keywords from arXiv…"
        else:
            return {}
        return _ack_payload(Text(note, ephemeral=True))

    async def _execute(self, place: Place, command: Command) -> list[Reply]:
        try:
            asks_arxiv = isinstance(command, Add | Fetch | Preview)
            threads = self.arxiv_threads if asks_arxiv else self.quick_threads
            run = functools.partial(self.core.execute, place, command)
            return await asyncio.get_running_loop().run_in_executor(threads, run)
        except Exception:
            logger.exception(
                "/papers %s failed",
                type(command).__name__.lower(),
                extra={"workspace": place.workspace_id, "channel": place.channel_id},
            )
            return [error(SORRY)]

    async def _deliver(
        self,
        place: Place,
        replies: list[Reply],
        *,
        asked: str,
        respond: Respond,
        client: AsyncWebClient,
    ) -> None:
        """Replies into the channel: through response_url, uploads and overflow through the API."""
        messages = [message for reply in replies for message in to_messages(reply)]
        if messages and not messages[0].ephemeral:
            messages = attribute(messages, asked)
        responded = 0
        for message in messages:
            try:
                if message.upload is None and responded < RESPONSE_URL_USES:
                    responded += 1
                    await respond(message)
                elif message.ephemeral:
                    await client.chat_postEphemeral(
                        channel=place.channel_id, user=place.user_id, **message.payload()
                    )
                else:
                    if message.upload is None:  # the posting limit is chat.postMessage's
                        await self.pacer.wait(f"{place.workspace_id}/{place.channel_id}")
                    await send(client, place.channel_id, message)
            except PostFailed as exc:
                await self._tell_failure(respond, place, exc.reason, message)
                return
            except SlackApiError as exc:
                await self._tell_failure(respond, place, failure_of(exc).reason, message)
                return
            except Exception as exc:  # an unreachable response_url: log it, say so once
                logger.warning(
                    "answering /papers failed: %s",
                    exc.__class__.__name__,
                    extra={"workspace": place.workspace_id, "channel": place.channel_id},
                )
                await self._tell_failure(respond, place, exc.__class__.__name__, message)
                return

    async def _tell_failure(
        self, respond: Respond, place: Place, reason: str, message: SlackMessage
    ) -> None:
        logger.warning(
            "Slack refused an answer: %s",
            reason,
            extra={"workspace": place.workspace_id, "channel": place.channel_id},
        )
        what = f"upload {message.upload.filename}" if message.upload else "post the answer"
        hint = (
            " Invite the app to this channel (`/invite @Daily Papers`) and try again."
            if "not_in_channel" in reason or "channel_not_found" in reason
            else ""
        )
        try:
            await respond(to_messages(error(f"Could not {what} ({reason}).{hint}"))[0])
        except Exception as exc:
            logger.warning("response_url is unusable too: %s", exc.__class__.__name__)

    def responder(self, response_url: str | None) -> Respond:
        """Posts to a response_url (what Bolt's respond() does), reusing pooled connections."""

        async def respond(message: SlackMessage) -> None:
            if not response_url:
                raise PostFailed("the request carried no response_url")
            hook = AsyncWebhookClient(url=response_url, session=self.session)
            response_type = "ephemeral" if message.ephemeral else "in_channel"
            answer = await hook.send_dict({**message.payload(), "response_type": response_type})
            if answer.status_code >= 300:
                raise PostFailed(f"response_url answered HTTP {answer.status_code}")

        return respond

    # -- "Show abstract" ------------------------------------------------------------

    async def on_show_abstract(
        self, ack: Any, action: dict[str, Any], body: dict[str, Any]
    ) -> None:
        """The abstract, only for the person who clicked."""
        await ack()
        respond = self.responder(body.get("response_url"))
        arxiv_id = str(action.get("value") or "")[:40]
        lookup = functools.partial(find_paper, self.core, arxiv_id)
        paper = await asyncio.get_running_loop().run_in_executor(self.quick_threads, lookup)
        if paper is None:
            message = to_messages(
                error(f"The paper {arxiv_id} is no longer stored; its arXiv page has the abstract.")
            )[0]
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
        await self._deactivate(context_tenant(context), "app uninstalled")

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
            await self._deactivate(context_tenant(context), "bot token revoked")

    async def _deactivate(self, workspace_id: str, why: str) -> None:
        def stop() -> int:
            with write_session(self.core.engine) as session:
                return store.deactivate_workspace(
                    session, platform="slack", external_id=workspace_id
                )

        stopped = await asyncio.to_thread(stop)
        logger.info("%s: %d channel(s) stopped", why, stopped, extra={"workspace": workspace_id})


def find_paper(core: Core, arxiv_id: str) -> PaperView | None:
    """A stored paper by arXiv id (papers are public and shared by every workspace)."""
    with read_session(core.engine) as session:
        paper = session.get(Paper, arxiv_id)
        return catalog.paper_view(paper) if paper is not None else None


def usage_text() -> str:
    """`help`, written as Slack users type the commands."""
    return "\n".join(
        f"`{COMMAND} {u.syntax}`: {u.summary}{' (managers)' if u.manager else ''}" for u in USAGES
    )


def _ack_payload(reply: Text) -> dict[str, Any]:
    message = to_messages(reply)[0]
    return {**message.payload(), "response_type": "ephemeral" if reply.ephemeral else "in_channel"}

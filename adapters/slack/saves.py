"""The Save buttons under the papers of Slack posts and lists: a press saves the paper for the
person who pressed it (the core's `save`), and the answer is ephemeral, for them only."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from adapters.command_service import CommandService
from adapters.slack.answers import Answers
from adapters.slack.format import to_messages
from adapters.slack.tenancy import context_tenant
from bot.commands.core import Place
from bot.commands.grammar import BadInput, build
from bot.replies import Reply, error

logger = logging.getLogger(__name__)

PLATFORM = "slack"


def on_save(service: CommandService, answers: Answers) -> Callable[..., Awaitable[None]]:
    """The block_actions listener of the Save buttons (Bolt passes its arguments by name)."""

    async def save(ack: Any, action: dict[str, Any], body: dict[str, Any], context: Any) -> None:
        await ack()
        respond = answers.responder(body.get("response_url"))
        with service.track():
            replies = await _saved(service, pressed_by(body, context), action)
            for message in (m for reply in replies for m in to_messages(reply)):
                try:
                    await respond(message)
                except Exception as exc:
                    logger.warning("answering Save failed: %s", exc.__class__.__name__)

    return save


async def _saved(service: CommandService, place: Place, action: dict[str, Any]) -> list[Reply]:
    try:
        command = build("save", [str(action.get("value") or "")[:100]])
    except BadInput as exc:  # a payload no message of ours carries
        return [error(str(exc))]
    return await service.execute(place, command)


def pressed_by(body: dict[str, Any], context: Any) -> Place:
    """Who pressed, in which workspace: the verified installation's, never the payload's team."""
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id", ""
    )
    return Place(
        platform=PLATFORM,
        workspace=context_tenant(context),
        channel=str(channel),
        user_id=str((body.get("user") or {}).get("id") or ""),
        is_manager=False,  # saving is for anyone; nothing here manages the channel
    )

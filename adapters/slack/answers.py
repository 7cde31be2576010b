"""A command's answer into Slack: through its response_url while that lasts, the rest (uploads,
a sixth message, an answer later than the URL's 30 minutes) through the Web API."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.command_service import Deadline
from adapters.slack.format import SlackMessage, attribute, to_messages
from adapters.slack.poster import ChannelPacer, failure_of, send
from bot.commands.core import Place
from bot.posts.poster import PostFailed
from bot.replies import Reply, Text, error

logger = logging.getLogger(__name__)
Respond = Callable[[SlackMessage], Awaitable[None]]

RESPONSE_URL_USES = 5  # Slack accepts five posts to one response_url; further ones go by the API


def ack_payload(reply: Reply) -> dict[str, Any]:
    """A one-message reply as the body of an ack (what Slack shows at once)."""
    message = to_messages(reply)[0]
    return {
        **message.payload(),
        "response_type": "ephemeral" if message.ephemeral else "in_channel",
    }


def fits_in_ack(replies: list[Reply]) -> bool:
    """An answer only the asker sees, in one message: it goes in the ack itself."""
    messages = [m for reply in replies for m in to_messages(reply)]
    return len(messages) == 1 and messages[0].ephemeral and messages[0].upload is None


class Answers:
    """Delivers replies to the channel a command came from."""

    def __init__(self, pacer: ChannelPacer) -> None:
        self.pacer = pacer
        self.session: aiohttp.ClientSession | None = None  # the front end's, once started

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

    async def deliver(
        self,
        place: Place,
        replies: list[Reply],
        *,
        asked: str,
        respond: Respond,
        client: AsyncWebClient,
        deadline: Deadline,
    ) -> None:
        """The replies in order; the first public message says who asked (`asked`)."""
        messages = [message for reply in replies for message in to_messages(reply)]
        if messages and not messages[0].ephemeral:
            messages = attribute(messages, asked)
        responded = 0
        for message in messages:
            by_url = message.upload is None and responded < RESPONSE_URL_USES
            try:
                if by_url and not deadline.passed:
                    responded += 1
                    await respond(message)
                elif message.upload is not None and message.ephemeral:
                    await self._send_privately(client, place, message, respond)
                elif message.ephemeral:
                    payload = message.payload()
                    await client.chat_postEphemeral(
                        channel=place.channel, user=place.user_id, **payload
                    )
                else:
                    if message.upload is None:  # the posting limit is chat.postMessage's
                        await self.pacer.wait(f"{place.workspace}/{place.channel}")
                    await send(client, place.channel, message)
            except Exception as exc:  # refused, or an unreachable response_url: say so once
                await self._tell_failure(respond, place, _reason(exc), message)
                return

    async def _send_privately(
        self, client: AsyncWebClient, place: Place, message: SlackMessage, respond: Respond
    ) -> None:
        """A file only the asker gets (`saved bibtex`): into their direct messages with the app
        (conversations.open, which needs im:write), then a note where they asked."""
        assert message.upload is not None
        opened = await client.conversations_open(users=place.user_id)
        await send(client, str(opened["channel"]["id"]), message)
        note = f"{message.upload.filename} is in your direct messages with this app."
        try:
            await respond(to_messages(Text(note, ephemeral=True))[0])
        except Exception as exc:  # the file went; the note is a courtesy
            logger.warning("noting a direct-message upload failed: %s", exc.__class__.__name__)

    async def _tell_failure(
        self, respond: Respond, place: Place, reason: str, message: SlackMessage
    ) -> None:
        logger.warning(
            "Slack refused an answer: %s",
            reason,
            extra={"workspace": place.workspace, "channel": place.channel},
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


def _reason(exc: Exception) -> str:
    if isinstance(exc, PostFailed):
        return exc.reason
    if isinstance(exc, SlackApiError):
        return failure_of(exc).reason
    return exc.__class__.__name__  # an unreachable response_url


def progress_note(text: str) -> dict[str, Any]:
    """The ack of a command that takes a while: a note only the asker sees."""
    return ack_payload(Text(text, ephemeral=True))

"""The one interface the scheduler needs from a chat platform: post this reply to this channel."""

from __future__ import annotations

from typing import Protocol

from bot.replies import Reply


class PostFailed(Exception):
    """The platform refused the post.

    `permanent` marks failures that repeat until someone acts (bot removed, channel archived,
    missing permission, invalid auth); they count towards pausing the channel.
    `maybe_delivered` marks failures after which the platform may have accepted the post
    (a timeout after sending): never retried, so a channel gets at most one copy.
    """

    def __init__(
        self, reason: str, *, permanent: bool = False, maybe_delivered: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.maybe_delivered = maybe_delivered


class Poster(Protocol):
    """Implemented once per platform (Slack, Discord); the digest code knows no platform."""

    platform: str

    async def post(self, *, workspace_id: str, channel_id: str, replies: list[Reply]) -> None:
        """Post `replies` to the channel, splitting them as the platform's limits need.

        Raises `PostFailed` when the platform refuses; honours rate limits itself.
        """
        ...

"""Slack Web API clients: `SLACK_API_URL`, 429 retries after Retry-After, no retry that could post twice."""

from __future__ import annotations

import aiohttp
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

DEFAULT_TIMEOUT = 30.0
RATE_LIMIT_RETRIES = 3


def api_base_url(url: str | None) -> str | None:
    """`SLACK_API_URL` with the trailing slash slack_sdk needs (None: Slack's own)."""
    if not url:
        return None
    return url if url.endswith("/") else url + "/"


def retry_handlers() -> list[AsyncRetryHandler]:
    """429: wait Retry-After and try again. Connection errors only when nothing was sent:
    slack_sdk's default also retries a dropped connection, which can post a message twice."""
    return [
        AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        AsyncConnectionErrorRetryHandler(
            max_retry_count=2, error_types=[aiohttp.ClientConnectorError]
        ),
    ]


def make_client(
    *,
    base_url: str | None,
    token: str | None = None,
    session: aiohttp.ClientSession | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> AsyncWebClient:
    kwargs: dict[str, object] = {}
    if base_url:
        kwargs["base_url"] = base_url
    return AsyncWebClient(
        token=token,
        session=session,
        timeout=timeout,  # type: ignore[arg-type]  # aiohttp takes float seconds
        retry_handlers=retry_handlers(),
        **kwargs,  # type: ignore[arg-type]
    )

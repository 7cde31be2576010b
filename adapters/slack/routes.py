"""HTTP mode: Slack's requests on the shared aiohttp application, verified, handed to Bolt."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

logger = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def signed_by_slack(verifier: SignatureVerifier, headers: Mapping[str, str], body: bytes) -> bool:
    """The signature of the raw bytes, checked before anything parses them: a bad, stale or
    malformed signature (or a body that is not even text) is refused whatever the body says."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return False  # slack_sdk would raise on a timestamp that is not a number
    try:
        return verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
    except UnicodeDecodeError:  # slack_sdk signs text; these bytes were never Slack's
        return False


def events_handler(app: AsyncApp, signing_secret: str) -> Handler:
    """POST /slack/events: commands, button clicks and events, verified here, then Bolt's."""
    verifier = SignatureVerifier(signing_secret)

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp refuses a body over client_max_size (1 MB) with 413
        if not signed_by_slack(verifier, request.headers, body):
            return web.json_response({"error": "invalid request"}, status=401)
        try:
            bolt_request = AsyncBoltRequest(
                body=body.decode("utf-8"),
                query=request.query_string,
                headers=request.headers,  # type: ignore[arg-type]
            )
        except Exception as exc:  # signed, yet not a payload Bolt can read
            logger.warning("a signed Slack request could not be read: %s", type(exc).__name__)
            return web.json_response({"error": "malformed request"}, status=400)
        return await to_aiohttp_response(await app.async_dispatch(bolt_request))

    return handle


def oauth_handlers(flow: AsyncOAuthFlow) -> tuple[Handler, Handler]:
    """GET /slack/install (the "Add to Slack" page) and GET /slack/oauth_redirect."""

    async def install(request: web.Request) -> web.Response:
        return await to_aiohttp_response(
            await flow.handle_installation(await to_bolt_request(request))
        )

    async def redirect(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await flow.handle_callback(await to_bolt_request(request)))

    return install, redirect


def mount(web_app: web.Application, app: AsyncApp, *, signing_secret: str, events: bool) -> None:
    """Add Slack's routes to the shared application (the one listener that also serves /healthz)."""
    if events:
        web_app.router.add_post(EVENTS_PATH, events_handler(app, signing_secret))
    flow = app.oauth_flow
    if flow is not None:
        install, redirect = oauth_handlers(flow)
        web_app.router.add_get(flow.install_path, install)
        web_app.router.add_get(flow.redirect_uri_path, redirect)

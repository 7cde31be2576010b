"""HTTP mode: Slack's requests on the shared aiohttp application, handed to Bolt."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow

EVENTS_PATH = "/slack/events"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def signature_headers_ok(headers: Mapping[str, str]) -> bool:
    """Both signature headers present, the timestamp a plain number (Bolt answers 500 otherwise)."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    return (
        timestamp.isascii()
        and timestamp.isdigit()
        and len(timestamp) <= 12
        and signature.startswith("v0=")
    )


def events_handler(app: AsyncApp) -> Handler:
    """POST /slack/events: commands, button clicks and events; Bolt verifies the signature."""

    async def handle(request: web.Request) -> web.Response:
        if not signature_headers_ok(request.headers):
            return web.json_response({"error": "invalid request"}, status=401)
        bolt_response = await app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

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


def mount(web_app: web.Application, app: AsyncApp, *, events: bool) -> None:
    """Add Slack's routes to the shared application (the one listener that also serves /healthz)."""
    if events:
        web_app.router.add_post(EVENTS_PATH, events_handler(app))
    flow = app.oauth_flow
    if flow is not None:
        install, redirect = oauth_handlers(flow)
        web_app.router.add_get(flow.install_path, install)
        web_app.router.add_get(flow.redirect_uri_path, redirect)

"""`SlackFrontEnd`: the Bolt app, its routes or Socket Mode connection, and the Slack poster."""

from __future__ import annotations

import contextlib
import logging

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.command_service import CommandService
from adapters.slack import routes
from adapters.slack.client import DEFAULT_TIMEOUT, api_base_url, make_client
from adapters.slack.installations import ThreadedInstallationStore, ThreadedOAuthStateStore
from adapters.slack.listeners import Listeners, register
from adapters.slack.poster import ChannelPacer, SlackPoster
from bot.commands.core import Core
from bot.config import ConfigError, Settings
from bot.health import FrontEndStatus

logger = logging.getLogger(__name__)

BOT_SCOPES = (
    "commands",
    "chat:write",
    "chat:write.public",
    "files:write",
    "im:write",
    "channels:history",
    "groups:history",
)
NOT_INSTALLED = (
    "Daily Papers is not installed in this workspace (any more). "
    "Ask an admin to install it again from the app's install page."
)


class SlackFrontEnd:
    """`/papers` in Slack: HTTP mode on the shared listener, or Socket Mode with `SLACK_APP_TOKEN`;
    one workspace with `SLACK_BOT_TOKEN`, or many through OAuth with `SLACK_CLIENT_ID`/`_SECRET`.

    `papers serve` calls `mount(web_app)`, `await start()`, uses `poster`, asks `await status()`
    for /healthz, and `await stop()`. Pass the process's one `CommandService` as `service`
    (without it the front end makes and closes its own).
    """

    def __init__(self, core: Core, *, service: CommandService | None = None) -> None:
        settings = core.settings
        if not settings.slack_signing_secret:
            raise ValueError("SLACK_SIGNING_SECRET is required for Slack")
        _keep_secrets_out_of_library_logs()
        self.core = core
        self.settings = settings
        self.base_url = api_base_url(settings.slack_api_url)
        self.socket_mode = settings.slack_app_token is not None
        self.installations = _installation_store(core)
        single_token = settings.slack_bot_token if self.installations is None else None
        if self.installations is not None and settings.slack_bot_token:
            logger.info("Slack OAuth is configured: SLACK_BOT_TOKEN is not used")
        self._session: aiohttp.ClientSession | None = None
        self.api_timeout = DEFAULT_TIMEOUT  # seconds for one Web API call (set before start())
        self.client = make_client(
            base_url=self.base_url, token=single_token.get_secret_value() if single_token else None
        )
        self.pacer = ChannelPacer()
        self._owns_service = service is None
        self.service = service or CommandService(core)
        self.listeners = Listeners(self.service, pacer=self.pacer, installations=self.installations)
        self.app = self._build_app(settings)
        register(self.app, self.listeners)
        self.poster = SlackPoster(tokens=self.bot_token, clients=self.client_for, pacer=self.pacer)
        self._socket: AsyncSocketModeHandler | None = None

    def _build_app(self, settings: Settings) -> AsyncApp:
        assert settings.slack_signing_secret is not None
        oauth_settings = authorize = None
        if self.installations is not None:
            assert settings.slack_client_id and settings.slack_client_secret
            oauth_settings = AsyncOAuthSettings(
                client_id=settings.slack_client_id,
                client_secret=settings.slack_client_secret.get_secret_value(),
                scopes=list(BOT_SCOPES),
                user_scopes=[],
                installation_store=self.installations,
                state_store=ThreadedOAuthStateStore(write_engine=self.core.write_engine),
                logger=logger,
            )
            # Bolt's default asks auth.test on every request; the answer per token is stable.
            authorize = AsyncInstallationStoreAuthorize(
                logger=logger,
                installation_store=self.installations,
                client_id=settings.slack_client_id,
                client_secret=settings.slack_client_secret.get_secret_value(),
                cache_enabled=True,
                client=self.client,
            )
        return AsyncApp(
            client=self.client,  # with client=, Bolt takes the token from client.token
            signing_secret=settings.slack_signing_secret.get_secret_value(),
            oauth_settings=oauth_settings,
            authorize=authorize,  # type: ignore[arg-type]  # Bolt takes AsyncAuthorize too
            process_before_response=False,
            user_facing_authorize_error_message=NOT_INSTALLED,
        )

    # -- the interface `papers serve` uses ------------------------------------------

    def mount(self, web_app: web.Application) -> None:
        """/slack/events (HTTP mode) and, with OAuth, /slack/install and /slack/oauth_redirect."""
        assert self.settings.slack_signing_secret is not None
        secret = self.settings.slack_signing_secret.get_secret_value()
        routes.mount(web_app, self.app, signing_secret=secret, events=not self.socket_mode)

    async def start(self) -> None:
        """Share one HTTP session for Web API calls; in Socket Mode, connect."""
        # slack_sdk applies its timeout only to sessions it makes itself: this one carries it
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.api_timeout))
        self.client.session = self._session  # Bolt hands it on to each request's client
        self.listeners.answers.session = self._session
        if self.socket_mode:
            await self._connect_socket()
            logger.info("Slack: connected in Socket Mode")
        else:
            logger.info("Slack: HTTP mode, Request URL path %s", routes.EVENTS_PATH)

    async def _connect_socket(self) -> None:
        """Open the Socket Mode connection; a token Slack refuses fails here, at start-up (the
        library would retry it forever in the background while nothing answers commands)."""
        assert self.settings.slack_app_token is not None
        token = self.settings.slack_app_token.get_secret_value()
        try:
            opened = await self.client.apps_connections_open(app_token=token)
        except SlackApiError as exc:
            refusal = exc.response.get("error") or f"HTTP {exc.response.status_code}"
            raise ConfigError(
                f"SLACK_APP_TOKEN was refused by Slack ({refusal}): use an app-level token "
                "(xapp-…) of this app with the connections:write scope"
            ) from None
        self._socket = AsyncSocketModeHandler(self.app, app_token=token)
        self._socket.client.wss_uri = opened["url"]  # connect with it, not with a second URL
        await self._socket.connect_async()  # type: ignore[no-untyped-call]

    async def status(self) -> FrontEndStatus:
        """For /healthz: HTTP mode is up while started; Socket Mode while its socket is open."""
        if self._session is None:
            return FrontEndStatus("slack", up=False, detail="not started")
        if self.socket_mode and not await self._socket_open():
            detail = "Socket Mode is not connected (check SLACK_APP_TOKEN)"
            return FrontEndStatus("slack", up=False, detail=detail)
        return FrontEndStatus("slack", up=True)

    async def _socket_open(self) -> bool:
        return self._socket is not None and bool(await self._socket.client.is_connected())

    async def stop(self) -> None:
        """Disconnect, give commands in flight a moment to answer, close the session."""
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        await self.service.drain(self.settings.shutdown_grace_seconds)
        self.client.session = self.listeners.answers.session = None
        if self._owns_service:
            self.service.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- tokens for the poster ------------------------------------------------------------

    async def bot_token(self, workspace: str) -> str | None:
        """The bot token for a workspace: the single one, or the installation's."""
        if self.installations is not None:
            return await self.installations.bot_token(workspace)
        token = self.settings.slack_bot_token
        return token.get_secret_value() if token else None

    def client_for(self, token: str) -> AsyncWebClient:
        return make_client(
            base_url=self.base_url, token=token, session=self._session, timeout=self.api_timeout
        )


def _installation_store(core: Core) -> ThreadedInstallationStore | None:
    settings = core.settings
    if not (settings.slack_client_id and settings.slack_client_secret):
        return None
    return ThreadedInstallationStore(
        client_id=settings.slack_client_id, engine=core.engine, write_engine=core.write_engine
    )


def _keep_secrets_out_of_library_logs() -> None:
    """slack_sdk logs request and response bodies (OAuth tokens among them) at DEBUG."""
    for name in ("slack_sdk", "slack_bolt"):
        library = logging.getLogger(name)
        if library.getEffectiveLevel() < logging.INFO:
            library.setLevel(logging.INFO)

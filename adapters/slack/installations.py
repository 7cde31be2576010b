"""Bolt's installation and OAuth state stores on our database: slack_sdk's SQLAlchemy stores
(their tables are migration 0003's), each blocking call run in a thread."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from functools import partial

from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import Engine, delete

from adapters.slack.tenancy import split_tenant

logger = logging.getLogger(__name__)


class ThreadedInstallationStore(AsyncInstallationStore):
    """slack_sdk's synchronous SQLAlchemy installation store for Bolt's async app: reads on
    the core's engine, writes on its write engine (`Core.write_engine`: BEGIN IMMEDIATE on
    SQLite). Its async twin would need an asyncio engine, i.e. another driver and pool."""

    def __init__(self, *, client_id: str, engine: Engine, write_engine: Engine) -> None:
        self.client_id = client_id
        self._reads = SQLAlchemyInstallationStore(client_id, engine, logger=logger)
        self._writes = SQLAlchemyInstallationStore(client_id, write_engine, logger=logger)

    @property
    def logger(self) -> logging.Logger:
        return logger

    async def async_save(self, installation: Installation) -> None:
        await asyncio.to_thread(self._writes.save, installation)

    async def async_save_bot(self, bot: Bot) -> None:
        await asyncio.to_thread(self._writes.save_bot, bot)

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        find = partial(
            self._reads.find_bot,
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )
        return await asyncio.to_thread(find)

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        find = partial(
            self._reads.find_installation,
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            is_enterprise_install=is_enterprise_install,
        )
        return await asyncio.to_thread(find)

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        forget = partial(self._writes.delete_bot, enterprise_id=enterprise_id, team_id=team_id)
        await asyncio.to_thread(forget)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        forget = partial(
            self._writes.delete_installation,
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
        )
        await asyncio.to_thread(forget)

    async def bot_token(self, workspace: str) -> str | None:
        """The newest bot token of a tenant (an org-wide install answers for its workspaces)."""
        enterprise, team, org_wide = split_tenant(workspace)
        bot = await self.async_find_bot(
            enterprise_id=enterprise, team_id=team, is_enterprise_install=org_wide
        )
        if bot is None and enterprise and not org_wide:
            bot = await self.async_find_bot(
                enterprise_id=enterprise, team_id=None, is_enterprise_install=True
            )
        return bot.bot_token if bot is not None else None


class ThreadedOAuthStateStore(AsyncOAuthStateStore):
    """OAuth `state` values: issued per install page by slack_sdk's SQLAlchemy state store,
    consumed once here. Its own consume (a SELECT, then a DELETE whose count it ignores) let
    racing callbacks on PostgreSQL win one state 2-3 times each in tests/test_slack_oauth.py."""

    def __init__(self, *, write_engine: Engine, expiration_seconds: int = 600) -> None:
        self._store = SQLAlchemyOAuthStateStore(expiration_seconds, write_engine, logger=logger)
        self._writer = write_engine

    @property
    def logger(self) -> logging.Logger:
        return logger

    def issue(self) -> str:
        return self._store.issue()

    def consume(self, state: str) -> bool:
        """True once per issued, unexpired state (one DELETE: two racing callbacks cannot both win)."""
        states = self._store.oauth_states
        now = datetime.now(UTC).replace(tzinfo=None)  # slack_sdk's columns hold naive UTC
        with self._writer.begin() as conn:
            taken = conn.execute(
                delete(states)
                .where(states.c.state == state, states.c.expire_at > now)
                .returning(states.c.id)
            ).first()
            # expired states of abandoned installs go with the next install
            conn.execute(delete(states).where(states.c.expire_at <= now))
        return taken is not None

    async def async_issue(self, *args: object, **kwargs: object) -> str:
        return await asyncio.to_thread(self.issue)

    async def async_consume(self, state: str) -> bool:
        return await asyncio.to_thread(self.consume, state)

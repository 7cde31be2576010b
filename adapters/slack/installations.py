"""OAuth installations and states in our database, for Bolt's multi-workspace mode."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    delete,
    insert,
    select,
    update,
)

from adapters.slack.tenancy import split_tenant

logger = logging.getLogger(__name__)

# The layout of slack_sdk's SQLAlchemy stores (migration 0003 creates it), so that either
# implementation can read the other's rows. Ours runs on our engine, with no asyncio engine
# (slack_sdk's module imports SQLAlchemy's asyncio extension, which needs greenlet).
_meta = MetaData()


def _bot_columns() -> list[Column[Any]]:
    return [
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("client_id", String(32), nullable=False),
        Column("app_id", String(32), nullable=False),
        Column("enterprise_id", String(32)),
        Column("enterprise_name", String(200)),
        Column("team_id", String(32)),
        Column("team_name", String(200)),
        Column("bot_token", String(200)),
        Column("bot_id", String(32)),
        Column("bot_user_id", String(32)),
        Column("bot_scopes", String(1000)),
        Column("bot_refresh_token", String(200)),
        Column("bot_token_expires_at", DateTime),
        Column("is_enterprise_install", Boolean, nullable=False, default=False),
        Column("installed_at", DateTime, nullable=False),
    ]


BOTS = Table("slack_bots", _meta, *_bot_columns())
INSTALLATIONS = Table(
    "slack_installations",
    _meta,
    *_bot_columns(),
    Column("enterprise_url", String(200)),
    Column("user_id", String(32), nullable=False),
    Column("user_token", String(200)),
    Column("user_scopes", String(1000)),
    Column("user_refresh_token", String(200)),
    Column("user_token_expires_at", DateTime),
    Column("incoming_webhook_url", String(200)),
    Column("incoming_webhook_channel", String(200)),
    Column("incoming_webhook_channel_id", String(200)),
    Column("incoming_webhook_configuration_url", String(200)),
    Column("token_type", String(32)),
)
STATES = Table(
    "slack_oauth_states",
    _meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("state", String(200), nullable=False),
    Column("expire_at", DateTime, nullable=False),
)
_TIMES = ("installed_at", "bot_token_expires_at", "user_token_expires_at")


def _naive_utc(moment: datetime | None) -> datetime | None:
    """slack_sdk's columns hold naive UTC."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _row(table: Table, values: Mapping[str, Any], client_id: str) -> dict[str, Any]:
    row = {k: v for k, v in values.items() if k in table.c and k != "id"}
    for name in _TIMES:
        if name in row:
            row[name] = _naive_utc(row[name])
    row["client_id"] = client_id
    return row


def _entity_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in row.items() if k not in ("id", "client_id")}
    for name in _TIMES:
        if fields.get(name) is not None:  # naive UTC back to aware, not local time
            fields[name] = fields[name].replace(tzinfo=UTC)
    return fields


def _same(table: Table, client_id: str, enterprise_id: str | None, team_id: str | None) -> Any:
    return and_(
        table.c.client_id == client_id,
        table.c.enterprise_id == enterprise_id,  # None compiles to IS NULL
        table.c.team_id == team_id,
    )


class ThreadedInstallationStore(AsyncInstallationStore):
    """Bolt's installation store on our database; its blocking queries run in threads."""

    def __init__(self, *, client_id: str, engine: Engine, write_engine: Engine) -> None:
        """`write_engine`: the core's engine for write transactions (`Core.write_engine`)."""
        self.client_id = client_id
        self._engine = engine
        self._writer = write_engine

    @property
    def logger(self) -> logging.Logger:
        return logger

    # -- blocking work ------------------------------------------------------------

    def _upsert(self, table: Table, values: Mapping[str, Any]) -> None:
        """One row per installation moment (a token rotation re-saves the same moment)."""
        row = _row(table, values, self.client_id)
        where = and_(
            _same(table, self.client_id, row.get("enterprise_id"), row.get("team_id")),
            table.c.installed_at == row["installed_at"],
        )
        if table is INSTALLATIONS:
            where = and_(where, table.c.user_id == row["user_id"])
        with self._writer.begin() as conn:
            found = conn.execute(select(table.c.id).where(where).limit(1)).scalar()
            if found is None:
                conn.execute(insert(table).values(**row))
            else:
                conn.execute(update(table).where(table.c.id == found).values(**row))

    def _find(self, table: Table, where: Any) -> dict[str, Any] | None:
        query = (
            select(table)
            .where(where)
            .order_by(table.c.installed_at.desc(), table.c.id.desc())
            .limit(1)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _entity_fields(dict(row)) if row is not None else None

    def find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
    ) -> Bot | None:
        team = None if is_enterprise_install or team_id is None else team_id
        fields = self._find(
            BOTS,
            and_(_same(BOTS, self.client_id, enterprise_id, team), BOTS.c.bot_token.is_not(None)),
        )
        return Bot(**fields) if fields is not None else None

    def find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        is_enterprise_install: bool | None,
    ) -> Installation | None:
        team = None if is_enterprise_install or team_id is None else team_id
        where = _same(INSTALLATIONS, self.client_id, enterprise_id, team)
        if user_id is not None:
            where = and_(where, INSTALLATIONS.c.user_id == user_id)
        fields = self._find(INSTALLATIONS, where)
        if fields is None:
            return None
        installation = Installation(**fields)
        if user_id is not None or installation.bot_token is None:
            # The newest bot token of the workspace may come from a later installation.
            bot = self.find_bot(
                enterprise_id=enterprise_id,
                team_id=team,
                is_enterprise_install=is_enterprise_install,
            )
            if bot is not None and bot.bot_token != installation.bot_token:
                for name in ("bot_id", "bot_user_id", "bot_token", "bot_scopes"):
                    setattr(installation, name, getattr(bot, name))
                installation.bot_refresh_token = bot.bot_refresh_token
                installation.bot_token_expires_at = bot.bot_token_expires_at
        return installation

    def _delete(self, table: Table, where: Any) -> None:
        with self._writer.begin() as conn:
            conn.execute(delete(table).where(where))

    # -- AsyncInstallationStore -----------------------------------------------------------

    async def async_save(self, installation: Installation) -> None:
        await asyncio.to_thread(self._upsert, INSTALLATIONS, installation.to_dict())
        await self.async_save_bot(installation.to_bot())

    async def async_save_bot(self, bot: Bot) -> None:
        await asyncio.to_thread(self._upsert, BOTS, bot.to_dict())

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        return await asyncio.to_thread(
            lambda: self.find_bot(
                enterprise_id=enterprise_id,
                team_id=team_id,
                is_enterprise_install=is_enterprise_install,
            )
        )

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        return await asyncio.to_thread(
            lambda: self.find_installation(
                enterprise_id=enterprise_id,
                team_id=team_id,
                user_id=user_id,
                is_enterprise_install=is_enterprise_install,
            )
        )

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await asyncio.to_thread(
            self._delete, BOTS, _same(BOTS, self.client_id, enterprise_id, team_id)
        )

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        where = _same(INSTALLATIONS, self.client_id, enterprise_id, team_id)
        if user_id is not None:
            where = and_(where, INSTALLATIONS.c.user_id == user_id)
        await asyncio.to_thread(self._delete, INSTALLATIONS, where)

    async def bot_token(self, workspace_id: str) -> str | None:
        """The newest bot token of a tenant (an org-wide install answers for its workspaces)."""
        enterprise, team, org_wide = split_tenant(workspace_id)
        bot = await self.async_find_bot(
            enterprise_id=enterprise, team_id=team, is_enterprise_install=org_wide
        )
        if bot is None and enterprise and not org_wide:
            bot = await self.async_find_bot(
                enterprise_id=enterprise, team_id=None, is_enterprise_install=True
            )
        return bot.bot_token if bot is not None else None


class ThreadedOAuthStateStore(AsyncOAuthStateStore):
    """OAuth `state` values in our database: issued per install page, consumed once, expiring."""

    def __init__(self, *, write_engine: Engine, expiration_seconds: int = 600) -> None:
        self._writer = write_engine
        self.expiration_seconds = expiration_seconds

    @property
    def logger(self) -> logging.Logger:
        return logger

    def issue(self) -> str:
        state = str(uuid.uuid4())
        expire_at = datetime.now(UTC) + timedelta(seconds=self.expiration_seconds)
        with self._writer.begin() as conn:
            conn.execute(insert(STATES).values(state=state, expire_at=_naive_utc(expire_at)))
        return state

    def consume(self, state: str) -> bool:
        """True once per issued, unexpired state (one DELETE: two racing callbacks cannot both win)."""
        now = _naive_utc(datetime.now(UTC))
        with self._writer.begin() as conn:
            taken = conn.execute(
                delete(STATES)
                .where(STATES.c.state == state, STATES.c.expire_at > now)
                .returning(STATES.c.id)
            ).first()
            # expired states of abandoned installs go with the next install
            conn.execute(delete(STATES).where(STATES.c.expire_at <= now))
        return taken is not None

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        return await asyncio.to_thread(self.issue)

    async def async_consume(self, state: str) -> bool:
        return await asyncio.to_thread(self.consume, state)

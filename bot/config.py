"""Settings read once at start-up from the environment and a `.env` file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from bot.timeparse import parse_hhmm

DEFAULT_ARXIV_URL = "https://export.arxiv.org/api/query"
DEFAULT_OAI_URL = "https://oaipmh.arxiv.org/oai"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Secret(str):
    """A string that never shows its value in repr() or logs."""

    def __repr__(self) -> str:
        return "Secret('**********')"

    def reveal(self) -> str:
        return str.__str__(self)


@dataclass(frozen=True)
class Settings:
    """Every knob of SPEC section 7, typed; build with `load_settings()`."""

    database_url: str = "sqlite:///papers.db"
    arxiv_api_url: str = DEFAULT_ARXIV_URL
    arxiv_delay_seconds: float = 3.0
    arxiv_timeout_seconds: float = 30.0
    arxiv_retries: int = 3
    arxiv_backoff_seconds: float = 5.0
    arxiv_oai_url: str = DEFAULT_OAI_URL
    arxiv_contact: str | None = None
    timezone: str = "UTC"
    digest_time: str = "09:00"
    fetch_time: str = "01:00"
    fetch_cooldown_seconds: float = 600.0
    slack_bot_token: Secret | None = None
    slack_signing_secret: Secret | None = None
    slack_app_token: Secret | None = None
    slack_client_id: str | None = None
    slack_client_secret: Secret | None = None
    slack_api_url: str | None = None
    slack_managers: frozenset[str] = field(default_factory=frozenset)
    discord_bot_token: Secret | None = None
    discord_guild_id: int | None = None
    discord_api_url: str | None = None
    discord_gateway_url: str | None = None
    discord_shard_ids: tuple[int, ...] | None = None
    discord_shard_count: int | None = None
    host: str = "127.0.0.1"
    port: int = 3000
    public_url: str | None = None  # None: http://HOST:PORT (see `listener_url`)
    shutdown_grace_seconds: float = 20.0
    log_level: str = "INFO"

    @property
    def listener_url(self) -> str:
        """The address users reach the HTTP listener at (feed URLs are built on it)."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token and self.slack_signing_secret) or bool(
            self.slack_client_id and self.slack_client_secret and self.slack_signing_secret
        )

    @property
    def discord_enabled(self) -> bool:
        return bool(self.discord_bot_token)


def _text(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = env.get(name, "").strip()
    return value or default


def _secret(env: Mapping[str, str], name: str) -> Secret | None:
    value = _text(env, name)
    return Secret(value) if value else None


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0) -> float:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


def _optional_int(env: Mapping[str, str], name: str) -> int | None:
    raw = _text(env, name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise ConfigError(f"{name} must be a whole number, got {raw!r}")
    return int(raw)


def _clock(env: Mapping[str, str], name: str, default: str) -> str:
    raw = _text(env, name, default) or default
    parsed = parse_hhmm(raw)
    if parsed is None:
        raise ConfigError(f"{name} must be a time of day as HH:MM, got {raw!r}")
    return f"{parsed[0]:02d}:{parsed[1]:02d}"


def _zone(env: Mapping[str, str], name: str) -> str:
    raw = _text(env, name, "UTC") or "UTC"
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{name} must be an IANA timezone such as Europe/Berlin, got {raw!r}"
        ) from None
    return raw


def _shards(env: Mapping[str, str]) -> tuple[int, ...] | None:
    raw = _text(env, "DISCORD_SHARD_IDS")
    if raw is None:
        return None
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not all(p.isdigit() for p in parts):
        raise ConfigError(f"DISCORD_SHARD_IDS must be comma-separated numbers, got {raw!r}")
    return tuple(int(p) for p in parts)


def settings_from_mapping(env: Mapping[str, str]) -> Settings:
    """Build settings from a plain mapping (the environment, or a test's dict)."""
    managers = _text(env, "SLACK_MANAGERS") or ""
    settings = Settings(
        database_url=_text(env, "DATABASE_URL", Settings.database_url) or Settings.database_url,
        arxiv_api_url=_text(env, "ARXIV_API_URL", DEFAULT_ARXIV_URL) or DEFAULT_ARXIV_URL,
        arxiv_delay_seconds=_number(env, "ARXIV_DELAY_SECONDS", 3.0),
        arxiv_timeout_seconds=_number(env, "ARXIV_TIMEOUT_SECONDS", 30.0, minimum=0.01),
        arxiv_retries=int(_number(env, "ARXIV_RETRIES", 3)),
        arxiv_backoff_seconds=_number(env, "ARXIV_BACKOFF_SECONDS", 5.0),
        arxiv_oai_url=_text(env, "ARXIV_OAI_URL", DEFAULT_OAI_URL) or DEFAULT_OAI_URL,
        arxiv_contact=_text(env, "ARXIV_CONTACT"),
        timezone=_zone(env, "TIMEZONE"),
        digest_time=_clock(env, "DIGEST_TIME", "09:00"),
        fetch_time=_clock(env, "FETCH_TIME", "01:00"),
        fetch_cooldown_seconds=_number(env, "FETCH_COOLDOWN_SECONDS", 600.0),
        slack_bot_token=_secret(env, "SLACK_BOT_TOKEN"),
        slack_signing_secret=_secret(env, "SLACK_SIGNING_SECRET"),
        slack_app_token=_secret(env, "SLACK_APP_TOKEN"),
        slack_client_id=_text(env, "SLACK_CLIENT_ID"),
        slack_client_secret=_secret(env, "SLACK_CLIENT_SECRET"),
        slack_api_url=_text(env, "SLACK_API_URL"),
        slack_managers=frozenset(u.strip() for u in managers.split(",") if u.strip()),
        discord_bot_token=_secret(env, "DISCORD_BOT_TOKEN"),
        discord_guild_id=_optional_int(env, "DISCORD_GUILD_ID"),
        discord_api_url=_text(env, "DISCORD_API_URL"),
        discord_gateway_url=_text(env, "DISCORD_GATEWAY_URL"),
        discord_shard_ids=_shards(env),
        discord_shard_count=_optional_int(env, "DISCORD_SHARD_COUNT"),
        host=_text(env, "HOST", "127.0.0.1") or "127.0.0.1",
        port=int(_number(env, "PORT", 3000)),
        public_url=_text(env, "PUBLIC_URL"),
        shutdown_grace_seconds=_number(env, "SHUTDOWN_GRACE_SECONDS", 20.0),
        log_level=(_text(env, "LOG_LEVEL", "INFO") or "INFO").upper(),
    )
    _check_front_ends(settings)
    return settings


def _check_front_ends(settings: Settings) -> None:
    """A half-configured front end fails at start-up, naming what is missing."""
    if settings.slack_bot_token and not settings.slack_signing_secret:
        raise ConfigError("SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is missing")
    if settings.slack_signing_secret and not (settings.slack_bot_token or settings.slack_client_id):
        raise ConfigError(
            "SLACK_SIGNING_SECRET is set but SLACK_BOT_TOKEN (one workspace) "
            "or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (OAuth) are missing"
        )
    if bool(settings.slack_client_id) != bool(settings.slack_client_secret):
        missing = "SLACK_CLIENT_SECRET" if settings.slack_client_id else "SLACK_CLIENT_ID"
        raise ConfigError(
            f"Slack OAuth needs both SLACK_CLIENT_ID and SLACK_CLIENT_SECRET: {missing} is missing"
        )
    if settings.slack_client_id and not settings.slack_signing_secret:
        raise ConfigError("SLACK_CLIENT_ID is set but SLACK_SIGNING_SECRET is missing")
    if bool(settings.discord_shard_ids) != bool(settings.discord_shard_count):
        missing = "DISCORD_SHARD_COUNT" if settings.discord_shard_ids else "DISCORD_SHARD_IDS"
        raise ConfigError(
            f"Discord sharding needs DISCORD_SHARD_IDS and DISCORD_SHARD_COUNT: {missing} is missing"
        )
    if (
        settings.discord_shard_ids
        and settings.discord_shard_count
        and max(settings.discord_shard_ids) >= settings.discord_shard_count
    ):
        raise ConfigError(
            "DISCORD_SHARD_IDS must be below DISCORD_SHARD_COUNT (shards count from 0)"
        )
    if settings.slack_app_token and not settings.slack_enabled:
        raise ConfigError(
            "SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN or SLACK_SIGNING_SECRET is missing"
        )


def load_settings(env_file: str | Path | None = ".env") -> Settings:
    """Read `.env` (if present) under the real environment, which wins, once."""
    merged: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ)
    return settings_from_mapping(merged)

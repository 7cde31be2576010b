"""Settings read once at start-up from the environment and a `.env` file (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, get_args

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.timeparse import parse_hhmm, parse_zone

DEFAULT_ARXIV_URL = "https://export.arxiv.org/api/query"
DEFAULT_OAI_URL = "https://oaipmh.arxiv.org/oai"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Settings(BaseSettings):
    """Every knob of SPEC section 7, typed; each field is the upper-cased environment variable.

    Build it with `load_settings()` at start-up. Constructing `Settings(...)` directly (tests)
    fills the fields not given from the environment, never from a `.env` file.
    """

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",  # a .env may hold other programs' variables
        env_ignore_empty=True,  # `SLACK_BOT_TOKEN=` as in .env.example means "not set"
        str_strip_whitespace=True,
        hide_input_in_errors=True,  # a malformed secret never lands in an error message
    )

    database_url: str = "sqlite:///papers.db"
    arxiv_api_url: str = DEFAULT_ARXIV_URL
    arxiv_delay_seconds: float = Field(3.0, ge=0)
    arxiv_timeout_seconds: float = Field(30.0, ge=0.01)
    arxiv_retries: int = Field(3, ge=0)
    arxiv_backoff_seconds: float = Field(5.0, ge=0)
    arxiv_oai_url: str = DEFAULT_OAI_URL
    arxiv_contact: str | None = None
    timezone: str = "UTC"
    digest_time: str = "09:00"
    fetch_time: str = "01:00"
    fetch_cooldown_seconds: float = Field(600.0, ge=0)
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    slack_api_url: str | None = None
    slack_managers: Annotated[frozenset[str], NoDecode] = frozenset()
    discord_bot_token: SecretStr | None = None
    discord_guild_id: int | None = Field(None, ge=0)
    discord_api_url: str | None = None
    discord_gateway_url: str | None = None
    discord_shard_ids: Annotated[tuple[int, ...] | None, NoDecode] = None
    discord_shard_count: int | None = Field(None, ge=1)
    host: str = "127.0.0.1"
    port: int = Field(3000, ge=0, le=65535)
    public_url: str | None = None  # None: http://HOST:PORT (see `listener_url`)
    shutdown_grace_seconds: float = Field(20.0, ge=0)
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

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if parse_zone(value) is None:
            raise ValueError("must be an IANA timezone such as Europe/Berlin")
        return value

    @field_validator("digest_time", "fetch_time")
    @classmethod
    def _clock(cls, value: str) -> str:
        clock = parse_hhmm(value)
        if clock is None:
            raise ValueError("must be a time of day as HH:MM")
        return f"{clock[0]:02d}:{clock[1]:02d}"

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().upper() in LOG_LEVELS:
            return value.strip().upper()
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")

    @field_validator("slack_managers", mode="before")
    @classmethod
    def _managers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return frozenset(user.strip() for user in value.split(",") if user.strip())
        return value

    @field_validator("discord_shard_ids", mode="before")
    @classmethod
    def _shards(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not all(p.isdigit() for p in parts):
            raise ValueError("must be comma-separated numbers")
        return tuple(int(p) for p in parts)

    @model_validator(mode="after")
    def _front_ends(self) -> Settings:
        """A half-configured front end fails at start-up, naming what is missing."""
        problem = _front_end_problem(self)
        if problem:
            raise ValueError(problem)
        return self


def _front_end_problem(s: Settings) -> str | None:
    if s.slack_bot_token and not s.slack_signing_secret:
        return "SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is missing"
    if s.slack_signing_secret and not (s.slack_bot_token or s.slack_client_id):
        return (
            "SLACK_SIGNING_SECRET is set but SLACK_BOT_TOKEN (one workspace) "
            "or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (OAuth) are missing"
        )
    if bool(s.slack_client_id) != bool(s.slack_client_secret):
        missing = "SLACK_CLIENT_SECRET" if s.slack_client_id else "SLACK_CLIENT_ID"
        return (
            f"Slack OAuth needs both SLACK_CLIENT_ID and SLACK_CLIENT_SECRET: {missing} is missing"
        )
    if s.slack_client_id and not s.slack_signing_secret:
        return "SLACK_CLIENT_ID is set but SLACK_SIGNING_SECRET is missing"
    if s.slack_app_token and not s.slack_enabled:
        return "SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN or SLACK_SIGNING_SECRET is missing"
    if bool(s.discord_shard_ids) != bool(s.discord_shard_count):
        missing = "DISCORD_SHARD_COUNT" if s.discord_shard_ids else "DISCORD_SHARD_IDS"
        return f"Discord sharding needs DISCORD_SHARD_IDS and DISCORD_SHARD_COUNT: {missing} is missing"
    if (
        s.discord_shard_ids
        and s.discord_shard_count
        and max(s.discord_shard_ids) >= s.discord_shard_count
    ):
        return "DISCORD_SHARD_IDS must be below DISCORD_SHARD_COUNT (shards count from 0)"
    return None


def load_settings(env_file: str | Path | None = ".env") -> Settings:
    """The settings of this process: the environment, then `env_file` (if present) under it.

    Raises `ConfigError` naming every variable that is wrong, never a traceback of pydantic's.
    """
    try:
        return Settings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc)) from None


def describe_errors(exc: ValidationError) -> str:
    """Every problem, each starting with the variable's name (a secret's value is never shown)."""
    lines = []
    for problem in exc.errors(include_url=False):
        message = str(problem["msg"]).removeprefix("Value error, ")
        if not problem["loc"]:
            lines.append(message)  # a check across variables names them itself
            continue
        name = str(problem["loc"][0])
        shown = "" if _is_secret(name) else f" (got {problem.get('input')!r})"
        lines.append(f"{name.upper()}: {message}{shown}")
    return "; ".join(lines)


def _is_secret(name: str) -> bool:
    field = Settings.model_fields.get(name)
    return field is None or SecretStr in get_args(field.annotation)

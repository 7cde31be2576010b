"""Logging: one line per event with level, logger and the workspace and channel ids; no secrets."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from bot.config import Settings

# Token shapes that must never reach a log line, whatever put them in the message.
_TOKEN_SHAPES = re.compile(
    r"xox[abposr]-[A-Za-z0-9-]{6,}"  # Slack bot/user/app-config tokens
    r"|xapp-\d-[A-Za-z0-9-]{6,}"  # Slack app-level tokens
    r"|[MNO][A-Za-z\d_-]{22,27}\.[A-Za-z\d_-]{5,7}\.[A-Za-z\d_-]{25,40}"  # Discord bot tokens
)
REDACTED = "[redacted]"


class RedactingFormatter(logging.Formatter):
    """Formats `time level logger [workspace=… channel=…] message` and blanks out secrets."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(context)s%(message)s")
        self._secrets = sorted((s for s in secrets if s and len(s) >= 6), key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        context = [
            f"{key}={getattr(record, key)}"
            for key in ("workspace", "channel")
            if getattr(record, key, None) is not None
        ]
        record.context = (" ".join(context) + " ") if context else ""
        return self.redact(super().format(record).replace("\n", "\\n"))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return _TOKEN_SHAPES.sub(REDACTED, text)


def secrets_of(settings: Settings) -> list[str]:
    """Every configured secret, plus a password inside DATABASE_URL."""
    values = (
        settings.slack_bot_token,
        settings.slack_signing_secret,
        settings.slack_app_token,
        settings.slack_client_secret,
        settings.discord_bot_token,
    )
    secrets = [v.get_secret_value() for v in values if v is not None]
    credentials = settings.database_url.split("//", 1)[-1].split("@", 1)
    if len(credentials) == 2 and ":" in credentials[0]:
        secrets.append(credentials[0].split(":", 1)[1])
    return secrets


def configure_logging(settings: Settings, *, default_level: str = "INFO") -> None:
    """Root logging for the `papers` process, set once at start-up: at LOG_LEVEL when it is
    set, else at `default_level` (`papers serve` keeps INFO; a terminal command WARNING, so its
    output is its answer, not the schema check's or the arXiv client's progress)."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(secrets_of(settings)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level if "log_level" in settings.model_fields_set else default_level)
    # Chatty at INFO (APScheduler's executor logs every run of the minutely sweep); their
    # warnings still come through.
    noisy = (
        "alembic",
        "discord.gateway",
        "discord.client",
        "aiohttp.access",
        "apscheduler.executors.default",
    )
    for name in noisy:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))

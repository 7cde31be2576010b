"""Settings: defaults, validation, and start-up errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings, settings_from_mapping


def test_defaults_match_the_spec() -> None:
    settings = settings_from_mapping({})
    assert settings.database_url == "sqlite:///papers.db"
    assert settings.arxiv_api_url == "https://export.arxiv.org/api/query"
    assert (
        settings.arxiv_delay_seconds,
        settings.timezone,
        settings.digest_time,
        settings.fetch_time,
    ) == (3.0, "UTC", "09:00", "01:00")
    assert (settings.host, settings.port, settings.log_level) == ("127.0.0.1", 3000, "INFO")
    assert not settings.slack_enabled and not settings.discord_enabled


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SLACK_BOT_TOKEN": "xoxb-test"}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_SIGNING_SECRET": "s"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_CLIENT_ID": "1.2", "SLACK_SIGNING_SECRET": "s"}, "SLACK_CLIENT_SECRET"),
        ({"SLACK_APP_TOKEN": "xapp-test"}, "SLACK_BOT_TOKEN"),
        ({"DISCORD_SHARD_IDS": "0,1"}, "DISCORD_SHARD_COUNT"),
        ({"DISCORD_SHARD_IDS": "2", "DISCORD_SHARD_COUNT": "2"}, "DISCORD_SHARD_IDS"),
        ({"TIMEZONE": "Mars/Olympus"}, "TIMEZONE"),
        ({"DIGEST_TIME": "25:00"}, "DIGEST_TIME"),
        ({"ARXIV_DELAY_SECONDS": "soon"}, "ARXIV_DELAY_SECONDS"),
        ({"DISCORD_GUILD_ID": "abc"}, "DISCORD_GUILD_ID"),
    ],
)
def test_bad_configuration_names_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        settings_from_mapping(env)


def test_dotenv_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "DIGEST_TIME=07:30\nTIMEZONE=Europe/Berlin\nSLACK_BOT_TOKEN=xoxb-from-file\nSLACK_SIGNING_SECRET=file-secret\n"
    )
    monkeypatch.setenv("TIMEZONE", "Asia/Tokyo")
    settings = load_settings(env_file)
    assert settings.digest_time == "07:30"
    assert settings.timezone == "Asia/Tokyo"
    assert settings.slack_enabled
    assert (
        settings.slack_bot_token is not None
        and settings.slack_bot_token.reveal() == "xoxb-from-file"
    )
    assert "xoxb-from-file" not in repr(settings)

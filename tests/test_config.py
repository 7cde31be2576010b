"""Settings: defaults, every SPEC section 7 variable, `.env` under the environment, secrets that
stay hidden, and start-up errors that name the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]


def settings_from(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    """The settings a process started with these variables (and no .env file) would read."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings(env_file=None)


def test_defaults_match_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARXIV_API_URL")  # conftest points them at a dead port for subprocesses
    monkeypatch.delenv("ARXIV_OAI_URL")
    settings = settings_from(monkeypatch)
    assert settings.database_url == "sqlite:///papers.db"
    assert settings.arxiv_api_url == "https://export.arxiv.org/api/query"
    assert settings.arxiv_oai_url == "https://oaipmh.arxiv.org/oai"
    assert settings.arxiv_contact is None
    assert (
        settings.arxiv_delay_seconds,
        settings.timezone,
        settings.digest_time,
        settings.fetch_time,
    ) == (3.0, "UTC", "09:00", "01:00")
    assert (settings.host, settings.port, settings.log_level) == ("127.0.0.1", 3000, "INFO")
    assert settings.shutdown_grace_seconds == 20.0
    assert settings.listener_url == "http://127.0.0.1:3000"
    assert not settings.slack_enabled and not settings.discord_enabled


def test_the_newer_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(
        monkeypatch,
        ARXIV_OAI_URL="http://127.0.0.1:9/oai",
        ARXIV_CONTACT="papers-bot@example.org",
        PUBLIC_URL="https://papers.example.org/",
        SHUTDOWN_GRACE_SECONDS="5",
        SLACK_MANAGERS="U1, U2,,",
        DISCORD_SHARD_IDS="0,2",
        DISCORD_SHARD_COUNT="3",
        DIGEST_TIME="7:05",
        LOG_LEVEL="debug",
    )
    assert settings.arxiv_oai_url == "http://127.0.0.1:9/oai"
    assert settings.arxiv_contact == "papers-bot@example.org"
    assert settings.listener_url == "https://papers.example.org"
    assert settings.shutdown_grace_seconds == 5.0
    assert settings.slack_managers == frozenset({"U1", "U2"})
    assert settings.discord_shard_ids == (0, 2)
    assert settings.digest_time == "07:05"
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SLACK_BOT_TOKEN": "xoxb-test"}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_SIGNING_SECRET": "s"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_CLIENT_ID": "1.2", "SLACK_SIGNING_SECRET": "s"}, "SLACK_CLIENT_SECRET"),
        ({"SLACK_APP_TOKEN": "xapp-test"}, "SLACK_BOT_TOKEN"),
        ({"DISCORD_SHARD_IDS": "0,1"}, "DISCORD_SHARD_COUNT"),
        ({"DISCORD_SHARD_IDS": "2", "DISCORD_SHARD_COUNT": "2"}, "DISCORD_SHARD_IDS"),
        ({"DISCORD_SHARD_IDS": "one"}, "DISCORD_SHARD_IDS"),
        ({"TIMEZONE": "Mars/Olympus"}, "TIMEZONE"),
        ({"TIMEZONE": "Europe"}, "TIMEZONE"),
        ({"DIGEST_TIME": "25:00"}, "DIGEST_TIME"),
        ({"ARXIV_DELAY_SECONDS": "soon"}, "ARXIV_DELAY_SECONDS"),
        ({"ARXIV_DELAY_SECONDS": "-1"}, "ARXIV_DELAY_SECONDS"),
        ({"DISCORD_GUILD_ID": "abc"}, "DISCORD_GUILD_ID"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"PORT": "70000"}, "PORT"),
        ({"SHUTDOWN_GRACE_SECONDS": "a while"}, "SHUTDOWN_GRACE_SECONDS"),
    ],
)
def test_bad_configuration_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        settings_from(monkeypatch, **env)


def test_every_problem_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from(monkeypatch, LOG_LEVEL="LOUD", PORT="abc")
    assert "LOG_LEVEL" in str(caught.value) and "'LOUD'" in str(caught.value)
    assert "PORT" in str(caught.value)


def test_dotenv_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "DIGEST_TIME=07:30\nTIMEZONE=Europe/Berlin\nSLACK_BOT_TOKEN=xoxb-from-file\n"
        "SLACK_SIGNING_SECRET=file-secret\nSOMETHING_ELSE=ignored\n"
    )
    monkeypatch.setenv("TIMEZONE", "Asia/Tokyo")
    settings = load_settings(env_file)
    assert settings.digest_time == "07:30"
    assert settings.timezone == "Asia/Tokyo"
    assert settings.slack_enabled
    assert (
        settings.slack_bot_token is not None
        and settings.slack_bot_token.get_secret_value() == "xoxb-from-file"
    )


def test_the_example_env_file_as_is_gives_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Copying .env.example to .env changes nothing: its empty values mean "not set" (and
    LOG_LEVEL stays unset, so terminal commands keep their quieter default)."""
    example = load_settings(ROOT / ".env.example")
    assert example == load_settings(env_file=None)
    assert "log_level" not in example.model_fields_set


def test_secrets_stay_hidden_in_str_repr_f_strings_and_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_from(
        monkeypatch, SLACK_BOT_TOKEN="xoxb-very-secret", SLACK_SIGNING_SECRET="shh-signing"
    )
    token = settings.slack_bot_token
    assert token is not None
    for shown in (str(token), f"{token}", repr(token), repr(settings), str(settings)):
        assert "very-secret" not in shown and "shh-signing" not in shown
    monkeypatch.setenv("PORT", "xoxb-pasted-in-the-wrong-place")
    with pytest.raises(ConfigError, match="PORT") as caught:
        load_settings(env_file=None)
    assert "very-secret" not in str(caught.value)


def test_env_example_and_readme_list_exactly_the_settings() -> None:
    variables = {name.upper() for name in Settings.model_fields}
    example = (ROOT / ".env.example").read_text()
    assert set(re.findall(r"^([A-Z_]+)=", example, re.M)) == variables
    section = (ROOT / "README.md").read_text().split("\n## Configuration", 1)[1]
    rows = [line for line in section.split("\n## ", 1)[0].splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`([A-Z][A-Z_]+)`", row)}
    assert variables <= documented, variables - documented

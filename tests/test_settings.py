"""Settings: one typed object read once from the environment, and the
README's configuration table naming exactly its fields."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wallet.config import PROJECT_ROOT, Settings, SettingsError, get_settings


def readme_settings() -> set[str]:
    text = (PROJECT_ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", first_cell))
    return names


def test_the_readme_table_lists_every_setting_and_nothing_else() -> None:
    documented, read = readme_settings(), set(Settings.env_names())
    assert read - documented == set(), "settings missing from README's configuration table"
    assert documented - read == set(), "README documents settings that nothing reads"


def test_nothing_set_is_the_embedded_mode(tmp_path: Path) -> None:
    settings = Settings.load({"INSTANCE_PATH": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'wallet.sqlite3'}"
    assert settings.dev_certs_dir == tmp_path / "dev-certs"
    assert settings.broker_url is None and settings.embedded_worker
    assert settings.ratelimit_storage_uri == "wallet-memory://"


def test_values_are_typed_and_cleaned() -> None:
    settings = Settings.load({
        "PUBLIC_BASE_URL": "https://cards.example.com/", "USE_DEV_CERTS": "off",
        "OUTBOX_BATCH_SIZE": " 50 ", "APNS_BACKOFF_BASE": "0.5", "APNS_CA_FILE": "/etc/apns-ca.pem",
        "BROKER_URL": "redis://cache:6379/0", "SECRET_KEY": "",
    })
    assert settings.public_base_url == "https://cards.example.com"
    assert settings.use_dev_certs is False
    assert settings.outbox_batch_size == 50 and settings.apns_backoff_base == 0.5
    assert settings.apns_ca_file == Path("/etc/apns-ca.pem")
    assert settings.secret_key is None  # empty is unset
    # Rate limits follow the broker so every process counts in one place.
    assert settings.ratelimit_storage_uri == "redis://cache:6379/0"


@pytest.mark.parametrize("name, value, says", [
    ("OUTBOX_BATCH_SIZE", "many", "OUTBOX_BATCH_SIZE must be a whole number"),
    ("USE_DEV_CERTS", "perhaps", "USE_DEV_CERTS must be 1 or 0"),
    ("APNS_BACKOFF_BASE", "fast", "APNS_BACKOFF_BASE must be a number"),
])
def test_a_value_that_cannot_be_read_is_named(name: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        Settings.load({name: value})


def test_overrides_win_over_the_environment_and_none_means_unset() -> None:
    settings = Settings.load({"BROKER_URL": "redis://elsewhere/1", "CELERY_QUEUE": "env-queue"},
                             {"BROKER_URL": None, "CELERY_QUEUE": "test-queue"})
    assert settings.broker_url is None and settings.celery_queue == "test-queue"


def test_the_settings_object_cannot_change_after_start(app) -> None:
    settings = get_settings(app)
    with pytest.raises(AttributeError):
        settings.api_rate_limit = "1 per day"  # type: ignore[misc]


def test_flask_and_its_extensions_find_their_keys(app) -> None:
    settings = get_settings(app)
    assert app.config["MAX_CONTENT_LENGTH"] == settings.max_content_length
    assert app.config["RATELIMIT_STORAGE_URI"] == settings.ratelimit_storage_uri
    assert app.config["SECRET_KEY"] == "test-secret"


def test_no_test_sets_a_setting_through_app_config_where_nothing_reads_it() -> None:
    """Code reads settings from the Settings object: a test changes them
    through create_app's overrides (or replaces the object), never app.config."""
    assigned = re.compile(r"app\.config\[[\"'](%s)[\"']\]\s*=(?!=)" % "|".join(Settings.env_names()))
    offenders = [f"{path.relative_to(PROJECT_ROOT)}:{number}"
                 for path in (PROJECT_ROOT / "tests").rglob("*.py")
                 for number, line in enumerate(path.read_text().splitlines(), 1) if assigned.search(line)]
    assert offenders == []


def test_only_wallet_config_reads_the_environment_and_settings_come_from_it() -> None:
    by_config = re.compile(r"config(?:\[|\.get\()[\"'](%s)[\"']" % "|".join(Settings.env_names()))
    readers = []
    for path in (PROJECT_ROOT / "wallet").rglob("*.py"):
        if path == PROJECT_ROOT / "wallet" / "config.py":
            continue
        text = path.read_text()
        if re.search(r"os\.environ|getenv\(", text) or by_config.search(text):
            readers.append(str(path.relative_to(PROJECT_ROOT)))
    assert readers == []

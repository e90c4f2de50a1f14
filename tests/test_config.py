"""Configuration: the embedded default needs nothing; production fails fast naming the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mailer.config import ConfigError, load_config

PRODUCTION = {
    "MAILER_ENV": "production",
    "SECRET_KEY": "s" * 40,
    "BASE_URL": "https://news.example.org",
    "DATABASE_URL": "postgresql://mailer@db.example.org/mailer",
    "REDIS_URL": "redis://redis.example.org:6379/0",
    "SMTP_URL": "smtps://user:p%40ss@smtp.example.org:465",
    "MAIL_FROM": "SMEWG News <news@example.org>",
    "ORG_POSTAL_ADDRESS": "APEC Secretariat\\n35 Heng Mui Keng Terrace\\nSingapore 119616",
}


def test_embedded_default_needs_no_variables(tmp_path: Path) -> None:
    """With nothing set: SQLite in the instance folder, embedded Redis socket, dev SMTP, stable key."""
    config = load_config({}, str(tmp_path))
    assert config["EMBEDDED"] is True
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'mailer.db'}"
    assert config["REDIS_URL"] == f"unix://{tmp_path / 'redis.sock'}"
    assert config["SMTP_URL"] == "smtp://127.0.0.1:8025"
    assert config["BASE_URL"] == "http://127.0.0.1:5000"
    assert config["BOUNCE_ADDRESS"] == config["MAIL_FROM"]
    assert config["SEND_RATE"] is None
    assert config["DKIM_KEY"] is None
    assert load_config({}, str(tmp_path))["SECRET_KEY"] == config["SECRET_KEY"]
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_production_accepts_a_complete_configuration(tmp_path: Path) -> None:
    """A full production environment loads; postgres URLs get the psycopg dialect."""
    config = load_config(PRODUCTION, str(tmp_path))
    assert config["EMBEDDED"] is False
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://mailer@db.example.org/mailer"
    assert config["PREFERRED_URL_SCHEME"] == "https"
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize(
    "name", ["SECRET_KEY", "BASE_URL", "DATABASE_URL", "REDIS_URL", "SMTP_URL", "MAIL_FROM", "ORG_POSTAL_ADDRESS"]
)
def test_production_names_a_missing_variable(tmp_path: Path, name: str) -> None:
    """Each required variable left out stops start-up with its name in the message."""
    env = {k: v for k, v in PRODUCTION.items() if k != name}
    with pytest.raises(ConfigError, match=name):
        load_config(env, str(tmp_path))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAILER_ENV", "staging"),
        ("SECRET_KEY", "short"),
        ("BASE_URL", "ftp://news.example.org"),
        ("BASE_URL", "https://"),
        ("BASE_URL", "http://news.example.org"),
        ("BASE_URL", "http://127.0.0.1.example.org"),
        ("ORG_POSTAL_ADDRESS", "1 Example Street\tExample City"),
        ("ORG_POSTAL_ADDRESS", "1 Example Street\x1b[31m"),
        ("ORG_POSTAL_ADDRESS", "Example Street\n" * 30),
        ("DATABASE_URL", "mysql://db/mailer"),
        ("REDIS_URL", "http://redis:6379"),
        ("REDIS_URL", "redis://redis:notaport/0"),
        ("SMTP_URL", "smtp:/host"),
        ("SMTP_URL", "imap://mail.example.org"),
        ("SMTP_URL", "smtp://user:secret@mail.example.org:587"),
        ("SMTP_URL", "smtp://mail.example.org?starttls=maybe"),
        ("SMTP_URL", "smtps://mail.example.org?starttls=1"),
        ("SMTP_URL", "smtp://mail.example.org?tls=1"),
        ("MAIL_FROM", "not an address"),
        ("MAIL_FROM", "News <news@example.org>\r\nBcc: victim@example.org"),
        ("BOUNCE_ADDRESS", "bounces@"),
        ("SEND_RATE", "fast"),
        ("SEND_RATE", "-3"),
        ("SEND_RATE", "0"),
        ("SEND_RATE", "inf"),
        ("DKIM_DOMAIN", "example.org"),
        ("PROXY_FIX_HOPS", "-1"),
        ("LIST_ID", "news"),
        ("LIST_ID", "News <news.example.org>\r\nBcc: x@example.org"),
        ("PROXY_FIX_HOPS", "many"),
        ("SEND_BATCH_SIZE", "lots"),
        ("CHECK_DELIVERABILITY", "maybe"),
        ("CONSENT_VERSION", "x" * 33),
        ("CONSENT_VERSION", "2026-11\u0007"),
        ("CORS_ORIGINS", "www.example.org"),
        ("CORS_ORIGINS", "https://www.example.org/widget"),
        ("CORS_ORIGINS", "javascript://x"),
        ("SEND_BATCH_SIZE", "0"),
        ("SEND_CHUNK_SIZE", "100000"),
        ("SEND_CHUNK_SIZE", "1e3"),
        ("SEND_CONNECTIONS", "0"),
        ("SEND_CONNECTIONS", "64"),
        ("SEND_LEASE", "1"),
        ("SEND_LEASE", "-60"),
        ("SEND_MAX_ATTEMPTS", "0"),
        ("SEND_RETRY_DELAY", "30s"),
        ("SEND_PAUSE_AFTER", "0"),
        ("SWEEP_INTERVAL", "0"),
        ("SWEEP_INTERVAL", "15.5"),
        ("RATELIMIT_SUBSCRIBE_IP", "lots"),
        ("RATELIMIT_CONFIRM_ADDRESS", "3 per fortnight"),
        ("RATELIMIT_CONFIRM_DOMAIN", "200"),
        ("FEED_ALLOW_PRIVATE", "sometimes"),
        ("FEED_FETCH_INTERVAL", "10"),
        ("FEED_MAX_BYTES", "5MB"),
        ("FEED_TIMEOUT", "0"),
        ("REMINDER_HOUR", "24"),
    ],
)
def test_production_names_a_malformed_variable(tmp_path: Path, name: str, value: str) -> None:
    """A malformed value is refused with the variable's name."""
    with pytest.raises(ConfigError, match=name):
        load_config({**PRODUCTION, name: value}, str(tmp_path))


def test_feeds_reach_private_networks_only_when_allowed(tmp_path: Path) -> None:
    """Production keeps feeds on the public internet unless FEED_ALLOW_PRIVATE=1; the embedded default allows them."""
    assert load_config(PRODUCTION, str(tmp_path))["FEED_ALLOW_PRIVATE"] is False
    assert load_config({**PRODUCTION, "FEED_ALLOW_PRIVATE": "1"}, str(tmp_path))["FEED_ALLOW_PRIVATE"] is True
    assert load_config({}, str(tmp_path))["FEED_ALLOW_PRIVATE"] is True
    assert load_config({"FEED_ALLOW_PRIVATE": "0"}, str(tmp_path))["FEED_ALLOW_PRIVATE"] is False


def test_dkim_needs_a_readable_pem_key(tmp_path: Path) -> None:
    """DKIM with all three variables loads the key; a missing or non-PEM file is named."""
    dkim = {"DKIM_DOMAIN": "example.org", "DKIM_SELECTOR": "mail", "DKIM_PRIVATE_KEY": str(tmp_path / "none.pem")}
    with pytest.raises(ConfigError, match="DKIM_PRIVATE_KEY cannot be read"):
        load_config({**PRODUCTION, **dkim}, str(tmp_path))
    (tmp_path / "bad.pem").write_text("hello")
    with pytest.raises(ConfigError, match="not a PEM private key"):
        load_config({**PRODUCTION, **dkim, "DKIM_PRIVATE_KEY": str(tmp_path / "bad.pem")}, str(tmp_path))
    (tmp_path / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n")
    config = load_config({**PRODUCTION, **dkim, "DKIM_PRIVATE_KEY": str(tmp_path / "key.pem")}, str(tmp_path))
    assert config["DKIM_KEY"].startswith(b"-----BEGIN PRIVATE KEY")


def test_production_takes_http_only_on_loopback(tmp_path: Path) -> None:
    """One-click unsubscribe needs https; plain http is left to this machine (local runs, benches, tests)."""
    for base_url in ("http://127.0.0.1:5000", "http://localhost:8000/", "http://[::1]:5000"):
        assert load_config({**PRODUCTION, "BASE_URL": base_url}, str(tmp_path))["BASE_URL"] == base_url.rstrip("/")
    with pytest.raises(ConfigError, match="BASE_URL must be https://"):
        load_config({**PRODUCTION, "BASE_URL": "http://news.example.org"}, str(tmp_path))
    assert load_config({"BASE_URL": "http://news.example.org"}, str(tmp_path))["BASE_URL"] == "http://news.example.org"


def test_postal_address_lines(tmp_path: Path) -> None:
    """Lines split by real newlines or a literal backslash-n, trimmed; the embedded default says it is a demo."""
    assert load_config(PRODUCTION, str(tmp_path))["ORG_POSTAL_ADDRESS"] == (
        "APEC Secretariat\n35 Heng Mui Keng Terrace\nSingapore 119616"
    )
    given = {**PRODUCTION, "ORG_POSTAL_ADDRESS": " Rue Haute 1 \r\n\n 1000 Brussels "}
    assert load_config(given, str(tmp_path))["ORG_POSTAL_ADDRESS"] == "Rue Haute 1\n1000 Brussels"
    assert "demo" in load_config({}, str(tmp_path))["ORG_POSTAL_ADDRESS"]


@pytest.mark.parametrize(
    ("change", "line"),
    [
        ({"SEND_RATE": "lots"}, "SEND_RATE must be a number, got 'lots'"),
        ({"ORG_POSTAL_ADDRESS": ""}, "ORG_POSTAL_ADDRESS is required when MAILER_ENV=production"),
        (
            {"BASE_URL": "http://news.example.org"},
            "BASE_URL must be https:// in production (one-click unsubscribe needs it), got 'http://news.example.org'",
        ),
    ],
    ids=["malformed", "missing-address", "http"],
)
def test_bad_configuration_stops_the_cli_with_one_line(tmp_path: Path, change: dict[str, str], line: str) -> None:
    """`flask --app wsgi` with a bad value prints one line naming it, no traceback, exit non-zero."""
    env = {"PATH": "/usr/bin:/bin", "MAILER_INSTANCE": str(tmp_path), **PRODUCTION, **change}
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "routes"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip() == f"mailer: configuration error: {line}"
    assert "Traceback" not in result.stdout + result.stderr


def test_send_engine_settings_are_read(tmp_path: Path) -> None:
    """The SEND_* settings and SWEEP_INTERVAL come from the environment, with their defaults otherwise."""
    given = {"SEND_BATCH_SIZE": "250", "SEND_CHUNK_SIZE": "50", "SEND_LEASE": "30", "SEND_MAX_ATTEMPTS": "3",
             "SEND_CONNECTIONS": "4", "SEND_RETRY_DELAY": "0", "SEND_PAUSE_AFTER": "4",
             "SWEEP_INTERVAL": "5"}  # fmt: skip
    config = load_config({**PRODUCTION, **given}, str(tmp_path))
    assert {name: config[name] for name in given} == {name: int(value) for name, value in given.items()}
    defaults = load_config(PRODUCTION, str(tmp_path))
    assert (defaults["SEND_BATCH_SIZE"], defaults["SEND_CHUNK_SIZE"], defaults["SEND_LEASE"]) == (500, 100, 60)


def test_cors_origins_are_a_trimmed_list(tmp_path: Path) -> None:
    """Spaces after commas do not make an origin unmatchable."""
    config = load_config({"CORS_ORIGINS": "https://a.example.org, https://b.example.org ,"}, str(tmp_path))
    assert config["CORS_ORIGINS"] == ["https://a.example.org", "https://b.example.org"]


def test_list_id_is_read(tmp_path: Path) -> None:
    """A well-formed LIST_ID is kept as given."""
    config = load_config({"LIST_ID": "SMEWG News <news.smewg.example.org>"}, str(tmp_path))
    assert config["LIST_ID"] == "SMEWG News <news.smewg.example.org>"


def test_organisation_name(tmp_path: Path) -> None:
    """ORG_NAME wins; otherwise MAIL_FROM's display name; a multi-line name is refused."""
    assert load_config({"MAIL_FROM": "SMEWG News <news@example.org>"}, str(tmp_path))["ORG_NAME"] == "SMEWG News"
    config = load_config({"ORG_NAME": "APEC SMEWG", "MAIL_FROM": "News <news@example.org>"}, str(tmp_path))
    assert config["ORG_NAME"] == "APEC SMEWG"
    with pytest.raises(ConfigError, match="ORG_NAME"):
        load_config({"ORG_NAME": "A\nB"}, str(tmp_path))


def test_bad_configuration_stops_the_procfile_web_process(tmp_path: Path) -> None:
    """The Procfile's web command exits at start with the one line, instead of respawning workers."""
    procfile = (Path(__file__).resolve().parents[1] / "Procfile").read_text()
    web = next(line.split(":", 1)[1].strip() for line in procfile.splitlines() if line.startswith("web:"))
    command = web.replace("${PORT:-5000}", "0").replace("${WEB_CONCURRENCY:-2}", "1").split()
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "MAILER_INSTANCE": str(tmp_path),
           "MAILER_ENV": "production"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=Path(__file__).resolve().parents[1], env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "mailer: configuration error: SECRET_KEY is required when MAILER_ENV=production" in result.stderr
    assert "Booting worker" not in result.stderr


def test_redis_prefix_names_the_queue_and_keys(tmp_path: Path, redis_url: str) -> None:
    """REDIS_PREFIX namespaces the Celery queue, the rate-limit keys and mailer's own keys."""
    from mailer import create_app
    from mailer.redis_client import redis_key

    app = create_app({"TESTING": True, "REDIS_URL": redis_url, "REDIS_PREFIX": "smewg-news"})
    assert app.extensions["celery"].conf.task_default_queue == "smewg-news"
    assert app.config["RATELIMIT_KEY_PREFIX"] == "smewg-news"
    with app.app_context():
        assert redis_key("worker-heartbeat") == "smewg-news:worker-heartbeat"
    with pytest.raises(ConfigError, match="REDIS_PREFIX"):
        load_config({"REDIS_PREFIX": "bad prefix*"}, str(tmp_path))


@pytest.mark.parametrize("value", ["Mars/Base", "../../etc/passwd", "UTC+2", "Asia/Singapore\n"])
def test_a_malformed_time_zone_stops_start_up(tmp_path: Path, value: str) -> None:
    """ORG_TIMEZONE must name a zone in the IANA database; anything else is one line naming the variable."""
    if value.strip() == "Asia/Singapore":
        assert load_config({"ORG_TIMEZONE": value}, str(tmp_path))["ORG_TIMEZONE"] == "Asia/Singapore"
        return
    with pytest.raises(ConfigError, match="^ORG_TIMEZONE must be an IANA time zone"):
        load_config({"ORG_TIMEZONE": value}, str(tmp_path))

"""Configuration: defaults as data, the environment read once at start, bad values fail fast.

Production mode is selected with ``MAILER_ENV=production``. Anything else (or nothing) is the
embedded default: every missing value gets a local default so one command runs the service.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import secrets
from collections.abc import Mapping
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from email_validator import EmailNotValidError, validate_email
from limits import parse_many

from .smtp_url import SMTPSettings
from .text import is_one_line

PRODUCTION = "production"
DEVELOPMENT = "development"

#: Variables that production refuses to start without.
REQUIRED_IN_PRODUCTION = (
    "SECRET_KEY",
    "BASE_URL",
    "DATABASE_URL",
    "REDIS_URL",
    "SMTP_URL",
    "MAIL_FROM",
    "ORG_POSTAL_ADDRESS",
)

#: Hosts that production may reach over plain http: the machine itself (local runs, benches, tests).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")

#: The longest ORG_POSTAL_ADDRESS, all its lines together.
POSTAL_ADDRESS_MAX = 300

DEFAULTS: dict[str, object] = {
    "BASE_URL": "http://127.0.0.1:5000",
    "MAIL_FROM": "SMEWG News (demo) <news@demo.mailer.invalid>",
    # Every email's footer shows it (anti-spam laws ask for one); production must set the real one.
    "ORG_POSTAL_ADDRESS": "1 Example Street (demo address)\nExample City 00000",
    "SMTP_URL": "smtp://127.0.0.1:8025",
    "SEND_RATE": None,
    "LIST_ID": None,
    "REPLY_TO": None,
    "UNSUBSCRIBE_MAILTO": None,
    "CONSENT_VERSION": "2026-11",
    # The organisation's time zone: the console shows and takes times in it (schedules, dates).
    "ORG_TIMEZONE": "UTC",
    "CORS_ORIGINS": "",
    "CONFIRM_MAX_AGE": 7 * 24 * 3600,
    # A test copy's "view in browser" link (it carries a token) works for two weeks.
    "TEST_LINK_MAX_AGE": 14 * 24 * 3600,
    "RATELIMIT_SUBSCRIBE_IP": "20 per hour",
    "RATELIMIT_CONFIRM_ADDRESS": "3 per hour",
    # Generous: one organisation's people subscribe from one domain; this only stops a flood.
    "RATELIMIT_CONFIRM_DOMAIN": "200 per hour",
    "CHECK_DELIVERABILITY": False,
    # The send engine (see mailer/sending): deliveries per send task, per claim, the claim's
    # lease in seconds, attempts and backoff for transient failures, auto-pause, sweep period.
    "SEND_BATCH_SIZE": 500,
    "SEND_CHUNK_SIZE": 100,
    "SEND_CONNECTIONS": 2,
    "SEND_LEASE": 60,
    "SEND_MAX_ATTEMPTS": 5,
    "SEND_RETRY_DELAY": 30,
    "SEND_PAUSE_AFTER": 10,
    "SWEEP_INTERVAL": 15,
    # Bounces (see mailer/bounces): soft bounces on this many different days within the window
    # (days) suppress an address; where the ``bounces`` process listens for SMTP.
    "BOUNCE_SOFT_THRESHOLD": 3,
    "BOUNCE_SOFT_WINDOW": 14,
    "BOUNCE_LISTEN": "127.0.0.1:2525",
    # Seconds between polls of BOUNCE_MAILBOX_URL (see mailer/bounces/mailbox.py), when it is set.
    "BOUNCE_MAILBOX_INTERVAL": 60,
    # Provider webhooks (see mailer/bounces/webhooks.py): hosts SNS signing certificates and
    # subscription confirmations may come from.
    "SES_CERT_HOSTS": r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$",
    # Feeds in (see mailer/feeds): seconds between fetches of each feed, the largest answer read,
    # and the seconds one fetch may take in all.
    "FEED_FETCH_INTERVAL": 3600,
    "FEED_MAX_BYTES": 5 * 1024 * 1024,
    "FEED_TIMEOUT": 20,
    # Meeting reminders (see mailer/reminders) go out from this hour of the day, in ORG_TIMEZONE.
    "REMINDER_HOUR": 8,
    "PROXY_FIX_HOPS": 0,
    "REDIS_PREFIX": "mailer",
    # The resolver ``doctor`` asks (host, port); None is the system resolver.
    "DNS_NAMESERVER": None,
    # No form or API body is anywhere near this; larger requests get 413.
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    # How staff passwords are hashed (Werkzeug's method string); not read from the environment.
    "PASSWORD_HASH_METHOD": "scrypt",
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
}


#: Allowed ranges of the send engine's whole-number settings.
SEND_LIMITS = {
    "SEND_BATCH_SIZE": (1, 100_000),
    "SEND_CHUNK_SIZE": (1, 1_000),
    "SEND_CONNECTIONS": (1, 16),
    "SEND_LEASE": (2, 3_600),
    "SEND_MAX_ATTEMPTS": (1, 20),
    "SEND_RETRY_DELAY": (0, 86_400),
    "SEND_PAUSE_AFTER": (1, 1_000),
    "SWEEP_INTERVAL": (1, 600),
    "BOUNCE_SOFT_THRESHOLD": (1, 100),
    "BOUNCE_SOFT_WINDOW": (1, 365),
    "BOUNCE_MAILBOX_INTERVAL": (10, 3_600),
    "FEED_FETCH_INTERVAL": (60, 7 * 86_400),
    "FEED_MAX_BYTES": (1_024, 100 * 1024 * 1024),
    "FEED_TIMEOUT": (1, 300),
    "REMINDER_HOUR": (0, 23),
}


#: Rate limits on subscribing, in the ``limits`` notation ("3 per hour", "20/hour;100/day").
RATE_LIMITS = ("RATELIMIT_SUBSCRIBE_IP", "RATELIMIT_CONFIRM_ADDRESS", "RATELIMIT_CONFIRM_DOMAIN")


class ConfigError(Exception):
    """A configuration value is missing or malformed; the message names the variable."""


def load_config(environ: Mapping[str, str], instance_path: str) -> dict[str, object]:
    """Build the Flask config mapping from ``environ``; raise ConfigError on the first bad value."""
    env = environ.get("MAILER_ENV", DEVELOPMENT).strip() or DEVELOPMENT
    if env not in (PRODUCTION, DEVELOPMENT):
        raise ConfigError(f"MAILER_ENV must be 'production' or 'development', not {env!r}")
    production = env == PRODUCTION
    get = _Reader(environ, production)
    instance = Path(instance_path)
    config: dict[str, object] = dict(DEFAULTS)
    config["MAILER_ENV"] = env
    config["EMBEDDED"] = not production
    config["SECRET_KEY"] = get.secret_key(instance)
    config["BASE_URL"] = get.base_url()
    config["SQLALCHEMY_DATABASE_URI"] = get.database_url(instance)
    config["REDIS_URL"] = get.url("REDIS_URL", ("redis", "rediss", "unix"), f"unix://{instance / 'redis.sock'}")
    config["SMTP_URL"] = get.smtp_url()
    config["MAIL_FROM"] = get.address("MAIL_FROM", DEFAULTS["MAIL_FROM"])
    config["BOUNCE_ADDRESS"] = get.address("BOUNCE_ADDRESS", config["MAIL_FROM"])
    # The name emails and pages show: ORG_NAME, else MAIL_FROM's display name.
    config["ORG_NAME"] = get.line("ORG_NAME") or parseaddr(str(config["MAIL_FROM"]))[0] or "SMEWG News"
    config["ORG_POSTAL_ADDRESS"] = get.postal_address()
    config["REPLY_TO"] = get.address("REPLY_TO", None)
    # A bare address: it goes into a mailto: URL, where a display name has no place.
    config["UNSUBSCRIBE_MAILTO"] = parseaddr(get.address("UNSUBSCRIBE_MAILTO", None) or "")[1] or None
    config["LIST_ID"] = get.list_id()
    config["SEND_RATE"] = get.positive_number("SEND_RATE")
    config["REDIS_PREFIX"] = get.redis_prefix()
    config.update(get.dkim())
    config["CORS_ORIGINS"] = get.origins("CORS_ORIGINS")
    for name in RATE_LIMITS:
        config[name] = get.rate_limit(name)
    # Stored with every consent event (a 32-character column).
    config["CONSENT_VERSION"] = get.line("CONSENT_VERSION", 32) or DEFAULTS["CONSENT_VERSION"]
    config["ORG_TIMEZONE"] = get.timezone("ORG_TIMEZONE")
    config["CHECK_DELIVERABILITY"] = get.flag("CHECK_DELIVERABILITY")
    # Feeds may reach loopback and private networks only when allowed: in production that is a
    # choice (a feed URL must not reach the cloud's metadata service or an internal admin page).
    chosen = get.raw("FEED_ALLOW_PRIVATE") is not None or production
    config["FEED_ALLOW_PRIVATE"] = get.flag("FEED_ALLOW_PRIVATE") if chosen else True
    config["PREFERRED_URL_SCHEME"] = urlsplit(str(config["BASE_URL"])).scheme
    config["SESSION_COOKIE_SECURE"] = config["PREFERRED_URL_SCHEME"] == "https"
    config["PROXY_FIX_HOPS"] = get.count("PROXY_FIX_HOPS")
    config["BOUNCE_LISTEN"] = get.host_port("BOUNCE_LISTEN")
    config["BOUNCE_MAILBOX_URL"] = get.mailbox_url("BOUNCE_MAILBOX_URL")
    config["DNS_NAMESERVER"] = get.nameserver("DNS_NAMESERVER")
    config.update(get.webhooks())
    for name, (low, high) in SEND_LIMITS.items():
        config[name] = get.whole_number(name, low, high)
    config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}
    return config


class _Reader:
    """Reads and checks single variables, raising ConfigError that names the variable."""

    def __init__(self, environ: Mapping[str, str], production: bool) -> None:
        self.environ = environ
        self.production = production

    def raw(self, name: str) -> str | None:
        """Return the stripped value, or None when unset or empty (missing in production fails)."""
        value = self.environ.get(name, "").strip()
        if value:
            return value
        if self.production and name in REQUIRED_IN_PRODUCTION:
            raise ConfigError(f"{name} is required when MAILER_ENV=production")
        return None

    def secret_key(self, instance: Path) -> str:
        """Return SECRET_KEY, or in the embedded default one generated once in the instance folder."""
        value = self.raw("SECRET_KEY")
        if value is not None:
            if len(value) < 32:
                raise ConfigError("SECRET_KEY must be at least 32 characters long")
            return value
        path = instance / "secret_key"
        if not path.exists():
            instance.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

    def url(self, name: str, schemes: tuple[str, ...], default: object) -> str:
        """Return a URL whose scheme is one of ``schemes`` and that names a host or socket path."""
        value = self.raw(name)
        if value is None:
            return str(default)
        parts = urlsplit(value)
        if parts.scheme not in schemes:
            raise ConfigError(f"{name} must start with {' or '.join(s + '://' for s in schemes)}, got {value!r}")
        if not (parts.hostname or (parts.scheme == "unix" and parts.path)):
            raise ConfigError(f"{name} names no host: {value!r}")
        try:
            _ = parts.port  # urlsplit checks the port only when asked
        except ValueError:
            raise ConfigError(f"{name} has an invalid port: {value!r}") from None
        return value

    def mailbox_url(self, name: str) -> str | None:
        """Return ``imaps://user:password@host[:port]/FOLDER``, or None when unset; never echoes the password.

        Plain ``imap://`` only to the machine itself, as SMTP_URL's credentials: a password must not
        cross the network unencrypted.
        """
        value = self.raw(name)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("imaps", "imap") or not parts.hostname:
            raise ConfigError(f"{name} must be imaps://user:password@host[:port]/FOLDER")
        if parts.scheme == "imap" and parts.hostname not in LOOPBACK_HOSTS:
            raise ConfigError(f"{name}: imap:// sends the password in clear; use imaps:// (imap:// is loopback only)")
        try:
            valid_port = parts.port != 0
        except ValueError:
            valid_port = False
        if not valid_port:
            raise ConfigError(f"{name} has an invalid port")
        if not parts.username or not parts.password:
            raise ConfigError(f"{name} must name a user and a password (percent-encoded): imaps://user:password@host")
        folder = unquote(parts.path.lstrip("/"))
        if parts.query or parts.fragment or not re.fullmatch(r"[\x20-\x7e]*", folder):
            raise ConfigError(f"{name}: the folder after the host must be printable ASCII, with no ?query or #fragment")
        return value

    def base_url(self) -> str:
        """Return BASE_URL without a trailing slash; production wants https unless the host is loopback.

        RFC 8058 one-click unsubscribe posts to an https URL; plain http is left to local runs.
        """
        value = self.url("BASE_URL", ("http", "https"), DEFAULTS["BASE_URL"]).rstrip("/")
        parts = urlsplit(value)
        if self.production and parts.scheme != "https" and parts.hostname not in LOOPBACK_HOSTS:
            raise ConfigError(
                f"BASE_URL must be https:// in production (one-click unsubscribe needs it), got {value!r}"
            )
        return value

    def postal_address(self) -> str:
        """Return ORG_POSTAL_ADDRESS: lines split by newlines or a literal ``\\n``, no other control characters."""
        value = self.raw("ORG_POSTAL_ADDRESS")
        if value is None:
            return str(DEFAULTS["ORG_POSTAL_ADDRESS"])
        lines = [line.strip() for line in value.replace("\\n", "\n").replace("\r\n", "\n").split("\n")]
        address = "\n".join(line for line in lines if line)
        if len(address) > POSTAL_ADDRESS_MAX or not all(is_one_line(line) for line in lines):
            raise ConfigError(
                f"ORG_POSTAL_ADDRESS must be at most {POSTAL_ADDRESS_MAX} characters without control characters "
                "(lines separated by newlines or \\n)"
            )
        return address

    def smtp_url(self) -> str:
        """Return SMTP_URL once the transport can use it (TLS flags, credentials, timeout)."""
        value = self.url("SMTP_URL", ("smtp", "smtps"), DEFAULTS["SMTP_URL"])
        try:
            SMTPSettings.from_url(value)
        except ValueError as exc:
            message = str(exc)
            raise ConfigError(message if message.startswith("SMTP_URL") else f"SMTP_URL: {message}") from None
        return value

    def database_url(self, instance: Path) -> str:
        """Return DATABASE_URL as SQLAlchemy wants it (postgres:// becomes postgresql+psycopg://)."""
        value = self.raw("DATABASE_URL")
        if value is None:
            instance.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{instance / 'mailer.db'}"
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme in ("postgres", "postgresql"):
            return "postgresql+psycopg://" + value.split("://", 1)[1]
        if scheme in ("postgresql+psycopg", "sqlite"):
            return value
        raise ConfigError(f"DATABASE_URL must be a postgresql:// or sqlite:// URL, got {scheme or value!r}")

    def address(self, name: str, default: object) -> str | None:
        """Return an address header value such as ``Name <a@b.org>`` after checking the address."""
        value = self.raw(name)
        if value is None:
            return default if default is None else str(default)
        if "\r" in value or "\n" in value:
            raise ConfigError(f"{name} must be a single line")
        _, addr = parseaddr(value)
        try:
            validate_email(addr, check_deliverability=False, test_environment=True)
        except EmailNotValidError as exc:
            raise ConfigError(f"{name} is not a valid address ({exc}): {value!r}") from None
        return value

    def redis_prefix(self) -> str:
        """Return REDIS_PREFIX: letters, digits, dots, dashes and underscores, at most 40."""
        value = self.raw("REDIS_PREFIX")
        if value is None:
            return str(DEFAULTS["REDIS_PREFIX"])
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", value):
            raise ConfigError(f"REDIS_PREFIX must be 1 to 40 letters, digits, '.', '-' or '_', got {value!r}")
        return value

    def timezone(self, name: str) -> str:
        """An IANA time zone name (Europe/Paris, Asia/Singapore), checked against the zone database."""
        value = (self.raw(name) or str(DEFAULTS[name])).strip()
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"{name} must be an IANA time zone such as Asia/Singapore, got {value!r}") from None
        return value

    def line(self, name: str, limit: int = 120) -> str | None:
        """Return a single line of at most ``limit`` characters, or None when unset."""
        value = self.raw(name)
        if value is not None and (len(value) > limit or not is_one_line(value)):
            raise ConfigError(f"{name} must be one line of at most {limit} characters")
        return value

    def list_id(self) -> str | None:
        """Return LIST_ID as ``Name <id.domain>`` or ``<id.domain>`` (RFC 2919), or None."""
        value = self.raw("LIST_ID")
        if value is None:
            return None
        if not re.fullmatch(r"[^\x00-\x1f<>]{0,200}<[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+\.[A-Za-z0-9.-]+>", value):
            raise ConfigError(f"LIST_ID must look like 'SMEWG News <news.example.org>', got {value!r}")
        return value

    def positive_number(self, name: str) -> float | None:
        """Return a positive float, or None when unset."""
        value = self.raw(name)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {value!r}") from None
        if not number > 0 or number == float("inf"):
            raise ConfigError(f"{name} must be a positive number, got {value!r}")
        return number

    def count(self, name: str) -> int:
        """Return a whole number from 0 to 10 (default 0)."""
        value = self.raw(name)
        if value is None:
            return 0
        if not value.isdigit() or int(value) > 10:
            raise ConfigError(f"{name} must be a whole number from 0 to 10, got {value!r}")
        return int(value)

    def flag(self, name: str) -> bool:
        """Return an on/off setting: 1, true, yes or 0, false, no (off when unset)."""
        value = (self.raw(name) or "0").lower()
        if value not in ("1", "true", "yes", "0", "false", "no"):
            raise ConfigError(f"{name} must be 1 or 0, got {value!r}")
        return value in ("1", "true", "yes")

    def origins(self, name: str) -> list[str]:
        """Return comma-separated web origins such as ``https://www.example.org`` (scheme, host, port only)."""
        origins = [o.strip() for o in (self.raw(name) or "").split(",") if o.strip()]
        for origin in origins:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
                raise ConfigError(f"{name} must list origins such as https://www.example.org, got {origin!r}")
        return origins

    def host_port(self, name: str) -> str:
        """``host:port`` (IPv6 hosts in brackets) with a port from 1 to 65535."""
        value = (self.raw(name) or str(DEFAULTS[name])).strip()
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536 or not is_one_line(host):
            raise ConfigError(f"{name} must be host:port, e.g. 127.0.0.1:2525")
        return value

    def nameserver(self, name: str) -> tuple[str, int] | None:
        """Return ``(address, port)`` from ``IP``, ``IPv4:port`` or ``[IPv6]:port`` (port 53 by default), or None."""
        value = self.raw(name)
        if value is None:
            return None
        host, port = value, "53"
        if value.startswith("["):
            host, _, rest = value[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else rest or "53"
        elif value.count(":") == 1:
            host, port = value.split(":")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is None or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{name} must be an IP address with an optional port, e.g. 192.0.2.53:53, got {value!r}")
        return str(address), int(port)

    def whole_number(self, name: str, low: int, high: int) -> int:
        """Return a whole number from ``low`` to ``high`` (the default when unset)."""
        value = self.raw(name)
        if value is None:
            return int(DEFAULTS[name])  # type: ignore[call-overload]
        if not value.isdigit() or not low <= int(value) <= high:
            raise ConfigError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
        return int(value)

    def rate_limit(self, name: str) -> str:
        """Return a rate limit the ``limits`` package can parse (the default when unset)."""
        value = self.raw(name)
        if value is None:
            return str(DEFAULTS[name])
        try:
            parse_many(value)
        except ValueError:
            raise ConfigError(f"{name} must be a rate limit such as '3 per hour', got {value!r}") from None
        return value

    def dkim(self) -> dict[str, object]:
        """Return the DKIM settings: all three variables or none of them."""
        names = ("DKIM_DOMAIN", "DKIM_SELECTOR", "DKIM_PRIVATE_KEY")
        values = {n: self.environ.get(n, "").strip() or None for n in names}
        given = [n for n, v in values.items() if v]
        if given and len(given) < 3:
            missing = next(n for n in names if not values[n])
            raise ConfigError(f"{missing} is required when {given[0]} is set (DKIM needs all three)")
        if not given:
            return {**values, "DKIM_KEY": None}
        path = Path(str(values["DKIM_PRIVATE_KEY"]))
        try:
            key = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"DKIM_PRIVATE_KEY cannot be read: {exc.strerror}: {path}") from None
        if b"PRIVATE KEY" not in key:
            raise ConfigError(f"DKIM_PRIVATE_KEY is not a PEM private key: {path}")
        return {**values, "DKIM_KEY": key}

    def webhooks(self) -> dict[str, object]:
        """Return the provider webhooks' secrets; a provider without one has its webhook switched off."""
        return {
            "SES_TOPIC_ARNS": self.topic_arns("SES_TOPIC_ARNS"),
            "SES_CERT_HOSTS": self.pattern("SES_CERT_HOSTS"),
            "POSTMARK_WEBHOOK_AUTH": self.basic_auth("POSTMARK_WEBHOOK_AUTH"),
            "MAILGUN_SIGNING_KEY": self.line("MAILGUN_SIGNING_KEY", 200),
            "SENDGRID_WEBHOOK_PUBLIC_KEY": self.ec_public_key("SENDGRID_WEBHOOK_PUBLIC_KEY"),
        }

    def topic_arns(self, name: str) -> list[str]:
        """Return comma-separated SNS topic ARNs such as ``arn:aws:sns:eu-west-1:123456789012:bounces``."""
        arns = [a.strip() for a in (self.raw(name) or "").split(",") if a.strip()]
        for arn in arns:
            if not re.fullmatch(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?", arn):
                raise ConfigError(f"{name} must list SNS topic ARNs such as arn:aws:sns:eu-west-1:123456789012:bounces")
        return arns

    def pattern(self, name: str) -> str:
        """Return a regular expression (the default when unset)."""
        value = self.raw(name) or str(DEFAULTS[name])
        try:
            re.compile(value)
        except re.error as exc:
            raise ConfigError(f"{name} is not a valid regular expression: {exc}") from None
        return value

    def basic_auth(self, name: str) -> str | None:
        """Return ``user:password`` (both non-empty, one line), or None when unset."""
        value = self.line(name, 200)
        if value is not None and not re.fullmatch(r"[^:\s]+:\S+", value):
            raise ConfigError(f"{name} must be user:password")
        return value

    def ec_public_key(self, name: str) -> bytes | None:
        """Return an ECDSA P-256 public key, given as PEM or base64 DER, as DER bytes; None when unset."""
        value = self.raw(name)
        if value is None:
            return None
        try:
            if "-----BEGIN" in value:
                key = serialization.load_pem_public_key(value.replace("\\n", "\n").encode())
            else:
                key = serialization.load_der_public_key(base64.b64decode(value, validate=True))
        except (ValueError, binascii.Error, UnsupportedAlgorithm):
            raise ConfigError(f"{name} must be an ECDSA public key, PEM or base64 DER") from None
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ConfigError(f"{name} must be an ECDSA P-256 public key")
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def celery_broker_url(redis_url: str) -> str:
    """REDIS_URL as Celery's broker URL (a unix socket is ``redis+socket://``)."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url[len("unix://") :]
    return redis_url


def limiter_storage_uri(redis_url: str) -> str:
    """REDIS_URL as a Flask-Limiter storage URI (a unix socket is ``redis+unix://``)."""
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url[len("unix://") :]
    return redis_url

"""mailer: newsletter subscriptions and digests. ``create_app`` is the application factory."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import ConfigError, limiter_storage_uri, load_config


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Create the app from the environment, then ``config`` on top (tests pass overrides)."""
    app = Flask(__name__, instance_path=os.environ.get("MAILER_INSTANCE") or None)
    try:
        app.config.update(load_config(os.environ, app.instance_path))
    except ConfigError as exc:
        # One clear line naming the variable, no traceback (gunicorn and flask show this text).
        raise SystemExit(f"mailer: configuration error: {exc}") from None
    app.config.update(config or {})
    if app.config["PROXY_FIX_HOPS"]:
        # Behind N trusted proxies the client address (rate limits, consent log) is in X-Forwarded-For.
        hops = app.config["PROXY_FIX_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    register_extensions(app)
    register_security(app)
    register_blueprints(app)
    register_commands(app)
    return app


def register_extensions(app: Flask) -> None:
    """Bind the database, migrations, login, CSRF, rate limits, Celery and the send engine to ``app``."""
    from . import sending
    from .celery_app import init_celery
    from .digests.service import variant_factory
    from .extensions import csrf, db, limiter, login, migrate
    from .staff import auth  # noqa: F401  (registers the user loader)

    app.config.setdefault("RATELIMIT_STORAGE_URI", limiter_storage_uri(app.config["REDIS_URL"]))
    app.config.setdefault("RATELIMIT_KEY_PREFIX", app.config["REDIS_PREFIX"])
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(app.root_path), "migrations"))
    login.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    init_celery(app)
    sending.init_app(app, variants=variant_factory)


def register_security(app: Flask) -> None:
    """Set the security headers (CSP, HSTS, framing, referrer) on every response."""
    from . import security

    security.init_app(app)


def register_blueprints(app: Flask) -> None:
    """Mount the public pages and, in the embedded default only, the caught-mail pages."""
    from .api.views import bp as api_bp
    from .bounces.webhooks import bp as webhooks_bp
    from .content.views import bp as content_bp
    from .digests.views import bp as archive_bp
    from .main.errors import register_error_pages
    from .main.views import bp as main_bp
    from .staff.cadence import bp as staff_cadence_bp
    from .staff.cadence import review_bp as cadence_review_bp
    from .staff.content import bp as staff_content_bp
    from .staff.digests import bp as staff_digests_bp
    from .staff.subscribers import bp as staff_subscribers_bp
    from .staff.team import bp as staff_team_bp
    from .staff.views import bp as staff_bp
    from .subscriptions.views import bp as subscriptions_bp

    app.register_blueprint(main_bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(staff_digests_bp)
    app.register_blueprint(staff_content_bp)
    app.register_blueprint(staff_subscribers_bp)
    app.register_blueprint(staff_team_bp)
    app.register_blueprint(staff_cadence_bp)
    app.register_blueprint(cadence_review_bp)
    app.register_blueprint(subscriptions_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(content_bp)
    app.register_blueprint(archive_bp)
    register_error_pages(app)
    if app.config["EMBEDDED"]:
        from .dev.views import bp as dev_bp

        app.register_blueprint(dev_bp)


def register_commands(app: Flask) -> None:
    """Add the ``flask --app wsgi ...`` commands."""
    from .cli import register

    register(app)

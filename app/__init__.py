"""The Callcard application factory."""

from __future__ import annotations

import logging
import os
import secrets
from datetime import timedelta
from typing import Any

from flask import Flask, jsonify, request
from flask_babel import Babel
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from config import settings as settings_module
from config.logging import configure_logging

log = logging.getLogger(__name__)

LANGUAGES = ("en", "fr")
# Twilio's webhook bodies are a few kilobytes; the rest of the API is small JSON.
MAX_CONTENT_LENGTH = 1024 * 1024


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the application: settings, storage, Redis, connectors, blueprints."""
    app = Flask(__name__, instance_path=_instance_path(config))
    os.makedirs(app.instance_path, exist_ok=True)

    app.config.update(settings_module.from_environment())
    app.config.update(config or {})
    configure_logging(app.config["LOG_LEVEL"])
    _configure_secrets(app)
    _configure_web(app)

    from app.db import Database
    from app.redis_store import RedisStore

    database = Database(app)
    RedisStore(app)
    if _embedded_database(app):
        _prepare_embedded_database(app, database)

    from app.lookup import LookupService

    LookupService(app)
    from app import numbers

    numbers.init_app(app)
    _register_blueprints(app)
    _register_errors(app)

    from app.cli import register_commands

    register_commands(app)
    return app


def _instance_path(config: dict[str, Any] | None) -> str:
    path = (config or {}).get("INSTANCE_PATH") or os.environ.get("CALLCARD_INSTANCE_PATH")
    return os.path.abspath(path or os.path.join(os.getcwd(), "instance"))


def _configure_secrets(app: Flask) -> None:
    """Use SECRET_KEY and TWILIO_AUTH_TOKEN from the settings, else generated local ones.

    A generated value is kept in the instance folder so that every process of one
    installation (web, worker, the simulator) shares it.
    """
    for name in ("SECRET_KEY", "TWILIO_AUTH_TOKEN"):
        if not app.config.get(name):
            app.config[name] = _local_secret(app.instance_path, name)
            app.config[f"{name}_GENERATED"] = True


def _local_secret(instance_path: str, name: str) -> str:
    path = os.path.join(instance_path, name.lower())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        with open(path) as handle:
            return handle.read().strip()
    value = secrets.token_hex(32 if name == "SECRET_KEY" else 16)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def _configure_web(app: Flask) -> None:
    app.config["MAX_CONTENT_LENGTH"] = MAX_CONTENT_LENGTH
    # Flask's defaults already hold these keys (SameSite None, Secure False), so
    # setdefault would leave them unset: strengthen them explicitly instead.
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = app.config.get("SESSION_COOKIE_SAMESITE") or "Lax"
    public_base = app.config.get("PUBLIC_BASE_URL") or ""
    app.config["SESSION_COOKIE_SECURE"] = bool(app.config.get("SESSION_COOKIE_SECURE")) or public_base.startswith("https://")
    app.config.setdefault("PERMANENT_SESSION_LIFETIME", timedelta(hours=12))
    app.json.ensure_ascii = False

    if app.config["TRUST_PROXY_HEADERS"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1)

    from flask_babel import get_locale

    from app.auth import csrf_token

    Babel(app, locale_selector=_select_locale)
    app.jinja_env.globals.update(csrf_token=csrf_token, get_locale=get_locale)


def _select_locale() -> str:
    from app.auth import current_agent

    agent = current_agent() if request else None
    if agent is not None and agent.language in LANGUAGES:
        return agent.language
    return request.accept_languages.best_match(LANGUAGES) or "en"


def _embedded_database(app: Flask) -> bool:
    return not app.config.get("DATABASE_URL")


def _prepare_embedded_database(app: Flask, database) -> None:
    """Migrate the default SQLite database on first start and load the sample contacts."""
    from app import demo

    lock_path = os.path.join(app.instance_path, "setup.lock")
    database.upgrade(lock_path=lock_path)
    if app.config.get("DEMO_DATA") is not False:
        with app.app_context():
            demo.load_sample_data(app, lock_path)


def _register_blueprints(app: Flask) -> None:
    from app import admin, api, auth, console, events, health, outbox_admin
    from webhooks import bp as webhooks_bp

    app.register_blueprint(webhooks_bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(outbox_admin.bp)

    from app import conversations_api, queue_api

    app.register_blueprint(conversations_api.bp)
    app.register_blueprint(queue_api.bp)


def _register_errors(app: Flask) -> None:
    """Answer every error with JSON that names the problem, never an HTML 500 page."""

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if request.path.startswith("/webhooks/"):
            log.info("Webhook %s answered %d: %s", request.path, error.code, error.description)
        return jsonify(error=error.name, message=error.description), error.code

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        log.exception("Unhandled error on %s %s", request.method, request.path)
        return jsonify(error="Internal Server Error", message="unexpected error; see the server log"), 500

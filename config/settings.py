"""Settings read from the environment, with the embedded defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

# Settings whose values must never reach a log or an error message.
SECRET_SETTINGS = frozenset(
    {
        "SECRET_KEY",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_AUTH_TOKEN_SECONDARY",
        "SALESFORCE_PASSWORD",
        "SALESFORCE_SECURITY_TOKEN",
        "SALESFORCE_SESSION_ID",
        "SALESFORCE_CONSUMER_SECRET",
        "ZENDESK_API_TOKEN",
        "ZENDESK_OAUTH_TOKEN",
        "DATABASE_URL",
        "REDIS_URL",
    }
)

# Name, type and default of every setting; the environment overrides the default.
DEFAULTS: dict[str, tuple[type, Any]] = {
    "SECRET_KEY": (str, None),
    "DATABASE_URL": (str, None),
    "REDIS_URL": (str, None),
    "PUBLIC_BASE_URL": (str, None),
    "TRUST_PROXY_HEADERS": (bool, False),
    "DEFAULT_REGION": (str, "US"),
    "LOOKUP_DEADLINE_MS": (int, 1500),
    "LOOKUP_CACHE_TTL_S": (int, 120),
    "BREAKER_FAILURES": (int, 5),
    "BREAKER_WINDOW_S": (int, 60),
    "BREAKER_COOLDOWN_S": (int, 30),
    "DIRECTORY_TIMEOUT_MS": (int, None),
    "SALESFORCE_TIMEOUT_MS": (int, None),
    "ZENDESK_TIMEOUT_MS": (int, None),
    "CONNECTORS": (str, None),
    "TWILIO_ACCOUNT_SID": (str, None),
    "TWILIO_AUTH_TOKEN": (str, None),
    "TWILIO_AUTH_TOKEN_SECONDARY": (str, None),
    "TWILIO_API_BASE_URL": (str, "https://api.twilio.com"),
    "DIAL_TIMEOUT_S": (int, 20),
    "QUEUE_NAME": (str, "support"),
    "NUMBERS_FILE": (str, None),
    "QUEUE_MUSIC_URL": (str, None),
    "QUEUE_ANNOUNCE_S": (int, 30),
    "CONVERSATION_IDLE_HOURS": (int, 24),
    "DISPOSITIONS": (str, None),
    "STREAM_TOKEN_MAX_AGE_S": (int, 12 * 3600),
    "STREAM_HEARTBEAT_S": (int, 15),
    "STREAM_MAX_EVENTS": (int, 1000),
    "OUTBOX_MAX_ATTEMPTS": (int, 8),
    "OUTBOX_BACKOFF_BASE_S": (int, 5),
    "OUTBOX_BACKOFF_MAX_S": (int, 900),
    "OUTBOX_SWEEP_S": (int, 30),
    "DEMO_DATA": (bool, None),
    "LOG_LEVEL": (str, "INFO"),
    "SALESFORCE_USERNAME": (str, None),
    "SALESFORCE_PASSWORD": (str, None),
    "SALESFORCE_SECURITY_TOKEN": (str, None),
    "SALESFORCE_DOMAIN": (str, "login"),
    "SALESFORCE_INSTANCE_URL": (str, None),
    "SALESFORCE_SESSION_ID": (str, None),
    "SALESFORCE_CONSUMER_KEY": (str, None),
    "SALESFORCE_CONSUMER_SECRET": (str, None),
    "SALESFORCE_PRIVATE_KEY_FILE": (str, None),
    "SALESFORCE_API_VERSION": (str, "59.0"),
    "SALESFORCE_TIER_FIELD": (str, "Type"),
    "SALESFORCE_LOGIN_RETRY_S": (int, 60),
    "SALESFORCE_UNKNOWN_CALLER": (str, "task"),
    "SALESFORCE_MESSAGE_TASKS": (str, "conversation"),
    "SALESFORCE_LOG_TIMEOUT_S": (int, 30),
    "ZENDESK_URL": (str, None),
    "ZENDESK_EMAIL": (str, None),
    "ZENDESK_API_TOKEN": (str, None),
    "ZENDESK_OAUTH_TOKEN": (str, None),
    "ZENDESK_TALK_PARTNER_EDITION": (bool, True),
    "ZENDESK_APP_ID": (int, None),
    "ZENDESK_LOG_TO_OPEN_TICKET": (bool, False),
    "ZENDESK_LOG_TIMEOUT_S": (int, 30),
}

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


class SettingError(ValueError):
    """A setting in the environment has a value of the wrong type."""


def parse_value(name: str, kind: type, raw: str) -> Any:
    """Convert the text of environment variable `name` to `kind`."""
    if kind is bool:
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise SettingError(f"{name} must be true or false, got {raw!r}")

    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise SettingError(f"{name} must be a whole number, got {raw!r}") from None

    return raw


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read every known setting from `environ` (default: `os.environ`)."""
    environ = os.environ if environ is None else environ
    settings: dict[str, Any] = {}

    for name, (kind, default) in DEFAULTS.items():
        raw = environ.get(name)
        settings[name] = default if raw is None or raw == "" else parse_value(name, kind, raw)
    return settings


def redacted(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of `settings` safe to log: secrets replaced by `***`."""
    return {
        name: ("***" if name in SECRET_SETTINGS and value else value)
        for name, value in settings.items()
    }

"""Absolute URLs of our own webhooks, as Twilio must call them."""

from __future__ import annotations

from flask import current_app, url_for


def webhook_url(endpoint: str, **values) -> str:
    """Return the public URL of `endpoint`, under PUBLIC_BASE_URL when it is set."""
    base = current_app.config.get("PUBLIC_BASE_URL")
    if base:
        return base.rstrip("/") + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)

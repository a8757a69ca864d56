"""Twilio webhooks: voice, call status, recording and messaging."""

import time

from flask import Blueprint, g, request

from app.metrics import WEBHOOK_SECONDS, WEBHOOKS

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks/twilio")


@bp.before_request
def _start_timer():
    g.webhook_started = time.perf_counter()


@bp.after_request
def _count_webhook(response):
    endpoint = request.endpoint or "unknown"
    WEBHOOKS.labels(endpoint=endpoint, status=str(response.status_code)).inc()
    started = g.get("webhook_started")
    if started is not None:
        WEBHOOK_SECONDS.labels(endpoint=endpoint).observe(time.perf_counter() - started)
    return response


from webhooks import voice  # noqa: E402,F401  (registers the routes)
from webhooks import messaging  # noqa: E402,F401
from webhooks import recording  # noqa: E402,F401

"""Twilio webhooks: voice, call status, recording and messaging."""

from flask import Blueprint

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks/twilio")

from webhooks import voice  # noqa: E402,F401  (registers the routes)
from webhooks import messaging  # noqa: E402,F401
from webhooks import recording  # noqa: E402,F401

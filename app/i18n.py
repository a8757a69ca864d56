"""Locale-aware display of phone numbers, times and durations, and caller-facing messages."""

from __future__ import annotations

from datetime import datetime, timezone

import phonenumbers
from babel.units import format_unit
from flask_babel import force_locale, format_datetime, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

LANGUAGES = ("en", "fr")

# The voice Twilio's <Say> uses for each console language.
SAY_LANGUAGES = {"en": "en-US", "fr": "fr-FR"}


def format_phone(value: str | None) -> str:
    """Format an E.164 number as INTERNATIONAL (`+33 6 12 34 56 78`); other text is returned as is."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value
    if not phonenumbers.is_valid_number(number):
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def format_duration(seconds: int | None) -> str:
    """Format a duration in seconds as hours, minutes and seconds in the current locale."""
    if seconds is None:
        return ""
    hours, rest = divmod(max(int(seconds), 0), 3600)
    minutes, secs = divmod(rest, 60)
    locale = get_locale()

    parts = []
    if hours:
        parts.append(format_unit(hours, "duration-hour", length="short", locale=locale))
    if minutes:
        parts.append(format_unit(minutes, "duration-minute", length="short", locale=locale))
    if secs or not parts:
        parts.append(format_unit(secs, "duration-second", length="short", locale=locale))
    return " ".join(parts)


def format_time(value: str | datetime | None) -> str:
    """Format an ISO 8601 timestamp or a datetime as a short date and time in the current locale.

    The time zone is flask-babel's `BABEL_DEFAULT_TIMEZONE` setting (UTC unless set).
    """
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return format_datetime(value, "short")


def wait_message(language: str | None) -> tuple[str, str]:
    """Return the queue's spoken welcome message and its <Say> language, for `language`.

    An unsupported or missing language falls back to English. Usable inside a request
    or an application context.
    """
    if language not in LANGUAGES:
        language = "en"
    with force_locale(language):
        text = _("Thank you for calling. All our agents are busy, please stay on the line.")
    return text, SAY_LANGUAGES[language]


# Display labels of the codes stored on interactions and cards. `lazy_gettext`
# translates each one when it is rendered, in the locale of that request.
CHANNEL_LABELS = {
    "voice": _l("Call"),
    "sms": _l("SMS"),
    "whatsapp": _l("WhatsApp"),
}

DIRECTION_LABELS = {
    "inbound": _l("Inbound"),
    "outbound": _l("Outbound"),
}

STATUS_LABELS = {
    "queued": _l("Queued"),
    "initiated": _l("Started"),
    "ringing": _l("Ringing"),
    "in-progress": _l("In progress"),
    "answered": _l("Answered"),
    "completed": _l("Completed"),
    "busy": _l("Busy"),
    "no-answer": _l("No answer"),
    "failed": _l("Failed"),
    "canceled": _l("Canceled"),
    "received": _l("Received"),
    "sent": _l("Sent"),
    "delivered": _l("Delivered"),
    "undelivered": _l("Not delivered"),
    "read": _l("Read"),
}

SYSTEM_STATUS_LABELS = {
    "found": _l("found"),
    "none": _l("not found"),
    "pending": _l("pending"),
    "timed_out": _l("timed out"),
    "failed": _l("failed"),
    "rate_limited": _l("rate-limited"),
    "skipped": _l("skipped"),
}

SYNC_STATE_LABELS = {
    "pending": _l("sync pending"),
    "retrying": _l("sync retrying"),
    "done": _l("synced"),
    "dead": _l("sync failed"),
}

PRESENCE_LABELS = {
    "available": _l("Available"),
    "away": _l("Away"),
    "busy": _l("Busy"),
    "offline": _l("Offline"),
}

ROLE_LABELS = {
    "agent": _l("Agent"),
    "supervisor": _l("Supervisor"),
    "admin": _l("Administrator"),
}

LANGUAGE_LABELS = {
    "en": "English",
    "fr": "Français",
}

DEFAULT_DISPOSITIONS = ("resolved", "callback_needed", "escalated", "wrong_number", "voicemail")

DISPOSITION_LABELS = {
    "resolved": _l("Resolved"),
    "callback_needed": _l("Callback needed"),
    "escalated": _l("Escalated"),
    "wrong_number": _l("Wrong number"),
    "voicemail": _l("Voicemail"),
}


def label(labels: dict, code: str | None) -> str:
    """Return the translated label of `code`, or the code itself when it has none."""
    if not code:
        return ""
    text = labels.get(code)
    return str(text) if text is not None else code.replace("_", " ")

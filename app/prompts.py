"""What callers hear: the prompts of the queue, closed hours and voicemail, in the number's language.

A number's `messages` in `NUMBERS_FILE` replace a default prompt per language
(`wait`, `closed`, `voicemail`, `goodbye`); the defaults come from the French and
English catalogs.
"""

from __future__ import annotations

from flask_babel import force_locale
from flask_babel import gettext as _

from app.i18n import LANGUAGES, SAY_LANGUAGES, wait_message
from app.numbers import NumberSettings


def say_language(language: str | None) -> str:
    """Return the `<Say language>` value of a number's language, English when unknown."""
    return SAY_LANGUAGES.get(language or "en", SAY_LANGUAGES["en"])


def wait(settings: NumberSettings) -> str:
    """Return the message a caller hears while waiting in the queue."""
    configured = settings.message("wait")
    if configured:
        return configured
    text, _say = wait_message(settings.language)
    return text


def position(settings: NumberSettings, place: int) -> str:
    """Return "You are number N in the queue." in the number's language."""
    with force_locale(_language(settings)):
        return _("You are number %(position)d in the queue.", position=place)


def closed(settings: NumberSettings) -> str:
    """Return the message a caller hears outside business hours."""
    with force_locale(_language(settings)):
        return settings.message("closed") or _("Thank you for calling. We are closed at the moment.")


def voicemail(settings: NumberSettings) -> str:
    """Return the voicemail greeting spoken before the beep."""
    with force_locale(_language(settings)):
        return settings.message("voicemail") or _("Please leave a message after the tone, then hang up.")


def goodbye(settings: NumberSettings) -> str:
    """Return the message spoken before hanging up on a caller who cannot leave a voicemail."""
    with force_locale(_language(settings)):
        return settings.message("goodbye") or _("Please call again later. Goodbye.")


def _language(settings: NumberSettings) -> str:
    return settings.language if settings.language in LANGUAGES else "en"

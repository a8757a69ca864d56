"""Locale-aware formatting and the caller-facing wait message."""

from __future__ import annotations

import pytest
from flask_babel import force_locale

from app import i18n


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+33612345678", "+33 6 12 34 56 78"),
        ("+14155550100", "+1 415-555-0100"),
        ("anonymous", "anonymous"),
        ("+1234", "+1234"),
        ("", ""),
        (None, ""),
    ],
)
def test_format_phone(value, expected):
    assert i18n.format_phone(value) == expected


@pytest.mark.parametrize(
    ("seconds", "english", "french"),
    [
        (0, "0 sec", "0\u202fs"),
        (45, "45 sec", "45\u202fs"),
        (185, "3 min 5 sec", "3\u00a0min 5\u202fs"),
        (3600, "1 hr", "1\u202fh"),
        (3725, "1 hr 2 min 5 sec", "1\u202fh 2\u00a0min 5\u202fs"),
    ],
)
def test_format_duration(app, seconds, english, french):
    with app.test_request_context():
        with force_locale("en"):
            assert i18n.format_duration(seconds) == english
        with force_locale("fr"):
            assert i18n.format_duration(seconds) == french


def test_format_duration_missing(app):
    with app.test_request_context():
        assert i18n.format_duration(None) == ""


def test_format_time_per_locale(app):
    with app.test_request_context():
        with force_locale("en"):
            english = i18n.format_time("2026-03-05T14:07:00+00:00")
        with force_locale("fr"):
            french = i18n.format_time("2026-03-05T14:07:00+00:00")

    assert english == "3/5/26, 2:07\u202fPM"
    assert french == "05/03/2026 14:07"


def test_wait_message_in_french(app):
    with app.app_context():
        text, language = i18n.wait_message("fr")

    assert text.startswith("Merci de votre appel.")
    assert language == "fr-FR"


@pytest.mark.parametrize("language", ["en", "de", None])
def test_wait_message_falls_back_to_english(app, language):
    with app.app_context():
        text, say_language = i18n.wait_message(language)

    assert text.startswith("Thank you for calling.")
    assert say_language == "en-US"


def test_wait_message_fits_enqueue_twiml(app):
    from webhooks import twiml

    with app.app_context():
        text, language = i18n.wait_message("fr")

    xml = twiml.enqueue("support", message=text, language=language)

    assert '<Say language="fr-FR">Merci de votre appel.' in xml

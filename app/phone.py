"""Phone identity: parse caller addresses and CRM phone values into E.164."""

from __future__ import annotations

import re

import phonenumbers

from integrations.base import Caller

# Words carriers and Twilio put in From when the caller hides their number.
WITHHELD_WORDS = frozenset(
    {"", "anonymous", "restricted", "unknown", "unavailable", "blocked", "private", "withheld"}
)

# Twilio spells withheld caller IDs on a phone keypad: ANONYMOUS, RESTRICTED,
# BLOCKED, UNKNOWN and UNAVAILABLE. They look like E.164 but belong to nobody.
WITHHELD_NUMBERS = frozenset(
    {"+266696687", "+7378742833", "+2562533", "+8656696", "+86282452253"}
)

CHANNEL_PREFIXES = ("whatsapp", "messenger", "sms", "tel", "client", "sip")

# A short code is a number of up to 6 digits that carriers route to one business.
SHORT_CODE = re.compile(r"^\d{3,6}$")
LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)


def split_channel(address: str) -> tuple[str | None, str]:
    """Split `whatsapp:+14155550100` into (`whatsapp`, `+14155550100`)."""
    prefix, sep, rest = address.partition(":")
    if sep and prefix.lower() in CHANNEL_PREFIXES:
        return prefix.lower(), rest
    return None, address


def to_e164(value: str | None, region: str) -> str | None:
    """Return `value` as E.164, or None when it is not a valid phone number.

    Accepts what people type into a CRM: `(415) 555-0100`, `+1 415-555-0100 x12`,
    `415.555.0100`, `0033 6 12 34 56 78`, `001 415 555 0103`. A leading `00` is read
    as the international prefix whatever the region, and extensions are dropped.
    """
    if not value:
        return None

    text = value.strip()
    if text.startswith("00") and not text.startswith("000"):
        text = "+" + text[2:]

    try:
        number = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException:
        return None

    if not phonenumbers.is_valid_number(number):
        return None

    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if e164 in WITHHELD_NUMBERS:
        return None
    return e164


def is_withheld(address: str) -> bool:
    """Tell whether `address` is one of the withheld caller ID forms."""
    _, bare = split_channel(address.strip())
    bare = bare.strip()
    return bare.lower() in WITHHELD_WORDS or bare in WITHHELD_NUMBERS


def parse_caller(raw: str | None, region: str, channel: str = "voice") -> Caller:
    """Classify the From value of a webhook and normalize it when it is a number."""
    raw = raw or ""
    prefix, bare = split_channel(raw.strip())
    if prefix == "whatsapp":
        channel = "whatsapp"

    if is_withheld(raw):
        return Caller(raw=raw, kind="withheld", channel=channel)

    if LETTERS.search(bare):
        return Caller(raw=raw, kind="alphanumeric", channel=channel)

    if SHORT_CODE.match(bare):
        return Caller(raw=raw, kind="shortcode", channel=channel)

    e164 = to_e164(bare, region)
    if e164 is None:
        return Caller(raw=raw, kind="invalid", channel=channel)
    return Caller(raw=raw, kind="phone", e164=e164, channel=channel)


def national_digits(e164: str) -> str:
    """Return the national significant number of an E.164 value, digits only."""
    number = phonenumbers.parse(e164)
    return phonenumbers.national_significant_number(number)


def mask(value: str | None) -> str:
    """Hide all but the last two digits of a phone number for logs at INFO."""
    if not value:
        return "<empty>"
    prefix, bare = split_channel(value)
    shown = bare[-2:] if len(bare) > 4 else ""
    masked = "*" * max(len(bare) - len(shown), 0) + shown
    return f"{prefix}:{masked}" if prefix else masked

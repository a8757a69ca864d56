"""Phone identity: CRM values to E.164, withheld caller IDs, masking."""

from __future__ import annotations

import pytest

from app.phone import is_withheld, mask, parse_caller, to_e164


@pytest.mark.parametrize(
    ("value", "region", "expected"),
    [
        ("(415) 555-0100", "US", "+14155550100"),
        ("+1 415-555-0100 x12", "US", "+14155550100"),
        ("415.555.0100", "US", "+14155550100"),
        ("0033612345678", "US", "+33612345678"),
        ("0033 6 12 34 56 78", "US", "+33612345678"),
        ("001 415 555 0103", "US", "+14155550103"),
        ("001 415 555 0103", "FR", "+14155550103"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+33 6 12 34 56 78", "US", "+33612345678"),
        ("011 33 6 12 34 56 78", "US", "+33612345678"),
        ("+1 (650) 555-0100", "US", "+16505550100"),
    ],
)
def test_to_e164_normalizes_crm_value(value, region, expected):
    assert to_e164(value, region) == expected


@pytest.mark.parametrize(
    "value",
    ["", None, "266696687", "+266696687", "+7378742833", "+2562533", "+8656696", "+86282452253",
     "anonymous", "555-0100", "12", "000 415 555 0100"],
)
def test_to_e164_rejects_non_number(value):
    assert to_e164(value, "US") is None


def test_other_area_code_differs():
    assert to_e164("+1 (650) 555-0100", "US") != to_e164("+14155550100", "US")


@pytest.mark.parametrize(
    "value",
    ["anonymous", "restricted", "unknown", "unavailable", "blocked", "Restricted", "ANONYMOUS",
     "+266696687", "+7378742833", "+2562533", "+8656696", "+86282452253", "", "  ", "client:anonymous"],
)
def test_is_withheld_recognizes_form(value):
    assert is_withheld(value)


@pytest.mark.parametrize("value", ["+14155550100", "whatsapp:+14155550100", "EXAMPLECO", "00000"])
def test_is_withheld_rejects_real_sender(value):
    assert not is_withheld(value)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("+14155550100", "phone"),
        ("whatsapp:+14155550100", "phone"),
        ("+266696687", "withheld"),
        ("EXAMPLECO", "alphanumeric"),
        ("00000", "shortcode"),
        ("+1415", "invalid"),
    ],
)
def test_parse_caller_classifies_sender(value, kind):
    assert parse_caller(value, "US").kind == kind


def test_parse_caller_whatsapp_channel():
    caller = parse_caller("whatsapp:+14155550100", "US")

    assert caller.channel == "whatsapp"
    assert caller.e164 == "+14155550100"


def test_mask_keeps_last_two_digits():
    assert mask("+14155550100") == "**********00"


def test_mask_keeps_channel_prefix():
    assert mask("whatsapp:+14155550100") == "whatsapp:**********00"

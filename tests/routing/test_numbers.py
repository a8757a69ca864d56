import json
from datetime import datetime, timezone

import pytest

from app.hours import HoursError, parse_hours
from app.numbers import NumberDirectory, NumbersFileError, load_numbers

PARIS_HOURS = {
    "timezone": "Europe/Paris",
    "weekly": {"mon": [["09:00", "12:30"], ["14:00", "18:00"]], "sat": [["10:00", "24:00"]]},
    "holidays": ["2026-12-28"],
}


@pytest.mark.parametrize(
    "moment, expected",
    [
        (datetime(2026, 12, 7, 8, 30, tzinfo=timezone.utc), True),  # Monday 09:30 in Paris
        (datetime(2026, 12, 7, 7, 59, tzinfo=timezone.utc), False),  # Monday 08:59 in Paris
        (datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc), False),  # Monday 13:00, lunch
        (datetime(2026, 12, 7, 16, 59, tzinfo=timezone.utc), True),  # Monday 17:59
        (datetime(2026, 12, 7, 17, 0, tzinfo=timezone.utc), False),  # Monday 18:00, closed
        (datetime(2026, 12, 8, 10, 0, tzinfo=timezone.utc), False),  # Tuesday, no hours
        (datetime(2026, 12, 12, 22, 59, tzinfo=timezone.utc), True),  # Saturday 23:59
        (datetime(2026, 12, 28, 10, 0, tzinfo=timezone.utc), False),  # Monday holiday
    ],
)
def test_hours_open_in_local_time(moment, expected):
    assert parse_hours(PARIS_HOURS).is_open(moment) is expected


def test_hours_follow_summer_time():
    hours = parse_hours({"timezone": "Europe/Paris", "weekly": {"mon": [["09:00", "10:00"]]}})

    summer_monday_0930_paris = datetime(2026, 7, 6, 7, 30, tzinfo=timezone.utc)

    assert hours.is_open(summer_monday_0930_paris) is True


@pytest.mark.parametrize(
    "hours, message",
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"weekly": {"monday": []}}, "unknown day 'monday'"),
        ({"weekly": {"mon": [["9h", "18:00"]]}}, "not a time of day"),
        ({"weekly": {"mon": [["18:00", "09:00"]]}}, "before it opens"),
        ({"holidays": ["25/12/2026"]}, "not a date"),
    ],
)
def test_hours_reject_invalid_field(hours, message):
    with pytest.raises(HoursError, match=message):
        parse_hours(hours)


def write_numbers(tmp_path, data) -> str:
    path = tmp_path / "numbers.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_numbers_file_entry_overrides_default(tmp_path):
    path = write_numbers(
        tmp_path,
        {
            "default": {"team": "support", "language": "en"},
            "numbers": {"01 23 45 67 89": {"team": "ventes", "language": "fr", "rules": ["longest_idle"]}},
        },
    )

    default, numbers = load_numbers(path, "FR")

    assert default.team == "support"
    assert numbers["+33123456789"].team == "ventes"
    assert numbers["+33123456789"].language == "fr"
    assert numbers["+33123456789"].rules == ("longest_idle",)


def test_unknown_number_gets_default(tmp_path):
    path = write_numbers(tmp_path, {"numbers": {"+14155550100": {"team": "vip"}}})
    directory = NumberDirectory.from_config({"DEFAULT_REGION": "US", "NUMBERS_FILE": path})

    assert directory.settings_for("+14155550100").team == "vip"
    assert directory.settings_for("+14155550111").team == "support"
    assert directory.settings_for("whatsapp:+14155550100").team == "vip"


@pytest.mark.parametrize(
    "data, message",
    [
        ({"numbers": {"not a number": {}}}, "not a valid phone number"),
        ({"numbers": {"+14155550100": {"rules": ["owner", "random"]}}}, "rules must list"),
        ({"numbers": {"+14155550100": {"language": "de"}}}, "language must be one of"),
        ({"numbers": {"+14155550100": {"queue_timeout_s": -1}}}, "queue_timeout_s"),
        ({"default": {"hours": {"timezone": "Nowhere/Town"}}}, "default.hours.timezone"),
    ],
)
def test_numbers_file_rejects_invalid_entry(tmp_path, data, message):
    with pytest.raises(NumbersFileError, match=message):
        load_numbers(write_numbers(tmp_path, data), "US")


def test_numbers_file_reports_bad_json(tmp_path):
    path = tmp_path / "numbers.json"
    path.write_text("{", encoding="utf-8")

    with pytest.raises(NumbersFileError, match="invalid JSON at line 1"):
        load_numbers(str(path), "US")

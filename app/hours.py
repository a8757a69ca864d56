"""Business hours per dialled number: weekly opening times, holidays, a time zone."""

from __future__ import annotations

import dataclasses
import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


class HoursError(ValueError):
    """The business hours of a number are written wrongly."""


@dataclasses.dataclass(frozen=True)
class BusinessHours:
    """Opening intervals per weekday in `timezone`, and closed dates.

    An interval is `(opens, closes)` in local time, `closes` exclusive; `24:00`
    closes at midnight. A day without intervals is closed all day.
    """

    timezone: ZoneInfo
    weekly: dict[str, tuple[tuple[time, time | None], ...]]
    holidays: frozenset[date]

    def is_open(self, moment: datetime) -> bool:
        """Tell whether the business is open at the aware datetime `moment`."""
        local = moment.astimezone(self.timezone)
        if local.date() in self.holidays:
            return False
        now = local.time()
        for opens, closes in self.weekly.get(WEEKDAYS[local.weekday()], ()):
            if opens <= now and (closes is None or now < closes):
                return True
        return False


def _parse_time(value: str, where: str) -> time | None:
    """Parse `HH:MM`; `24:00` becomes None, meaning the end of the day."""
    if not isinstance(value, str) or not TIME_OF_DAY.match(value):
        raise HoursError(f"{where}: {value!r} is not a time of day HH:MM")
    if value == "24:00":
        return None
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def parse_hours(data: dict, where: str = "hours") -> BusinessHours:
    """Build BusinessHours from its JSON form, naming the first invalid field."""
    if not isinstance(data, dict):
        raise HoursError(f"{where} must be an object")

    try:
        zone = ZoneInfo(data.get("timezone", "UTC"))
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise HoursError(f"{where}.timezone: unknown time zone {data.get('timezone')!r}") from None

    weekly: dict[str, tuple[tuple[time, time | None], ...]] = {}
    for day, intervals in (data.get("weekly") or {}).items():
        if day not in WEEKDAYS:
            raise HoursError(f"{where}.weekly: unknown day {day!r}; use {', '.join(WEEKDAYS)}")
        parsed = []
        for index, interval in enumerate(intervals or []):
            spot = f"{where}.weekly.{day}[{index}]"
            if not isinstance(interval, (list, tuple)) or len(interval) != 2:
                raise HoursError(f"{spot} must be [opens, closes]")
            opens = _parse_time(interval[0], spot) or time(0, 0)
            closes = _parse_time(interval[1], spot)
            if closes is not None and closes <= opens:
                raise HoursError(f"{spot}: closes at {interval[1]} before it opens at {interval[0]}")
            parsed.append((opens, closes))
        weekly[day] = tuple(parsed)

    holidays = set()
    for value in data.get("holidays") or []:
        try:
            holidays.add(date.fromisoformat(value))
        except (TypeError, ValueError):
            raise HoursError(f"{where}.holidays: {value!r} is not a date YYYY-MM-DD") from None

    return BusinessHours(zone, weekly, frozenset(holidays))

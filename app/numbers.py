"""Per-number settings: team, language, routing rules, queue, hours and voicemail.

They are read from the JSON file named by `NUMBERS_FILE`, so a contact centre changes
routing without code. A number missing from the file uses the `default` entry.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from app.hours import BusinessHours, HoursError, parse_hours
from app.phone import to_e164

log = logging.getLogger(__name__)

RULES = ("owner", "last_agent", "longest_idle")
LANGUAGES = ("en", "fr")


class NumbersFileError(ValueError):
    """The numbers file cannot be read or has an invalid entry."""


@dataclasses.dataclass(frozen=True)
class NumberSettings:
    """How calls to one dialled number are routed and answered."""

    number: str | None = None
    team: str = "support"
    language: str = "en"
    queue: str = "support"
    rules: tuple[str, ...] = RULES
    last_agent_days: int = 30
    vip_tiers: frozenset[str] = frozenset()
    queue_timeout_s: int = 120
    hours: BusinessHours | None = None
    voicemail: bool = True
    voicemail_max_length_s: int = 120
    transcribe: bool = False
    messages: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)

    def is_vip(self, tier: str | None) -> bool:
        """Tell whether a customer of `tier` gets VIP priority on this number; tiers ignore case."""
        return bool(tier) and tier.casefold() in self.vip_tiers

    def message(self, name: str, language: str | None = None) -> str | None:
        """Return the configured text of message `name` in `language`, if any."""
        texts = self.messages.get(name) or {}
        return texts.get(language or self.language) or texts.get(self.language)


def _entry(data: Any, where: str, base: NumberSettings, region: str) -> NumberSettings:
    if not isinstance(data, dict):
        raise NumbersFileError(f"{where} must be an object")
    values: dict[str, Any] = {}

    for name in ("team", "queue"):
        if name in data:
            if not isinstance(data[name], str) or not data[name]:
                raise NumbersFileError(f"{where}.{name} must be a non-empty string")
            values[name] = data[name]

    if "language" in data:
        if data["language"] not in LANGUAGES:
            raise NumbersFileError(f"{where}.language must be one of {', '.join(LANGUAGES)}")
        values["language"] = data["language"]

    if "rules" in data:
        rules = data["rules"]
        unknown = [rule for rule in rules or [] if rule not in RULES]
        if not isinstance(rules, list) or unknown:
            raise NumbersFileError(f"{where}.rules must list rules among {', '.join(RULES)}; got {rules!r}")
        values["rules"] = tuple(rules)

    for name in ("last_agent_days", "queue_timeout_s", "voicemail_max_length_s"):
        if name in data:
            if not isinstance(data[name], int) or isinstance(data[name], bool) or data[name] < 0:
                raise NumbersFileError(f"{where}.{name} must be a whole number ≥ 0")
            values[name] = data[name]

    for name in ("voicemail", "transcribe"):
        if name in data:
            if not isinstance(data[name], bool):
                raise NumbersFileError(f"{where}.{name} must be true or false")
            values[name] = data[name]

    if "vip_tiers" in data:
        tiers = data["vip_tiers"]
        if not isinstance(tiers, list) or not all(isinstance(tier, str) and tier for tier in tiers):
            raise NumbersFileError(f"{where}.vip_tiers must be a list of tier names, e.g. [\"Gold\"]")
        values["vip_tiers"] = frozenset(tier.casefold() for tier in tiers)

    if "hours" in data:
        try:
            values["hours"] = parse_hours(data["hours"], f"{where}.hours") if data["hours"] else None
        except HoursError as error:
            raise NumbersFileError(str(error)) from None

    if "messages" in data:
        messages = data["messages"]
        if not isinstance(messages, dict) or not all(isinstance(v, dict) for v in messages.values()):
            raise NumbersFileError(f"{where}.messages must map a message name to {{language: text}}")
        values["messages"] = {**base.messages, **messages}

    return dataclasses.replace(base, **values)


def load_numbers(path: str | None, region: str) -> tuple[NumberSettings, dict[str, NumberSettings]]:
    """Read the numbers file; return the default settings and the settings per E.164 number."""
    default = NumberSettings()
    if not path:
        return default, {}

    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as error:
        raise NumbersFileError(f"NUMBERS_FILE {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise NumbersFileError(f"NUMBERS_FILE {path}: invalid JSON at line {error.lineno}: {error.msg}") from None

    if not isinstance(data, dict):
        raise NumbersFileError(f"NUMBERS_FILE {path}: the top level must be an object")
    try:
        default, numbers = _parse_numbers(data, default, region)
    except NumbersFileError as error:
        raise NumbersFileError(f"NUMBERS_FILE {path}: {error}") from None
    log.info("Loaded settings for %d dialled number(s) from %s", len(numbers), path)
    return default, numbers


def _parse_numbers(data: dict, default: NumberSettings, region: str) -> tuple[NumberSettings, dict[str, NumberSettings]]:
    default = _entry(data.get("default", {}), "default", default, region)

    numbers = {}
    for raw, entry in (data.get("numbers") or {}).items():
        e164 = to_e164(raw, region)
        if e164 is None:
            raise NumbersFileError(f"numbers: {raw!r} is not a valid phone number")
        numbers[e164] = dataclasses.replace(_entry(entry, f"numbers[{raw}]", default, region), number=e164)
    return default, numbers


class NumberDirectory:
    """Look up the settings of a dialled number; an unknown number gets the defaults."""

    def __init__(self, default: NumberSettings, numbers: dict[str, NumberSettings], region: str):
        self.default = default
        self.numbers = numbers
        self.region = region

    @classmethod
    def from_config(cls, config) -> "NumberDirectory":
        region = config["DEFAULT_REGION"]
        default, numbers = load_numbers(config.get("NUMBERS_FILE"), region)
        if not config.get("NUMBERS_FILE"):
            default = dataclasses.replace(default, queue=config.get("QUEUE_NAME") or default.queue)
        return cls(default, numbers, region)

    def settings_for(self, dialled: str | None) -> NumberSettings:
        from app.phone import split_channel

        _, bare = split_channel(dialled or "")
        e164 = to_e164(bare, self.region) if bare else None
        return self.numbers.get(e164, self.default) if e164 else self.default


def init_app(app) -> NumberDirectory:
    """Load `NUMBERS_FILE` once into `app.extensions["callcard.numbers"]`.

    Raises:
        NumbersFileError: the file is missing or invalid; the message names the file and the field.
    """
    directory = NumberDirectory.from_config(app.config)
    app.extensions["callcard.numbers"] = directory
    return directory


def get_numbers() -> NumberDirectory:
    """Return the number settings of the current application."""
    from flask import current_app

    return current_app.extensions["callcard.numbers"]

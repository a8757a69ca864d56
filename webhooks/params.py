"""Read and check webhook form parameters; bad input becomes a 4xx naming the field."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from flask import abort, current_app, g, request
from werkzeug.datastructures import MultiDict

MAX_FIELDS = 200
MAX_VALUE_LENGTH = 8192

CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
MESSAGE_SID = re.compile(r"^(SM|MM|IM|SI)[0-9a-fA-F]{32}$")
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")


def read_form() -> dict[str, str]:
    """Return the form fields of the request; a repeated field keeps its first value."""
    if "twilio_form" not in g:
        pairs = read_form_pairs()
        g.twilio_form = {name: pairs.get(name) for name in pairs}
    return g.twilio_form


def read_form_pairs() -> MultiDict:
    """Parse the request body as Twilio's form encoding, once per request.

    Every value of a repeated field is kept, because Twilio signs all of them.
    Unlike Flask's form parser, this rejects bodies that are not form-encoded or not
    UTF-8 instead of silently replacing characters, which would break signatures.
    The checks run in this order: content type, size, encoding, field count.
    """
    if "twilio_form_pairs" in g:
        return g.twilio_form_pairs

    content_type = request.mimetype
    if content_type != "application/x-www-form-urlencoded":
        abort(
            415,
            description=f"expected Content-Type application/x-www-form-urlencoded, got {content_type[:100] or 'none'}",
        )

    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        abort(413, description=f"the body has {request.content_length} bytes; the limit is {limit}")

    # Werkzeug also stops a body without Content-Length at the limit, with a 413.
    raw = request.get_data(cache=True)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        abort(400, description="the body is not URL-encoded: it contains raw non-ASCII bytes")

    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError:
        abort(400, description="a form value is not valid UTF-8 once decoded")
    except ValueError:
        abort(400, description=f"the body has more than {MAX_FIELDS} fields")

    for name, value in pairs:
        if len(value) > MAX_VALUE_LENGTH:
            abort(400, description=f"field {name[:64]} is longer than {MAX_VALUE_LENGTH} characters")
    g.twilio_form_pairs = MultiDict(pairs)
    return g.twilio_form_pairs


def require(form: dict[str, str], name: str, pattern: re.Pattern | None = None) -> str:
    """Return field `name`, or answer 400 naming what is wrong with it."""
    value = form.get(name)
    if value is None or value == "":
        abort(400, description=f"missing field {name}")
    if pattern is not None and not pattern.match(value):
        abort(400, description=f"field {name} is not a valid Twilio SID: {value[:64]!r}")
    return value


def optional_int(form: dict[str, str], name: str) -> int | None:
    """Return field `name` as a whole number, None when absent, 400 when malformed."""
    value = form.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        abort(400, description=f"field {name} must be a whole number, got {value[:32]!r}")

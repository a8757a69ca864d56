"""Inbound message content besides the text, and the escaping of text PostgreSQL cannot store.

Twilio sends a message as flat form fields: attachments as `MediaUrlN` and
`MediaContentTypeN` (indexed from 0, in no particular order), a WhatsApp location
as `Latitude`/`Longitude`/`Address`/`Label`, a quick-reply tap as `ButtonText`/
`ButtonPayload`, and a click-to-WhatsApp ad as `Referral*` fields.
"""

from __future__ import annotations

import base64
import json
from typing import Any

# PostgreSQL `text` cannot contain U+0000, and its `json` type stores the `\u0000`
# escape but fails when a query reads the value as text. Such characters are
# replaced in every stored copy and the original value is kept base64-encoded.
NUL = "\x00"
REPLACEMENT = "\ufffd"
ORIGINALS_KEY = "original_base64"

# Form fields copied as they are into `Interaction.details`.
KEPT_FIELDS = (
    "AccountSid",
    "MessagingServiceSid",
    "MessageType",
    "NumSegments",
    "ProfileName",
    "WaId",
    "ExternalUserId",
    "FromCountry",
    "FromState",
    "FromCity",
    "ErrorCode",
    "ErrorUrl",
)

BUTTON_FIELDS = {
    "ButtonText": "text",
    "ButtonPayload": "payload",
    "OriginalRepliedMessageSid": "replied_to_sid",
    "OriginalRepliedMessageSender": "replied_to_sender",
}

LOCATION_FIELDS = {"Latitude": "latitude", "Longitude": "longitude", "Address": "address", "Label": "label"}


def escape_nul(form: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Replace NUL in every form value and return the storable form with the originals.

    The originals map each changed field to the base64 of its UTF-8 value, so
    `original_value` can give the customer's exact text back.
    """
    storable: dict[str, str] = {}
    originals: dict[str, str] = {}
    for name, value in form.items():
        if NUL in value:
            originals[name] = base64.b64encode(value.encode("utf-8")).decode("ascii")
            value = value.replace(NUL, REPLACEMENT)
        storable[name] = value
    return storable, originals


def original_value(details: dict[str, Any], name: str, stored: str | None) -> str | None:
    """Return field `name` as the customer sent it, undoing `escape_nul`."""
    encoded = (details or {}).get(ORIGINALS_KEY, {}).get(name)
    if encoded is None:
        return stored
    return base64.b64decode(encoded).decode("utf-8")


def media_items(form: dict[str, str], count: int) -> list[dict[str, str | None]]:
    """Return the attachments as `{"url", "content_type"}` in index order."""
    return [
        {"url": form[f"MediaUrl{index}"], "content_type": form.get(f"MediaContentType{index}") or None}
        for index in range(count)
    ]


def message_details(form: dict[str, str], originals: dict[str, str]) -> dict[str, Any]:
    """Collect the per-message data that has no column of its own."""
    details: dict[str, Any] = {name: form[name] for name in KEPT_FIELDS if form.get(name)}

    metadata = _channel_metadata(form.get("ChannelMetadata"))
    if metadata is not None:
        details["channel_metadata"] = metadata

    location = _section(form, LOCATION_FIELDS)
    if location:
        details["location"] = location

    button = _section(form, BUTTON_FIELDS)
    if button:
        details["button"] = button

    referral = _referral(form)
    if referral:
        details["referral"] = referral

    if originals:
        details[ORIGINALS_KEY] = originals
    return details


def text_for_log_back(body: str | None, media: list[dict]) -> str:
    """Return a non-empty text for a CRM comment: the body, else `[N attachments]`."""
    if body:
        return body
    if len(media) == 1:
        return "[1 attachment]"
    if media:
        return f"[{len(media)} attachments]"
    return "[empty message]"


def _section(form: dict[str, str], fields: dict[str, str]) -> dict[str, str]:
    return {key: form[name] for name, key in fields.items() if form.get(name)}


def _referral(form: dict[str, str]) -> dict[str, str]:
    """Return the click-to-WhatsApp ad fields, `ReferralSourceUrl` as `source_url`.

    `ReferralNumMedia` is sent as `0` on every WhatsApp message, so a referral
    counts only when another `Referral*` field is present.
    """
    fields = {
        _snake(name[len("Referral"):]): value
        for name, value in form.items()
        if name.startswith("Referral") and value
    }
    if set(fields) <= {"num_media"}:
        return {}
    return fields


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def _channel_metadata(raw: str | None) -> Any:
    """Parse `ChannelMetadata`, a JSON document sent as a string, or keep the string if it is invalid."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw

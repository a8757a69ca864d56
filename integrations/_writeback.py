"""Helpers shared by the connectors' write-back: read an interaction payload, describe it.

A payload is the mapping the outbox hands to `Connector.log`: the timeline entry of
the interaction (`id`, `sid`, `channel`, `direction`, `status`, `from`, `to`,
`started_at`, `duration_seconds`, `notes`, `disposition`, `recording_url`, `body`,
`media`, `conversation_id`) plus `caller_kind`, `caller_e164`, `transcription`,
`agent` and `chosen_match`. The contract kit's shorter form (`call_sid`,
`duration_s`) is read too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timezone
from typing import Any

import phonenumbers

# Final call statuses in which nobody answered the call.
UNANSWERED_STATUSES = frozenset({"no-answer", "busy", "canceled", "failed", "missed"})


def call_sid(interaction: Mapping[str, Any]) -> str:
    """Return the CallSid or MessageSid of the interaction."""
    return str(interaction.get("sid") or interaction.get("call_sid") or interaction.get("message_sid") or "")


def duration_seconds(interaction: Mapping[str, Any]) -> int:
    value = interaction.get("duration_seconds")
    if value is None:
        value = interaction.get("duration_s")
    return int(value or 0)


def is_inbound(interaction: Mapping[str, Any]) -> bool:
    return str(interaction.get("direction") or "inbound").startswith("inbound")


def is_voicemail(interaction: Mapping[str, Any]) -> bool:
    """Tell whether the caller left a voicemail: status voicemail, or unanswered with a recording."""
    if interaction.get("status") == "voicemail":
        return True
    return bool(interaction.get("recording_url")) and not was_answered(interaction)


def was_answered(interaction: Mapping[str, Any]) -> bool:
    """Tell whether someone answered the call.

    An inbound call the caller ended in the queue is `completed` on Twilio's side,
    but nobody answered it, so `answered_at` decides when it is in the payload.
    """
    if interaction.get("status") in UNANSWERED_STATUSES:
        return False
    if "answered_at" in interaction:
        return interaction.get("answered_at") is not None
    return interaction.get("status") == "completed"


def is_missed(interaction: Mapping[str, Any]) -> bool:
    return not was_answered(interaction) and not is_voicemail(interaction)


def caller_kind(interaction: Mapping[str, Any]) -> str:
    """Return `phone`, `withheld`, `alphanumeric`, `shortcode` or `invalid`."""
    kind = interaction.get("caller_kind")
    if kind:
        return str(kind)
    return "phone" if interaction.get("caller_e164") else "invalid"


def customer_phone(interaction: Mapping[str, Any]) -> str | None:
    """Return the customer's E.164 number, or None for withheld and non-numeric senders."""
    if caller_kind(interaction) != "phone":
        return None
    return interaction.get("caller_e164") or None


def party_label(interaction: Mapping[str, Any]) -> str:
    """Name the customer's side for a subject line, e.g. `+1 415-555-0123`.

    A withheld number reads "a withheld number", and an alphanumeric sender or a
    short code is shown as it was received.
    """
    kind = caller_kind(interaction)
    if kind == "withheld":
        return "a withheld number"
    e164 = customer_phone(interaction)
    if e164:
        return phonenumbers.format_number(phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    address = interaction.get("from") if is_inbound(interaction) else interaction.get("to")
    return str(address or "an unknown sender").removeprefix("whatsapp:")


def call_subject(interaction: Mapping[str, Any]) -> str:
    """Return e.g. "Inbound call from +1 415-555-0123", "Missed call from …" or "Voicemail from …"."""
    party = party_label(interaction)
    if not is_inbound(interaction):
        return f"Outbound call to {party}" if was_answered(interaction) else f"Unanswered call to {party}"
    if is_voicemail(interaction):
        return f"Voicemail from {party}"
    if is_missed(interaction):
        return f"Missed call from {party}"
    return f"Inbound call from {party}"


def channel_name(interaction: Mapping[str, Any]) -> str:
    return "WhatsApp" if interaction.get("channel") == "whatsapp" else "SMS"


def message_text(interaction: Mapping[str, Any]) -> str:
    """Return a message's text for a CRM comment, never empty.

    A message with attachments gets a line such as "[2 attachments]" followed by one
    link per attachment; a message with neither text nor media reads "[empty message]".
    """
    body = (interaction.get("body") or "").strip()
    media = [item for item in interaction.get("media") or [] if isinstance(item, Mapping)]
    lines = [body] if body else []
    if media:
        noun = "attachment" if len(media) == 1 else "attachments"
        lines.append(f"[{len(media)} {noun}]")
        for item in media:
            kind = item.get("content_type")
            lines.append(f"{item.get('url')} ({kind})" if kind else str(item.get("url")))
    return "\n".join(lines) or "[empty message]"


def message_author(interaction: Mapping[str, Any]) -> str:
    """Return "Customer" for an inbound message, else the agent's name or "Agent"."""
    if is_inbound(interaction):
        return "Customer"
    agent = interaction.get("agent") or {}
    return agent.get("name") or "Agent"


def agent_crm_id(interaction: Mapping[str, Any], system: str) -> str | None:
    """Return the agent's user id in `system`, when the agent's profile maps one."""
    agent = interaction.get("agent") or {}
    value = (agent.get("crm_user_ids") or {}).get(system)
    return str(value) if value not in (None, "") else None


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def started_at(interaction: Mapping[str, Any]) -> datetime:
    return parse_time(interaction.get("started_at")) or datetime.now(timezone.utc)


def activity_date(interaction: Mapping[str, Any]) -> date:
    return started_at(interaction).date()


def iso_utc(value: datetime | None) -> str | None:
    """Format `value` as `2026-01-15T17:01:40Z`."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def call_details(interaction: Mapping[str, Any]) -> list[str]:
    """Return the lines that describe a call in a note: notes, outcome, recording, transcription."""
    lines = []
    if interaction.get("notes"):
        lines.append(f"Notes: {interaction['notes']}")
    if interaction.get("disposition"):
        lines.append(f"Disposition: {interaction['disposition']}")
    lines.append(f"Call status: {interaction.get('status') or 'unknown'}, {duration_seconds(interaction)} s")
    if interaction.get("recording_url"):
        lines.append(f"Recording: {interaction['recording_url']}")
    if interaction.get("transcription"):
        lines.append(f"Transcription: {interaction['transcription']}")
    return lines


def reference_line(kind: str, interaction_id: Any) -> str:
    """Return the marker that makes a comment or line recognisable on a retry."""
    return f"[callcard-{kind}-{interaction_id}]"

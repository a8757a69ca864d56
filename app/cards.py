"""The context card: one versioned JSON document per interaction."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.customers import name_conflicts, order_matches
from app.lookup import LookupResult
from app.models import Customer, Interaction, OutboxEntry
from integrations.base import Caller

CARD_VERSION = 1
TIMELINE_LENGTH = 20
JOURNEY_DAYS = 30

CALLER_LABELS = {
    "withheld": "Caller ID withheld",
    "alphanumeric": "Sender name",
    "shortcode": "Short code",
    "invalid": "Unrecognized number",
}


def caller_section(caller: Caller) -> dict[str, Any]:
    """Describe the caller; a sender that is not a phone number is shown verbatim."""
    return {
        "raw": caller.raw,
        "kind": caller.kind,
        "e164": caller.e164,
        "channel": caller.channel,
        "label": CALLER_LABELS.get(caller.kind),
    }


def interaction_summary(interaction: Interaction, sync: list[OutboxEntry] | None = None) -> dict:
    """Return the timeline entry of one interaction."""
    return {
        "id": interaction.id,
        "sid": interaction.provider_sid,
        "channel": interaction.channel,
        "direction": interaction.direction,
        "status": interaction.status,
        "from": interaction.from_address,
        "to": interaction.to_address,
        "started_at": _iso(interaction.started_at),
        "answered_at": _iso(interaction.answered_at),
        "ended_at": _iso(interaction.ended_at),
        "duration_seconds": interaction.duration_seconds,
        "agent_id": interaction.agent_id,
        "body": interaction.body,
        "media": interaction.media or [],
        "notes": interaction.notes,
        "disposition": interaction.disposition,
        "recording_url": interaction.recording_url,
        "transcription": interaction.transcription,
        "conversation_id": interaction.conversation_id,
        "routing": interaction.routing or {},
        "sync": [
            {
                "connector": entry.connector,
                "state": entry.state,
                "external_id": entry.external_id,
                "url": entry.external_url,
                "last_error": entry.last_error,
            }
            for entry in (sync or [])
        ],
    }


def timeline(session: Session, customer_id: int | None, limit: int = TIMELINE_LENGTH) -> list[dict]:
    """Return the customer's last interactions across every channel, newest first."""
    if customer_id is None:
        return []
    interactions = session.scalars(
        sa.select(Interaction)
        .where(Interaction.customer_id == customer_id)
        .order_by(Interaction.started_at.desc(), Interaction.id.desc())
        .limit(limit)
    ).all()
    ids = [i.id for i in interactions]
    entries: dict[int, list[OutboxEntry]] = {}
    if ids:
        for entry in session.scalars(sa.select(OutboxEntry).where(OutboxEntry.interaction_id.in_(ids))):
            entries.setdefault(entry.interaction_id, []).append(entry)
    return [interaction_summary(i, entries.get(i.id)) for i in interactions]


def journey(session: Session, customer_id: int | None, open_issues: int) -> dict[str, Any]:
    """Return the journey figures: contacts in the last 30 days, channels used, open issues."""
    if customer_id is None:
        return {"contacts_30d": 0, "channels": [], "open_issues": open_issues}
    since = datetime.now(timezone.utc) - timedelta(days=JOURNEY_DAYS)
    rows = session.execute(
        sa.select(Interaction.channel, sa.func.count())
        .where(Interaction.customer_id == customer_id, Interaction.started_at >= since)
        .group_by(Interaction.channel)
    ).all()
    return {
        "contacts_30d": sum(count for _, count in rows),
        "channels": sorted(channel for channel, _ in rows),
        "open_issues": open_issues,
    }


def build_card(
    session: Session,
    interaction: Interaction,
    caller: Caller,
    customer: Customer | None,
    lookup: LookupResult,
    revision: int = 1,
) -> dict[str, Any]:
    """Assemble the card that the console renders and the API returns."""
    matches = order_matches(lookup.matches)
    open_items = [
        {**item.to_dict(), "system": match.system}
        for match in matches
        for item in match.open_items
    ]
    customer_id = customer.id if customer else None
    best = matches[0] if matches else None

    # The best match names the customer; without one, the stored customer does.
    source = best or customer

    return {
        "version": CARD_VERSION,
        "revision": revision,
        "interaction": interaction_summary(interaction),
        "caller": caller_section(caller),
        "customer": {
            "id": customer_id,
            "name": source.display_name if source else None,
            "company": source.company if source else None,
            "tier": best.tier if best else None,
            "owner": best.owner if best else None,
            "conflicts": name_conflicts(matches),
        },
        "matches": [match.to_dict() for match in matches],
        "systems": {name: result.to_dict() for name, result in lookup.systems.items()},
        "open_items": open_items,
        "timeline": timeline(session, customer_id),
        "journey": journey(session, customer_id, len(open_items)),
    }


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()

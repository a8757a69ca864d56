"""JSON endpoints of the agent console: interactions, customers, wrap-up, match choice, screen pop, presence."""

from __future__ import annotations

import json
import logging
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, jsonify, request, url_for

from app import i18n, outbox
from app import screen_pop as screen_pops
from app.auth import can_view_customer, can_view_interaction, check_csrf, current_agent, login_required, stream_token
from app.cards import TIMELINE_LENGTH, interaction_summary, timeline
from app.db import get_db
from app.models import Agent, Customer, Identity, Interaction, OutboxEntry
from app.presence import Presence
from app.redis_store import get_redis

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api")

MAX_NOTES_LENGTH = 10_000
MAX_TIMELINE_LENGTH = 100
CHOSEN_PRESENCES = ("available", "away")
# A remembered match choice is forgotten after a year without being chosen again.
PREFERRED_MATCH_TTL_S = 365 * 24 * 3600


def preferred_match_key(e164: str) -> str:
    return f"callcard:preferred-match:{e164}"


def dispositions() -> list[str]:
    """Return the disposition codes agents choose from: the `DISPOSITIONS` setting or the defaults.

    The setting is a list or a comma-separated string of codes such as `resolved,escalated`.
    """
    configured = current_app.config.get("DISPOSITIONS")
    if isinstance(configured, str):
        configured = [code.strip() for code in configured.split(",")]
    codes = [code for code in (configured or []) if code]
    return codes or list(i18n.DEFAULT_DISPOSITIONS)


def remembered_match(e164: str | None) -> dict[str, str] | None:
    """Return the record an agent last chose for calls from `e164`, or None."""
    if not e164:
        return None
    raw = get_redis().get(preferred_match_key(e164))
    if raw is None:
        return None
    try:
        choice = json.loads(raw)
    except ValueError:
        log.warning("Stored match choice for a caller is not JSON, ignored")
        return None
    return choice if isinstance(choice, dict) else None


@bp.get("/interactions/<int:interaction_id>")
@login_required
def get_interaction(interaction_id: int):
    """Return an interaction with its card, the customer's timeline and the match to pre-select.

    The agent who may read an interaction may read its customer's timeline too.
    """
    interaction = _visible_interaction(interaction_id)
    card = interaction.card or {}

    selected = interaction.chosen_match or _preferred_among(interaction, card.get("matches") or [])
    entries = []
    if interaction.customer_id is not None:
        entries = _display_timeline(get_db().session(), interaction.customer_id, TIMELINE_LENGTH)
    sync = get_db().session().scalars(
        sa.select(OutboxEntry).where(OutboxEntry.interaction_id == interaction.id).order_by(OutboxEntry.id)
    )
    summary = interaction_summary(interaction, list(sync))
    return jsonify(
        interaction=_timeline_entry(summary, _agent_names([interaction.agent_id])),
        card=card,
        caller_display=i18n.format_phone(interaction.caller_e164) or interaction.from_address,
        chosen_match=interaction.chosen_match,
        selected_match=selected,
        timeline=entries,
    )


@bp.get("/customers/<int:customer_id>")
@login_required
def get_customer(customer_id: int):
    """Return a customer, their identities and their timeline."""
    customer = _visible_customer(customer_id)
    session = get_db().session()
    identities = session.scalars(
        sa.select(Identity).where(Identity.customer_id == customer.id).order_by(Identity.id)
    )
    return jsonify(
        customer={
            "id": customer.id,
            "name": customer.display_name,
            "company": customer.company,
            "identities": [_identity(identity) for identity in identities],
        },
        timeline=_display_timeline(session, customer.id, TIMELINE_LENGTH),
    )


@bp.get("/customers/<int:customer_id>/timeline")
@login_required
def get_customer_timeline(customer_id: int):
    """Return the customer's last interactions across every channel, newest first."""
    customer = _visible_customer(customer_id)
    limit = _limit_argument()
    return jsonify(
        customer_id=customer.id,
        timeline=_display_timeline(get_db().session(), customer.id, limit),
    )


@bp.post("/interactions/<int:interaction_id>/wrap-up")
@login_required
def wrap_up(interaction_id: int):
    """Save the agent's notes and disposition on the interaction."""
    check_csrf()
    body = _json_object()
    interaction = _visible_interaction(interaction_id)

    notes = body.get("notes")
    if notes is not None and not isinstance(notes, str):
        abort(400, description="field notes must be a string")
    if notes is not None and len(notes) > MAX_NOTES_LENGTH:
        abort(400, description=f"field notes is longer than {MAX_NOTES_LENGTH} characters")

    disposition = body.get("disposition") or None
    allowed = dispositions()
    if disposition is not None and disposition not in allowed:
        abort(400, description=f"field disposition must be one of {', '.join(allowed)}")

    if notes is not None:
        interaction.notes = notes.strip() or None
    interaction.disposition = disposition
    get_db().session().commit()
    log.info("Interaction %s: wrap-up saved by agent %s (disposition %s)",
             interaction.id, current_agent().id, disposition or "none")

    _notify_write_back(interaction)
    return jsonify(interaction=interaction_summary(interaction))


@bp.post("/interactions/<int:interaction_id>/match")
@login_required
def choose_match(interaction_id: int):
    """Record which of the card's matching records this interaction is about."""
    check_csrf()
    body = _json_object()
    interaction = _visible_interaction(interaction_id)
    match = _card_match(interaction, body)
    open_item_id = _open_item_id(body, match)
    system, external_id = match["system"], str(match["external_id"])

    choice = {"system": system, "external_id": external_id, "record_type": match.get("record_type"),
              "display_name": match.get("display_name"), "url": match.get("url"), "open_item_id": open_item_id}
    interaction.chosen_match = choice
    get_db().session().commit()
    _remember_match(interaction, choice)
    log.info("Interaction %s: agent %s chose %s record %s (open item %s)",
             interaction.id, current_agent().id, system, external_id, open_item_id or "none")

    _notify_write_back(interaction)
    return jsonify(chosen_match=choice)


@bp.post("/interactions/<int:interaction_id>/screen-pop")
@login_required
def screen_pop(interaction_id: int):
    """Open one of the card's records, or its picked open item, in the agent's CRM tab."""
    check_csrf()
    body = _json_object()
    interaction = _visible_interaction(interaction_id)
    match = _card_match(interaction, body)
    open_item_id = _open_item_id(body, match)

    screen_pops.pop(interaction, current_agent(), match, open_item_id)
    return jsonify(screen_pop={"system": match["system"], "external_id": str(match["external_id"]),
                               "open_item_id": open_item_id})


@bp.get("/me/presence")
@login_required
def get_presence():
    """Return the agent's presence: available, away, busy or offline."""
    return jsonify(_presence_view(current_agent()))


@bp.post("/me/presence")
@login_required
def set_presence():
    """Set the presence the agent chooses: available or away."""
    check_csrf()
    body = _json_object()
    presence = body.get("presence")
    if presence not in CHOSEN_PRESENCES:
        abort(400, description=f"field presence must be one of {', '.join(CHOSEN_PRESENCES)}")

    agent = current_agent()
    agent.presence = presence
    get_db().session().commit()
    log.info("Agent %s: presence set to %s", agent.id, presence)
    return jsonify(_presence_view(agent))


@bp.get("/me/stream")
@login_required
def get_stream_url():
    """Return the URL of the agent's event stream with a new signed token."""
    agent = current_agent()
    return jsonify(url=url_for("events.agent_events", token=stream_token(agent.id)))


@bp.post("/me/language")
@login_required
def set_language():
    """Set the language of the agent's console: en or fr."""
    check_csrf()
    body = _json_object()
    language = body.get("language")
    if language not in i18n.LANGUAGES:
        abort(400, description=f"field language must be one of {', '.join(i18n.LANGUAGES)}")

    agent = current_agent()
    agent.language = language
    get_db().session().commit()
    return jsonify(language=language)


def _presence_view(agent: Agent) -> dict[str, Any]:
    """Return the chosen presence and the effective one.

    The effective presence is busy while a call offer is held and offline without an open stream.
    """
    presence = Presence(get_redis())
    if not presence.is_online(agent.id):
        effective = "offline"
    elif presence.offered_call(agent.id):
        effective = "busy"
    else:
        effective = agent.presence
    return {
        "chosen": agent.presence,
        "effective": effective,
        "label": i18n.label(i18n.PRESENCE_LABELS, effective),
    }


def _visible_interaction(interaction_id: int) -> Interaction:
    interaction = get_db().session().get(Interaction, interaction_id)
    if interaction is None:
        abort(404, description=f"interaction {interaction_id} not found")
    if not can_view_interaction(current_agent(), interaction):
        abort(403, description=f"interaction {interaction_id} was not routed to you or your team")
    return interaction


def _visible_customer(customer_id: int) -> Customer:
    customer = get_db().session().get(Customer, customer_id)
    if customer is None:
        abort(404, description=f"customer {customer_id} not found")
    if not can_view_customer(current_agent(), customer_id):
        abort(403, description=f"customer {customer_id} was not routed to you or your team")
    return customer


def _json_object() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="request body must be a JSON object")
    return body


def _required_text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        abort(400, description=f"missing field {name}")
    if len(value) > 255:
        abort(400, description=f"field {name} is longer than 255 characters")
    return value.strip()


def _card_match(interaction: Interaction, body: dict[str, Any]) -> dict[str, Any]:
    """Return the card's match named by the body's system and external_id fields, else abort with 400."""
    system = _required_text(body, "system")
    external_id = _required_text(body, "external_id")
    for match in (interaction.card or {}).get("matches") or []:
        if match.get("system") == system and str(match.get("external_id")) == external_id:
            return match
    abort(400, description=f"no match {system}/{external_id} on this interaction's card")


def _open_item_id(body: dict[str, Any], match: dict[str, Any]) -> str | None:
    """Return the body's open_item_id when it names an open item of `match`; None when absent or null."""
    if body.get("open_item_id") is None:
        return None
    item_id = _required_text(body, "open_item_id")
    known = {str(item.get("id")) for item in match.get("open_items") or []}
    if item_id not in known:
        abort(400, description=f"field open_item_id: {item_id} is not an open case or ticket of "
                               f"{match['system']}/{match['external_id']}")
    return item_id


def _limit_argument() -> int:
    raw = request.args.get("limit", str(TIMELINE_LENGTH))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_TIMELINE_LENGTH:
        abort(400, description=f"query parameter limit must be a whole number from 1 to {MAX_TIMELINE_LENGTH}")
    return int(raw)


def _preferred_among(interaction: Interaction, matches: list[dict]) -> dict | None:
    """Return the remembered choice for this caller when it is still among the card's matches."""
    choice = remembered_match(interaction.caller_e164)
    if choice is None:
        return None
    for match in matches:
        if match.get("system") == choice.get("system") and str(match.get("external_id")) == choice.get("external_id"):
            return choice
    return None


def _remember_match(interaction: Interaction, choice: dict[str, Any]) -> None:
    """Remember the choice for the caller's number; a Redis failure only loses the hint."""
    if not interaction.caller_e164:
        return
    # The record is remembered for the caller's next call, but not the open item, which that call may not be about.
    record = {key: value for key, value in choice.items() if key != "open_item_id"}
    try:
        get_redis().set(preferred_match_key(interaction.caller_e164), json.dumps(record), ex=PREFERRED_MATCH_TTL_S)
    except Exception:
        log.warning("Interaction %s: remembering the match choice failed", interaction.id, exc_info=True)


def _notify_write_back(interaction: Interaction) -> None:
    """Queue the CRM write-back of the new notes, disposition or match.

    The caller has already committed the change, so a queueing error is logged and the save stays.
    """
    try:
        outbox.interaction_updated(get_db().session(), interaction)
    except Exception:
        log.exception("Interaction %s: queueing the CRM write-back failed", interaction.id)


def _display_timeline(session, customer_id: int, limit: int) -> list[dict[str, Any]]:
    entries = timeline(session, customer_id, limit)
    names = _agent_names([entry["agent_id"] for entry in entries])
    return [_timeline_entry(entry, names) for entry in entries]


def _agent_names(agent_ids: list[int | None]) -> dict[int, str]:
    ids = {agent_id for agent_id in agent_ids if agent_id is not None}
    if not ids:
        return {}
    rows = get_db().session().execute(sa.select(Agent.id, Agent.name).where(Agent.id.in_(ids)))
    return dict(rows.all())


def _timeline_entry(entry: dict[str, Any], agent_names: dict[int, str]) -> dict[str, Any]:
    """Add the texts the console shows, formatted for the request's locale."""
    counterpart = entry["from"] if entry["direction"] == "inbound" else entry["to"]
    _, _, bare = counterpart.rpartition(":")
    return {
        **entry,
        "display": {
            "channel": i18n.label(i18n.CHANNEL_LABELS, entry["channel"]),
            "direction": i18n.label(i18n.DIRECTION_LABELS, entry["direction"]),
            "status": i18n.label(i18n.STATUS_LABELS, entry["status"]),
            "time": i18n.format_time(entry["started_at"]),
            "duration": i18n.format_duration(entry["duration_seconds"]),
            "counterpart": i18n.format_phone(bare),
            "agent": agent_names.get(entry["agent_id"], ""),
            "disposition": i18n.label(i18n.DISPOSITION_LABELS, entry["disposition"]),
            "sync": [
                {"connector": sync["connector"], "state": i18n.label(i18n.SYNC_STATE_LABELS, sync["state"]),
                 "url": sync["url"]}
                for sync in entry["sync"]
            ],
        },
    }


def _identity(identity: Identity) -> dict[str, Any]:
    display = i18n.format_phone(identity.value) if identity.kind in ("phone", "whatsapp") else identity.value
    return {"kind": identity.kind, "system": identity.system, "value": identity.value,
            "label": identity.label, "display": display}

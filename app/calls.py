"""Inbound calls: store, look up, build the card, route, push, and follow the call's status."""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import time
from datetime import datetime, timezone

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import outbox, push, queueing
from app.cards import build_card, interaction_summary
from app.customers import resolve_customer
from app.db import get_db
from app.lookup import LookupResult, get_lookup
from app.models import Agent, Interaction, utcnow
from app.numbers import NumberSettings, get_numbers
from app.phone import mask, parse_caller
from app.presence import Presence
from app.routing import CLOSED, QUEUE, RoutingDecision, choose_agent, eligible_agents, queue_name
from integrations.base import Caller

log = logging.getLogger(__name__)

# Status ranks: a callback never moves an interaction to a lower rank.
CALL_STATUS_RANK = {
    "queued": 0,
    "initiated": 0,
    "ringing": 1,
    "in-progress": 2,
    "answered": 2,
    "completed": 3,
    "busy": 3,
    "no-answer": 3,
    "failed": 3,
    "canceled": 3,
}
FINAL_CALL_STATUSES = frozenset(s for s, rank in CALL_STATUS_RANK.items() if rank == 3)
ANSWERED_STATUSES = frozenset({"in-progress", "answered"})
# A call that ended in voicemail; set by app.voicemail, kept against later callbacks.
VOICEMAIL = "voicemail"

# Routing entries of an earlier stay in the queue, dropped when the caller is queued again.
REQUEUE_CLEARS = frozenset({"accepted", "queue_result", "waited_s"})

# How long a retried webhook waits for the first delivery's answer.
DUPLICATE_WAIT_S = 5.0


@dataclasses.dataclass
class InboundCall:
    call_sid: str
    from_: str
    to: str
    caller_name: str | None
    params: dict[str, str]


@dataclasses.dataclass
class StatusUpdate:
    call_sid: str
    status: str
    parent_call_sid: str | None
    sequence: int | None
    timestamp: datetime | None
    duration_seconds: int | None


def record_call(session: Session, call: InboundCall, caller: Caller) -> tuple[Interaction, bool]:
    """Store the call once per CallSid; return (interaction, created)."""
    existing = _by_sid(session, call.call_sid)
    if existing is not None:
        return existing, False

    interaction = Interaction(
        provider_sid=call.call_sid,
        channel="voice",
        direction="inbound",
        from_address=call.from_,
        to_address=call.to,
        caller_kind=caller.kind,
        caller_e164=caller.e164,
        status="ringing",
        status_rank=CALL_STATUS_RANK["ringing"],
        details=_call_details(call),
    )
    session.add(interaction)
    try:
        session.commit()
    except IntegrityError:
        # A concurrent delivery of the same webhook stored it first.
        session.rollback()
        return _by_sid(session, call.call_sid), False
    return interaction, True


def answer_inbound_call(call: InboundCall) -> str:
    """Handle a voice webhook and return its TwiML; a repeat gets the first answer."""
    db = get_db()
    session = db.session()
    config = current_app.config
    caller = parse_caller(call.from_, config["DEFAULT_REGION"])

    interaction, created = record_call(session, call, caller)
    if not created:
        log.info("Call %s: repeated webhook, answering with the stored TwiML", call.call_sid)
        return _stored_twiml(session, interaction)

    log.info("Call %s: inbound from %s (%s)", call.call_sid, mask(caller.raw), caller.kind)
    lookup = get_lookup().run(
        caller,
        on_late=push.late_update(current_app._get_current_object(), interaction.id, caller),
        log_id=call.call_sid,
    )

    customer = _resolve_customer(session, caller, lookup, call.call_sid)
    interaction.customer_id = customer.id if customer else None
    card = build_card(session, interaction, caller, customer, lookup)
    # Routing waits on Redis. Under gevent, an SQLite write lock held across that wait
    # would block every other request of the worker in SQLite's busy handler.
    session.commit()
    settings = get_numbers().settings_for(call.to)
    decision = _route(session, card, call.call_sid, settings)
    routing = _routing_record(decision, settings)
    card["routing"] = routing

    interaction.agent_id = decision.agent.id if decision.agent else None
    interaction.routing = routing
    interaction.card = card
    twiml = _twiml_for(decision, call, settings)
    interaction.twiml = twiml
    session.commit()

    if decision.rule == QUEUE:
        queueing.add_waiting(settings.team, call.call_sid, decision.priority)
    log.info("Call %s: routed by rule %s to agent %s, queue %s, %d console(s) notified",
             call.call_sid, decision.rule, routing["agent_id"], decision.queue, len(decision.notify))
    push.publish(decision.notify, "card", card, call.call_sid)
    return twiml


def _resolve_customer(session, caller, lookup: LookupResult, call_sid: str):
    try:
        return resolve_customer(session, caller, lookup.matches)
    except Exception:
        log.exception("Call %s: recording the customer's identities failed", call_sid)
        session.rollback()
        return None


def _route(session: Session, card: dict, call_sid: str, settings: NumberSettings) -> RoutingDecision:
    """Route the call by the number's rules, or to nobody outside its business hours."""
    if settings.hours is not None and not settings.hours.is_open(utcnow()):
        return RoutingDecision(CLOSED, None, [], team=settings.team)

    presence = Presence(current_app.extensions["callcard.redis"].client)
    return choose_agent(
        session,
        presence,
        card,
        call_sid,
        settings,
        offer_ttl_s=current_app.config["DIAL_TIMEOUT_S"] + 15,
    )


def _routing_record(decision: RoutingDecision, settings: NumberSettings) -> dict:
    """Return what the interaction stores about the routing: the decision, the number, when queued."""
    routing = decision.to_dict()
    routing["number"] = settings.number
    if decision.rule == QUEUE:
        routing["enqueued_at"] = utcnow().isoformat()
    if decision.rule == CLOSED and settings.voicemail:
        routing["voicemail"] = {"reason": "closed"}
    return routing


def _twiml_for(decision: RoutingDecision, call: InboundCall, settings: NumberSettings) -> str:
    from app import prompts

    if decision.rule == CLOSED:
        return queueing.voicemail_twiml(settings, before=[prompts.closed(settings)])
    if decision.agent is None:
        return queueing.queue_twiml(decision.queue)
    return dial_twiml(decision.agent, caller_id=call.to)


def dial_twiml(agent: Agent, caller_id: str | None) -> str:
    """Return the `<Dial>` that rings `agent`, with our status and dial-action callbacks."""
    from webhooks import twiml
    from webhooks.urls import webhook_url

    return twiml.dial_agent(
        agent,
        status_callback=webhook_url("webhooks.voice_status"),
        action=webhook_url("webhooks.voice_dial_complete"),
        timeout_s=current_app.config["DIAL_TIMEOUT_S"],
        caller_id=caller_id,
    )


def _stored_twiml(session: Session, interaction: Interaction) -> str:
    """Wait for the first delivery to finish, then return its TwiML."""
    deadline = time.monotonic() + DUPLICATE_WAIT_S
    while interaction.twiml is None and time.monotonic() < deadline:
        time.sleep(0.05)
        session.expire(interaction)
        session.refresh(interaction)
    if interaction.twiml is None:
        log.warning("Call %s: first delivery still running, queueing the repeat", interaction.provider_sid)
        return queueing.queue_twiml(get_numbers().settings_for(interaction.to_address).queue)
    return interaction.twiml


def apply_status(update: StatusUpdate) -> Interaction | None:
    """Apply a call status callback unless a later state is already stored."""
    session = get_db().session()
    is_child_leg = update.parent_call_sid is not None
    sid = update.parent_call_sid if is_child_leg else update.call_sid

    interaction = session.scalar(
        sa.select(Interaction).where(Interaction.provider_sid == sid).with_for_update()
    )
    if interaction is None:
        log.warning("Call %s: status %s for an unknown call ignored", sid, update.status)
        return None

    if is_child_leg:
        changed = _apply_agent_leg(interaction, update)
    else:
        changed = _apply_call_leg(interaction, update)
    session.commit()

    if changed:
        _after_status_change(session, interaction)
    return interaction


def _apply_call_leg(interaction: Interaction, update: StatusUpdate) -> bool:
    if interaction.status == VOICEMAIL:
        return _apply_after_voicemail(interaction, update)

    rank = CALL_STATUS_RANK.get(update.status, 0)
    oldest = datetime.min.replace(tzinfo=timezone.utc)
    stored_ts = _aware(interaction.status_timestamp) or oldest
    new = (rank, update.timestamp or stored_ts, update.sequence if update.sequence is not None else -1)
    current = (interaction.status_rank, stored_ts, interaction.status_sequence)
    if new <= current:
        log.info(
            "Call %s: status %s (sequence %s) is older than the stored %s, ignored",
            interaction.provider_sid, update.status, update.sequence, interaction.status,
        )
        _keep_late_answer_time(interaction, update)
        return False

    interaction.status = update.status
    interaction.status_rank = rank
    interaction.status_sequence = new[2]
    interaction.status_timestamp = new[1] if new[1] != oldest else None
    if update.status in ANSWERED_STATUSES and interaction.answered_at is None:
        interaction.answered_at = update.timestamp or utcnow()
    if rank == 3:
        interaction.ended_at = update.timestamp or utcnow()
        if update.duration_seconds is not None:
            interaction.duration_seconds = update.duration_seconds
    return True


def _apply_after_voicemail(interaction: Interaction, update: StatusUpdate) -> bool:
    """Keep the status `voicemail` and take the end time and duration of the final callback."""
    if CALL_STATUS_RANK.get(update.status, 0) < CALL_STATUS_RANK["completed"]:
        return False
    changed = False
    if update.timestamp is not None and interaction.ended_at != update.timestamp:
        interaction.ended_at = update.timestamp
        changed = True
    if update.duration_seconds is not None and interaction.duration_seconds != update.duration_seconds:
        interaction.duration_seconds = update.duration_seconds
        changed = True
    return changed


def _keep_late_answer_time(interaction: Interaction, update: StatusUpdate) -> None:
    """Record the answer time of an `in-progress` callback that arrived after the end.

    The status stays as it is; only a callback's own Timestamp is trusted here, since
    the time of arrival says nothing about when the call was answered.
    """
    if update.status in ANSWERED_STATUSES and interaction.answered_at is None and update.timestamp:
        interaction.answered_at = update.timestamp


def _apply_agent_leg(interaction: Interaction, update: StatusUpdate) -> bool:
    """Record when the agent's leg was answered; the caller's leg decides the final state."""
    if update.status in ANSWERED_STATUSES and interaction.answered_at is None:
        interaction.answered_at = update.timestamp or utcnow()
        if interaction.status_rank < CALL_STATUS_RANK["in-progress"]:
            interaction.status = "in-progress"
            interaction.status_rank = CALL_STATUS_RANK["in-progress"]
        return True
    return False


def _after_status_change(session: Session, interaction: Interaction) -> None:
    """Tell the agent's console, free the agent when the call ends."""
    presence = Presence(current_app.extensions["callcard.redis"].client)
    final = interaction.status in FINAL_CALL_STATUSES or interaction.status == VOICEMAIL
    if final:
        _leave_waiting_list(session, interaction)
    if final and interaction.agent_id is not None:
        presence.release(interaction.agent_id, interaction.provider_sid)
        agent = session.get(Agent, interaction.agent_id)
        if agent is not None and interaction.answered_at is not None:
            agent.last_call_ended_at = interaction.ended_at or utcnow()
            session.commit()
    elif interaction.status == "in-progress" and interaction.agent_id is not None:
        presence.hold(interaction.agent_id, interaction.provider_sid, ttl_s=4 * 3600)

    event = "call.ended" if final else "call.status"
    notify = (interaction.routing or {}).get("notified", [])
    push.publish(notify, event, {"interaction": interaction_summary(interaction)}, interaction.provider_sid)

    if final:
        outbox.interaction_finished(session, interaction)
    if final and interaction.agent_id is not None:
        queueing.offer_next(session, interaction.agent_id)


def requeue_unanswered(call_sid: str, dial_status: str) -> str:
    """Free the agent who did not answer and put the caller in the number's queue."""
    session = get_db().session()
    interaction = _by_sid(session, call_sid)
    if interaction is None:
        return queueing.queue_twiml(get_numbers().default.queue)

    settings = get_numbers().settings_for(interaction.to_address)
    presence = Presence(current_app.extensions["callcard.redis"].client)
    if interaction.agent_id is not None:
        presence.release(interaction.agent_id, call_sid)
    routing = {key: value for key, value in (interaction.routing or {}).items() if key not in REQUEUE_CLEARS}
    queueing.forget_acceptance(call_sid)
    priority = routing.get("priority") or "normal"
    routing["unanswered"] = {"agent_id": interaction.agent_id, "dial_status": dial_status}
    routing["rule"] = QUEUE
    routing["agent_id"] = None
    routing["queue"] = queue_name(settings, priority)
    routing["team"] = settings.team
    routing["enqueued_at"] = utcnow().isoformat()
    notify = eligible_agents(session, presence, settings.team)
    routing["notified"] = sorted(set(routing.get("notified") or []) | set(notify))
    interaction.routing = routing
    interaction.agent_id = None
    session.commit()

    queueing.add_waiting(settings.team, call_sid, priority)
    if interaction.card:
        push.publish(notify, "card", {**interaction.card, "routing": routing}, call_sid)
    return queueing.queue_twiml(routing["queue"])


def _leave_waiting_list(session: Session, interaction: Interaction) -> None:
    """Take an ended call off its team's waiting list and record how long its caller waited."""
    routing = interaction.routing or {}
    if routing.get("rule") != QUEUE:
        return
    queueing.remove_waiting(routing.get("team"), interaction.provider_sid)
    if "waited_s" not in routing and routing.get("enqueued_at"):
        ended = interaction.ended_at or utcnow()
        waited = (_aware(ended) - datetime.fromisoformat(routing["enqueued_at"])).total_seconds()
        interaction.routing = {**routing, "waited_s": max(int(round(waited)), 0)}
        session.commit()


def parse_timestamp(value: str | None) -> datetime | None:
    """Parse Twilio's RFC 2822 `Timestamp`; None when absent or malformed."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return _aware(parsed)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def _by_sid(session: Session, sid: str) -> Interaction | None:
    return session.scalar(sa.select(Interaction).where(Interaction.provider_sid == sid))


def _call_details(call: InboundCall) -> dict:
    keep = ("CallerName", "ForwardedFrom", "StirVerstat", "FromCountry", "FromCity", "AccountSid")
    return {name: call.params[name] for name in keep if call.params.get(name)}

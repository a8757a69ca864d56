"""Routing: choose the agent for a call from the customer on its card."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Agent, Interaction
from app.numbers import NumberSettings
from app.presence import Presence

log = logging.getLogger(__name__)

# A waiting-list entry older than the queue timeout plus this is a caller who left.
WAITING_GRACE_S = 300
# Candidates checked against Redis presence per round trip.
PRESENCE_BATCH = 50

OWNER = "owner"
LAST_AGENT = "last_agent"
LONGEST_IDLE = "longest_idle"
QUEUE = "queue"
CLOSED = "closed"

NORMAL = "normal"
VIP = "vip"


@dataclasses.dataclass
class RoutingDecision:
    """Whom to connect the call to, whom to show the card, and why.

    `agent` is the agent offered the call, or None when the call waits in `queue`;
    `notify` lists every agent whose console receives the card; `candidates` lists
    each rule tried in order with the agent it found and the outcome.
    """

    rule: str
    agent: Agent | None
    notify: list[int]
    queue: str | None = None
    team: str | None = None
    priority: str = NORMAL
    candidates: list[dict] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "rule": self.rule,
            "agent_id": self.agent.id if self.agent else None,
            "queue": self.queue,
            "team": self.team,
            "priority": self.priority,
            "candidates": self.candidates,
            "notified": self.notify,
        }


def choose_agent(
    session: Session,
    presence: Presence,
    card: dict,
    call_sid: str,
    settings: NumberSettings,
    offer_ttl_s: int,
) -> RoutingDecision:
    """Try the number's rules in their configured order, else queue the call.

    `owner` is the customer's CRM owner and `last_agent` the agent who last answered
    this customer within `last_agent_days`, each when they are an available agent
    with an open console, whatever their team. `longest_idle` is the free agent of
    the number's team whose last call ended longest ago. The chosen agent is
    reserved in Redis for this call, so two calls arriving at once are never
    offered to the same agent. A queued call's card goes to every eligible agent of
    the team, and a customer whose tier is in `vip_tiers` waits in the VIP queue.
    """
    priority = VIP if settings.is_vip((card.get("customer") or {}).get("tier")) else NORMAL
    candidates: list[dict] = []

    for rule in settings.rules:
        if rule == LONGEST_IDLE and _others_wait_first(settings, priority, candidates):
            continue
        agent = _try_rule(rule, session, presence, card, call_sid, settings, offer_ttl_s, candidates)
        if agent is not None:
            return RoutingDecision(rule, agent, [agent.id], team=settings.team, priority=priority, candidates=candidates)

    queue = queue_name(settings, priority)
    everyone = eligible_agents(session, presence, settings.team)
    return RoutingDecision(QUEUE, None, everyone, queue=queue, team=settings.team, priority=priority, candidates=candidates)


def _others_wait_first(settings: NumberSettings, priority: str, candidates: list[dict]) -> bool:
    """Tell whether callers already waiting for the team come before this call.

    A free agent of the team is offered the longest-waiting caller (see
    `app.queueing.offer_next`), so a new call queues behind them; a VIP call goes
    ahead unless VIP callers are waiting too.
    """
    from app import queueing

    try:
        vip, total = queueing.callers_waiting(settings.team, settings.queue_timeout_s + WAITING_GRACE_S)
    except Exception:
        log.warning("Waiting list of team %s unavailable; routing as if empty", settings.team, exc_info=True)
        return False

    waiting_first = vip if priority == VIP else total
    if waiting_first:
        candidates.append({"rule": LONGEST_IDLE, "agent_id": None, "outcome": f"{waiting_first} caller(s) waiting"})
    return bool(waiting_first)


def queue_name(settings: NumberSettings, priority: str) -> str:
    """Return the Twilio queue of the number for `priority`: VIP callers wait in `<queue>-vip`."""
    return f"{settings.queue}-vip" if priority == VIP else settings.queue


def _try_rule(rule, session, presence, card, call_sid, settings, offer_ttl_s, candidates) -> Agent | None:
    """Apply one rule; append what it found to `candidates` and return the reserved agent, if any."""
    if rule == LONGEST_IDLE:
        for agent_id in _online_by_idle_time(session, presence, settings.team):
            if presence.offer(agent_id, call_sid, offer_ttl_s):
                candidates.append({"rule": rule, "agent_id": agent_id, "outcome": "offered"})
                return session.get(Agent, agent_id)
        candidates.append({"rule": rule, "agent_id": None, "outcome": "nobody free"})
        return None

    if rule == OWNER:
        agent = _owner_agent(session, card)
    else:
        agent = _last_agent(session, card, settings.last_agent_days)
    if agent is None:
        candidates.append({"rule": rule, "agent_id": None, "outcome": "no agent"})
        return None
    if not _is_free(presence, agent):
        candidates.append({"rule": rule, "agent_id": agent.id, "outcome": "offline"})
        return None
    if not presence.offer(agent.id, call_sid, offer_ttl_s):
        candidates.append({"rule": rule, "agent_id": agent.id, "outcome": "busy"})
        return None
    candidates.append({"rule": rule, "agent_id": agent.id, "outcome": "offered"})
    return agent


def _available(team: str | None):
    query = sa.select(Agent).where(Agent.presence == "available")
    return query.where(Agent.team == team) if team else query


def _is_free(presence: Presence, agent: Agent) -> bool:
    return presence.is_online(agent.id)


def _owner_agent(session: Session, card: dict) -> Agent | None:
    emails = [
        (match.get("owner_email") or "").lower()
        for match in card.get("matches", [])
        if match.get("owner_email")
    ]
    if not emails:
        return None
    query = _available(None).where(sa.func.lower(Agent.email).in_(emails))
    by_email = {agent.email.lower(): agent for agent in session.scalars(query)}
    return next((by_email[email] for email in emails if email in by_email), None)


def _last_agent(session: Session, card: dict, days: int) -> Agent | None:
    customer_id = card.get("customer", {}).get("id")
    if customer_id is None:
        return None
    since = datetime.now(timezone.utc) - timedelta(days=days)
    agent_id = session.scalar(
        sa.select(Interaction.agent_id)
        .where(
            Interaction.customer_id == customer_id,
            Interaction.agent_id.is_not(None),
            Interaction.answered_at.is_not(None),
            Interaction.started_at >= since,
        )
        .order_by(Interaction.started_at.desc())
        .limit(1)
    )
    if agent_id is None:
        return None
    return session.scalar(_available(None).where(Agent.id == agent_id))


def _online_by_idle_time(session: Session, presence: Presence, team: str | None) -> Iterator[int]:
    """Yield available agents with an open console and no call, longest idle first.

    Agents who never took a call come first.
    """
    query = sa.select(Agent.id).where(Agent.presence == "available")
    if team:
        query = query.where(Agent.team == team)
    query = query.order_by(
        Agent.last_call_ended_at.is_not(None), Agent.last_call_ended_at, Agent.id
    )
    candidates = list(session.scalars(query))
    for start in range(0, len(candidates), PRESENCE_BATCH):
        batch = candidates[start : start + PRESENCE_BATCH]
        free = presence.free(batch)
        yield from (agent_id for agent_id in batch if agent_id in free)


def team_agents(session: Session, presence: Presence, team: str | None = None) -> list[int]:
    """Return the ids of the agents of `team` (every team when None) with a console open."""
    query = sa.select(Agent.id).where(Agent.presence != "offline")
    if team:
        query = query.where(Agent.team == team)
    agent_ids = list(session.scalars(query))
    online: set[int] = set()
    for start in range(0, len(agent_ids), PRESENCE_BATCH * 10):
        online |= presence.online(agent_ids[start : start + PRESENCE_BATCH * 10])
    return [agent_id for agent_id in agent_ids if agent_id in online]


def eligible_agents(session: Session, presence: Presence, team: str) -> list[int]:
    """Return the ids of the available agents of `team` with a console open: who may accept a queued call."""
    agent_ids = list(session.scalars(sa.select(Agent.id).where(Agent.presence == "available", Agent.team == team)))
    online: set[int] = set()
    for start in range(0, len(agent_ids), PRESENCE_BATCH * 10):
        online |= presence.online(agent_ids[start : start + PRESENCE_BATCH * 10])
    return [agent_id for agent_id in agent_ids if agent_id in online]

"""Routing: choose who gets the call from what the card says."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Agent, Interaction
from app.presence import Presence

log = logging.getLogger(__name__)

LAST_AGENT_DAYS = 30
# Candidates checked against Redis presence per round trip.
PRESENCE_BATCH = 50

OWNER = "owner"
LAST_AGENT = "last_agent"
LONGEST_IDLE = "longest_idle"
QUEUE = "queue"


@dataclasses.dataclass
class RoutingDecision:
    """Whom to connect the call to, and whom to show the card.

    `agent` is the agent offered the call, or None when the call waits in `queue`;
    `notify` lists every agent whose console receives the card.
    """

    rule: str
    agent: Agent | None
    notify: list[int]
    queue: str | None = None

    def to_dict(self) -> dict:
        return {
            "rule": self.rule,
            "agent_id": self.agent.id if self.agent else None,
            "queue": self.queue,
            "notified": self.notify,
        }


def choose_agent(
    session: Session,
    presence: Presence,
    card: dict,
    call_sid: str,
    queue: str,
    offer_ttl_s: int,
    team: str | None = None,
    last_agent_days: int = LAST_AGENT_DAYS,
) -> RoutingDecision:
    """Pick the owner, else the last agent, else the longest-idle agent, else the queue.

    Only available agents with an open console are offered the call. The chosen
    agent is reserved in Redis for this call, so two calls arriving at once are
    never offered to the same agent.
    """
    owner = _owner_agent(session, card, team)
    if owner and _is_free(presence, owner) and presence.offer(owner.id, call_sid, offer_ttl_s):
        return RoutingDecision(OWNER, owner, [owner.id])

    last = _last_agent(session, card, team, last_agent_days)
    if last and _is_free(presence, last) and presence.offer(last.id, call_sid, offer_ttl_s):
        return RoutingDecision(LAST_AGENT, last, [last.id])

    for agent_id in _online_by_idle_time(session, presence, team):
        if presence.offer(agent_id, call_sid, offer_ttl_s):
            agent = session.get(Agent, agent_id)
            return RoutingDecision(LONGEST_IDLE, agent, [agent_id])

    everyone = team_agents(session, presence, team)
    return RoutingDecision(QUEUE, None, everyone, queue=queue)


def _available(team: str | None):
    query = sa.select(Agent).where(Agent.presence == "available")
    return query.where(Agent.team == team) if team else query


def _is_free(presence: Presence, agent: Agent) -> bool:
    return presence.is_online(agent.id)


def _owner_agent(session: Session, card: dict, team: str | None) -> Agent | None:
    emails = [
        (match.get("owner_email") or "").lower()
        for match in card.get("matches", [])
        if match.get("owner_email")
    ]
    if not emails:
        return None
    query = _available(team).where(sa.func.lower(Agent.email).in_(emails))
    by_email = {agent.email.lower(): agent for agent in session.scalars(query)}
    return next((by_email[email] for email in emails if email in by_email), None)


def _last_agent(session: Session, card: dict, team: str | None, days: int) -> Agent | None:
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
    return session.scalar(_available(team).where(Agent.id == agent_id))


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

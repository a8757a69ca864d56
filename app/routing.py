"""Routing: choose who gets the call from what the card says."""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Agent, Interaction
from app.presence import Presence

log = logging.getLogger(__name__)

LAST_AGENT_DAYS = 30

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
    candidates: int = 0

    def to_dict(self) -> dict:
        return {
            "rule": self.rule,
            "agent_id": self.agent.id if self.agent else None,
            "queue": self.queue,
            "notified": self.notify,
            "candidates": self.candidates,
        }


def available_agents(session: Session, presence: Presence, team: str | None = None) -> list[Agent]:
    """Return agents whose presence is available and who have a console open."""
    query = sa.select(Agent).where(Agent.presence == "available")
    if team:
        query = query.where(Agent.team == team)
    agents = list(session.scalars(query))
    online = presence.online([agent.id for agent in agents])
    return [agent for agent in agents if agent.id in online]


def choose_agent(
    session: Session,
    presence: Presence,
    card: dict,
    call_sid: str,
    queue: str,
    offer_ttl_s: int,
) -> RoutingDecision:
    """Pick the owner, else the last agent, else the longest-idle agent, else the queue.

    The chosen agent is reserved in Redis for this call, so two calls arriving at
    once are never offered to the same agent.
    """
    agents = available_agents(session, presence)
    by_email = {agent.email.lower(): agent for agent in agents}
    by_id = {agent.id: agent for agent in agents}

    owner = _owner_agent(card, by_email)
    if owner and presence.offer(owner.id, call_sid, offer_ttl_s):
        return RoutingDecision(OWNER, owner, [owner.id], candidates=len(agents))

    last = _last_agent(session, card, by_id)
    if last and presence.offer(last.id, call_sid, offer_ttl_s):
        return RoutingDecision(LAST_AGENT, last, [last.id], candidates=len(agents))

    for agent in _by_idle_time(agents):
        if presence.offer(agent.id, call_sid, offer_ttl_s):
            return RoutingDecision(LONGEST_IDLE, agent, [agent.id], candidates=len(agents))

    everyone = [agent.id for agent in team_agents(session, presence)]
    return RoutingDecision(QUEUE, None, everyone, queue=queue, candidates=len(agents))


def _owner_agent(card: dict, by_email: dict[str, Agent]) -> Agent | None:
    for match in card.get("matches", []):
        email = (match.get("owner_email") or "").lower()
        if email in by_email:
            return by_email[email]
    return None


def _last_agent(session: Session, card: dict, by_id: dict[int, Agent]) -> Agent | None:
    customer_id = card.get("customer", {}).get("id")
    if customer_id is None:
        return None
    since = datetime.now(timezone.utc) - timedelta(days=LAST_AGENT_DAYS)
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
    return by_id.get(agent_id)


def _by_idle_time(agents: list[Agent]) -> list[Agent]:
    """Order agents by the end of their last call, never-called first."""
    oldest = datetime.min.replace(tzinfo=timezone.utc)

    def idle_since(agent: Agent) -> datetime:
        ended = agent.last_call_ended_at
        if ended is None:
            return oldest
        return ended if ended.tzinfo else ended.replace(tzinfo=timezone.utc)

    return sorted(agents, key=lambda agent: (idle_since(agent), agent.id))


def team_agents(session: Session, presence: Presence) -> list[Agent]:
    agents = list(session.scalars(sa.select(Agent).where(Agent.presence != "offline")))
    online = presence.online([agent.id for agent in agents])
    return [agent for agent in agents if agent.id in online]

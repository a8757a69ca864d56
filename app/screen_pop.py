"""Screen pop: open a matched record in the agent's own CRM browser tab."""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, current_app

from app.models import Agent, Interaction
from integrations.base import SCREEN_POP, Connector, ConnectorError, Match, TimedOut

log = logging.getLogger(__name__)


def agent_payload(agent: Agent) -> dict[str, Any]:
    """Return the agent in the form connectors receive, with their user id in each CRM."""
    return {"id": agent.id, "name": agent.name, "email": agent.email, "crm_user_ids": agent.crm_user_ids or {}}


def mapped_crm_user_id(agent: Agent, system: str) -> str | None:
    """Return the agent's user id in `system`, or None when their profile maps none."""
    value = (agent.crm_user_ids or {}).get(system)
    return None if value in (None, "") else str(value)


def screen_pop_connectors() -> dict[str, Connector]:
    """Return the enabled connectors that declare the screen_pop capability, by name."""
    connectors = current_app.extensions.get("callcard.connectors", {})
    return {name: connector for name, connector in connectors.items() if SCREEN_POP in connector.capabilities}


def systems_for(agent: Agent) -> dict[str, str]:
    """Return the systems where `agent` can screen-pop, each name mapped to its display name.

    A system qualifies when its connector can screen-pop and the agent's profile maps
    their user id in it, because the CRM opens the record in that user's tab.
    """
    return {
        name: connector.display_name or name
        for name, connector in screen_pop_connectors().items()
        if mapped_crm_user_id(agent, name)
    }


def pop(interaction: Interaction, agent: Agent, card_match: dict[str, Any], open_item_id: str | None) -> None:
    """Ask the record's CRM to open it, or its picked open item, in the agent's tab.

    Aborts with 400 when the system cannot screen-pop, 409 when the agent has no user
    id mapped there, 504 when the CRM times out and 502 when it rejects the request.
    """
    system = card_match["system"]
    connector = _connector(system)
    display_name = connector.display_name or system
    if mapped_crm_user_id(agent, system) is None:
        abort(409, description=f"no {display_name} agent id is mapped to your profile. Map your {display_name} "
                               "agent id in the admin page, then reload the console")

    match = Match.from_dict(card_match)
    if open_item_id is not None:
        match.extra = {**match.extra, "open_item_id": open_item_id}

    _call_connector(interaction, agent, connector, match)
    log.info("Interaction %s: agent %s opened %s record %s (open item %s) in their tab",
             interaction.id, agent.id, system, match.external_id, open_item_id or "none")


def _connector(system: str) -> Connector:
    connector = screen_pop_connectors().get(system)
    if connector is None:
        abort(400, description=f"field system: {system} is not an enabled connector with screen pop")
    return connector


def _call_connector(interaction: Interaction, agent: Agent, connector: Connector, match: Match) -> None:
    """Call the connector's screen_pop and turn its failures into 502 or 504 replies.

    The connector bounds its own request with a short timeout, because the agent waits for the reply.
    """
    display_name = connector.display_name or connector.name
    try:
        connector.screen_pop(agent_payload(agent), match)
    except TimedOut as error:
        log.warning("Interaction %s: %s screen pop for agent %s timed out: %s",
                    interaction.id, connector.name, agent.id, error)
        abort(504, description=f"the {display_name} screen pop timed out. Try again")
    except ConnectorError as error:
        log.warning("Interaction %s: %s rejected the screen pop for agent %s: %s",
                    interaction.id, connector.name, agent.id, error)
        abort(502, description=_rejection_message(display_name, error))
    except Exception:
        # A third-party connector may raise any exception, and the agent still gets a clear reply.
        log.exception("Interaction %s: %s screen pop for agent %s failed", interaction.id, connector.name, agent.id)
        abort(502, description=f"the {display_name} screen pop failed with an unexpected error. See the server log")


def _rejection_message(display_name: str, error: ConnectorError) -> str:
    """Name the system in the message, unless the connector's error already does."""
    text = str(error)
    return text if display_name in text else f"{display_name} rejected the screen pop: {text}"

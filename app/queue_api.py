"""The console's accept action for queued calls: `POST /api/calls/<interaction id>/accept`."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, jsonify

from app import queueing
from app.auth import check_csrf, current_agent, login_required
from app.cards import interaction_summary
from app.db import get_db
from app.models import Interaction

log = logging.getLogger(__name__)

bp = Blueprint("queue_api", __name__, url_prefix="/api")


@bp.post("/calls/<int:interaction_id>/accept")
@login_required
def accept_call(interaction_id: int):
    """Take a queued call: the first agent to accept gets it, any later accept gets 409.

    On success Callcard asks Twilio to take the caller out of the queue and dial this
    agent's browser client or phone, as the agent's profile says.
    """
    check_csrf()
    agent = current_agent()
    session = get_db().session()
    interaction = session.get(Interaction, interaction_id)
    if interaction is None:
        abort(404, description=f"interaction {interaction_id} not found")
    if not _may_accept(agent, interaction):
        abort(403, description=f"call {interaction_id} waits for another team")

    try:
        routing = queueing.accept(session, interaction, agent)
    except queueing.AcceptError as error:
        log.info("Call %s: accept by agent %s rejected: %s", interaction.provider_sid, agent.id, error)
        abort(error.status, description=str(error))

    client = None
    if agent.answer_mode != "phone":
        client = agent.client_identity or f"agent-{agent.id}"
    dial = {"answer_mode": agent.answer_mode, "client": client}
    return jsonify(interaction=interaction_summary(interaction), routing=routing, dial=dial)


def _may_accept(agent, interaction: Interaction) -> bool:
    """Agents of the queue's team, and those the card was sent to, may accept."""
    routing = interaction.routing or {}
    return agent.team == routing.get("team") or agent.id in (routing.get("notified") or [])

"""The agent console: the page that shows cards as they arrive."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from app.auth import current_agent, login_required, stream_token
from app.streams import get_streams

bp = Blueprint("console", __name__)


@bp.get("/")
@login_required
def index():
    agent = current_agent()
    return render_template(
        "console.html",
        agent=agent,
        stream_token=stream_token(agent.id),
        last_event_id=get_streams().latest_id(agent.id),
        heartbeat_s=current_app.config["STREAM_HEARTBEAT_S"],
    )

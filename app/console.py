"""The agent console: the page that shows cards as they arrive."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from app import i18n, screen_pop
from app.api import dispositions
from app.auth import current_agent, login_required, stream_token
from app.streams import get_streams

bp = Blueprint("console", __name__)


@bp.get("/")
@login_required
def index():
    """Render the console; its script opens the agent's event stream."""
    agent = current_agent()
    return render_template(
        "console.html",
        agent=agent,
        stream_token=stream_token(agent.id),
        last_event_id=get_streams().latest_id(agent.id),
        heartbeat_s=current_app.config["STREAM_HEARTBEAT_S"],
        dispositions=[(code, i18n.label(i18n.DISPOSITION_LABELS, code)) for code in dispositions()],
        presences=[(code, i18n.label(i18n.PRESENCE_LABELS, code)) for code in ("available", "away")],
        languages=i18n.LANGUAGE_LABELS,
        labels=_console_labels(),
        screen_pop_systems=screen_pop.systems_for(agent),
    )


def _console_labels() -> dict[str, dict[str, str]]:
    """Return the translated labels the console script needs, by code."""
    def translated(labels: dict) -> dict[str, str]:
        return {code: str(text) for code, text in labels.items()}

    return {
        "channel": translated(i18n.CHANNEL_LABELS),
        "direction": translated(i18n.DIRECTION_LABELS),
        "status": translated(i18n.STATUS_LABELS),
        "system": translated(i18n.SYSTEM_STATUS_LABELS),
        "presence": translated(i18n.PRESENCE_LABELS),
    }


@bp.app_template_filter("phone")
def phone_filter(value: str | None) -> str:
    return i18n.format_phone(value)


@bp.app_template_filter("duration")
def duration_filter(seconds: int | None) -> str:
    return i18n.format_duration(seconds)


@bp.app_template_filter("when")
def when_filter(value) -> str:
    return i18n.format_time(value)


@bp.app_context_processor
def signed_in_agent() -> dict:
    """Make the signed-in agent (or None) available to every template as `viewer`."""
    return {"viewer": current_agent()}

"""The admin pages: create and edit agents (role admin only)."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app import i18n
from app.auth import ROLES, check_csrf, current_agent, hash_password, role_required
from app.db import get_db
from app.models import Agent
from app.phone import to_e164

log = logging.getLogger(__name__)

bp = Blueprint("admin", __name__, url_prefix="/admin")

ANSWER_MODES = ("client", "phone")
MIN_PASSWORD_LENGTH = 10
MAX_CRM_IDS_LENGTH = 2000
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CLIENT_IDENTITY = re.compile(r"^[A-Za-z0-9_.@-]{1,121}$")
TEAM = re.compile(r"^[\w .-]{1,64}$")


@bp.get("/agents")
@role_required("admin")
def agents():
    """List every agent."""
    rows = get_db().session().scalars(sa.select(Agent).order_by(Agent.name, Agent.id)).all()
    return render_template("admin_agents.html", agents=rows, roles=i18n.ROLE_LABELS)


@bp.route("/agents/new", methods=["GET", "POST"])
@role_required("admin")
def new_agent():
    """Show and process the form that creates an agent."""
    if request.method == "GET":
        return _render_form(None, _blank_form(), [])

    check_csrf()
    form = _read_form()
    values, errors = _validate(form, None)
    if errors:
        return _render_form(None, form, errors), 400

    agent = Agent(**values)
    session = get_db().session()
    session.add(agent)
    session.commit()
    log.info("Agent %s created by admin %s", agent.id, current_agent().id)
    return redirect(url_for("admin.agents"))


@bp.route("/agents/<int:agent_id>", methods=["GET", "POST"])
@role_required("admin")
def edit_agent(agent_id: int):
    """Show and process the form that edits an agent; an empty password keeps the old one."""
    session = get_db().session()
    agent = session.get(Agent, agent_id)
    if agent is None:
        abort(404, description=f"agent {agent_id} not found")
    if request.method == "GET":
        return _render_form(agent, _form_of(agent), [])

    check_csrf()
    form = _read_form()
    values, errors = _validate(form, agent)
    if errors:
        return _render_form(agent, form, errors), 400

    for name, value in values.items():
        setattr(agent, name, value)
    session.commit()
    log.info("Agent %s updated by admin %s", agent.id, current_agent().id)
    return redirect(url_for("admin.agents"))


def _render_form(agent: Agent | None, form: dict[str, str], errors: list[tuple[str, str]]):
    return render_template(
        "admin_agent_form.html",
        agent=agent,
        form=form,
        errors=dict(errors),
        roles=i18n.ROLE_LABELS,
        languages=i18n.LANGUAGE_LABELS,
    )


FIELDS = ("name", "email", "password", "role", "team", "language", "answer_mode",
          "client_identity", "phone_number", "crm_user_ids")


def _read_form() -> dict[str, str]:
    return {name: request.form.get(name, "").strip() for name in FIELDS}


def _blank_form() -> dict[str, str]:
    form = dict.fromkeys(FIELDS, "")
    form.update(role="agent", team="support", answer_mode="client", crm_user_ids="{}")
    return form


def _form_of(agent: Agent) -> dict[str, str]:
    return {
        "name": agent.name,
        "email": agent.email,
        "password": "",
        "role": agent.role,
        "team": agent.team,
        "language": agent.language or "",
        "answer_mode": agent.answer_mode,
        "client_identity": agent.client_identity or "",
        "phone_number": agent.phone_number or "",
        "crm_user_ids": json.dumps(agent.crm_user_ids or {}, ensure_ascii=False),
    }


def _validate(form: dict[str, str], agent: Agent | None) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Check every field; return the values to store and a list of (field, error message)."""
    errors: list[tuple[str, str]] = []
    values: dict[str, Any] = {}

    if not form["name"] or len(form["name"]) > 255:
        errors.append(("name", _("Enter a name of at most 255 characters.")))
    values["name"] = form["name"]

    email = form["email"].lower()
    if not EMAIL.match(email) or len(email) > 255:
        errors.append(("email", _("Enter a valid e-mail address.")))
    elif _email_taken(email, agent):
        errors.append(("email", _("Another agent already uses this e-mail address.")))
    values["email"] = email

    password = form["password"]
    if password or agent is None:
        if len(password) < MIN_PASSWORD_LENGTH:
            errors.append(("password", _("The password needs at least %(count)d characters.", count=MIN_PASSWORD_LENGTH)))
        values["password_hash"] = hash_password(password)

    if form["role"] not in ROLES:
        errors.append(("role", _("Choose a role.")))
    values["role"] = form["role"]

    if not TEAM.match(form["team"]):
        errors.append(("team", _("Enter a team name of at most 64 letters, digits, spaces, dots or dashes.")))
    values["team"] = form["team"]

    if form["language"] and form["language"] not in i18n.LANGUAGES:
        errors.append(("language", _("Choose a language.")))
    values["language"] = form["language"] or None

    errors.extend(_validate_answer_mode(form, values))
    errors.extend(_validate_crm_ids(form, values))
    return values, errors


def _validate_answer_mode(form: dict[str, str], values: dict[str, Any]) -> list[tuple[str, str]]:
    """Check where the agent takes calls: a browser client identity, or a phone number in E.164."""
    errors = []
    mode = form["answer_mode"]
    if mode not in ANSWER_MODES:
        return [("answer_mode", _("Choose how the agent answers calls."))]
    values["answer_mode"] = mode

    identity = form["client_identity"]
    if identity and not CLIENT_IDENTITY.match(identity):
        errors.append(("client_identity", _("Use letters, digits, dots, dashes, underscores or @ only (at most 121).")))
    if mode == "client" and not identity:
        errors.append(("client_identity", _("Enter the browser client identity.")))
    values["client_identity"] = identity or None

    phone = form["phone_number"]
    e164 = to_e164(phone, current_app.config["DEFAULT_REGION"]) if phone.startswith("+") else None
    if phone and e164 is None:
        errors.append(("phone_number", _("Enter a valid phone number in international format, such as +33612345678.")))
    if mode == "phone" and not phone:
        errors.append(("phone_number", _("Enter the phone number that rings for this agent.")))
    values["phone_number"] = e164
    return errors


def _validate_crm_ids(form: dict[str, str], values: dict[str, Any]) -> list[tuple[str, str]]:
    """Check the CRM user ids: a JSON object of system name to a text or whole-number id."""
    text = form["crm_user_ids"] or "{}"
    problem = [("crm_user_ids", _('Enter a JSON object such as {"salesforce": "005...", "zendesk": 123}.'))]
    if len(text) > MAX_CRM_IDS_LENGTH:
        return problem
    try:
        ids = json.loads(text)
    except ValueError:
        return problem
    if not isinstance(ids, dict):
        return problem
    for system, user_id in ids.items():
        if not system or isinstance(user_id, bool) or not isinstance(user_id, (str, int)):
            return problem
    values["crm_user_ids"] = ids
    return []


def _email_taken(email: str, agent: Agent | None) -> bool:
    query = sa.select(Agent.id).where(sa.func.lower(Agent.email) == email)
    if agent is not None:
        query = query.where(Agent.id != agent.id)
    return get_db().session().scalar(query) is not None

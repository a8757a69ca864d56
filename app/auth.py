"""Agent sign-in, sessions, CSRF protection and signed stream tokens."""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.security import check_password_hash, generate_password_hash

from app.db import get_db
from app.models import Agent, Interaction

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
STREAM_TOKEN_SALT = "callcard.stream"


ROLES = ("agent", "supervisor", "admin")
TEAM_VIEWER_ROLES = frozenset({"supervisor", "admin"})
MAX_EMAIL_LENGTH = 255
MAX_PASSWORD_LENGTH = 1024


def hash_password(password: str) -> str:
    """Hash `password` with scrypt, the way every stored agent password is hashed."""
    return generate_password_hash(password, method="scrypt")


def current_agent() -> Agent | None:
    """Return the signed-in agent of this request, or None."""
    if "agent" not in g:
        agent_id = session.get("agent_id")
        g.agent = get_db().session().get(Agent, agent_id) if agent_id else None
    return g.agent


def login_required(view):
    """Send anonymous browsers to the sign-in page; API clients get 401."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if current_agent() is None:
            if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
                abort(401, description="sign in first")
            return redirect(url_for("auth.login", next=request.path))
        return view(*args, **kwargs)

    return wrapper


def role_required(*roles: str):
    """Allow the view only to signed-in agents whose role is one of `roles`; others get 403."""

    def decorator(view):
        @functools.wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            if current_agent().role not in roles:
                abort(403, description=f"this page needs the role {' or '.join(roles)}")
            return view(*args, **kwargs)

        return wrapper

    return decorator


def csrf_token() -> str:
    """Return this session's CSRF token, creating it on first use."""
    token = session.get("csrf_token")
    if token is None:
        token = secrets.token_urlsafe(32)
        session["csrf_token"] = token
    return token


def check_csrf() -> None:
    """Reject a state-changing request whose CSRF token is missing or wrong."""
    expected = session.get("csrf_token")
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token")
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        abort(400, description="missing or invalid CSRF token; reload the page and try again")


def stream_token(agent_id: int) -> str:
    """Sign a token that lets its bearer read agent `agent_id`'s stream for a while."""
    serializer = URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=STREAM_TOKEN_SALT)
    return serializer.dumps({"agent_id": agent_id})


def agent_from_stream_token(token: str) -> int | None:
    """Return the agent id of a valid, unexpired token, else None."""
    serializer = URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=STREAM_TOKEN_SALT)
    try:
        data = serializer.loads(token, max_age=current_app.config["STREAM_TOKEN_MAX_AGE_S"])
    except (SignatureExpired, BadSignature):
        return None
    agent_id = data.get("agent_id") if isinstance(data, dict) else None
    return agent_id if isinstance(agent_id, int) else None


def can_view_interaction(agent: Agent, interaction: Interaction) -> bool:
    """Tell whether `agent` may read `interaction`.

    The agents it was routed to (its `agent_id` and everyone in `routing["notified"]`)
    may read it, and so may a supervisor or admin of one of those agents' teams.
    """
    involved = _involved_agent_ids(interaction)
    if agent.id in involved:
        return True
    if agent.role not in TEAM_VIEWER_ROLES or not involved:
        return False

    teams = get_db().session().scalars(sa.select(Agent.team).where(Agent.id.in_(involved)))
    return agent.team in set(teams)


def can_view_customer(agent: Agent, customer_id: int) -> bool:
    """Tell whether `agent` may read the customer: one of its interactions is visible to them."""
    interactions = get_db().session().scalars(
        sa.select(Interaction).where(Interaction.customer_id == customer_id)
    )
    return any(can_view_interaction(agent, interaction) for interaction in interactions)


def _involved_agent_ids(interaction: Interaction) -> set[int]:
    notified = (interaction.routing or {}).get("notified") or []
    involved = {agent_id for agent_id in notified if isinstance(agent_id, int)}
    if interaction.agent_id is not None:
        involved.add(interaction.agent_id)
    return involved


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _is_locked(agent: Agent) -> bool:
    locked_until = agent.locked_until
    if locked_until is None:
        return False
    if locked_until.tzinfo is None:
        locked_until = locked_until.replace(tzinfo=timezone.utc)
    return locked_until > _now()


def authenticate(email: str, password: str) -> tuple[Agent | None, str | None]:
    """Check the credentials; return (agent, None) or (None, reason to show)."""
    db_session = get_db().session()
    if len(email) > MAX_EMAIL_LENGTH or len(password) > MAX_PASSWORD_LENGTH:
        return None, _("Wrong e-mail or password.")

    agent = db_session.scalar(sa.select(Agent).where(sa.func.lower(Agent.email) == email.lower()))
    if agent is None or not agent.password_hash:
        # Same work and message for an unknown e-mail, so it cannot be told apart.
        check_password_hash(hash_password("x"), password)
        return None, _("Wrong e-mail or password.")

    if _is_locked(agent):
        log.warning("Agent %s: sign-in rejected, account locked", agent.id)
        return None, _("Too many failed sign-ins. Try again in 15 minutes.")

    if not check_password_hash(agent.password_hash, password):
        agent.failed_logins += 1
        if agent.failed_logins >= MAX_FAILED_LOGINS:
            agent.locked_until = _now() + LOCKOUT
            agent.failed_logins = 0
            log.warning("Agent %s: locked for 15 minutes after %d failed sign-ins", agent.id, MAX_FAILED_LOGINS)
        db_session.commit()
        return None, _("Wrong e-mail or password.")

    agent.failed_logins = 0
    agent.locked_until = None
    db_session.commit()
    return agent, None


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the sign-in form; on POST check the CSRF token and the credentials."""
    error = None
    if request.method == "POST":
        check_csrf()
        agent, error = authenticate(request.form.get("email", "").strip(), request.form.get("password", ""))
        if agent is not None:
            session.clear()
            session["agent_id"] = agent.id
            session.permanent = True
            log.info("Agent %s signed in", agent.id)
            return redirect(_safe_next(request.args.get("next")))
    status = 401 if error else 200
    return render_template("login.html", error=error), status


@bp.post("/logout")
def logout():
    check_csrf()
    agent = current_agent()
    session.clear()
    if agent is not None:
        log.info("Agent %s signed out", agent.id)
    return redirect(url_for("auth.login"))


def _safe_next(target: str | None) -> str:
    """Follow `next` only to a path on this site."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("console.index")

"""Outbox administration: `flask outbox list|retry` and the same as JSON endpoints."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask import Blueprint, abort, current_app, jsonify, request
from flask.cli import AppGroup

from app import outbox
from app.auth import check_csrf, current_agent
from app.db import get_db
from app.models import OutboxEntry

bp = Blueprint("outbox", __name__, url_prefix="/api/outbox")
outbox_cli = AppGroup("outbox", help="Inspect and retry the write-back to CRMs.")

MAX_LISTED = 500


def list_entries(state: str | None, limit: int = MAX_LISTED) -> list[OutboxEntry]:
    query = sa.select(OutboxEntry).order_by(OutboxEntry.id.desc()).limit(limit)
    if state:
        query = query.where(OutboxEntry.state == state)
    return list(get_db().session().scalars(query))


def retry_entries(ids: list[int] | None, all_dead: bool) -> list[OutboxEntry]:
    """Retry the rows with `ids`, or every dead row; unknown ids raise LookupError."""
    session = get_db().session()
    if all_dead:
        entries = list(session.scalars(sa.select(OutboxEntry).where(OutboxEntry.state == outbox.DEAD)))
    else:
        entries = []
        for entry_id in ids or []:
            entry = session.get(OutboxEntry, entry_id)
            if entry is None:
                raise LookupError(f"outbox row {entry_id} not found")
            entries.append(entry)
    app = current_app._get_current_object()
    return [outbox.retry(app, session, entry) for entry in entries]


@outbox_cli.command("list")
@click.option("--state", type=click.Choice(outbox.STATES), help="Only rows in this state.")
def list_command(state: str | None) -> None:
    """List outbox rows, newest first."""
    entries = list_entries(state)
    if not entries:
        click.echo("No outbox rows" + (f" in state {state}" if state else ""))
        return
    click.echo(f"{'ID':>6}  {'INTERACTION':>11}  {'CONNECTOR':<12} {'STATE':<9} {'TRIES':>5}  DETAIL")
    for entry in entries:
        detail = entry.external_id if entry.state == outbox.DONE else (entry.last_error or "")
        click.echo(
            f"{entry.id:>6}  {entry.interaction_id:>11}  {entry.connector:<12} "
            f"{entry.state:<9} {entry.attempts:>5}  {detail[:100]}"
        )


@outbox_cli.command("retry")
@click.argument("entry_id", type=int, required=False)
@click.option("--all-dead", is_flag=True, help="Retry every dead row.")
def retry_command(entry_id: int | None, all_dead: bool) -> None:
    """Retry outbox row ENTRY_ID, or every dead row with --all-dead."""
    if (entry_id is None) == (not all_dead):
        raise click.UsageError("give one outbox row ID or --all-dead")
    try:
        entries = retry_entries([entry_id] if entry_id else None, all_dead)
    except LookupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{len(entries)} row(s) queued again")


def _require_admin() -> None:
    agent = current_agent()
    if agent is None:
        abort(401, description="sign in first")
    if agent.role not in ("admin", "supervisor"):
        abort(403, description="the outbox is for supervisors and admins")


@bp.get("")
def list_api():
    _require_admin()
    state = request.args.get("state")
    if state is not None and state not in outbox.STATES:
        abort(400, description=f"state must be one of {', '.join(outbox.STATES)}, got {state[:20]!r}")
    return jsonify(entries=[outbox.entry_to_dict(entry) for entry in list_entries(state)])


@bp.post("/<int:entry_id>/retry")
def retry_api(entry_id: int):
    _require_admin()
    check_csrf()
    try:
        entries = retry_entries([entry_id], all_dead=False)
    except LookupError as error:
        abort(404, description=str(error))
    return jsonify(entries=[outbox.entry_to_dict(entry) for entry in entries])


@bp.post("/retry-dead")
def retry_dead_api():
    _require_admin()
    check_csrf()
    entries = retry_entries(None, all_dead=True)
    return jsonify(entries=[outbox.entry_to_dict(entry) for entry in entries])

"""Command-line tools: `flask --app wsgi db|contacts|agents|simulate|worker …`."""

from __future__ import annotations

import sys

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup

from app.db import get_db

db_cli = AppGroup("db", help="Manage the database schema.")
contacts_cli = AppGroup("contacts", help="Manage the built-in directory's contacts.")
agents_cli = AppGroup("agents", help="Manage agents.")
simulate_cli = AppGroup("simulate", help="Send signed Twilio webhooks to the running server.")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply the database migrations (default: up to the latest)."""
    get_db().upgrade(revision)
    click.echo(f"Database at revision {get_db().current_revision()}")


@contacts_cli.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--region", help="Region for numbers without a country prefix (default: DEFAULT_REGION).")
def contacts_import(file, region: str | None) -> None:
    """Add or update directory contacts from a CSV FILE with a header row.

    Columns: name and phone (required), company, email, owner_email, tier, notes.
    """
    from app.contacts import CsvFormatError, import_contacts

    region = region or current_app.config["DEFAULT_REGION"]
    try:
        report = import_contacts(get_db().session(), file, region)
    except CsvFormatError as error:
        raise click.ClickException(f"{file.name}: {error}") from None
    except UnicodeDecodeError as error:
        get_db().session().rollback()
        raise click.ClickException(
            f"{file.name}: not UTF-8 text (byte {error.start}); save the file as UTF-8 CSV"
        ) from None

    for message in report.errors:
        click.echo(f"{file.name}: {message}", err=True)
    click.echo(f"{report.added} added, {report.updated} updated, {len(report.errors)} rejected")
    if report.errors:
        sys.exit(1)


@agents_cli.command("create")
@click.option("--name", required=True, help="Full name shown on the console.")
@click.option("--email", required=True, help="E-mail address used to sign in.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="Sign-in password.")
@click.option("--role", type=click.Choice(["agent", "supervisor", "admin"]), default="agent", show_default=True)
@click.option("--team", default="support", show_default=True, help="Team whose queue the agent serves.")
@click.option("--language", type=click.Choice(["en", "fr"]), help="Console language (default: the browser's).")
@click.option("--client-identity", help="Twilio Client identity when answering in the browser.")
@click.option("--phone", help="Phone number in E.164 when answering on a phone.")
def agents_create(name, email, password, role, team, language, client_identity, phone) -> None:
    """Create an agent who can sign in to the console."""
    from app.auth import hash_password
    from app.models import Agent
    from app.phone import to_e164

    session = get_db().session()
    if session.scalar(sa.select(Agent).where(sa.func.lower(Agent.email) == email.lower())):
        raise click.ClickException(f"an agent with e-mail {email} already exists")
    if len(password) < 8:
        raise click.ClickException("the password must have at least 8 characters")
    if "@" not in email.strip("@") or " " in email:
        raise click.ClickException(f"--email {email!r} is not an e-mail address")

    phone_e164 = None
    if phone:
        phone_e164 = to_e164(phone, current_app.config["DEFAULT_REGION"])
        if phone_e164 is None:
            raise click.ClickException(f"--phone {phone!r} is not a valid phone number")

    agent = Agent(
        name=name,
        email=email,
        password_hash=hash_password(password),
        role=role,
        team=team,
        language=language,
        answer_mode="phone" if phone_e164 else "client",
        client_identity=client_identity,
        phone_number=phone_e164,
    )
    session.add(agent)
    session.commit()
    click.echo(f"Agent {agent.id} created: {name} <{email}>")


@simulate_cli.command("call")
@click.argument("number")
@click.option("--to", "to", default="+14155550100", show_default=True, help="The dialled business number.")
@click.option(
    "--status",
    type=click.Choice(["completed", "busy", "no-answer", "failed", "canceled"]),
    help="Also send the final status callback with this status.",
)
@click.option("--duration", type=click.IntRange(min=0), default=0, help="CallDuration in seconds, with --status.")
@click.option("--call-sid", help="Reuse a CallSid, e.g. to finish an earlier simulated call.")
def simulate_call(number, to, status, duration, call_sid) -> None:
    """Simulate an inbound call from NUMBER to the server at PUBLIC_BASE_URL."""
    from app import simulate

    config = current_app.config
    simulator = _simulator()
    # With --call-sid and --status, only the status of that earlier call is sent.
    send_voice = not (call_sid and status)
    call_sid = call_sid or simulate.new_sid("CA")
    try:
        if send_voice:
            answer = simulator.post("/webhooks/twilio/voice", simulate.voice_params(config, call_sid, number, to))
            click.echo(f"CallSid {call_sid}")
            click.echo(answer.text)
        if status:
            params = simulate.status_params(config, call_sid, number, to, status, 1, duration)
            simulator.post("/webhooks/twilio/voice/status", params)
            click.echo(f"Status {status} sent ({duration} s)")
    except simulate.SimulationError as error:
        raise click.ClickException(str(error)) from None


@simulate_cli.command("message")
@click.argument("number")
@click.argument("text")
@click.option("--to", "to", default="+14155550100", show_default=True, help="The business number written to.")
@click.option("--whatsapp", is_flag=True, help="Send as a WhatsApp message (whatsapp: addresses).")
@click.option(
    "--media",
    "media",
    multiple=True,
    metavar="URL",
    help="Attach a media URL; repeat for several. The content type is guessed from the URL.",
)
def simulate_message(number, text, to, whatsapp, media) -> None:
    """Simulate an inbound SMS (or WhatsApp message) with TEXT from NUMBER."""
    import mimetypes

    from app import simulate

    attachments = [(url, mimetypes.guess_type(url)[0] or "application/octet-stream") for url in media]
    message_sid = simulate.new_sid("MM" if attachments else "SM")
    params = simulate.message_params(current_app.config, message_sid, number, to, text, whatsapp, attachments)
    try:
        _simulator().post("/webhooks/twilio/messaging", params)
    except simulate.SimulationError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"MessageSid {message_sid}")


def _simulator():
    from app import simulate

    config = current_app.config
    base_url = config.get("PUBLIC_BASE_URL") or "http://127.0.0.1:8000"
    return simulate.Simulator(base_url, config["TWILIO_AUTH_TOKEN"])


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
def worker(burst: bool) -> None:
    """Run an RQ worker for this installation's queues."""
    from app.jobs import run_worker

    run_worker(current_app._get_current_object(), burst=burst)


def register_commands(app: Flask) -> None:
    from app.outbox_admin import outbox_cli

    for command in (db_cli, contacts_cli, agents_cli, simulate_cli, worker, outbox_cli):
        app.cli.add_command(command)

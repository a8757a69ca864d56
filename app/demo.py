"""Sample data for the embedded default: directory contacts and one demo agent."""

from __future__ import annotations

import fcntl
import logging
import os
import secrets

import sqlalchemy as sa
from flask import Flask

from app.contacts import import_contacts
from app.db import get_db
from app.models import Agent, DirectoryContact

log = logging.getLogger(__name__)

SAMPLE_CONTACTS = os.path.join(os.path.dirname(__file__), "data", "sample_contacts.csv")
DEMO_AGENT_EMAIL = "demo@example.com"


def load_sample_data(app: Flask, lock_path: str) -> None:
    """Load the sample contacts and create the demo agent, once per installation."""
    with open(lock_path, "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        with get_db().new_session() as session:
            _load_contacts(app, session)
            _create_demo_agent(app, session)


def _load_contacts(app: Flask, session) -> None:
    if session.scalar(sa.select(sa.func.count()).select_from(DirectoryContact)):
        return
    with open(SAMPLE_CONTACTS, newline="", encoding="utf-8") as handle:
        # The sample numbers are written for the US region unless they carry a prefix.
        import_contacts(session, handle, "US")
    log.info("Loaded the sample directory contacts from %s", SAMPLE_CONTACTS)


def _create_demo_agent(app: Flask, session) -> None:
    from app.auth import hash_password

    if session.scalar(sa.select(sa.func.count()).select_from(Agent)):
        return
    password = secrets.token_urlsafe(12)
    session.add(
        Agent(
            name="Demo Agent",
            email=DEMO_AGENT_EMAIL,
            password_hash=hash_password(password),
            role="admin",
            client_identity="demo-agent",
        )
    )
    session.commit()
    path = os.path.join(app.instance_path, "demo-credentials.txt")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"email: {DEMO_AGENT_EMAIL}\npassword: {password}\n")
    log.warning("Created the demo agent %s; its password is in %s", DEMO_AGENT_EMAIL, path)

"""A third-party connector installed as a distribution: found, checked and used in a lookup.

Each test writes a tiny installed distribution (a module and its `.dist-info` with
an entry point in the `callcard.connectors` group) into a temporary folder on
`sys.path`, which is what `pip install` leaves behind.
"""

from __future__ import annotations

import textwrap
import time

import pytest
import sqlalchemy as sa

from app import outbox
from app.db import get_db
from app.lookup_cache import LookupCache
from app.models import OutboxEntry
from integrations.registry import ContractError, available_connectors
from tests.conftest import create_agent, mark_online, redis_client, voice_params
from tests.lookup.conftest import Calls, match_ids, statuses

CONNECTOR_MODULE = '''
import time

from integrations.base import LOG_CALL, LOOKUP, Connector, ExternalReference, Match


class AcmeConnector(Connector):
    """Look callers up in a table given in the ACME_CONTACTS setting."""

    name = "acme"
    display_name = "Acme CRM"
    capabilities = frozenset({LOOKUP, LOG_CALL})

    def __init__(self, contacts, delay_s):
        self.contacts = contacts
        self.delay_s = delay_s
        self.logged = {}

    @classmethod
    def from_context(cls, context):
        return cls(context.config.get("ACME_CONTACTS") or {}, context.config.get("ACME_DELAY_S") or 0)

    def lookup(self, caller, timeout):
        if not caller.is_lookupable:
            return []
        # Sleeps without looking at `timeout`, as a careless connector would.
        time.sleep(self.delay_s)
        name = self.contacts.get(caller.e164)
        if name is None:
            return []
        return [Match(system=self.name, record_type="contact", external_id="acme-1",
                      display_name=name, phones=[caller.e164])]

    def log(self, interaction, match):
        reference = self.logged.setdefault(interaction["id"], ExternalReference(f"acme-log-{interaction['id']}"))
        return reference


class BrokenConnector(Connector):
    """Declares call logging but implements neither lookup nor log."""

    name = "broken"
    capabilities = frozenset({LOOKUP, LOG_CALL})
'''


def install_distribution(folder, entry_points: dict[str, str]) -> None:
    """Write `acme_callcard.py` and its dist-info, as pip would install them, into `folder`."""
    (folder / "acme_callcard.py").write_text(textwrap.dedent(CONNECTOR_MODULE), encoding="utf-8")
    dist_info = folder / "acme_callcard-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-callcard\nVersion: 1.0\n", encoding="utf-8")
    lines = "".join(f"{name} = {reference}\n" for name, reference in entry_points.items())
    (dist_info / "entry_points.txt").write_text(f"[callcard.connectors]\n{lines}", encoding="utf-8")


@pytest.fixture
def acme_installed(tmp_path, monkeypatch):
    folder = tmp_path / "site-packages"
    folder.mkdir()
    install_distribution(
        folder,
        {"acme": "acme_callcard:AcmeConnector", "broken": "acme_callcard:BrokenConnector"},
    )
    monkeypatch.syspath_prepend(str(folder))
    yield
    import sys

    sys.modules.pop("acme_callcard", None)


@pytest.fixture
def acme_app(make_app, acme_installed):
    def factory(**overrides):
        settings = {
            "CONNECTORS": "directory,acme",
            "ACME_CONTACTS": {"+14155550100": "Ada Acme"},
            "LOOKUP_DEADLINE_MS": 500,
        }
        app = make_app(**{**settings, **overrides})
        redis_client(app).flushdb()
        return app

    return factory


def online_calls(app) -> Calls:
    agent_id = create_agent(app)
    mark_online(app, agent_id)
    return Calls(app, agent_id)


def test_entry_point_connector_is_listed(acme_installed):
    assert available_connectors()["acme"] == "acme_callcard:AcmeConnector"


def test_entry_point_connector_used_in_lookup(acme_app):
    calls = online_calls(acme_app())

    card = calls.card("+14155550100")

    assert match_ids(card) == ["acme-1"]
    assert card["customer"]["name"] == "Ada Acme"
    assert statuses(card) == {"directory": "none", "acme": "found"}


def test_broken_entry_point_connector_rejected(acme_app):
    with pytest.raises(ContractError) as raised:
        acme_app(CONNECTORS="directory,broken")

    message = str(raised.value)
    assert "connector 'broken' rejected" in message
    assert "does not implement lookup" in message
    assert "does not override log()" in message


def test_careless_connector_marked_timed_out(acme_app):
    app = acme_app(ACME_DELAY_S=2.5, ACME_TIMEOUT_MS=600)
    calls = online_calls(app)

    response, elapsed = calls.place("+14155550100")
    started = time.monotonic()
    update = calls.wait_for_update("CA" + "1".zfill(32), timeout_s=3.0)

    assert response.status_code == 200
    assert elapsed < 1.0
    assert statuses(calls.events(kind="card")[-1])["acme"] == "pending"
    assert statuses(update)["acme"] == "timed_out"
    # The follower gives up at the connector's timeout plus its grace, not when the sleep ends.
    assert time.monotonic() - started < 1.5


def test_logged_interaction_drops_cached_lookup(acme_app):
    app = acme_app()
    calls = online_calls(app)
    call_sid = "CA" + "7" * 32
    cache = LookupCache(redis_client(app), ttl_s=120)
    calls.place("+14155550100", call_sid=call_sid)
    assert cache.get("acme", "+14155550100") is not None

    status = voice_params(call_sid=call_sid, CallStatus="completed", CallDuration="30")
    response = calls.twilio.post("/webhooks/twilio/voice/status", status)
    assert response.status_code == 204
    with app.app_context():
        with get_db().new_session() as session:
            entry = session.scalar(sa.select(OutboxEntry).where(OutboxEntry.connector == "acme"))
        state = outbox.deliver(app, entry.id)

    assert state == "done"
    assert cache.get("acme", "+14155550100") is None
    assert cache.get("directory", "+14155550100") is None

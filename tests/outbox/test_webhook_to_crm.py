"""From Twilio's status callbacks to the Salesforce Task, and the outbox admin endpoints."""

from __future__ import annotations

import sqlalchemy as sa

from app.db import get_db
from app.models import Interaction, OutboxEntry
from tests.conftest import Twilio, create_agent, mark_online
from tests.console.conftest import Console, sign_in
from tests.outbox.conftest import KNOWN, SUPPORT_LINE, drain, entries, store_interaction

CALL_SID = "CA00000000000000000000000000000302"


def voice(call_sid: str = CALL_SID) -> dict[str, str]:
    return {
        "AccountSid": "AC" + "0" * 32,
        "CallSid": call_sid,
        "From": KNOWN,
        "To": SUPPORT_LINE,
        "CallStatus": "ringing",
        "Direction": "inbound",
    }


def status(status: str, sequence: int, clock: str, duration: int | None = None) -> dict[str, str]:
    params = {
        **voice(),
        "CallStatus": status,
        "SequenceNumber": str(sequence),
        "Timestamp": f"Tue, 02 Jan 2024 10:00:{clock} +0000",
    }
    if duration is not None:
        params["CallDuration"] = str(duration)
    return params


def tasks(stub) -> list[dict]:
    return list(stub.records["Task"].values())


def test_out_of_order_callbacks_log_one_task(crm_app, salesforce_stub, people):
    twilio = Twilio(crm_app.test_client())
    mark_online(crm_app, create_agent(crm_app))
    assert twilio.post("/webhooks/twilio/voice", voice()).status_code == 200

    callbacks = [
        status("completed", 3, "50", duration=42),
        status("in-progress", 2, "08"),
        status("ringing", 1, "02"),
        status("completed", 3, "50", duration=42),
    ]
    for params in callbacks:
        assert twilio.post("/webhooks/twilio/voice/status", params).status_code in (200, 204)
    drain(crm_app)

    logged = [task for task in tasks(salesforce_stub) if task.get("CallObject") == CALL_SID]
    assert len(logged) == 1
    assert logged[0]["Status"] == "Completed"
    assert logged[0]["CallDurationInSeconds"] == 42
    assert logged[0]["WhoId"] == people["contact"]["Id"]


def test_status_before_final_logs_nothing(crm_app, salesforce_stub, people):
    twilio = Twilio(crm_app.test_client())
    twilio.post("/webhooks/twilio/voice", voice())

    twilio.post("/webhooks/twilio/voice/status", status("in-progress", 1, "08"))
    drain(crm_app)

    assert tasks(salesforce_stub) == []
    with crm_app.app_context():
        rows = get_db().session().scalars(sa.select(OutboxEntry)).all()
    assert rows == []


def test_sync_state_reaches_the_interaction_api(crm_app, salesforce_stub, people):
    interaction_id = store_interaction(crm_app)
    agent_id = create_agent(crm_app, email="sup@example.com", role="supervisor")
    with crm_app.app_context():
        session = get_db().session()
        interaction = session.get(Interaction, interaction_id)
        interaction.agent_id = agent_id
        interaction.routing = {"notified": [agent_id]}
        session.commit()
    from app import outbox

    with crm_app.app_context():
        session = get_db().session()
        outbox.interaction_finished(session, session.get(Interaction, interaction_id))
    drain(crm_app)

    client = crm_app.test_client()
    sign_in(client, "sup@example.com")
    body = Console(client, agent_id).get(f"/api/interactions/{interaction_id}").get_json()

    sync = {entry["connector"]: entry for entry in body["interaction"]["sync"]}
    assert sync["salesforce"]["state"] == "done"
    assert sync["salesforce"]["external_id"] == tasks(salesforce_stub)[0]["Id"]


def admin_console(app, role: str = "admin") -> Console:
    agent_id = create_agent(app, email=f"{role}@example.com", role=role)
    client = app.test_client()
    assert sign_in(client, f"{role}@example.com").status_code == 302
    return Console(client, agent_id)


def dead_row(app, salesforce_stub) -> int:
    """Store an interaction whose Salesforce log is dead after its attempts."""
    interaction_id = store_interaction(app)
    salesforce_stub.service_unavailable(times=None)
    from app import outbox

    with app.app_context():
        session = get_db().session()
        outbox.interaction_finished(session, session.get(Interaction, interaction_id))
    drain(app)
    row = entries(app, interaction_id)["salesforce"]
    assert row.state == "dead"
    return row.id


def test_outbox_api_lists_dead_rows(crm_app, salesforce_stub, people):
    row_id = dead_row(crm_app, salesforce_stub)

    response = admin_console(crm_app).get("/api/outbox?state=dead")

    assert response.status_code == 200
    assert [entry["id"] for entry in response.get_json()["entries"]] == [row_id]
    assert "503" in response.get_json()["entries"][0]["last_error"]


def test_outbox_api_retry_lands_dead_row(crm_app, salesforce_stub, people):
    row_id = dead_row(crm_app, salesforce_stub)
    salesforce_stub.faults.clear()
    console = admin_console(crm_app)

    response = console.post_json(f"/api/outbox/{row_id}/retry", {})
    drain(crm_app)

    assert response.status_code == 200
    assert entries(crm_app)[str(row_id)].state == "done"
    assert len(tasks(salesforce_stub)) == 1


def test_outbox_api_retry_all_dead(crm_app, salesforce_stub, people):
    row_id = dead_row(crm_app, salesforce_stub)
    salesforce_stub.faults.clear()

    response = admin_console(crm_app).post_json("/api/outbox/retry-dead", {})
    drain(crm_app)

    assert [entry["id"] for entry in response.get_json()["entries"]] == [row_id]
    assert entries(crm_app)[str(row_id)].state == "done"


def test_outbox_api_rejects_plain_agent(crm_app):
    response = admin_console(crm_app, role="agent").get("/api/outbox")

    assert response.status_code == 403


def test_outbox_api_requires_sign_in(crm_app):
    response = crm_app.test_client().get("/api/outbox", headers={"Accept": "application/json"})

    assert response.status_code == 401


def test_outbox_api_retry_requires_csrf(crm_app):
    response = admin_console(crm_app).post_json("/api/outbox/1/retry", {}, csrf=False)

    assert response.status_code == 400


def test_outbox_api_rejects_unknown_state(crm_app):
    response = admin_console(crm_app).get("/api/outbox?state=lost")

    assert response.status_code == 400
    assert "state must be one of" in response.get_json()["message"]


def test_outbox_api_retry_unknown_row_is_404(crm_app):
    response = admin_console(crm_app).post_json("/api/outbox/999999/retry", {})

    assert response.status_code == 404

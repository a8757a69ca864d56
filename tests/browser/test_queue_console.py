"""Queued calls and voicemails in headless Chromium: the Accept button on two consoles, and the
voicemail link and transcription on the timeline."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from app.presence import Presence
from tests.browser.conftest import sign_in_page, wait_until
from tests.browser.test_console import stored_interaction, voice_params
from tests.conftest import create_agent, redis_client
from tests.routing.conftest import ACCOUNT_SID, TwilioCallsStub

CALL_SID = "CA" + "a" * 32
CALLER = "+14155550123"
# Each agent is taking this other call when the queued call arrives, so nobody is free and the call queues.
BUSY_WITH = "CA" + "b" * 32
ACCEPT = ".card-accept .accept"
RECORDING_LINK = "https://api.twilio.com/2010-04-01/Accounts/AC00/Recordings/RE" + "1" * 32 + ".mp3"
TRANSCRIPTION = "Hi, it is Ada, please call me back about the March invoice."


@pytest.fixture
def calls_api(app):
    """Point the live application at a stub of Twilio's Calls resource for the test."""
    keys = ("TWILIO_ACCOUNT_SID", "TWILIO_API_BASE_URL")
    saved = {key: app.config.get(key) for key in keys}
    with TwilioCallsStub() as stub:
        app.config.update(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_API_BASE_URL=stub.url)
        yield stub
    app.config.update(saved)


def queue_call_for(app, server, pages_by_agent: dict[int, object]) -> int:
    """Post a call while every signed-in agent is busy, wait for its card on each page, free the agents.

    Return the queued call's interaction id.
    """
    presence = Presence(redis_client(app))
    for agent_id in pages_by_agent:
        assert presence.offer(agent_id, BUSY_WITH + str(agent_id), 300)

    server.post_twilio("/webhooks/twilio/voice", voice_params(CALL_SID))
    for page in pages_by_agent.values():
        page.wait_for_selector(ACCEPT)

    for agent_id in pages_by_agent:
        presence.release(agent_id, BUSY_WITH + str(agent_id))
    stored = stored_interaction(app, CALL_SID)
    assert stored.routing["rule"] == "queue"
    return stored.id


def signed_in_agents(app, server, open_page, names=("ana", "ben")) -> dict[int, object]:
    pages = {}
    for name in names:
        agent_id = create_agent(app, name=name.title(), email=f"{name}@example.com", client_identity=name)
        page = open_page()
        sign_in_page(page, server, f"{name}@example.com")
        pages[agent_id] = page
    return pages


def test_first_accept_wins_second_sees_409(app, live_server, open_page, calls_api):
    pages = signed_in_agents(app, live_server, open_page)
    (ana, ana_page), (_, ben_page) = pages.items()
    queue_call_for(app, live_server, pages)
    # Ben's console misses the event that Ana took the call, as when both click at nearly the same time.
    ben_page.evaluate("window.callcardConsole.disconnect()")

    assert ana_page.get_by_role("button", name="Accept call").count() == 1
    held_routes = []
    ana_page.route("**/api/calls/*/accept", lambda route: held_routes.append(route))
    ana_page.focus(ACCEPT)
    ana_page.keyboard.press("Enter")
    wait_until(lambda: held_routes or ana_page.evaluate("false"))
    assert ana_page.is_disabled(ACCEPT)
    assert ana_page.text_content(".accept-state") == "Accepting the call…"
    held_routes[0].continue_()

    ana_page.wait_for_selector('.accept-state:text-is("You accepted this call")')
    assert ana_page.is_hidden(ACCEPT)
    assert ana_page.get_attribute(".accept-state", "role") == "status"
    assert [sid for sid, _ in calls_api.redirects] == [CALL_SID]
    assert stored_interaction(app, CALL_SID).agent_id == ana

    ben_page.click(ACCEPT)
    error = ben_page.wait_for_selector('.accept-error:has-text("already accepted")')
    assert error.get_attribute("role") == "alert"
    assert error.is_visible()
    assert error.text_content().startswith("Could not accept this call: ")
    # The console then reloads the call and shows why it cannot be accepted any more.
    ben_page.wait_for_selector('.accept-state:text-is("Another agent accepted this call")')
    assert ben_page.is_hidden(ACCEPT)
    assert [sid for sid, _ in calls_api.redirects] == [CALL_SID]
    assert stored_interaction(app, CALL_SID).agent_id == ana


def test_other_console_drops_accept_button(app, live_server, open_page, calls_api):
    pages = signed_in_agents(app, live_server, open_page)
    (_, ana_page), (_, ben_page) = pages.items()
    queue_call_for(app, live_server, pages)

    ana_page.click(ACCEPT)
    ana_page.wait_for_selector('.accept-state:text-is("You accepted this call")')

    ben_page.wait_for_selector('.accept-state:text-is("Another agent accepted this call")')
    assert ben_page.is_hidden(ACCEPT)
    assert ben_page.text_content(".accept-error") == ""


def test_accept_without_twilio_account_shows_503(app, live_server, open_page):
    saved = app.config.get("TWILIO_ACCOUNT_SID")
    app.config["TWILIO_ACCOUNT_SID"] = None
    try:
        pages = signed_in_agents(app, live_server, open_page, names=("ana",))
        [page] = pages.values()
        queue_call_for(app, live_server, pages)

        page.click(ACCEPT)
        error = page.wait_for_selector('.accept-error:has-text("TWILIO_ACCOUNT_SID is not set")')
    finally:
        app.config["TWILIO_ACCOUNT_SID"] = saved

    assert error.is_visible()
    assert page.is_enabled(ACCEPT)
    assert page.text_content(".accept-state") == ""


def test_direct_call_has_no_accept_button(app, live_server, open_page):
    pages = signed_in_agents(app, live_server, open_page, names=("ana",))
    [page] = pages.values()

    live_server.post_twilio("/webhooks/twilio/voice", voice_params(CALL_SID))
    page.wait_for_selector(".card .card-name")

    assert stored_interaction(app, CALL_SID).routing["rule"] != "queue"
    assert page.is_hidden(".card-accept")
    assert page.get_by_role("button", name="Accept call").count() == 0


def seed_voicemail(app) -> None:
    """Store a customer known by CALLER with a voicemail and an earlier answered call."""
    from app.db import get_db
    from app.models import Customer, Identity, Interaction

    now = datetime.now(timezone.utc)
    common = {"from_address": CALLER, "to_address": "+14155550199", "caller_e164": CALLER,
              "direction": "inbound", "channel": "voice"}
    with app.app_context():
        with get_db().new_session() as session:
            customer = Customer(display_name="Ada Example", company="Example Analytics")
            session.add(customer)
            session.flush()
            session.add(Identity(customer_id=customer.id, kind="phone", system="", value=CALLER))
            session.add_all([
                Interaction(provider_sid="CA" + "c" * 32, customer_id=customer.id, status="voicemail",
                            started_at=now - timedelta(hours=2), recording_url=RECORDING_LINK[:-4],
                            transcription=TRANSCRIPTION,
                            routing={"rule": "queue", "voicemail": {"reason": "queue_timeout",
                                                                    "recording_link": RECORDING_LINK}},
                            **common),
                Interaction(provider_sid="CA" + "d" * 32, customer_id=customer.id, status="completed",
                            started_at=now - timedelta(days=2), duration_seconds=60, **common),
            ])
            session.commit()


def test_timeline_shows_voicemail_link(app, live_server, open_page):
    seed_voicemail(app)
    create_agent(app, email="alice@example.com")
    page = open_page()
    sign_in_page(page, live_server, "alice@example.com")

    live_server.post_twilio("/webhooks/twilio/voice", voice_params(CALL_SID))
    voicemail = stored_interaction(app, "CA" + "c" * 32)
    answered = stored_interaction(app, "CA" + "d" * 32)
    entry = f'.timeline-entry[data-interaction="{voicemail.id}"]'
    link = page.wait_for_selector(f'{entry} a:text-is("Listen to voicemail")')

    assert link.get_attribute("href") == RECORDING_LINK
    assert link.get_attribute("target") == "_blank"
    assert "noopener" in link.get_attribute("rel").split()
    wait_until(lambda: page.query_selector(f"{entry} .timeline-transcription"))
    assert page.text_content(f"{entry} .timeline-transcription") == f"Transcription: {TRANSCRIPTION}"
    other = f'.timeline-entry[data-interaction="{answered.id}"]'
    assert page.query_selector(f"{other} .timeline-voicemail") is None
    assert page.query_selector(f"{other} .timeline-transcription") is None


def test_timeline_voicemail_in_french(app, live_server, open_page):
    seed_voicemail(app)
    create_agent(app, email="alice@example.com", language="fr")
    page = open_page(locale="fr-FR")
    sign_in_page(page, live_server, "alice@example.com")

    live_server.post_twilio("/webhooks/twilio/voice", voice_params(CALL_SID))
    voicemail = stored_interaction(app, "CA" + "c" * 32)
    entry = f'.timeline-entry[data-interaction="{voicemail.id}"]'

    page.wait_for_selector(f'{entry} a:text-is("Écouter le message vocal")')
    wait_until(lambda: page.query_selector(f"{entry} .timeline-transcription"))
    assert page.text_content(f"{entry} .timeline-transcription") == f"Transcription : {TRANSCRIPTION}"

"""Screenshots of the console for the docs, in English and French, at 1280×720.

Run with CALLCARD_SCREENSHOTS=1 to write docs/screenshots/console-en.png and
console-fr.png; without it the test is skipped so a normal run changes no files.
"""

from __future__ import annotations

import os
import pathlib

import pytest

from tests.browser.conftest import sign_in_page, wait_until
from tests.browser.test_console import CALLER, HISTORY_EN, seed_history, stored_interaction, voice_params
from tests.conftest import add_contact, create_agent

SCREENSHOTS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "screenshots"

pytestmark = pytest.mark.skipif(
    os.environ.get("CALLCARD_SCREENSHOTS") != "1", reason="set CALLCARD_SCREENSHOTS=1 to write the screenshots"
)

SALESFORCE_CONTACT = {
    "system": "salesforce", "record_type": "Contact", "external_id": "0035g00000AdaEx",
    "display_name": "Ada Example", "company": "Example Analytics", "owner": "Alice Agent",
    "tier": "Gold", "url": "https://example.my.salesforce.com/0035g00000AdaEx",
    "open_items": [{"kind": "case", "id": "5005g00000Case1", "number": "00001042",
                    "subject": "Invoice shows the wrong VAT rate", "status": "Working", "priority": "High",
                    "url": "https://example.my.salesforce.com/5005g00000Case1"}],
}
ZENDESK_USER = {
    "system": "zendesk", "record_type": "user", "external_id": "381920",
    "display_name": "Ada Example", "company": "Example Analytics",
    "url": "https://example.zendesk.com/agent/users/381920",
    "open_items": [{"kind": "ticket", "id": "4821", "number": "4821", "subject": "Delivery delayed",
                    "status": "open", "priority": "normal", "url": "https://example.zendesk.com/agent/tickets/4821"}],
}


def enrich_card(app, call_sid: str, agent_id: int) -> None:
    """Publish the card update a Salesforce and a Zendesk connector would send after the deadline."""
    from app.db import get_db
    from app.models import Interaction
    from app.streams import AgentStreams
    from tests.conftest import redis_client

    interaction = stored_interaction(app, call_sid)
    card = dict(interaction.card)
    matches = [SALESFORCE_CONTACT, ZENDESK_USER]
    card["revision"] = 2
    card["matches"] = card["matches"] + matches
    card["customer"] = {**card["customer"], "owner": "Alice Agent", "tier": "Gold"}
    card["systems"] = {**card["systems"],
                       "salesforce": {"status": "found", "count": 1, "elapsed_ms": 412, "error": None},
                       "zendesk": {"status": "found", "count": 1, "elapsed_ms": 655, "error": None}}
    card["open_items"] = [{**item, "system": match["system"]} for match in matches for item in match["open_items"]]
    with app.app_context():
        with get_db().new_session() as session:
            session.get(Interaction, interaction.id).card = card
            session.commit()
    AgentStreams(redis_client(app)).publish([agent_id], "card.update", card)


# What each screenshot shows: a caller, their earlier contacts and the agent's note, in its language.
SCENES = {
    "en-US": {
        "file": "console-en.png", "caller": CALLER, "region": "US", "local": "(415) 555-0123",
        "history": HISTORY_EN, "note": "Promised a callback on Monday",
    },
    "fr-FR": {
        "file": "console-fr.png", "caller": "+33612345678", "region": "FR", "local": "06 12 34 56 78",
        "history": {"notes": "Question sur la facture de mars", "sms": "Ma commande est-elle partie ?",
                    "whatsapp": "Merci pour l’information"},
        "note": "Rappel promis lundi",
    },
}


@pytest.mark.parametrize("locale", sorted(SCENES))
def test_write_console_screenshot(app, live_server, open_page, locale):
    scene = SCENES[locale]
    seed_history(app, scene["caller"], scene["history"])
    add_contact(app, "Ada Example", scene["local"], region=scene["region"], company="Example Analytics", tier="Gold")
    agent_id = create_agent(app, email="alice@example.com")
    page = open_page(locale=locale)
    sign_in_page(page, live_server, "alice@example.com")

    call_sid = "CA" + "9" * 32
    live_server.post_twilio("/webhooks/twilio/voice", voice_params(call_sid, scene["caller"]))
    page.wait_for_selector(".card")
    enrich_card(app, call_sid, agent_id)
    page.wait_for_selector('.card .system[data-system="zendesk"]')
    wait_until(lambda: page.get_attribute(".card", "data-timeline-loaded"))
    page.fill(".card .notes", scene["note"])

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / scene["file"]
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000

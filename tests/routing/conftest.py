"""Fixtures of the routing tests: a numbers file, apps that load it, and a stub of Twilio's Calls resource."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from tests.conftest import create_agent, mark_online
from tests.stubs import RecordedRequest, Reply, StubServer

ACCOUNT_SID = "AC" + "0" * 32
SUPPORT_LINE = "+14155550199"
FRENCH_LINE = "+33123456789"
CALL_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-f]{32})/Calls/(?P<sid>CA[0-9a-fA-F]{32})\.json$")

NUMBERS = {
    "default": {"team": "support", "queue": "support", "language": "en", "queue_timeout_s": 60},
    "numbers": {
        SUPPORT_LINE: {
            "team": "support",
            "queue": "support",
            "rules": ["owner", "last_agent", "longest_idle"],
            "vip_tiers": ["Gold"],
            "queue_timeout_s": 90,
            "voicemail_max_length_s": 75,
            "transcribe": True,
        },
        FRENCH_LINE: {
            "team": "ventes",
            "queue": "ventes",
            "language": "fr",
            "queue_timeout_s": 45,
            "voicemail_max_length_s": 60,
            "hours": {
                "timezone": "Europe/Paris",
                "weekly": {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
            },
        },
    },
}


def write_numbers(tmp_path, data: dict[str, Any]) -> str:
    path = tmp_path / "numbers.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


@pytest.fixture
def numbers_file(tmp_path) -> str:
    return write_numbers(tmp_path, NUMBERS)


@pytest.fixture
def routed_app(make_app, numbers_file):
    return make_app(NUMBERS_FILE=numbers_file, TWILIO_ACCOUNT_SID=ACCOUNT_SID)


def online_agent(app, email: str, **fields) -> int:
    agent_id = create_agent(app, email=email, client_identity=email.split("@")[0], **fields)
    mark_online(app, agent_id)
    return agent_id


def parse(response) -> ET.Element:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/xml"
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    return root


class TwilioCallsStub(StubServer):
    """Twilio's Calls resource (API 2010-04-01): updating a live call with a new `Url`.

    A CallSid in `ended` gets Twilio's 404 error document, as for a call that
    is over; every accepted update is kept in `redirects` as (CallSid, form).
    """

    def __init__(self):
        super().__init__(ssl_context=None)
        self.redirects: list[tuple[str, dict[str, str]]] = []
        self.ended: set[str] = set()

    def route(self, request: RecordedRequest) -> Reply:
        match = CALL_PATH.match(request.path)
        if match is None or request.method != "POST":
            return Reply.json(404, {"code": 20404, "message": "The requested resource was not found", "status": 404})
        if match["sid"] in self.ended:
            return Reply.json(404, {"code": 20404, "message": f"The requested resource /Calls/{match['sid']}.json was not found", "status": 404})

        form = request.form()
        with self.lock:
            self.redirects.append((match["sid"], form))
        return Reply.json(200, {"sid": match["sid"], "account_sid": match["account"], "status": "in-progress",
                                "uri": request.path})


@pytest.fixture
def twilio_calls():
    with TwilioCallsStub() as stub:
        yield stub

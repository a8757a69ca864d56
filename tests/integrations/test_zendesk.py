"""The Zendesk connector against the Zendesk stub, through zenpy over HTTPS."""

from __future__ import annotations

import time
from importlib import metadata

import pytest
import requests

from integrations import _client
from integrations import zendesk as zendesk_module
from integrations.base import (
    AuthenticationFailed,
    ConnectorContext,
    ConnectorUnavailable,
    NotConfigured,
    RateLimited,
    TransientError,
)
from integrations.zendesk import ZendeskConnector, parse_retry_after
from tests.integrations.conftest import caller
from tests.stubs import load_fixture


@pytest.fixture
def dee(zendesk_stub):
    """An end user with an organization, whose number is stored in E.164."""
    organization = zendesk_stub.add_organization(name="Acme Example Inc.")
    return zendesk_stub.add_user(
        id=9001,
        name="Dee Example",
        phone="+14155550101",
        email="dee@example.com",
        organization_id=organization["id"],
        updated_at="2026-01-15T17:01:03Z",
    )


def search_requests(stub):
    return stub.requests_to("/api/v2/search.json")


# Finding callers


def test_lookup_finds_end_user(zendesk, dee):
    matches = zendesk.lookup(caller("+14155550101"), 5)

    assert [match.external_id for match in matches] == ["9001"]
    assert matches[0].system == "zendesk"
    assert matches[0].display_name == "Dee Example"
    assert matches[0].company == "Acme Example Inc."
    assert matches[0].emails == ["dee@example.com"]
    assert matches[0].phones == ["+14155550101"]


def test_lookup_finds_whatsapp_sender(zendesk, dee):
    matches = zendesk.lookup(caller("whatsapp:+14155550101"), 5)

    assert [match.external_id for match in matches] == ["9001"]


def test_search_sends_digits_with_wildcard(zendesk_stub, zendesk, dee):
    zendesk.lookup(caller("whatsapp:+14155550101"), 5)

    assert zendesk_stub.search_queries == ["role:end-user phone:*4155550101 type:user"]


def test_search_never_sends_plus(zendesk_stub, zendesk, dee):
    zendesk.lookup(caller("+14155550101"), 5)

    assert all("+" not in request.raw_query for request in search_requests(zendesk_stub))
    assert all("phone: " not in query for query in zendesk_stub.search_queries)


def test_lookup_of_unknown_number_is_empty(zendesk, dee):
    assert zendesk.lookup(caller("+14155550104"), 5) == []


@pytest.mark.parametrize(
    ("stored", "number"),
    [
        ("(415) 555-0101", "+14155550101"),
        ("415.555.0101", "+14155550101"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("0033612345678", "+33612345678"),
    ],
)
def test_stored_phone_matches_caller(zendesk_stub, zendesk, stored, number):
    user = zendesk_stub.add_user(name="Someone", phone=stored)

    assert [match.external_id for match in zendesk.lookup(caller(number), 5)] == [str(user["id"])]


def test_lookup_ignores_fuzzy_search_hit(zendesk_stub, zendesk):
    zendesk_stub.add_user(name="Mexico Example", phone="+52 415 555 0101")

    assert zendesk.lookup(caller("+14155550101"), 5) == []
    assert len(search_requests(zendesk_stub)) == 1


def test_shared_number_returns_every_user(zendesk_stub, zendesk):
    first = zendesk_stub.add_user(name="Jane Example", phone="+14155550123", shared_phone_number=True)
    second = zendesk_stub.add_user(name="Pedro Example", phone="+14155550123", shared_phone_number=True)

    matches = zendesk.lookup(caller("+14155550123"), 5)

    assert sorted(match.external_id for match in matches) == sorted([str(first["id"]), str(second["id"])])


def test_match_lists_unsolved_tickets_newest_first(zendesk_stub, zendesk, dee):
    for day, status in enumerate(("new", "open", "pending", "hold", "solved", "closed"), start=1):
        zendesk_stub.add_ticket(
            requester_id=9001, subject=f"Ticket {status}", status=status, updated_at=f"2026-01-0{day}T00:00:00Z"
        )

    match = zendesk.lookup(caller("+14155550101"), 5)[0]

    assert [item.subject for item in match.open_items] == ["Ticket hold", "Ticket pending", "Ticket open", "Ticket new"]


def test_ticket_links_to_agent_interface(zendesk_stub, zendesk, dee):
    ticket = zendesk_stub.add_ticket(requester_id=9001, subject="Help", status="open")

    item = zendesk.lookup(caller("+14155550101"), 5)[0].open_items[0]

    assert item.url == f"{zendesk_stub.url}/agent/tickets/{ticket['id']}"
    assert item.kind == "ticket"


def test_match_links_to_agent_interface(zendesk_stub, zendesk, dee):
    match = zendesk.lookup(caller("+14155550101"), 5)[0]

    assert match.url == f"{zendesk_stub.url}/agent/users/9001"


def test_oauth_token_signs_requests(zendesk_stub, make_zendesk, dee):
    connector = make_zendesk(ZENDESK_EMAIL=None, ZENDESK_API_TOKEN=None, ZENDESK_OAUTH_TOKEN=zendesk_stub.oauth_token)

    assert len(connector.lookup(caller("+14155550101"), 5)) == 1
    assert search_requests(zendesk_stub)[0].headers["Authorization"] == f"Bearer {zendesk_stub.oauth_token}"


# Errors


def test_rate_limit_raises_with_retry_after(zendesk_stub, zendesk, dee):
    zendesk_stub.rate_limited(retry_after=30)

    started = time.monotonic()
    with pytest.raises(RateLimited) as raised:
        zendesk.lookup(caller("+14155550101"), 5)

    assert raised.value.retry_after == 30
    assert time.monotonic() - started < 1
    assert len(zendesk_stub.requests) == 1


def test_rate_limit_without_retry_after_raises(zendesk_stub, zendesk, dee):
    zendesk_stub.rate_limited(retry_after=None)

    with pytest.raises(RateLimited) as raised:
        zendesk.lookup(caller("+14155550101"), 5)

    assert raised.value.retry_after is None


def test_rate_limit_on_tickets_raises(zendesk_stub, zendesk, dee):
    zendesk_stub.rate_limited(retry_after=3600, path="/api/v2/users/9001/tickets")

    started = time.monotonic()
    with pytest.raises(RateLimited):
        zendesk.lookup(caller("+14155550101"), 5)

    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("30", 30.0), ("0", 0.0), ("", None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_parse_retry_after_reads_header(header, seconds):
    assert parse_retry_after(header) == seconds


def test_service_unavailable_raises_transient_error(zendesk_stub, zendesk, dee):
    zendesk_stub.service_unavailable()

    with pytest.raises(TransientError):
        zendesk.lookup(caller("+14155550101"), 5)


def test_malformed_json_raises_transient_error(zendesk_stub, zendesk, dee):
    zendesk_stub.malformed_json(path="/api/v2/search.json")

    with pytest.raises(TransientError):
        zendesk.lookup(caller("+14155550101"), 5)


def test_wrong_token_raises_authentication_failed(make_zendesk, dee):
    connector = make_zendesk(ZENDESK_API_TOKEN="wrong-token")

    with pytest.raises(AuthenticationFailed):
        connector.lookup(caller("+14155550101"), 5)


def test_slow_reply_raises_within_timeout(zendesk_stub, zendesk, dee):
    zendesk_stub.delay(3.0, path="/api")

    started = time.monotonic()
    with pytest.raises(TransientError):
        zendesk.lookup(caller("+14155550101"), 0.5)

    assert time.monotonic() - started < 0.5 + 0.3


def test_withheld_caller_sends_no_request(zendesk_stub, zendesk):
    assert zendesk.lookup(caller("anonymous"), 5) == []
    assert zendesk_stub.requests == []


# Settings


def test_missing_url_raises_not_configured():
    with pytest.raises(NotConfigured, match="ZENDESK_URL"):
        ZendeskConnector.from_context(ConnectorContext(config={}))


def test_plain_http_url_raises_not_configured():
    config = {"ZENDESK_URL": "http://acme.zendesk.com", "ZENDESK_OAUTH_TOKEN": "token"}

    with pytest.raises(NotConfigured, match="https"):
        ZendeskConnector.from_context(ConnectorContext(config=config))


def test_token_without_email_raises_not_configured():
    config = {"ZENDESK_URL": "https://acme.zendesk.com", "ZENDESK_API_TOKEN": "token"}

    with pytest.raises(NotConfigured, match="ZENDESK_EMAIL"):
        ZendeskConnector.from_context(ConnectorContext(config=config))


def test_missing_credentials_raise_not_configured():
    config = {"ZENDESK_URL": "https://acme.zendesk.com"}

    with pytest.raises(NotConfigured, match="ZENDESK_OAUTH_TOKEN"):
        ZendeskConnector.from_context(ConnectorContext(config=config))


def test_url_splits_into_subdomain_and_domain():
    settings = zendesk_module.ZendeskSettings.from_config(
        {"ZENDESK_URL": "https://acme.zendesk.com/", "ZENDESK_OAUTH_TOKEN": "token"}
    )

    assert settings.subdomain_and_domain == ("acme", "zendesk.com")


def test_old_client_raises_connector_unavailable(monkeypatch):
    monkeypatch.setattr(_client.metadata, "version", lambda name: "2.0.24")

    with pytest.raises(ConnectorUnavailable, match="zenpy 2.0.57"):
        zendesk_module.require_client()


def test_missing_client_raises_connector_unavailable(monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(_client.metadata, "version", not_installed)

    with pytest.raises(ConnectorUnavailable, match="pip install"):
        zendesk_module.require_client()


# Stub write endpoints, for write-back tests


def post(stub, path: str, payload) -> requests.Response:
    return requests.post(
        f"{stub.url}{path}", json=payload, auth=(f"{stub.email}/token", stub.api_token), timeout=5
    )


def test_stub_creates_ticket(zendesk_stub, dee):
    body = load_fixture("zendesk", "ticket_create_response")["request"]["body"]
    body["ticket"]["requester_id"] = 9001

    response = post(zendesk_stub, "/api/v2/tickets.json", body)

    assert response.status_code == 201
    assert zendesk_stub.comments[response.json()["ticket"]["id"]] == [body["ticket"]["comment"]]


def test_stub_creates_voice_ticket(zendesk_stub, dee):
    body = load_fixture("zendesk", "voice_ticket_create")["request"]["body"]
    body["ticket"]["requester_id"] = 9001

    response = post(zendesk_stub, "/api/v2/channels/voice/tickets.json", body)

    assert response.status_code == 201
    assert zendesk_stub.displayed == [(body["display_to_agent"], 9001)]


def test_stub_displays_known_user_only(zendesk_stub, dee):
    assert post(zendesk_stub, "/api/v2/channels/voice/agents/1/users/9001/display.json", "").status_code == 200
    assert post(zendesk_stub, "/api/v2/channels/voice/agents/1/users/404/display.json", "").status_code == 404


def test_stub_finds_ticket_by_external_id(zendesk_stub, dee):
    ticket = zendesk_stub.add_ticket(requester_id=9001, external_id="CA0123", status="open")

    response = requests.get(
        f"{zendesk_stub.url}/api/v2/search.json",
        params={"query": "type:ticket external_id:CA0123"},
        auth=(f"{zendesk_stub.email}/token", zendesk_stub.api_token),
        timeout=5,
    )

    assert [result["id"] for result in response.json()["results"]] == [ticket["id"]]

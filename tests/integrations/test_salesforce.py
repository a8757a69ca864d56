"""The Salesforce connector against the Salesforce stub, through simple-salesforce over HTTPS."""

from __future__ import annotations

import re
import threading
import time
from importlib import metadata
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from integrations import _client
from integrations import salesforce as salesforce_module
from integrations.base import (
    AuthenticationFailed,
    ConnectorContext,
    ConnectorError,
    ConnectorUnavailable,
    NotConfigured,
    RateLimited,
    TransientError,
)
from integrations.salesforce import SalesforceConnector, escape_sosl, login_base_url
from tests.integrations.conftest import caller
from tests.stubs import Reply, load_fixture
from tests.stubs.salesforce import SOSL_RESERVED

RESERVED = sorted(SOSL_RESERVED)


def search_terms(stub) -> list[str]:
    """Return the FIND {...} term of every search the stub received."""
    terms = []
    for request in stub.requests_to(f"{stub.data_path}search"):
        match = re.match(r"FIND \{(.*)\} IN", request.param("q"))
        terms.append(match.group(1))
    return terms


def direct_search(stub, sosl: str) -> requests.Response:
    """Send a SOSL search to the stub without the connector."""
    headers = {"Authorization": f"Bearer {stub.issue_session()}"}
    return requests.get(f"{stub.url}{stub.data_path}search/", params={"q": sosl}, headers=headers, timeout=5)


@pytest.fixture
def phone_book(salesforce_stub):
    """Seed the records of callers whose numbers are stored in different formats."""
    stub = salesforce_stub
    return {
        "ada": stub.add_contact(Name="Ada Example", Phone="(415) 555-0100", Email="ada@example.com"),
        "ben": stub.add_contact(Name="Ben Example", Phone="(415) 555-0102 x77", Email="ben@example.com"),
        "eve": stub.add_contact(Name="Eve Example", Phone="+1 (650) 555-0100", Email="eve@example.com"),
        "cy": stub.add_lead(Name="Cy Example", Phone="001 415 555 0103", Email="cy@example.com"),
    }


# SOSL escaping


@pytest.mark.parametrize("char", RESERVED)
def test_escape_sosl_escapes_reserved_character(char):
    assert escape_sosl(f"a{char}b") == f"a\\{char}b"


def test_escape_sosl_keeps_digits_and_spaces():
    assert escape_sosl("415 555 0100") == "415 555 0100"


@pytest.mark.parametrize("char", RESERVED)
def test_stub_rejects_unescaped_reserved_character(salesforce_stub, char):
    response = direct_search(salesforce_stub, f"FIND {{415{char}5550100}} IN PHONE FIELDS RETURNING Contact(Id)")

    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "MALFORMED_SEARCH"


@pytest.mark.parametrize("char", RESERVED)
def test_stub_accepts_escaped_reserved_character(salesforce_stub, char):
    term = escape_sosl(f"415{char}5550100")
    response = direct_search(salesforce_stub, f"FIND {{{term}}} IN PHONE FIELDS RETURNING Contact(Id)")

    assert response.status_code == 200


def test_search_term_is_national_digits(salesforce_stub, salesforce):
    salesforce.lookup(caller("+14155550100"), 5)

    assert search_terms(salesforce_stub) == ["4155550100"]


# Finding callers


def test_lookup_finds_contact(salesforce, phone_book):
    matches = salesforce.lookup(caller("+14155550100"), 5)

    assert [match.external_id for match in matches] == [phone_book["ada"]["Id"]]
    assert matches[0].display_name == "Ada Example"
    assert matches[0].system == "salesforce"
    assert matches[0].record_type == "Contact"
    assert matches[0].emails == ["ada@example.com"]
    assert matches[0].phones == ["+14155550100"]


def test_lookup_of_unknown_number_is_empty(salesforce, phone_book):
    assert salesforce.lookup(caller("+14155550104"), 5) == []


@pytest.mark.parametrize(
    ("number", "expected", "record_type"),
    [
        ("+14155550100", "ada", "Contact"),
        ("+14155550102", "ben", "Contact"),
        ("+14155550103", "cy", "Lead"),
    ],
)
def test_lookup_matches_stored_format(salesforce, phone_book, number, expected, record_type):
    matches = salesforce.lookup(caller(number), 5)

    assert [match.external_id for match in matches] == [phone_book[expected]["Id"]]
    assert matches[0].record_type == record_type


def test_lookup_never_matches_other_area_code(salesforce, phone_book):
    matches = salesforce.lookup(caller("+14155550100"), 5)

    assert phone_book["eve"]["Id"] not in [match.external_id for match in matches]


def test_lookups_send_no_malformed_search(salesforce_stub, salesforce, phone_book):
    for number in ("+14155550100", "+14155550102", "+14155550103", "+14155550104"):
        salesforce.lookup(caller(number), 5)

    assert all(term.isdigit() for term in search_terms(salesforce_stub))


@pytest.mark.parametrize(
    ("stored", "number", "other"),
    [
        ("(415) 555-0100", "+14155550100", "+14155550101"),
        ("+1 415-555-0100 x12", "+14155550100", "+14155550101"),
        ("415.555.0100", "+14155550100", "+14155550101"),
        ("+33 6 12 34 56 78", "+33612345678", "+33612345679"),
        ("0033612345678", "+33612345678", "+33612345679"),
    ],
)
def test_stored_phone_matches_only_its_number(salesforce_stub, salesforce, stored, number, other):
    contact = salesforce_stub.add_contact(Name="Someone", MobilePhone=stored)

    assert [match.external_id for match in salesforce.lookup(caller(number), 5)] == [contact["Id"]]
    assert salesforce.lookup(caller(other), 5) == []


def test_lookup_ignores_fuzzy_sosl_hit(salesforce_stub, salesforce):
    salesforce_stub.add_contact(Name="Mexico Example", Phone="+52 415 555 0100")
    sosl_hits = salesforce_stub.search(salesforce.search_query("4155550100"))["searchRecords"]

    assert len(sosl_hits) == 1
    assert salesforce.lookup(caller("+14155550100"), 5) == []


def test_lookup_filters_recorded_search_reply(salesforce_stub, salesforce):
    recorded = load_fixture("salesforce", "sosl_search_phone")["response"]["body"]
    salesforce_stub.fail(Reply.json(200, recorded), path=f"{salesforce_stub.data_path}search")

    matches = salesforce.lookup(caller("+14155550123"), 5)

    assert [match.external_id for match in matches] == [
        "0035e00000JaneEAAR",
        "0035e00000PedrOAAR",
        "00Q5e00000LeadAEAR",
    ]


def test_lookup_orders_contact_lead_account_then_recent(salesforce_stub, salesforce):
    stub = salesforce_stub
    account = stub.add_account(Name="Acme", Phone="+14155550100", LastModifiedDate="2026-01-20T00:00:00.000+0000")
    lead = stub.add_lead(Name="Lead", Phone="+14155550100", LastModifiedDate="2026-01-19T00:00:00.000+0000")
    older = stub.add_contact(Name="Older", Phone="+14155550100", LastModifiedDate="2025-06-01T00:00:00.000+0000")
    newer = stub.add_contact(Name="Newer", Phone="+14155550100", LastModifiedDate="2026-01-02T00:00:00.000+0000")

    matches = salesforce.lookup(caller("+14155550100"), 5)

    assert [match.external_id for match in matches] == [newer["Id"], older["Id"], lead["Id"], account["Id"]]


def test_match_carries_account_owner_and_tier(salesforce_stub, salesforce):
    owner = salesforce_stub.add_user(Name="Olga Owner", Email="olga@example.com")
    account = salesforce_stub.add_account(Name="Acme", Type="Customer - Gold")
    salesforce_stub.add_contact(Name="Ada", Phone="+14155550100", AccountId=account["Id"], OwnerId=owner["Id"])

    match = salesforce.lookup(caller("+14155550100"), 5)[0]

    assert match.company == "Acme"
    assert match.tier == "Customer - Gold"
    assert match.owner == "Olga Owner"
    assert match.owner_email == "olga@example.com"


def test_tier_field_is_configurable(salesforce_stub, make_salesforce):
    account = salesforce_stub.add_account(Name="Acme", Type="Customer", Tier__c="Platinum")
    salesforce_stub.add_contact(Name="Ada", Phone="+14155550100", AccountId=account["Id"])

    match = make_salesforce(SALESFORCE_TIER_FIELD="Tier__c").lookup(caller("+14155550100"), 5)[0]

    assert match.tier == "Platinum"


def test_match_links_to_lightning_record(salesforce_stub, salesforce, phone_book):
    match = salesforce.lookup(caller("+14155550100"), 5)[0]

    assert match.url == f"https://{salesforce_stub.host}/lightning/r/Contact/{phone_book['ada']['Id']}/view"


# Open cases and opportunities


@pytest.fixture
def customer(salesforce_stub):
    """A contact with three open cases, one closed case and an open opportunity."""
    stub = salesforce_stub
    account = stub.add_account(Name="Acme")
    contact = stub.add_contact(Name="Ada", Phone="+14155550100", AccountId=account["Id"])
    for day in (3, 1, 2):
        stub.add_case(
            ContactId=contact["Id"],
            AccountId=account["Id"],
            Subject=f"Case of day {day}",
            CaseNumber=f"0000100{day}",
            Status="New",
            Priority="High",
            LastModifiedDate=f"2026-01-0{day}T00:00:00.000+0000",
        )
    stub.add_case(ContactId=contact["Id"], Subject="Done", IsClosed=True)
    stub.add_opportunity(AccountId=account["Id"], Name="Renewal", StageName="Negotiation", Amount=1200.0)
    stub.add_opportunity(AccountId=account["Id"], Name="Lost deal", IsClosed=True)
    stub.query_page_size = 2
    return contact


def test_best_match_lists_open_cases_newest_first(salesforce, customer):
    match = salesforce.lookup(caller("+14155550100"), 5)[0]

    cases = [item for item in match.open_items if item.kind == "case"]
    assert [item.subject for item in cases] == ["Case of day 3", "Case of day 2", "Case of day 1"]
    assert cases[0].number == "00001003"
    assert cases[0].priority == "High"


def test_best_match_lists_open_opportunities(salesforce, customer):
    match = salesforce.lookup(caller("+14155550100"), 5)[0]

    opportunities = [item for item in match.open_items if item.kind == "opportunity"]
    assert [item.subject for item in opportunities] == ["Renewal"]
    assert opportunities[0].stage == "Negotiation"
    assert opportunities[0].amount == 1200.0


def test_open_items_take_one_composite_request(salesforce_stub, salesforce, customer):
    salesforce.lookup(caller("+14155550100"), 5)

    assert len(salesforce_stub.requests_to(f"{salesforce_stub.data_path}composite")) == 1
    assert len(salesforce_stub.requests_to(f"{salesforce_stub.data_path}query/")) == 1


def test_open_items_failure_keeps_match(salesforce_stub, salesforce, customer):
    salesforce_stub.service_unavailable().path = f"{salesforce_stub.data_path}composite"

    matches = salesforce.lookup(caller("+14155550100"), 5)

    assert [match.external_id for match in matches] == [customer["Id"]]
    assert matches[0].open_items == []


# Sign-in and sessions


def test_lookups_reuse_one_login(salesforce_stub, salesforce, phone_book):
    for _ in range(20):
        salesforce.lookup(caller("+14155550100"), 5)

    assert salesforce_stub.login_attempts == 1


def test_connectors_of_one_user_share_login(salesforce_stub, make_salesforce, phone_book):
    for _ in range(5):
        make_salesforce().lookup(caller("+14155550100"), 5)

    assert salesforce_stub.login_attempts == 1


def test_concurrent_lookups_share_one_login(salesforce_stub, salesforce, phone_book):
    salesforce_stub.delay(0.2, path="/services/Soap")
    errors = []

    def look_up():
        try:
            salesforce.lookup(caller("+14155550100"), 5)
        except Exception as error:  # collected for the assert below
            errors.append(error)

    threads = [threading.Thread(target=look_up) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert salesforce_stub.login_attempts == 1


def test_expired_session_signs_in_again_once(salesforce_stub, salesforce):
    contact = salesforce_stub.add_contact(Name="Ada Example", Phone="+14155550100")
    salesforce_stub.expire_sessions_after(3)

    found = [salesforce.lookup(caller("+14155550100"), 5) for _ in range(20)]

    assert all([match.external_id for match in matches] == [contact["Id"]] for matches in found)
    assert salesforce_stub.login_attempts == 2
    # Two API calls per lookup, plus the single call retried after the 401.
    assert salesforce_stub.api_calls == 41


def test_session_rejected_after_new_login_raises(salesforce_stub, salesforce, phone_book):
    salesforce_stub.expire_sessions_after(0, 0)

    with pytest.raises(AuthenticationFailed):
        salesforce.lookup(caller("+14155550100"), 5)
    assert salesforce_stub.login_attempts == 2


def test_broken_login_raises_authentication_failed(salesforce_stub, make_salesforce, phone_book):
    salesforce_stub.login_broken = True
    connector = make_salesforce(SALESFORCE_LOGIN_RETRY_S="0")

    for attempt in range(1, 4):
        started = time.monotonic()
        with pytest.raises(AuthenticationFailed):
            connector.lookup(caller("+14155550100"), 5)
        assert time.monotonic() - started < 2
        assert salesforce_stub.login_attempts == attempt


def test_broken_login_waits_before_next_attempt(salesforce_stub, salesforce, phone_book):
    salesforce_stub.login_broken = True

    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            salesforce.lookup(caller("+14155550100"), 5)

    assert salesforce_stub.login_attempts == 1


def test_oauth_password_flow_signs_in(salesforce_stub, make_salesforce, phone_book):
    connector = make_salesforce(SALESFORCE_CONSUMER_KEY="3MVG9FAKE", SALESFORCE_CONSUMER_SECRET="FAKESECRET")

    assert len(connector.lookup(caller("+14155550100"), 5)) == 1
    assert salesforce_stub.grant_types == ["password"]


def test_client_credentials_flow_signs_in(salesforce_stub, make_salesforce, phone_book):
    connector = make_salesforce(
        SALESFORCE_USERNAME=None,
        SALESFORCE_PASSWORD=None,
        SALESFORCE_CONSUMER_KEY="3MVG9FAKE",
        SALESFORCE_CONSUMER_SECRET="FAKESECRET",
    )

    assert len(connector.lookup(caller("+14155550100"), 5)) == 1
    assert salesforce_stub.grant_types == ["client_credentials"]


def test_jwt_bearer_flow_signs_in(salesforce_stub, make_salesforce, phone_book, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "salesforce.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    connector = make_salesforce(
        SALESFORCE_PASSWORD=None, SALESFORCE_CONSUMER_KEY="3MVG9FAKE", SALESFORCE_PRIVATE_KEY_FILE=str(key_file)
    )

    assert len(connector.lookup(caller("+14155550100"), 5)) == 1
    assert salesforce_stub.grant_types == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]


def test_session_id_setting_needs_no_login(salesforce_stub, make_salesforce, phone_book):
    connector = make_salesforce(
        SALESFORCE_USERNAME=None,
        SALESFORCE_PASSWORD=None,
        SALESFORCE_INSTANCE_URL=salesforce_stub.url,
        SALESFORCE_SESSION_ID=salesforce_stub.issue_session(),
    )

    assert len(connector.lookup(caller("+14155550100"), 5)) == 1
    assert salesforce_stub.login_attempts == 0


# Errors


def test_request_limit_raises_rate_limited(salesforce_stub, salesforce, phone_book):
    salesforce_stub.request_limit_exceeded()

    with pytest.raises(RateLimited):
        salesforce.lookup(caller("+14155550100"), 5)


def test_service_unavailable_raises_transient_error(salesforce_stub, salesforce, phone_book):
    salesforce_stub.service_unavailable()

    with pytest.raises(TransientError):
        salesforce.lookup(caller("+14155550100"), 5)


def test_malformed_json_raises_transient_error(salesforce_stub, salesforce, phone_book):
    salesforce_stub.malformed_json(path=f"{salesforce_stub.data_path}search")

    with pytest.raises(TransientError):
        salesforce.lookup(caller("+14155550100"), 5)


def test_slow_reply_raises_within_timeout(salesforce_stub, salesforce, phone_book):
    salesforce.lookup(caller("+14155550100"), 5)
    salesforce_stub.delay(3.0, path=salesforce_stub.data_path)

    started = time.monotonic()
    with pytest.raises(TransientError):
        salesforce.lookup(caller("+14155550100"), 0.5)

    assert time.monotonic() - started < 0.5 + 0.3


def test_slow_login_raises_within_timeout(salesforce_stub, salesforce, phone_book):
    salesforce_stub.delay(3.0, path="/services/Soap")

    started = time.monotonic()
    with pytest.raises(TransientError):
        salesforce.lookup(caller("+14155550100"), 0.5)

    assert time.monotonic() - started < 0.5 + 0.3


def test_error_message_leaves_out_caller_digits(salesforce_stub, salesforce, phone_book):
    salesforce_stub.fail(Reply.json(400, [{"errorCode": "INVALID_FIELD", "message": "No such column"}]))

    with pytest.raises(ConnectorError) as raised:
        salesforce.lookup(caller("+14155550100"), 5)

    assert "4155550100" not in str(raised.value)


def test_withheld_caller_sends_no_request(salesforce_stub, salesforce):
    assert salesforce.lookup(caller("anonymous"), 5) == []
    assert salesforce_stub.requests == []


# Settings


def test_missing_credentials_raise_not_configured():
    with pytest.raises(NotConfigured, match="SALESFORCE_USERNAME"):
        SalesforceConnector.from_context(ConnectorContext(config={}))


def test_username_without_password_raises_not_configured():
    config = {"SALESFORCE_USERNAME": "integration@example.com"}

    with pytest.raises(NotConfigured, match="SALESFORCE_PASSWORD"):
        SalesforceConnector.from_context(ConnectorContext(config=config))


def test_invalid_tier_field_raises_not_configured():
    config = {"SALESFORCE_USERNAME": "a@example.com", "SALESFORCE_PASSWORD": "x", "SALESFORCE_TIER_FIELD": "Type) FROM"}

    with pytest.raises(NotConfigured, match="SALESFORCE_TIER_FIELD"):
        SalesforceConnector.from_context(ConnectorContext(config=config))


@pytest.mark.parametrize(
    ("domain", "url"),
    [
        ("login", "https://login.salesforce.com"),
        ("test", "https://test.salesforce.com"),
        ("acme.my", "https://acme.my.salesforce.com"),
        ("acme.my.salesforce.com", "https://acme.my.salesforce.com"),
        ("https://acme.my.salesforce.com/", "https://acme.my.salesforce.com"),
        ("127.0.0.1:8443", "https://127.0.0.1:8443"),
    ],
)
def test_login_base_url_reads_domain(domain, url):
    assert login_base_url(domain) == url


def test_old_client_raises_connector_unavailable(monkeypatch):
    monkeypatch.setattr(_client.metadata, "version", lambda name: "1.11.0")

    with pytest.raises(ConnectorUnavailable, match="simple-salesforce 1.12.10"):
        salesforce_module.require_client()


def test_missing_client_raises_connector_unavailable(monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(_client.metadata, "version", not_installed)

    with pytest.raises(ConnectorUnavailable, match="pip install"):
        salesforce_module.require_client()


def test_soql_ids_are_quoted(salesforce_stub, salesforce, customer):
    salesforce.lookup(caller("+14155550100"), 5)

    composite = salesforce_stub.requests_to(f"{salesforce_stub.data_path}composite")[0].json()
    urls = [item["url"] for item in composite["compositeRequest"]]
    queries = [parse_qs(urlsplit(url).query)["q"][0] for url in urls]
    assert all(f"'{customer['Id']}'" in query or f"'{customer['AccountId']}'" in query for query in queries)


# Recorded replies


def test_lookup_follows_recorded_case_pages(salesforce_stub, salesforce):
    stub = salesforce_stub
    contact = stub.add_contact(Name="Jane Example", Phone="(415) 555-0123")
    first = load_fixture("salesforce", "soql_query_cases")["response"]["body"]
    second = load_fixture("salesforce", "soql_query_cases_page2")
    composite = {"compositeResponse": [{"body": first, "httpHeaders": {}, "httpStatusCode": 200, "referenceId": "cases"}]}
    stub.fail(Reply.json(200, composite), path=f"{stub.data_path}composite")
    stub.fail(Reply.json(200, second["response"]["body"]), path=second["request"]["path"])

    match = salesforce.lookup(caller("+14155550123"), 5)[0]

    assert match.external_id == contact["Id"]
    assert [item.number for item in match.open_items] == ["00001026", "00001019", "00000987"]


def test_recorded_empty_search_is_no_match(salesforce_stub, salesforce):
    empty = load_fixture("salesforce", "sosl_search_empty")["response"]["body"]
    salesforce_stub.fail(Reply.json(200, empty), path=f"{salesforce_stub.data_path}search")

    assert salesforce.lookup(caller("+14155550199"), 5) == []


# Stub write endpoints, for write-back tests


def api(stub, method: str, resource: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {stub.issue_session()}"}
    return requests.request(method, f"{stub.url}{stub.data_path}{resource}", headers=headers, timeout=5, **kwargs)


def test_stub_creates_task(salesforce_stub):
    task = load_fixture("salesforce", "task_create_response")["request"]["body"]

    response = api(salesforce_stub, "POST", "sobjects/Task/", json=task)

    assert response.status_code == 201
    assert response.json()["success"] is True
    assert salesforce_stub.records["Task"][response.json()["id"]]["CallObject"] == task["CallObject"]


def test_stub_finds_task_by_call_object(salesforce_stub):
    task = salesforce_stub.add("Task", Subject="Inbound call", CallObject="CA0123")
    soql = "SELECT Id, Subject FROM Task WHERE CallObject = 'CA0123' LIMIT 1"

    response = api(salesforce_stub, "GET", "query/", params={"q": soql})

    assert [record["Id"] for record in response.json()["records"]] == [task["Id"]]


def test_stub_updates_task(salesforce_stub):
    task = salesforce_stub.add("Task", Subject="Inbound call", Status="Open")

    response = api(salesforce_stub, "PATCH", f"sobjects/Task/{task['Id']}", json={"Status": "Completed"})

    assert response.status_code == 204
    assert salesforce_stub.records["Task"][task["Id"]]["Status"] == "Completed"

"""Slow, failing and rate-limited CRMs never hold the call: end to end through the voice webhook."""

from __future__ import annotations

import threading
import time

import pytest

from tests.conftest import Twilio, voice_params
from tests.lookup.conftest import DEADLINE_MS, MARGIN_S, Calls, match_ids, statuses

ADA = "0030000000000A1AAA"
DEE = 9001
CALLER = "+14155550100"


@pytest.fixture
def ada(salesforce_stub, zendesk_stub):
    """Ada is a Salesforce contact and a Zendesk user with the same number."""
    salesforce_stub.add_contact(Id=ADA, Name="Ada Example", Phone="(415) 555-0100", Email="ada@example.com")
    zendesk_stub.add_user(id=DEE, name="Ada Example", phone="+14155550100", email="ada@example.com")


def sosl_searches(stub) -> int:
    return len(stub.requests_to(f"{stub.data_path}search"))


def zendesk_searches(stub) -> int:
    return len(stub.requests_to("/api/v2/search"))


# Deadline and late results


def test_slow_system_is_pending_then_updated(calls, ada, zendesk_stub):
    zendesk_stub.delay(DEADLINE_MS / 1000 + 0.4, path="/api/v2/search", times=1)

    response, elapsed = calls.place(CALLER)

    assert response.status_code == 200
    assert b"<Response>" in response.data
    assert elapsed < DEADLINE_MS / 1000 + MARGIN_S
    card = calls.events(kind="card")[-1]
    assert statuses(card) == {"directory": "none", "salesforce": "found", "zendesk": "pending"}
    assert match_ids(card) == [ADA]

    update = calls.wait_for_update(card["interaction"]["sid"])
    assert statuses(update)["zendesk"] == "found"
    assert sorted(match_ids(update)) == [ADA, str(DEE)]
    assert update["revision"] == card["revision"] + 1
    assert update["customer"]["id"] == card["customer"]["id"]


def test_late_result_is_cached_for_next_call(calls, ada, zendesk_stub):
    zendesk_stub.delay(DEADLINE_MS / 1000 + 0.2, path="/api/v2/search", times=1)
    first = calls.card(CALLER)
    calls.wait_for_update(first["interaction"]["sid"])

    second = calls.card(CALLER)

    assert statuses(second)["zendesk"] == "found"
    assert second["systems"]["zendesk"]["cached"] is True
    assert zendesk_searches(zendesk_stub) == 1


def test_hung_system_marked_timed_out_after_its_timeout(make_crm_app, agent_factory, ada, zendesk_stub):
    app = make_crm_app(ZENDESK_TIMEOUT_MS=1200)
    calls = agent_factory(app)
    zendesk_stub.delay(3.0, path="/api/v2/search", times=1)

    card = calls.card(CALLER)
    update = calls.wait_for_update(card["interaction"]["sid"], timeout_s=3.0)

    assert statuses(card)["zendesk"] == "pending"
    assert statuses(update)["zendesk"] == "timed_out"
    assert statuses(update)["salesforce"] == "found"


# Errors of one system


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ("service_unavailable", "failed"),
        ("malformed_json", "failed"),
        ("rate_limited", "rate_limited"),
    ],
)
def test_zendesk_fault_leaves_salesforce_on_card(calls, ada, zendesk_stub, fault, status):
    getattr(zendesk_stub, fault)(path="/api/v2/search")

    response, elapsed = calls.place(CALLER)

    assert response.status_code == 200
    assert elapsed < DEADLINE_MS / 1000 + MARGIN_S
    card = calls.events(kind="card")[-1]
    assert statuses(card) == {"directory": "none", "salesforce": "found", "zendesk": status}
    assert card["systems"]["zendesk"]["error"]
    assert match_ids(card) == [ADA]


@pytest.mark.parametrize("fault", ["service_unavailable", "malformed_json"])
def test_salesforce_fault_is_failed_on_card(calls, ada, salesforce_stub, fault):
    getattr(salesforce_stub, fault)(**({"path": "/services/data"} if fault == "malformed_json" else {}))

    card = calls.card(CALLER)

    assert statuses(card)["salesforce"] == "failed"
    assert statuses(card)["zendesk"] == "found"


def test_failure_is_not_cached(calls, ada, zendesk_stub):
    zendesk_stub.service_unavailable(path="/api/v2/search")
    assert statuses(calls.card(CALLER))["zendesk"] == "failed"

    card = calls.card(CALLER)

    assert statuses(card)["zendesk"] == "found"
    assert card["systems"]["zendesk"]["cached"] is False
    assert zendesk_searches(zendesk_stub) == 2


def test_zendesk_429_holds_requests_until_retry_after(make_crm_app, agent_factory, ada, zendesk_stub):
    calls = agent_factory(make_crm_app())
    zendesk_stub.rate_limited(retry_after=1, path="/api/v2/search")

    first = calls.card(CALLER)
    second = calls.card("+14155550111")
    time.sleep(1.1)
    third = calls.card("+14155550112")

    assert statuses(first)["zendesk"] == "rate_limited"
    assert first["systems"]["zendesk"]["elapsed_ms"] < 500
    assert statuses(second)["zendesk"] == "skipped"
    assert "Retry-After 1 s" in second["systems"]["zendesk"]["error"]
    assert statuses(third)["zendesk"] == "none"
    assert zendesk_searches(zendesk_stub) == 2


# Salesforce sign-in and limits


def test_expired_session_signs_in_once_then_succeeds(calls, ada, salesforce_stub):
    salesforce_stub.expire_sessions_after(1)

    first = calls.card(CALLER)
    second = calls.card("+14155550111")

    assert statuses(first)["salesforce"] == "found"
    assert statuses(second)["salesforce"] == "none"
    assert salesforce_stub.login_attempts == 2


def test_broken_login_keeps_answering(make_crm_app, agent_factory, ada, salesforce_stub):
    salesforce_stub.login_broken = True
    calls = agent_factory(make_crm_app())

    for index in range(3):
        response, elapsed = calls.place(f"+1415555011{index}")
        assert response.status_code == 200
        assert b"<Response>" in response.data
        assert elapsed < DEADLINE_MS / 1000 + MARGIN_S

    cards = calls.events(kind="card")
    assert [statuses(card)["salesforce"] for card in cards] == ["failed"] * 3
    assert all(statuses(card)["zendesk"] in ("found", "none") for card in cards)
    # One rejected sign-in blocks further attempts for SALESFORCE_LOGIN_RETRY_S.
    assert salesforce_stub.login_attempts == 1


def test_request_limit_answers_in_time_and_spares_salesforce(calls, ada, salesforce_stub):
    salesforce_stub.request_limit_exceeded(times=None)

    cards = []
    for _ in range(11):
        response, elapsed = calls.place(CALLER)
        assert response.status_code == 200
        assert b"<Response>" in response.data
        assert elapsed < DEADLINE_MS / 1000 + MARGIN_S
        cards.append(calls.events(kind="card")[-1])

    assert statuses(cards[0])["salesforce"] == "rate_limited"
    assert {statuses(card)["salesforce"] for card in cards[1:]} == {"skipped"}
    assert all(statuses(card)["zendesk"] == "found" for card in cards)
    assert sosl_searches(salesforce_stub) == 1
    assert salesforce_stub.login_attempts == 1


def test_webhooks_share_one_salesforce_login(make_crm_app, agent_factory, ada, salesforce_stub):
    app = make_crm_app(CONNECTORS="salesforce", LOOKUP_CACHE_TTL_S=0)
    agent_factory(app)
    burst = [threading.Thread(target=_post_calls, args=(app, index, 5)) for index in range(4)]

    for thread in burst:
        thread.start()
    for thread in burst:
        thread.join()
    _post_calls(app, 9, 180)

    assert sosl_searches(salesforce_stub) == 200
    assert salesforce_stub.login_attempts <= 2


def _post_calls(app, prefix: int, count: int) -> None:
    twilio = Twilio(app.test_client())
    for index in range(count):
        call_sid = f"CA{prefix:02d}{index:030d}"
        response = twilio.post("/webhooks/twilio/voice", voice_params(call_sid=call_sid, from_=CALLER))
        assert response.status_code == 200


# Circuit breaker


def test_failing_system_opens_breaker(make_crm_app, agent_factory, ada, zendesk_stub):
    calls = agent_factory(make_crm_app(BREAKER_FAILURES=3))
    zendesk_stub.service_unavailable(path="/api/v2/search", times=None)

    cards = [calls.card(f"+1415555012{index}") for index in range(5)]

    assert [statuses(card)["zendesk"] for card in cards] == ["failed"] * 3 + ["skipped"] * 2
    assert "3 failures" in cards[3]["systems"]["zendesk"]["error"]
    assert zendesk_searches(zendesk_stub) == 3


def test_open_breaker_answers_without_waiting(make_crm_app, agent_factory, ada, zendesk_stub):
    calls = agent_factory(make_crm_app(BREAKER_FAILURES=1, ZENDESK_TIMEOUT_MS=300))
    zendesk_stub.delay(2.0, path="/api/v2/search", times=None)
    calls.card(CALLER)

    response, elapsed = calls.place("+14155550111")

    assert response.status_code == 200
    assert elapsed < 0.3
    assert statuses(calls.events(kind="card")[-1])["zendesk"] == "skipped"


def test_breaker_half_opens_after_cooldown(make_crm_app, agent_factory, ada, zendesk_stub):
    calls = agent_factory(make_crm_app(BREAKER_FAILURES=1, BREAKER_COOLDOWN_S=0.5))
    zendesk_stub.service_unavailable(path="/api/v2/search", times=1)
    assert statuses(calls.card(CALLER))["zendesk"] == "failed"
    assert statuses(calls.card("+14155550111"))["zendesk"] == "skipped"

    time.sleep(0.6)
    probe = calls.card("+14155550112")
    after = calls.card("+14155550113")

    assert statuses(probe)["zendesk"] == "none"
    assert statuses(after)["zendesk"] == "none"
    assert zendesk_searches(zendesk_stub) == 3


@pytest.fixture
def agent_factory():
    """Return a function that puts an agent online in `app` and returns its Calls helper."""
    from tests.conftest import create_agent, mark_online

    def factory(app) -> Calls:
        agent_id = create_agent(app)
        mark_online(app, agent_id)
        return Calls(app, agent_id)

    return factory

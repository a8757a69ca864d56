"""X-Twilio-Signature: published vectors, our endpoint, token rotation and TLS proxies."""

from __future__ import annotations

import logging
from urllib.parse import quote, unquote

import pytest

from tests.conftest import (
    AUTH_TOKEN,
    FIXTURES,
    Twilio,
    create_agent,
    interactions,
    load_fixture,
    mark_online,
    multi,
    sign,
    stream_events,
    voice_params,
)

VOICE = "/webhooks/twilio/voice"
VECTORS = load_fixture("twilio/signature_vectors.json")["vectors"]
ACCEPTED = [v for v in VECTORS if v.get("valid") is True]
MISTAKES = [v for v in VECTORS if v.get("valid") is False]
RAW_VOICE_BODY = (FIXTURES / "twilio/form/voice_incoming.form.txt").read_bytes().strip()


def vector_params(vector):
    """Return what Twilio signed: the raw JSON body, repeated pairs, or the form fields."""
    if vector.get("content_type") == "application/json":
        return vector["raw_body"]
    if "params_multi" in vector:
        return multi(vector["params_multi"])
    if "params_file" in vector:
        return load_fixture(vector["params_file"])
    return vector["params"]


def check_vector(make_app, vector, signature: str, url: str | None = None) -> bool:
    from webhooks.signature import is_valid_signature

    app = make_app(TWILIO_AUTH_TOKEN=vector["auth_token"])
    with app.app_context():
        return is_valid_signature(url or vector["url"], vector_params(vector), signature)


@pytest.fixture
def watcher(app):
    """An agent with an open console, so a wrongly stored call would show as an event."""
    agent_id = create_agent(app)
    mark_online(app, agent_id)
    return agent_id


def assert_nothing_stored(app, agent_id):
    assert interactions(app) == []
    assert stream_events(app, agent_id) == []


@pytest.mark.parametrize("vector", ACCEPTED, ids=[v["name"] for v in ACCEPTED])
def test_signature_accepts_published_vector(make_app, vector):
    assert check_vector(make_app, vector, vector["expected_signature"])


@pytest.mark.parametrize("vector", MISTAKES, ids=[v["name"] for v in MISTAKES])
def test_signature_rejects_mistaken_signing(make_app, vector):
    assert not check_vector(make_app, vector, vector["signature_produced_by_mistake"])


@pytest.mark.parametrize("vector", MISTAKES, ids=[v["name"] for v in MISTAKES])
def test_signature_accepts_correct_counterpart(make_app, vector):
    assert check_vector(make_app, vector, vector["correct_signature"])


def test_signature_rejects_url_without_query(make_app):
    vector = next(v for v in MISTAKES if "mistaken_url" in v)

    assert not check_vector(make_app, vector, vector["correct_signature"], url=vector["mistaken_url"])


def test_voice_accepts_raw_fixture_body(app, twilio, watcher):
    params = load_fixture("twilio/voice_incoming.json")

    response = twilio.post_body(VOICE, RAW_VOICE_BODY, params)

    assert response.status_code == 200
    assert len(interactions(app)) == 1


def test_voice_accepts_fixture_signed_for_public_url(make_app):
    vector = next(v for v in VECTORS if v["name"] == "fixture_voice_incoming")
    app = make_app(PUBLIC_BASE_URL="https://cti.example.com")
    params = load_fixture(vector["params_file"])
    twilio = Twilio(app.test_client(), base_url="https://cti.example.com")

    response = twilio.post_body(VOICE, RAW_VOICE_BODY, params, base_url="http://127.0.0.1:8000")

    assert response.status_code == 200


def test_voice_rejects_call_token_decoded_twice(app, twilio, watcher):
    params = load_fixture("twilio/voice_incoming.json")
    decoded_twice = {**params, "CallToken": unquote(params["CallToken"])}
    signature = sign("http://localhost" + VOICE, decoded_twice)

    response = twilio.post_body(VOICE, RAW_VOICE_BODY, params, signature=signature)

    assert response.status_code == 403
    assert_nothing_stored(app, watcher)


def test_voice_rejects_tampered_parameter(app, twilio, watcher):
    signed = voice_params()
    sent = {**signed, "From": "+14155550101"}

    response = twilio.post(VOICE, sent, signature=sign("http://localhost" + VOICE, signed))

    assert response.status_code == 403
    assert_nothing_stored(app, watcher)


def test_voice_rejects_other_url(app, twilio, watcher):
    signature = sign("https://attacker.example.com" + VOICE, voice_params())

    response = twilio.post(VOICE, voice_params(), signature=signature)

    assert response.status_code == 403
    assert_nothing_stored(app, watcher)


def test_voice_rejects_missing_header(app, twilio, watcher):
    response = twilio.post(VOICE, voice_params(), signature="")

    assert response.status_code == 403
    assert response.json["message"].startswith("missing X-Twilio-Signature")
    assert_nothing_stored(app, watcher)


def test_voice_rejects_unknown_token(app, watcher):
    twilio = Twilio(app.test_client(), token="another-accounts-token-000000000")

    response = twilio.post(VOICE, voice_params())

    assert response.status_code == 403
    assert_nothing_stored(app, watcher)


def test_voice_accepts_secondary_token(make_app):
    app = make_app(TWILIO_AUTH_TOKEN="new-primary-token-0000000000000", TWILIO_AUTH_TOKEN_SECONDARY=AUTH_TOKEN)

    response = Twilio(app.test_client()).post(VOICE, voice_params())

    assert response.status_code == 200


def test_voice_accepts_repeated_field(app, twilio):
    params = [*voice_params().items(), ("Digits", "5678"), ("Digits", "1234")]

    response = twilio.post(VOICE, params)

    assert response.status_code == 200


def test_rejection_log_names_url_not_token(app, twilio, caplog):
    caplog.set_level(logging.WARNING, logger="webhooks.signature")
    signature = sign("http://localhost" + VOICE, voice_params(), token="wrong-token-0000000000000000000")

    twilio.post(VOICE, voice_params(), signature=signature)

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "http://localhost/webhooks/twilio/voice" in warnings[0].getMessage()
    assert AUTH_TOKEN not in caplog.text
    assert signature not in caplog.text


def test_voice_accepts_public_base_url_behind_proxy(make_app):
    app = make_app(PUBLIC_BASE_URL="https://cti.example.com")
    twilio = Twilio(app.test_client(), base_url="https://cti.example.com")

    response = twilio.post(VOICE, voice_params(), base_url="http://127.0.0.1:8000")

    assert response.status_code == 200


def test_voice_rejects_app_url_when_public_base_set(make_app):
    app = make_app(PUBLIC_BASE_URL="https://cti.example.com")
    twilio = Twilio(app.test_client(), base_url="http://127.0.0.1:8000")

    response = twilio.post(VOICE, voice_params(), base_url="http://127.0.0.1:8000")

    assert response.status_code == 403


PROXY_HEADERS = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-For": "198.51.100.7",
}


@pytest.mark.parametrize(
    "host_headers",
    [{"Host": "cti.example.com"}, {"X-Forwarded-Host": "cti.example.com"}],
    ids=["host", "x-forwarded-host"],
)
def test_voice_accepts_trusted_forwarded_headers(make_app, host_headers):
    app = make_app(TRUST_PROXY_HEADERS=True)
    twilio = Twilio(app.test_client(), base_url="https://cti.example.com")

    response = twilio.post(
        VOICE, voice_params(), headers={**PROXY_HEADERS, **host_headers}, base_url="http://127.0.0.1:8000"
    )

    assert response.status_code == 200


def test_voice_rejects_untrusted_forwarded_headers(make_app):
    app = make_app(TRUST_PROXY_HEADERS=False)
    twilio = Twilio(app.test_client(), base_url="https://cti.example.com")
    headers = {**PROXY_HEADERS, "X-Forwarded-Host": "cti.example.com"}

    response = twilio.post(VOICE, voice_params(), headers=headers, base_url="http://127.0.0.1:8000")

    assert response.status_code == 403
    assert interactions(app) == []


def test_voice_accepts_public_url_with_port(make_app):
    app = make_app(PUBLIC_BASE_URL="https://cti.example.com:8443")
    twilio = Twilio(app.test_client(), base_url="https://cti.example.com:8443")

    response = twilio.post(VOICE, voice_params(), base_url="http://127.0.0.1:8080")

    assert response.status_code == 200


def test_voice_accepts_forwarded_port(make_app):
    app = make_app(TRUST_PROXY_HEADERS=True)
    twilio = Twilio(app.test_client(), base_url="https://cti.example.com:8443")
    headers = {**PROXY_HEADERS, "X-Forwarded-Host": "cti.example.com", "X-Forwarded-Port": "8443"}

    response = twilio.post(VOICE, voice_params(), headers=headers, base_url="http://127.0.0.1:8080")

    assert response.status_code == 200


@pytest.mark.parametrize("public_base", [None, "https://cti.example.com"], ids=["request-url", "public-base"])
def test_voice_keeps_query_string_as_sent(make_app, public_base):
    app = make_app(PUBLIC_BASE_URL=public_base)
    base = public_base or "http://localhost"
    query = "tenant=acme&note=" + quote("It's", safe="")
    twilio = Twilio(app.test_client(), base_url=base)

    response = twilio.post(f"{VOICE}?{query}", voice_params())

    assert response.status_code == 200


def test_voice_rejects_body_signed_as_encoded(app, twilio, watcher):
    params = voice_params()
    encoded = {name: quote(value, safe="") for name, value in params.items()}

    response = twilio.post(VOICE, params, signature=sign("http://localhost" + VOICE, encoded))

    assert response.status_code == 403
    assert_nothing_stored(app, watcher)


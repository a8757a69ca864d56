"""Benchmark: screen-pop latency of a voice call against a sequential lookup of the same CRMs.

Run: `python -m tests.benchmarks.screen_pop [--iterations 30] [--salesforce-ms 150] [--zendesk-ms 300]`.

Everything runs in this process: the Salesforce and Zendesk stubs over TLS on
127.0.0.1, and the application with the directory, Salesforce and Zendesk connectors
and an agent whose console is open. The application uses the embedded SQLite and
Redis, or DATABASE_URL and REDIS_URL when they are set. The stubs delay every search reply (a Salesforce SOSL
search, a Zendesk user search) by the given time; the follow-up reads of open
cases and tickets are not delayed.

For each caller, side by side:
- ours: time from posting the signed voice webhook to reading its `card` event
  from the agent's Redis stream with a blocking XREAD, the read the SSE endpoint
  makes;
- sequential: each connector's `lookup` called one after the other on the same
  connector objects, timed as a whole and per connector; "slowest" is the
  slowest connector of that caller.

Cold rounds use a new caller each time, so nothing is cached; warm rounds call the
same callers again within the cache TTL. The last line is `ratio_to_slowest=X.XX`:
the median of ours divided by the median of the slowest connector, cold.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import trustme
from twilio.request_validator import RequestValidator

AUTH_TOKEN = "benchmark-auth-token"
ZENDESK_EMAIL = "integration@example.com"
ZENDESK_TOKEN = "FAKEZENDESKAPITOKEN0123456789"
WEBHOOK = "/webhooks/twilio/voice"


def numbers(count: int) -> list[str]:
    """Return `count` distinct fictitious callers, +1 415 555 01xx then +1 650 555 01xx."""
    return [f"+1{('415', '650', '628')[index // 100]}5550{100 + index % 100}" for index in range(count)]


def start_stubs(folder: Path, salesforce_ms: int, zendesk_ms: int, callers: list[str]):
    """Start both stubs with a throwaway CA, seed one contact per caller and delay the searches."""
    from tests.stubs import server_ssl_context
    from tests.stubs.salesforce import SalesforceStub
    from tests.stubs.zendesk import ZendeskStub

    authority = trustme.CA()
    bundle = folder / "stub-ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    os.environ["REQUESTS_CA_BUNDLE"] = str(bundle)
    os.environ.pop("CURL_CA_BUNDLE", None)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

    context = server_ssl_context(authority)
    salesforce = SalesforceStub(context).start()
    zendesk = ZendeskStub(context, email=ZENDESK_EMAIL, api_token=ZENDESK_TOKEN).start()
    for index, number in enumerate(callers):
        national = f"({number[2:5]}) {number[5:8]}-{number[8:]}"
        salesforce.add_contact(Name=f"Caller {index}", Phone=national, Email=f"caller{index}@example.com")
        zendesk.add_user(name=f"Caller {index}", phone=number, email=f"caller{index}@example.com")

    salesforce.delay(salesforce_ms / 1000, path=f"{salesforce.data_path}search")
    zendesk.delay(zendesk_ms / 1000, path="/api/v2/search")
    return salesforce, zendesk


def build_app(folder: Path, salesforce, zendesk):
    """Create the application on the stubs with one agent online; return (app, agent id)."""
    from app import create_app
    from app.models import Agent
    from app.presence import Presence

    app = create_app(
        {
            "INSTANCE_PATH": str(folder / "instance"),
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "SECRET_KEY": "benchmark-secret-key",
            "DEMO_DATA": False,
            "LOG_LEVEL": "WARNING",
            "CONNECTORS": "directory,salesforce,zendesk",
            "SALESFORCE_USERNAME": "integration@example.com",
            "SALESFORCE_PASSWORD": "p&ss-fake1",
            "SALESFORCE_SECURITY_TOKEN": "FAKESECURITYTOKEN",
            "SALESFORCE_DOMAIN": salesforce.host,
            "ZENDESK_URL": zendesk.url,
            "ZENDESK_EMAIL": ZENDESK_EMAIL,
            "ZENDESK_API_TOKEN": ZENDESK_TOKEN,
        }
    )
    db = app.extensions["callcard.db"]
    db.upgrade()
    client = app.extensions["callcard.redis"].client
    client.flushdb()
    with app.app_context():
        with db.new_session() as session:
            agent = Agent(name="Bench Agent", email=f"bench{time.time_ns()}@example.com", client_identity="bench")
            session.add(agent)
            session.commit()
            agent_id = agent.id
    Presence(client).connected(agent_id, "benchmark")
    return app, agent_id


class CardWatcher:
    """Read the agent's stream with a blocking XREAD and note when each call's card arrives."""

    def __init__(self, app, agent_id: int):
        from app.streams import AgentStreams

        self.streams = AgentStreams(app.extensions["callcard.redis"].client)
        self.agent_id = agent_id
        self.last_id = self.streams.latest_id(agent_id)
        self.arrived: dict[str, float] = {}
        self.condition = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        import json

        while not self.stopping:
            for event_id, event, data in self.streams.read(self.agent_id, self.last_id, block_ms=200):
                self.last_id = event_id
                if event != "card":
                    continue
                sid = json.loads(data)["interaction"]["sid"]
                with self.condition:
                    self.arrived[sid] = time.perf_counter()
                    self.condition.notify_all()

    def wait(self, call_sid: str, timeout_s: float = 10.0) -> float:
        with self.condition:
            if not self.condition.wait_for(lambda: call_sid in self.arrived, timeout=timeout_s):
                raise RuntimeError(f"no card for {call_sid} within {timeout_s} s")
            return self.arrived[call_sid]

    def stop(self) -> None:
        self.stopping = True
        self.thread.join(timeout=2)


def screen_pop(app, watcher: CardWatcher, number: str, call_sid: str) -> float:
    """Post a signed voice webhook and return the seconds until its card is on the stream."""
    params = {
        "AccountSid": "AC" + "0" * 32,
        "CallSid": call_sid,
        "From": number,
        "To": "+14155550199",
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    signature = RequestValidator(AUTH_TOKEN).compute_signature("http://localhost" + WEBHOOK, params)
    client = app.test_client()
    started = time.perf_counter()
    response = client.post(
        WEBHOOK,
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature},
    )
    if response.status_code != 200:
        raise RuntimeError(f"webhook answered {response.status_code}: {response.get_data(as_text=True)}")
    return watcher.wait(call_sid) - started


def sequential(app, number: str) -> tuple[float, float]:
    """Call each connector's lookup one after the other; return (total, slowest) seconds."""
    from app.phone import parse_caller

    lookup = app.extensions["callcard.lookup"]
    caller = parse_caller(number, "US")
    durations = []
    with app.app_context():
        for connector in lookup.connectors:
            started = time.perf_counter()
            matches = connector.lookup(caller, lookup.timeouts_s[connector.name])
            durations.append(time.perf_counter() - started)
            if connector.name != "directory" and not matches:
                raise RuntimeError(f"{connector.name} found no record for the benchmark caller")
    return sum(durations), max(durations)


def run_rounds(app, watcher, callers: list[str]) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"ours": [], "sequential": [], "slowest": []}
    for number in callers:
        # A new CallSid every time, because a database kept from an earlier run
        # would treat a repeated one as a retried webhook and publish no card.
        call_sid = "CA" + uuid.uuid4().hex
        figures["ours"].append(screen_pop(app, watcher, number, call_sid))
        total, slowest = sequential(app, number)
        figures["sequential"].append(total)
        figures["slowest"].append(slowest)
    return figures


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(round(fraction * (len(ordered) - 1))), len(ordered) - 1)]


def report(label: str, figures: dict[str, list[float]]) -> float:
    """Print one round's figures; return ours / slowest connector (medians)."""
    medians = {name: statistics.median(values) for name, values in figures.items()}
    to_slowest = medians["ours"] / medians["slowest"]
    to_sequential = medians["ours"] / medians["sequential"]
    print(f"{label}: {len(figures['ours'])} calls")
    for name in ("ours", "slowest", "sequential"):
        values = figures[name]
        print(f"  {name:<10} p50 {medians[name] * 1000:7.1f} ms   p95 {percentile(values, 0.95) * 1000:7.1f} ms")
    print(f"  ours / slowest connector = {to_slowest:.2f}   ours / sequential = {to_sequential:.2f}")
    return to_slowest


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30, help="calls per round (cold, then warm); at most 300")
    parser.add_argument("--salesforce-ms", type=int, default=150, help="delay of each Salesforce search reply, in ms")
    parser.add_argument("--zendesk-ms", type=int, default=300, help="delay of each Zendesk search reply, in ms")
    args = parser.parse_args(argv)
    if not 1 <= args.iterations <= 300:
        parser.error("--iterations must be between 1 and 300")

    logging.getLogger().setLevel(logging.WARNING)
    callers = numbers(args.iterations + 1)
    with tempfile.TemporaryDirectory(prefix="callcard-screen-pop-") as tmp:
        folder = Path(tmp)
        salesforce, zendesk = start_stubs(folder, args.salesforce_ms, args.zendesk_ms, callers)
        app, agent_id = build_app(folder, salesforce, zendesk)
        logging.getLogger().setLevel(logging.WARNING)
        watcher = CardWatcher(app, agent_id)
        try:
            # One untimed call signs in to Salesforce and opens the TLS connections.
            run_rounds(app, watcher, callers[-1:])
            cold = run_rounds(app, watcher, callers[:-1])
            warm = run_rounds(app, watcher, callers[:-1])
        finally:
            watcher.stop()
            app.extensions["callcard.lookup"].close()
            salesforce.stop()
            zendesk.stop()

    print(f"Stub search delays: Salesforce {args.salesforce_ms} ms, Zendesk {args.zendesk_ms} ms")
    ratio = report("cold (new caller each call, nothing cached)", cold)
    report("warm (same callers again, served from the lookup cache)", warm)
    print(f"ratio_to_slowest={ratio:.2f}")
    return ratio


if __name__ == "__main__":
    main()

"""Benchmark: how long 50 simultaneous callers wait for their TwiML, against one caller alone.

Run: `python -m tests.benchmarks.routing_load [--calls 50] [--agents 10] [--deadline-ms 300] [--salesforce-ms 600]`.

The shipped gunicorn configuration (2 gevent workers) serves a fresh installation in
a temporary folder on the embedded SQLite and Redis. Ten agents are marked online in
the shared Redis. Each phase first times single calls one after another (the
baseline), then posts the burst of simultaneous signed voice webhooks from threads
and times each from sending it to reading the whole TwiML response.

- `directory`: the built-in directory connector only, whose lookup takes about a
  millisecond, so the time to TwiML is Callcard's own work plus waiting for a worker.
- `deadline`: the directory and Salesforce connectors, with the Salesforce stub
  (HTTPS on 127.0.0.1) delaying every search past `LOOKUP_DEADLINE_MS`, so every
  lookup takes the full deadline. The figure is the time to TwiML minus the deadline:
  how long the caller waited beyond it.

Before each timed round the agents' offers and the waiting list are cleared, so
every burst meets ten free agents. The last line is `twiml_wait_p99_ms=N`, the 99th
percentile of the wait beyond the deadline in the burst of the `deadline` phase.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import requests
from twilio.request_validator import RequestValidator

from tests.benchmarks._server import Gunicorn, base_environment, percentile

AUTH_TOKEN = "benchmark-auth-token"
SUPPORT_LINE = "+14155550199"
BASELINE_CALLS = 5
WARM_UP_CALLS = 6


def callers(count: int) -> list[str]:
    return [f"+1{('415', '650', '628')[index // 100]}5550{100 + index % 100}" for index in range(count)]


class Installation:
    """A gunicorn server and an in-process app on the same instance folder."""

    def __init__(self, folder: Path, settings: dict[str, str]):
        from app import create_app

        self.settings = {"NUMBERS_FILE": str(write_numbers(folder)), "CONNECTORS": "directory", **settings}
        env = base_environment(folder / "instance", **self.settings)
        env["TWILIO_AUTH_TOKEN"] = AUTH_TOKEN
        self.server = Gunicorn(env)
        config = {key: value for key, value in self.settings.items() if key != "LOOKUP_DEADLINE_MS"}
        self.app = create_app({**config, "INSTANCE_PATH": str(folder / "instance"), "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                               "SECRET_KEY": "benchmark-secret-key", "DEMO_DATA": False, "LOG_LEVEL": "WARNING"})
        self.app.extensions["callcard.db"].upgrade()
        self.redis = self.app.extensions["callcard.redis"].client
        self.call_number = 0

    def add_agents(self, count: int) -> None:
        from app.models import Agent
        from app.presence import Presence

        with self.app.app_context():
            with self.app.extensions["callcard.db"].new_session() as session:
                agents = [Agent(name=f"Agent {n}", email=f"agent{n}@example.com", client_identity=f"agent{n}")
                          for n in range(count)]
                session.add_all(agents)
                session.commit()
                ids = [agent.id for agent in agents]
        presence = Presence(self.redis, ttl_s=3600)
        for agent_id in ids:
            presence.connected(agent_id, "benchmark")

    def free_agents(self) -> None:
        for pattern in ("callcard:offer:*", "callcard:waiting:*"):
            for key in self.redis.scan_iter(pattern):
                self.redis.delete(key)

    def call(self, caller: str, http: requests.Session) -> tuple[float, int]:
        """Post one signed voice webhook; return (seconds to the whole TwiML, HTTP status)."""
        self.call_number += 1
        url = self.server.base_url + "/webhooks/twilio/voice"
        params = {"AccountSid": "AC" + "0" * 32, "CallSid": f"CA{time.time_ns():020x}{self.call_number:012x}",
                  "From": caller, "To": SUPPORT_LINE, "CallStatus": "ringing", "Direction": "inbound"}
        headers = {"X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, params),
                   "Content-Type": "application/x-www-form-urlencoded"}
        started = time.perf_counter()
        response = http.post(url, data=urlencode(params), headers=headers, timeout=60)
        return time.perf_counter() - started, response.status_code


def write_numbers(folder: Path) -> Path:
    path = folder / "numbers.json"
    path.write_text(json.dumps({"numbers": {SUPPORT_LINE: {"team": "support", "queue": "support"}}}), encoding="utf-8")
    return path


def local_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def baseline(installation: Installation, numbers: list[str]) -> list[float]:
    times = []
    with local_session() as http:
        for number in numbers:
            installation.free_agents()
            seconds, status = installation.call(number, http)
            assert status == 200, status
            times.append(seconds)
    return times


def burst(installation: Installation, numbers: list[str]) -> list[float]:
    installation.free_agents()
    barrier = threading.Barrier(len(numbers))
    results: list[tuple[float, int]] = []
    lock = threading.Lock()

    def one(number: str) -> None:
        with local_session() as http:
            barrier.wait()
            result = installation.call(number, http)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=one, args=(number,)) for number in numbers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = [status for _, status in results if status != 200]
    assert len(results) == len(numbers), f"{len(numbers) - len(results)} calls got no response"
    assert not failed, f"{len(failed)} calls failed: {failed[:5]}"
    return [seconds for seconds, _ in results]


def run_phase(name: str, folder: Path, settings: dict[str, str], args, deadline_s: float) -> dict[str, float]:
    """Time the baseline and the burst of one phase; return its figures in milliseconds."""
    numbers = callers(args.calls + BASELINE_CALLS + WARM_UP_CALLS)
    installation = Installation(folder, settings)
    installation.add_agents(args.agents)
    with installation.server:
        baseline(installation, numbers[:WARM_UP_CALLS])
        alone = baseline(installation, numbers[WARM_UP_CALLS:WARM_UP_CALLS + BASELINE_CALLS])
        loaded = burst(installation, numbers[WARM_UP_CALLS + BASELINE_CALLS:])
    installation.app.extensions["callcard.lookup"].close()

    alone_ms = [(seconds - deadline_s) * 1000 for seconds in alone]
    loaded_ms = [(seconds - deadline_s) * 1000 for seconds in loaded]
    figures = {
        "baseline_p50": statistics.median(alone_ms),
        "burst_p50": statistics.median(loaded_ms),
        "burst_p99": percentile(loaded_ms, 0.99),
    }
    label = "time to TwiML" if deadline_s == 0 else f"wait beyond the {deadline_s * 1000:.0f} ms deadline"
    print(f"{name}: {label}")
    print(f"  1 call alone  p50 {figures['baseline_p50']:7.1f} ms  (over {len(alone)} calls)")
    print(f"  {len(loaded)} at once   p50 {figures['burst_p50']:7.1f} ms  p99 {figures['burst_p99']:7.1f} ms")
    baseline_ms = max(figures["baseline_p50"], 1.0)
    print(f"  ratio to 1 call: p50 {figures['burst_p50'] / baseline_ms:.2f}, p99 {figures['burst_p99'] / baseline_ms:.2f}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50, help="simultaneous calls in the burst")
    parser.add_argument("--agents", type=int, default=10, help="agents online")
    parser.add_argument("--deadline-ms", type=int, default=300, help="LOOKUP_DEADLINE_MS of the deadline phase")
    parser.add_argument("--salesforce-ms", type=int, default=600, help="delay of each Salesforce search reply")
    args = parser.parse_args()

    from tests.benchmarks.screen_pop import start_stubs

    with tempfile.TemporaryDirectory(prefix="callcard-routing-") as tmp:
        root = Path(tmp)
        (root / "directory").mkdir()
        run_phase("directory", root / "directory", {}, args, 0.0)

        (root / "deadline").mkdir()
        numbers = callers(args.calls + BASELINE_CALLS + WARM_UP_CALLS)
        salesforce, zendesk = start_stubs(root, args.salesforce_ms, 0, numbers)
        settings = {
            "CONNECTORS": "directory,salesforce",
            "LOOKUP_DEADLINE_MS": str(args.deadline_ms),
            "SALESFORCE_USERNAME": "integration@example.com",
            "SALESFORCE_PASSWORD": "p&ss-fake1",
            "SALESFORCE_SECURITY_TOKEN": "FAKESECURITYTOKEN",
            "SALESFORCE_DOMAIN": salesforce.host,
        }
        try:
            figures = run_phase("deadline", root / "deadline", settings, args, args.deadline_ms / 1000)
        finally:
            salesforce.stop()
            zendesk.stop()
    print(f"twiml_wait_p99_ms={figures['burst_p99']:.0f}")


if __name__ == "__main__":
    main()

"""Benchmark: agent streams held by the shipped gunicorn configuration while cards are published.

Run: `python -m tests.benchmarks.agent_streams [--streams 2000] [--calls 200]`.

It starts gunicorn with config/gunicorn.py (2 gevent workers) on the embedded
defaults (or DATABASE_URL / REDIS_URL when set), creates one agent per stream, opens
every agent's SSE stream, then posts signed voice webhooks. Routing gives each call
to one available agent; the fan-out latency is the time from sending the webhook to
reading its card on that agent's stream. A baseline run with 10 streams comes first
in the same process, so the figures are also printed as ratios against it. The last
line is `streams_held=N`: the streams still open when the calls are done.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from twilio.request_validator import RequestValidator

from tests.benchmarks._server import Gunicorn, base_environment, percentile

CALLER = "+14155550123"


def prepare_installation(env: dict[str, str], agents: int) -> dict[int, str]:
    """Migrate the database, store `agents` agents; return a stream token per agent id."""
    import os

    from app import create_app
    from app.auth import stream_token
    from app.models import Agent

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        app = create_app({"INSTANCE_PATH": env["CALLCARD_INSTANCE_PATH"]})
    finally:
        os.environ.clear()
        os.environ.update(saved)

    with app.app_context():
        db = app.extensions["callcard.db"]
        db.upgrade()
        with db.new_session() as session:
            session.query(Agent).delete()
            session.add_all(
                Agent(name=f"Agent {n}", email=f"agent{n}@example.com", client_identity=f"agent-{n}")
                for n in range(agents)
            )
            session.commit()
            ids = [agent_id for (agent_id,) in session.query(Agent.id).order_by(Agent.id)]
        tokens = {agent_id: stream_token(agent_id) for agent_id in ids}
    return tokens


async def hold_stream(session, url: str, connected: asyncio.Event, arrivals: dict, counter: dict) -> None:
    """Read one SSE stream, recording when each card arrives."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as response:
            event = None
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith(": connected"):
                    counter["open"] += 1
                    if counter["open"] >= counter["target"]:
                        connected.set()
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "card":
                    sid = json.loads(line[6:])["interaction"]["sid"]
                    arrivals.setdefault(sid, time.perf_counter())
    except (aiohttp.ClientError, asyncio.CancelledError):
        pass
    finally:
        counter["closed"] += 1


async def post_call(session, base_url: str, token: str, sent: dict) -> float:
    call_sid = "CA" + secrets.token_hex(16)
    params = {
        "AccountSid": "AC" + "0" * 32,
        "CallSid": call_sid,
        "From": CALLER,
        "To": "+14155550100",
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    url = base_url + "/webhooks/twilio/voice"
    signature = RequestValidator(token).compute_signature(url, params)
    started = time.perf_counter()
    sent[call_sid] = started
    async with session.post(
        url,
        data=urlencode(params),
        headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
    ) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"webhook answered {response.status}")
    return time.perf_counter() - started


async def run_phase(server: Gunicorn, tokens: dict[int, str], streams: int, calls: int) -> dict:
    """Open `streams` streams, send `calls` webhooks; return the figures of this phase."""
    agent_ids = list(tokens)[:streams]
    arrivals: dict[str, float] = {}
    sent: dict[str, float] = {}
    counter = {"open": 0, "closed": 0, "target": streams}
    connected = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0)

    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [
            asyncio.create_task(
                hold_stream(session, f"{server.base_url}/agent/events?token={tokens[a]}", connected, arrivals, counter)
            )
            for a in agent_ids
        ]
        await asyncio.wait_for(connected.wait(), timeout=120)
        await asyncio.sleep(1)

        webhook_times = []
        for _ in range(calls):
            webhook_times.append(await post_call(session, server.base_url, server.env["TWILIO_AUTH_TOKEN"], sent))
            await asyncio.sleep(0.02)
        await asyncio.sleep(2)

        memory = server.resident_memory_bytes()
        held = counter["open"] - counter["closed"]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    latencies = [(arrivals[sid] - sent[sid]) * 1000 for sid in sent if sid in arrivals]
    return {
        "streams": streams,
        "held": held,
        "delivered": len(latencies),
        "calls": calls,
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "webhook_p99_ms": percentile([t * 1000 for t in webhook_times], 0.99),
        "memory_mib": memory / 2**20,
    }


def report(name: str, figures: dict) -> None:
    print(
        f"{name}: {figures['held']} of {figures['streams']} streams held, "
        f"{figures['delivered']}/{figures['calls']} cards delivered, "
        f"fan-out p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
        f"webhook p99 {figures['webhook_p99_ms']:.1f} ms, gunicorn RSS {figures['memory_mib']:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=2000, help="streams to hold (default 2000)")
    parser.add_argument("--calls", type=int, default=200, help="webhooks to send per phase (default 200)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="callcard-bench-") as instance:
        env = base_environment(Path(instance), CONNECTORS="directory")
        tokens = prepare_installation(env, max(args.streams, 10))
        with Gunicorn(env) as server:
            baseline = asyncio.run(run_phase(server, tokens, 10, args.calls))
            report("baseline (10 streams)", baseline)
            loaded = asyncio.run(run_phase(server, tokens, args.streams, args.calls))
            report(f"loaded ({args.streams} streams)", loaded)

    print(f"p99 fan-out latency, loaded / baseline: {loaded['p99_ms'] / baseline['p99_ms']:.2f}")
    print(f"p99 fan-out latency target 100 ms: {'met' if loaded['p99_ms'] <= 100 else 'missed'}")
    print(f"resident memory target 1 GiB: {'met' if loaded['memory_mib'] <= 1024 else 'missed'}")
    print(f"streams_held={loaded['held']}")


if __name__ == "__main__":
    main()

"""Start the shipped gunicorn configuration on a free port, for benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_environment(instance: Path, **extra: str) -> dict[str, str]:
    """Return the environment of a benchmark installation in `instance`."""
    env = dict(os.environ)
    env.update(
        {
            "CALLCARD_INSTANCE_PATH": str(instance),
            "SECRET_KEY": "benchmark-secret-key",
            "TWILIO_AUTH_TOKEN": "benchmark-auth-token",
            "DEMO_DATA": "false",
            "LOG_LEVEL": "WARNING",
        }
    )
    env.update(extra)
    return env


class Gunicorn:
    """A gunicorn subprocess running `wsgi:app` with config/gunicorn.py."""

    def __init__(self, env: dict[str, str], workers: int = 2):
        self.port = free_port()
        self.env = dict(env, PORT=str(self.port), WEB_CONCURRENCY=str(workers))
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Gunicorn":
        command = [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "--access-logfile", "/dev/null", "wsgi:app"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.base_url + "/healthz", timeout=1).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("gunicorn did not answer /healthz within 30 s")

    def resident_memory_bytes(self) -> int:
        """Return the resident memory of the master and its workers, added up."""
        master = psutil.Process(self.process.pid)
        processes = [master, *master.children(recursive=True)]
        total = 0
        for process in processes:
            try:
                if process.name() == "redis-server":
                    continue
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def __exit__(self, *exc_info) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]

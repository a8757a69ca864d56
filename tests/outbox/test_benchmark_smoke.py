"""A short run of the write-back benchmark, so it keeps working."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_writeback_benchmark_prints_headline():
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.writeback", "--interactions", "2", "--workers", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    last = result.stdout.strip().splitlines()[-1]
    name, _, value = last.partition("=")
    assert name == "logs_per_second_per_worker"
    assert float(value) > 0

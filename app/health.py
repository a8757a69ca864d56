"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from app.db import get_db

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Answer 200 when the database and Redis both answer, else 503 naming which did not."""
    checks = {"database": _check_database(), "redis": _check_redis()}
    ready = all(result == "ok" for result in checks.values())
    return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503


@bp.get("/metrics")
def metrics():
    return Response(generate_latest(_registry()), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _registry():
    """Aggregate every gunicorn worker's metrics when PROMETHEUS_MULTIPROC_DIR is set."""
    import os

    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def _check_database() -> str:
    try:
        with get_db().engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as error:
        log.warning("Readiness: database unreachable: %s", error)
        return f"unreachable: {type(error).__name__}"
    return "ok"


def _check_redis() -> str:
    try:
        current_app.extensions["callcard.redis"].client.ping()
    except Exception as error:
        log.warning("Readiness: Redis unreachable: %s", error)
        return f"unreachable: {type(error).__name__}"
    return "ok"

"""Prometheus metrics of the web and worker processes, served at GET /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

WEBHOOKS = Counter(
    "callcard_webhooks",
    "Twilio webhooks answered, by endpoint and HTTP status",
    ["endpoint", "status"],
)
WEBHOOK_SECONDS = Histogram(
    "callcard_webhook_seconds",
    "Time to answer a Twilio webhook",
    ["endpoint"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
)
LOOKUPS = Histogram(
    "callcard_lookup_seconds",
    "Time one connector took to look a caller up, by outcome",
    ["connector", "status"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0),
)
EVENTS_PUBLISHED = Counter(
    "callcard_stream_events",
    "Events published to agents' streams, by event type",
    ["event"],
)
OUTBOX_ATTEMPTS = Counter(
    "callcard_outbox_attempts",
    "Attempts to log an interaction to a CRM, by connector and resulting row state",
    ["connector", "state"],
)

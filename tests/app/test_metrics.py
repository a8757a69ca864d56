"""GET /metrics exposes the webhook, lookup, stream and outbox figures."""

from tests.conftest import add_contact, create_agent, mark_online


def voice(call_sid="CA" + "7" * 32):
    return {"AccountSid": "AC" + "0" * 32, "CallSid": call_sid, "From": "+14155550100",
            "To": "+14155550199", "CallStatus": "ringing"}


def metric_value(text: str, name: str, **labels: str) -> float:
    """Return the value of one sample of the Prometheus text format, 0 when absent."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        sample, _, value = line.rpartition(" ")
        sample_labels = sample[sample.find("{") + 1 : -1] if "{" in sample else ""
        if sample.split("{")[0] == name and ",".join(sorted(sample_labels.split(","))) == wanted:
            return float(value)
    return 0.0


def test_metrics_count_a_call(app, client, twilio):
    add_contact(app, "Ada Example", "(415) 555-0100")
    mark_online(app, create_agent(app))
    before = client.get("/metrics").get_data(as_text=True)

    twilio.post("/webhooks/twilio/voice", voice())
    after = client.get("/metrics").get_data(as_text=True)

    def grew(name, **labels):
        return metric_value(after, name, **labels) - metric_value(before, name, **labels)

    assert grew("callcard_webhooks_total", endpoint="webhooks.voice", status="200") == 1
    assert grew("callcard_lookup_seconds_count", connector="directory", status="found") == 1
    assert grew("callcard_stream_events_total", event="card") == 1


def test_metrics_count_rejected_signature(client, twilio):
    before = client.get("/metrics").get_data(as_text=True)

    twilio.post("/webhooks/twilio/voice", voice(), signature="forged")
    after = client.get("/metrics").get_data(as_text=True)

    labels = {"endpoint": "webhooks.voice", "status": "403"}
    assert metric_value(after, "callcard_webhooks_total", **labels) - metric_value(before, "callcard_webhooks_total", **labels) == 1


def test_metrics_content_type_is_prometheus_text(client):
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["Content-Type"].count("charset") == 1
    assert response.headers["Content-Type"].startswith("text/plain; version=")

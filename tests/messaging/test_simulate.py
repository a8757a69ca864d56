"""`flask simulate message` posts a signed messaging webhook to a running server."""

from __future__ import annotations

import socket
import threading

import pytest
from werkzeug.serving import make_server

from tests.conftest import interactions


@pytest.fixture
def served_app(make_app):
    """The application behind a real HTTP server on 127.0.0.1, with PUBLIC_BASE_URL set to it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = make_app(PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app
    server.shutdown()
    thread.join(timeout=5)


@pytest.mark.parametrize(
    ("arguments", "channel", "sender"),
    [
        ([], "sms", "+14155550123"),
        (["--whatsapp"], "whatsapp", "whatsapp:+14155550123"),
    ],
)
def test_simulate_message_stored(served_app, monkeypatch, arguments, channel, sender):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    result = served_app.test_cli_runner().invoke(
        args=["simulate", "message", "+14155550123", "Bonjour 👋 مرحبا", *arguments]
    )

    assert result.exit_code == 0, result.output
    [stored] = interactions(served_app)
    assert result.output.strip() == f"MessageSid {stored.provider_sid}"
    assert stored.channel == channel
    assert stored.from_address == sender
    assert stored.body == "Bonjour 👋 مرحبا"


def test_simulate_message_with_media(served_app, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    result = served_app.test_cli_runner().invoke(
        args=["simulate", "message", "+14155550123", "", "--media", "https://example.com/a.jpg", "--media", "https://example.com/b.pdf"]
    )

    assert result.exit_code == 0, result.output
    [stored] = interactions(served_app)
    assert [item["content_type"] for item in stored.media] == ["image/jpeg", "application/pdf"]

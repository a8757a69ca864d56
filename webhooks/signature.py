"""Verify X-Twilio-Signature against the URL Twilio called."""

from __future__ import annotations

import functools
import logging
import threading
from urllib.parse import quote

from flask import abort, current_app, request
from prometheus_client import Counter
from twilio.request_validator import RequestValidator

from webhooks.params import read_form_pairs

log = logging.getLogger(__name__)

SIGNATURE_FAILURES = Counter(
    "callcard_webhook_signature_failures",
    "Twilio webhooks rejected because of a missing or wrong signature",
    ["endpoint"],
)

# Characters that Werkzeug leaves unquoted when it rebuilds a request path.
PATH_SAFE = "/:@!$&'()*+,;=~"

_failures_lock = threading.Lock()
_failures_seen = 0


def public_url() -> str:
    """Return the URL Twilio signed: the public base URL when configured, else the request's.

    With `TRUST_PROXY_HEADERS`, the request's scheme, host and port come from
    `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Forwarded-Port` (see
    `app.create_app`). The query string is kept byte for byte as received, because
    Twilio signs it as configured and `request.url` would decode escapes such as `%27`.
    """
    base = current_app.config.get("PUBLIC_BASE_URL") or request.host_url
    path = quote(request.script_root + request.path, safe=PATH_SAFE)
    query = request.query_string.decode("latin-1")
    return base.rstrip("/") + path + (f"?{query}" if query else "")


def auth_tokens() -> list[str]:
    """Return the primary and, during a rotation, the secondary auth token."""
    config = current_app.config
    tokens = [config.get("TWILIO_AUTH_TOKEN"), config.get("TWILIO_AUTH_TOKEN_SECONDARY")]
    return [token for token in tokens if token]


def is_valid_signature(url: str, params, signature: str) -> bool:
    """Check `signature` against each auth token; `params` may repeat a name (a MultiDict)."""
    return any(
        RequestValidator(token).validate(url, params, signature) for token in auth_tokens()
    )


def twilio_signed(view):
    """Reject the request with 403 unless Twilio signed it; run before anything is stored."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        params = read_form_pairs()
        signature = request.headers.get("X-Twilio-Signature", "")
        url = public_url()

        if not signature or not is_valid_signature(url, params, signature):
            _reject(url, "missing" if not signature else "invalid")
        return view(*args, **kwargs)

    return wrapper


def _reject(url: str, problem: str):
    global _failures_seen
    with _failures_lock:
        _failures_seen += 1
        count = _failures_seen
    SIGNATURE_FAILURES.labels(endpoint=request.endpoint or request.path).inc()
    log.warning(
        "Rejected Twilio webhook: %s X-Twilio-Signature for URL %s "
        "(%d rejected by this process; check PUBLIC_BASE_URL and TRUST_PROXY_HEADERS)",
        problem,
        url,
        count,
    )
    abort(403, description=f"{problem} X-Twilio-Signature for {url}")

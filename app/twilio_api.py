"""The Twilio REST client of this installation, pointed at `TWILIO_API_BASE_URL`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

DEFAULT_API_BASE_URL = "https://api.twilio.com"
TIMEOUT_S = 10.0


class MessagingNotConfigured(RuntimeError):
    """A setting needed to send messages is missing. The error message names it."""


class BaseUrlHttpClient(TwilioHttpClient):
    """Send every request for `api.twilio.com` to another base URL.

    twilio 9.13.0 hard-codes `https://api.twilio.com` in its `Api` domain, and its
    region and edge settings change only parts of that host name. The library's
    extension point is the `http_client` argument of `Client`, so the rewrite is here.
    """

    def __init__(self, base_url: str, timeout: float = TIMEOUT_S):
        super().__init__(timeout=timeout)
        parts = urlsplit(base_url.rstrip("/"))
        self.scheme = parts.scheme
        self.netloc = parts.netloc
        self.path_prefix = parts.path

    def request(self, method: str, url: str, *args: Any, **kwargs: Any):
        parts = urlsplit(url)
        rebased = parts._replace(scheme=self.scheme, netloc=self.netloc, path=self.path_prefix + parts.path)
        return super().request(method, urlunsplit(rebased), *args, **kwargs)


def rest_client(config: Mapping[str, Any]) -> Client:
    """Build a Twilio REST client from the settings.

    Raises:
        MessagingNotConfigured: TWILIO_ACCOUNT_SID is not set. The auth token is
            always set, because the application generates a local one.
    """
    account_sid = config.get("TWILIO_ACCOUNT_SID")
    if not account_sid:
        raise MessagingNotConfigured(
            "TWILIO_ACCOUNT_SID is not set. Set it to your Twilio account SID (AC…) to send messages."
        )

    base_url = config.get("TWILIO_API_BASE_URL") or DEFAULT_API_BASE_URL
    if base_url.rstrip("/") == DEFAULT_API_BASE_URL:
        http_client = TwilioHttpClient(timeout=TIMEOUT_S)
    else:
        http_client = BaseUrlHttpClient(base_url)

    # An explicit environment keeps TWILIO_REGION and TWILIO_EDGE of the process
    # from rewriting the host of a custom base URL.
    return Client(account_sid, config["TWILIO_AUTH_TOKEN"], http_client=http_client, environment={"TWILIO_EDGE": ""})

"""Send correctly signed Twilio webhooks to this installation, without a Twilio account."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timezone
from email.utils import format_datetime
from urllib.parse import urlsplit

import requests
from twilio.request_validator import RequestValidator

log = logging.getLogger(__name__)

API_VERSION = "2010-04-01"


class SimulationError(RuntimeError):
    """The simulated webhook could not be delivered or was rejected."""


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def account_sid(config) -> str:
    configured = config.get("TWILIO_ACCOUNT_SID")
    if configured:
        return configured
    digest = hashlib.sha256(config["SECRET_KEY"].encode()).hexdigest()
    return "AC" + digest[:32]


def voice_params(config, call_sid: str, from_: str, to: str, status: str = "ringing") -> dict[str, str]:
    """Return the parameter set Twilio sends to a number's voice URL."""
    return {
        "AccountSid": account_sid(config),
        "ApiVersion": API_VERSION,
        "CallSid": call_sid,
        "CallStatus": status,
        "Called": to,
        "CalledCity": "",
        "CalledCountry": "",
        "CalledState": "",
        "CalledZip": "",
        "Caller": from_,
        "CallerCity": "",
        "CallerCountry": "",
        "CallerState": "",
        "CallerZip": "",
        "Direction": "inbound",
        "From": from_,
        "FromCity": "",
        "FromCountry": "",
        "FromState": "",
        "FromZip": "",
        "To": to,
        "ToCity": "",
        "ToCountry": "",
        "ToState": "",
        "ToZip": "",
    }


def status_params(
    config, call_sid: str, from_: str, to: str, status: str, sequence: int, duration: int | None
) -> dict[str, str]:
    """Return the parameter set of a call-progress status callback."""
    params = voice_params(config, call_sid, from_, to, status)
    params.update(
        {
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(sequence),
            "Timestamp": format_datetime(datetime.now(timezone.utc)),
        }
    )
    if duration is not None:
        params["CallDuration"] = str(duration)
        params["Duration"] = str(max(1, -(-duration // 60)))
    return params


def message_params(
    config,
    message_sid: str,
    from_: str,
    to: str,
    body: str,
    whatsapp: bool = False,
    media: list[tuple[str, str]] | None = None,
) -> dict[str, str]:
    """Return the parameter set Twilio sends to a number's messaging URL.

    With `whatsapp`, both addresses get the `whatsapp:` prefix and the WhatsApp
    fields are added (`WaId` is the sender's number without `+`). `media` lists
    (URL, content type) pairs, sent as `MediaUrlN` and `MediaContentTypeN`.
    """
    media = media or []
    if whatsapp:
        from_, to = f"whatsapp:{from_}", f"whatsapp:{to}"
    params = {
        "AccountSid": account_sid(config),
        "ApiVersion": API_VERSION,
        "Body": body,
        "From": from_,
        "MessageSid": message_sid,
        "NumMedia": str(len(media)),
        "NumSegments": "1",
        "SmsMessageSid": message_sid,
        "SmsSid": message_sid,
        "SmsStatus": "received",
        "To": to,
    }
    for index, (url, content_type) in enumerate(media):
        params[f"MediaUrl{index}"] = url
        params[f"MediaContentType{index}"] = content_type
    if whatsapp:
        params.update(_whatsapp_params(from_, media))
    return params


def _whatsapp_params(from_: str, media: list[tuple[str, str]]) -> dict[str, str]:
    wa_id = from_.removeprefix("whatsapp:").lstrip("+")
    return {
        "MessageType": "image" if media else "text",
        "ProfileName": "Simulated customer",
        "ReferralNumMedia": "0",
        "WaId": wa_id,
    }


class Simulator:
    """Sign and post webhooks to the server at `base_url`, as Twilio would."""

    def __init__(self, base_url: str, auth_token: str, timeout_s: float = 10.0):
        host = urlsplit(base_url).hostname or ""
        if not base_url.startswith(("http://", "https://")) or not host:
            raise SimulationError(f"base URL {base_url!r} must be an http:// or https:// URL")
        self.base_url = base_url.rstrip("/")
        self.validator = RequestValidator(auth_token)
        self.timeout_s = timeout_s

    def post(self, path: str, params: dict[str, str]) -> requests.Response:
        url = self.base_url + path
        signature = self.validator.compute_signature(url, params)
        try:
            response = requests.post(
                url,
                data=params,
                headers={"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"},
                timeout=self.timeout_s,
                # A redirect would carry the webhook to a host other than the base URL.
                allow_redirects=False,
            )
        except requests.RequestException as error:
            raise SimulationError(f"could not reach {url}: {error}") from error
        if response.is_redirect:
            location = response.headers.get("Location", "")
            raise SimulationError(f"{url} redirected to {location!r}; set PUBLIC_BASE_URL to the final URL")
        if response.status_code >= 400:
            raise SimulationError(f"{url} answered {response.status_code}: {response.text[:300]}")
        return response

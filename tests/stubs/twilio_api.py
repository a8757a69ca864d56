"""A Twilio REST API stub: the Messages resource of API version 2010-04-01.

It speaks plain HTTP on 127.0.0.1; the application reaches it through
`TWILIO_API_BASE_URL`. Replies follow the shape of Twilio's Message resource and
of its error documents (`code`, `message`, `more_info`, `status`).
"""

from __future__ import annotations

import base64
import re
import secrets
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs

from tests.stubs import RecordedRequest, Reply, StubServer

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-f]{32})/Messages\.json$")
MAX_BODY_LENGTH = 1600


def twilio_error(status: int, code: int, message: str) -> Reply:
    return Reply.json(
        status,
        {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
    )


class TwilioApiStub(StubServer):
    """Accept messages for one account, authenticated with its SID and auth token.

    `messages` keeps every created message, and `form(request)` decodes a request
    body with repeated keys (several `MediaUrl`) as lists. A test that needs to
    know a MessageSid in advance appends it to `next_sids`.
    """

    def __init__(self, account_sid: str, auth_token: str):
        super().__init__(ssl_context=None)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[dict[str, Any]] = []
        self.next_sids: list[str] = []

    @staticmethod
    def form(request: RecordedRequest) -> dict[str, list[str]]:
        return parse_qs(request.body.decode("utf-8"), keep_blank_values=True)

    def route(self, request: RecordedRequest) -> Reply:
        match = MESSAGES_PATH.match(request.path)
        if match is None:
            return twilio_error(404, 20404, f"The requested resource {request.path} was not found")
        if not self._authorized(request, match["account"]):
            return twilio_error(401, 20003, "Authenticate")
        if request.method != "POST":
            return twilio_error(405, 20004, "Method not allowed")
        return self._create_message(match["account"], self.form(request))

    def _authorized(self, request: RecordedRequest, account: str) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return account == self.account_sid and request.headers.get("Authorization") == f"Basic {expected}"

    def _create_message(self, account: str, form: dict[str, list[str]]) -> Reply:
        to = _first(form, "To")
        sender = _first(form, "From") or _first(form, "MessagingServiceSid")
        body = _first(form, "Body") or ""
        media = form.get("MediaUrl", [])

        if not to:
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        if not sender:
            return twilio_error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message.")
        if not body and not media:
            return twilio_error(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY_LENGTH:
            return twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")

        message = self._message_resource(account, to, _first(form, "From"), body, media, form)
        with self.lock:
            self.messages.append(message)
        return Reply.json(201, message)

    def _message_resource(self, account, to, sender, body, media, form) -> dict[str, Any]:
        with self.lock:
            planned = self.next_sids.pop(0) if self.next_sids else None
        sid = planned or ("MM" if media else "SM") + secrets.token_hex(16)
        now = format_datetime(datetime.now(timezone.utc))
        return {
            "account_sid": account,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": _first(form, "MessagingServiceSid"),
            "num_media": str(len(media)),
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{account}/Messages/{sid}/Media.json"},
            "to": to,
            "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
        }


def _first(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None

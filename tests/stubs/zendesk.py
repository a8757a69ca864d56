"""A Zendesk Support stub: search, users, organizations, tickets, Talk Partner Edition.

It speaks HTTPS, because zenpy builds `https://{subdomain}.{domain}` URLs only.
Replies follow the recorded payloads in `tests/fixtures/zendesk`.
"""

from __future__ import annotations

import base64
import copy
import itertools
import re
import ssl
from datetime import datetime, timezone
from typing import Any

from tests.stubs import Fault, RecordedRequest, Reply, StubServer, load_fixture

STATUS_ORDER = ("new", "open", "pending", "hold", "solved", "closed")
TERM = re.compile(r"^(?P<key>[a-z_]+)(?P<op>[:<>])(?P<value>.*)$")


def _template(name: str, *keys: str) -> dict[str, Any]:
    body = load_fixture("zendesk", name)["response"]["body"]
    for key in keys:
        body = body[key]
    return body


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _digits(value: str | None) -> str:
    return re.sub(r"\D", "", value or "")


class ZendeskStub(StubServer):
    """Serve one Zendesk account from memory.

    It accepts `{email}/token:{api_token}` Basic authentication or the OAuth bearer
    token. Search queries are URL-decoded before matching, as Zendesk does, so an
    unencoded `+` arrives as a space. `search_queries` keeps every decoded query.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        email: str = "integration@example.com",
        api_token: str = "FAKEZENDESKAPITOKEN0123456789",
        oauth_token: str = "FAKEZENDESKOAUTHTOKEN0123456789",
    ):
        super().__init__(ssl_context)
        self.email = email
        self.api_token = api_token
        self.oauth_token = oauth_token
        self.users: dict[int, dict[str, Any]] = {}
        self.organizations: dict[int, dict[str, Any]] = {}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.calls: list[dict[str, Any]] = []
        self.displayed: list[tuple[int, int]] = []
        self.displayed_tickets: list[tuple[int, int]] = []
        self.search_queries: list[str] = []
        self._ids = itertools.count(90000001)

    # Seeding

    def add_user(self, **fields: Any) -> dict[str, Any]:
        """Store an end user shaped like a recorded one, with `fields` overriding its values."""
        user = copy.deepcopy(_template("search_users_by_phone", "results"))[0]
        user.pop("result_type")
        user.update({"organization_id": None, "tags": [], "user_fields": {}, "external_id": None})
        user.update({"id": next(self._ids), "email": None, "phone": None, "shared_phone_number": False})
        user.update(fields)
        user["url"] = f"{self.url}/api/v2/users/{user['id']}.json"
        with self.lock:
            self.users[user["id"]] = user
        return user

    def add_organization(self, **fields: Any) -> dict[str, Any]:
        organization = copy.deepcopy(_template("organization", "organization"))
        organization.update({"id": next(self._ids), "external_id": None, "organization_fields": {}})
        organization.update(fields)
        with self.lock:
            self.organizations[organization["id"]] = organization
        return organization

    def add_ticket(self, **fields: Any) -> dict[str, Any]:
        ticket = copy.deepcopy(_template("user_tickets", "tickets"))[0]
        ticket.update({"id": next(self._ids), "tags": [], "external_id": None, "organization_id": None})
        ticket.update(fields)
        ticket["url"] = f"{self.url}/api/v2/tickets/{ticket['id']}.json"
        with self.lock:
            self.tickets[ticket["id"]] = ticket
            self.comments.setdefault(ticket["id"], [])
        return ticket

    # Failure modes

    def rate_limited(self, retry_after: int | None = 30, times: int | None = 1, path: str = "/api") -> Fault:
        """Reject requests with 429, a plain-text body and, unless None, a Retry-After header."""
        fixture = load_fixture("zendesk", "rate_limited_429")["response"]
        reply = Reply.text(429, fixture["body"])
        reply.headers["x-rate-limit-remaining"] = "0"
        if retry_after is not None:
            reply.headers["Retry-After"] = str(retry_after)
        return self.fail(reply, path=path, times=times)

    def service_unavailable(self, times: int | None = 1, path: str = "/api") -> Fault:
        return self.fail(Reply.text(503, "Service Unavailable"), path=path, times=times)

    # Routing

    def route(self, request: RecordedRequest) -> Reply:
        if not self._authorized(request.headers.get("Authorization", "")):
            return Reply.json(401, {"error": "Couldn't authenticate you"})

        path = request.path.removeprefix("/api/v2/")
        handlers = (
            ("GET", r"search\.json", self._search),
            ("GET", r"users/search\.json", self._search_users),
            ("GET", r"users/(\d+)\.json", self._show_user),
            ("GET", r"users/(\d+)/tickets/requested\.json", self._requested),
            ("GET", r"organizations/(\d+)\.json", self._show_organization),
            ("GET", r"tickets/(\d+)\.json", self._show_ticket),
            ("GET", r"tickets\.json", self._list_tickets),
            ("GET", r"tickets/(\d+)/comments\.json", self._list_comments),
            ("POST", r"users\.json", self._create_user),
            ("POST", r"tickets\.json", self._create_ticket),
            ("PUT", r"tickets/(\d+)\.json", self._update_ticket),
            ("POST", r"calls\.json", self._create_call),
            ("POST", r"channels/voice/tickets\.json", self._create_voice_ticket),
            ("POST", r"channels/voice/agents/(\d+)/users/(\d+)/display\.json", self._display_user),
            ("POST", r"channels/voice/agents/(\d+)/tickets/(\d+)/display\.json", self._display_ticket),
        )
        for method, pattern, handler in handlers:
            match = re.fullmatch(pattern, path)
            if method == request.method and match:
                return handler(request, *(int(group) for group in match.groups()))
        return self._not_found()

    def _authorized(self, header: str) -> bool:
        if header == f"Bearer {self.oauth_token}":
            return True
        if not header.startswith("Basic "):
            return False
        decoded = base64.b64decode(header.removeprefix("Basic ")).decode()
        return decoded == f"{self.email}/token:{self.api_token}"

    @staticmethod
    def _not_found() -> Reply:
        fixture = load_fixture("zendesk", "error_record_not_found")["response"]
        return Reply.json(404, fixture["body"])

    # Search

    def _search(self, request: RecordedRequest) -> Reply:
        query = request.param("query") or ""
        with self.lock:
            self.search_queries.append(query)
            terms = query.split()
            kinds = {term.split(":", 1)[1] for term in terms if term.startswith("type:")}
            results = []
            if not kinds or "user" in kinds:
                results += [dict(user, result_type="user") for user in self.users.values() if self._matches(user, terms)]
            if not kinds or "ticket" in kinds:
                results += [dict(ticket, result_type="ticket") for ticket in self.tickets.values() if self._matches(ticket, terms)]
        body = {"results": results, "facets": None, "next_page": None, "previous_page": None, "count": len(results)}
        return Reply.json(200, body)

    def _search_users(self, request: RecordedRequest) -> Reply:
        query = request.param("query")
        external_id = request.param("external_id")
        with self.lock:
            if query is not None:
                self.search_queries.append(query)
                users = [user for user in self.users.values() if self._matches(user, query.split())]
            else:
                users = [user for user in self.users.values() if str(user.get("external_id")) == external_id]
        body = {"users": users, "next_page": None, "previous_page": None, "count": len(users)}
        return Reply.json(200, body)

    def _matches(self, item: dict[str, Any], terms: list[str]) -> bool:
        """Tell whether `item` meets every term of a query. A bare word matches nothing."""
        for term in terms:
            parsed = TERM.match(term)
            if parsed is None:
                return False
            key, op, value = parsed.group("key", "op", "value")
            if key == "type":
                continue
            if not self._term_holds(item, key, op, value):
                return False
        return True

    def _term_holds(self, item: dict[str, Any], key: str, op: str, value: str) -> bool:
        if key == "phone":
            return phone_matches(value, [item.get("phone")])
        if key == "requester":
            return str(item.get("requester_id")) == value
        if key == "status" and op == "<":
            return STATUS_ORDER.index(item.get("status", "new")) < STATUS_ORDER.index(value)
        if key == "status" and op == ">":
            return STATUS_ORDER.index(item.get("status", "new")) > STATUS_ORDER.index(value)
        return str(item.get(key)) == value

    # Reads

    def _show_user(self, request: RecordedRequest, user_id: int) -> Reply:
        user = self.users.get(user_id)
        return Reply.json(200, {"user": user}) if user else self._not_found()

    def _show_organization(self, request: RecordedRequest, organization_id: int) -> Reply:
        organization = self.organizations.get(organization_id)
        return Reply.json(200, {"organization": organization}) if organization else self._not_found()

    def _show_ticket(self, request: RecordedRequest, ticket_id: int) -> Reply:
        ticket = self.tickets.get(ticket_id)
        return Reply.json(200, {"ticket": ticket}) if ticket else self._not_found()

    def _list_tickets(self, request: RecordedRequest) -> Reply:
        """List tickets, filtered by `external_id` when the query has one."""
        external_id = request.param("external_id")
        with self.lock:
            tickets = [
                ticket
                for ticket in self.tickets.values()
                if external_id is None or ticket.get("external_id") == external_id
            ]
        return Reply.json(200, {"tickets": tickets, "next_page": None, "previous_page": None, "count": len(tickets)})

    def _list_comments(self, request: RecordedRequest, ticket_id: int) -> Reply:
        if ticket_id not in self.tickets:
            return self._not_found()
        with self.lock:
            comments = [dict(comment, id=index + 1) for index, comment in enumerate(self.comments[ticket_id])]
        return Reply.json(200, {"comments": comments, "next_page": None, "previous_page": None, "count": len(comments)})

    def _requested(self, request: RecordedRequest, user_id: int) -> Reply:
        if user_id not in self.users:
            return self._not_found()
        with self.lock:
            tickets = [ticket for ticket in self.tickets.values() if ticket.get("requester_id") == user_id]

        if request.param("page[size]") is None:
            return Reply.json(200, {"tickets": tickets, "next_page": None, "previous_page": None, "count": len(tickets)})

        # The last page of a cursor-paginated list: has_more is false and the
        # links stay on this server.
        fixture = _template("user_tickets")
        own = f"{self.url}/api/v2/users/{user_id}/tickets/requested.json"
        links = {"prev": f"{own}?page%5Bbefore%5D=start", "next": f"{own}?page%5Bafter%5D=end"}
        return Reply.json(200, {"tickets": tickets, "meta": dict(fixture["meta"], has_more=False), "links": links})

    # Writes

    def _create_user(self, request: RecordedRequest) -> Reply:
        user = self.add_user(**(request.json() or {}).get("user", {}))
        return Reply.json(201, {"user": user})

    def _create_ticket(self, request: RecordedRequest) -> Reply:
        fields = dict((request.json() or {}).get("ticket", {}))
        comment = fields.pop("comment", None)
        ticket = self.add_ticket(
            **fields,
            status=fields.get("status", "new"),
            description=(comment or {}).get("body", ""),
            created_at=_now(),
            updated_at=_now(),
        )
        if comment:
            self.comments[ticket["id"]].append(comment)
        reply = Reply.json(201, {"ticket": ticket, "audit": self._audit(ticket, comment)})
        reply.headers["Location"] = ticket["url"]
        return reply

    def _update_ticket(self, request: RecordedRequest, ticket_id: int) -> Reply:
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            return self._not_found()
        fields = dict((request.json() or {}).get("ticket", {}))
        comment = fields.pop("comment", None)
        with self.lock:
            ticket.update(fields, updated_at=_now())
            if comment:
                self.comments[ticket_id].append(comment)
        return Reply.json(200, {"ticket": ticket, "audit": self._audit(ticket, comment)})

    def _create_call(self, request: RecordedRequest) -> Reply:
        payload = request.json() or {}
        call = copy.deepcopy(_template("tpe_call_create", "call"))
        call.update(payload.get("call", {}), id=next(self._ids), created_at=_now(), updated_at=_now())
        with self.lock:
            self.calls.append({"call": call, "comment": payload.get("comment")})
        return Reply.json(201, {"call": call})

    def _create_voice_ticket(self, request: RecordedRequest) -> Reply:
        payload = request.json() or {}
        fields = dict(payload.get("ticket", {}))
        voice_comment = fields.pop("voice_comment", None)
        ticket = self.add_ticket(**fields, status="new", created_at=_now(), updated_at=_now())
        if voice_comment:
            self.comments[ticket["id"]].append({"voice_comment": voice_comment})
        if payload.get("display_to_agent"):
            self.displayed.append((payload["display_to_agent"], ticket.get("requester_id")))
        return Reply.json(201, {"ticket": ticket})

    def _display_user(self, request: RecordedRequest, agent_id: int, user_id: int) -> Reply:
        if user_id not in self.users:
            return Reply.json(404, "")
        with self.lock:
            self.displayed.append((agent_id, user_id))
        return Reply.json(200, "")

    def _display_ticket(self, request: RecordedRequest, agent_id: int, ticket_id: int) -> Reply:
        if ticket_id not in self.tickets:
            return Reply.json(404, "")
        with self.lock:
            self.displayed_tickets.append((agent_id, ticket_id))
        return Reply.json(200, "")

    @staticmethod
    def _audit(ticket: dict[str, Any], comment: dict[str, Any] | None) -> dict[str, Any]:
        events = [{"type": "Comment", "body": comment.get("body"), "public": comment.get("public", True)}] if comment else []
        return {"ticket_id": ticket["id"], "created_at": _now(), "events": events}


def phone_matches(pattern: str, stored_values: list[str | None]) -> bool:
    """Match a `phone:` search value, where `*` is a wildcard, against stored numbers.

    Only digits are compared, so the value `*4155550123` finds `+1 415-555-0123`.
    An empty value, which is what `phone:+1415…` becomes once `+` is decoded to a
    space, matches nothing.
    """
    digits = _digits(pattern)
    if not digits:
        return False

    for stored in stored_values:
        number = _digits(stored)
        if not number:
            continue
        if pattern.startswith("*") and pattern.endswith("*") and digits in number:
            return True
        if pattern.startswith("*") and not pattern.endswith("*") and number.endswith(digits):
            return True
        if pattern.endswith("*") and not pattern.startswith("*") and number.startswith(digits):
            return True
        if "*" not in pattern and number == digits:
            return True
    return False

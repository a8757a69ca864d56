"""A Salesforce stub: SOAP and OAuth sign-in, SOSL, SOQL, composite and sObject writes.

It speaks HTTPS only, because simple-salesforce always builds `https://` URLs from
the instance host. Replies follow the recorded payloads in `tests/fixtures/salesforce`.
"""

from __future__ import annotations

import itertools
import json
import re
import ssl
from typing import Any

from tests.stubs import Fault, RecordedRequest, Reply, StubServer, load_fixture

API_VERSION = "59.0"

# Characters SOSL reserves inside FIND {...}. A literal one must be preceded by a
# backslash. Salesforce reads unescaped * and ? as wildcards, but this stub rejects
# them too, because the connector never means to send a wildcard.
SOSL_RESERVED = frozenset('+-&|!(){}[]^"~*?:\\\'')

# Phone fields that `IN PHONE FIELDS` searches, per object.
PHONE_FIELDS = {
    "Contact": ("Phone", "MobilePhone", "HomePhone", "OtherPhone", "AssistantPhone", "Fax"),
    "Lead": ("Phone", "MobilePhone", "Fax"),
    "Account": ("Phone", "Fax"),
}

# The 3-character key prefix of record ids, per object.
KEY_PREFIXES = {
    "Account": "001",
    "Contact": "003",
    "Lead": "00Q",
    "Case": "500",
    "Opportunity": "006",
    "User": "005",
    "Group": "00G",
    "Task": "00T",
}

FIXTURE_HOST = "https://example.my.salesforce.com"
DEFAULT_MODIFIED = "2026-01-01T00:00:00.000+0000"

SOQL = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<sobject>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>.+?))?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
CONDITION = re.compile(
    r"\s*(?P<field>\w+(?:\.\w+)?)\s*(?P<op>=|!=|\bNOT\s+IN\b|\bIN\b)\s*"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\([^)]*\)|true\b|false\b|null\b|-?\d+(?:\.\d+)?)",
    re.IGNORECASE,
)
AND = re.compile(r"\s+AND\s+", re.IGNORECASE)
QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")
SOSL_TAIL = re.compile(r"^\s+IN\s+(?P<scope>\w+)\s+FIELDS\s+RETURNING\s+(?P<returning>.+)$", re.I | re.S)
RETURNING_ITEM = re.compile(r"^\s*(?P<sobject>\w+)\s*(?:\((?P<fields>[^()]*)\))?\s*$")


class SalesforceError(Exception):
    """A request the stub rejects the way Salesforce does: status, errorCode, message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_reply(status: int, code: str, message: str) -> Reply:
    """Build Salesforce's REST error body: a JSON list of {message, errorCode}."""
    return Reply.json(status, [{"message": message, "errorCode": code}])


class SalesforceStub(StubServer):
    """Serve one Salesforce org from memory.

    Seed records with `add()` or the `add_<object>()` helpers. Every sign-in issues a
    new session id. `expire_sessions_after()` limits how many API calls each one
    serves, and `login_broken` makes every sign-in fail with INVALID_LOGIN.
    """

    def __init__(self, ssl_context: ssl.SSLContext, api_version: str = API_VERSION):
        super().__init__(ssl_context)
        self.api_version = api_version
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in KEY_PREFIXES}
        self.query_page_size = 2000
        self.login_broken = False
        self.login_attempts = 0
        self.issued_sessions: list[str] = []
        self.session_lifetimes: list[int | None] = []
        self.grant_types: list[str] = []
        self.api_calls = 0
        self._calls_left: dict[str, int | None] = {}
        self._cursors: dict[str, list[dict[str, Any]]] = {}
        self._ids = itertools.count(1)

    # Seeding

    def add(self, sobject: str, **fields: Any) -> dict[str, Any]:
        """Store a record of `sobject` and return it, with a generated Id when none is given."""
        with self.lock:
            record = dict(fields)
            record.setdefault("Id", self._new_id(sobject))
            record.setdefault("LastModifiedDate", DEFAULT_MODIFIED)
            record.setdefault("CreatedDate", record["LastModifiedDate"])
            if sobject in ("Case", "Opportunity"):
                record.setdefault("IsClosed", False)
            self.records.setdefault(sobject, {})[record["Id"]] = record
            return record

    def add_contact(self, **fields: Any) -> dict[str, Any]:
        return self.add("Contact", **fields)

    def add_lead(self, **fields: Any) -> dict[str, Any]:
        return self.add("Lead", **fields)

    def add_account(self, **fields: Any) -> dict[str, Any]:
        return self.add("Account", **fields)

    def add_case(self, **fields: Any) -> dict[str, Any]:
        return self.add("Case", **fields)

    def add_opportunity(self, **fields: Any) -> dict[str, Any]:
        return self.add("Opportunity", **fields)

    def add_user(self, **fields: Any) -> dict[str, Any]:
        return self.add("User", **fields)

    def find(self, record_id: str | None) -> tuple[str, dict[str, Any]] | None:
        """Return (object name, record) for `record_id`, or None."""
        for sobject, records in self.records.items():
            if record_id in records:
                return sobject, records[record_id]
        return None

    def _new_id(self, sobject: str) -> str:
        prefix = KEY_PREFIXES.get(sobject, "a00")
        return f"{prefix}STUB{next(self._ids):08d}AAA"[:18]

    # Failure modes

    def expire_sessions_after(self, *calls: int | None) -> None:
        """Let the n-th session issued serve `calls[n]` API calls, then reply 401.

        Sessions issued beyond the list never expire.
        """
        with self.lock:
            self.session_lifetimes = list(calls)

    def invalidate_sessions(self) -> None:
        """Expire every session issued so far."""
        with self.lock:
            for session_id in self._calls_left:
                self._calls_left[session_id] = 0

    def request_limit_exceeded(self, times: int | None = 1) -> Fault:
        """Reject API calls with 403 REQUEST_LIMIT_EXCEEDED."""
        body = load_fixture("salesforce", "error_request_limit")["response"]["body"]
        return self.fail(Reply.json(403, body), path="/services/data", times=times)

    def service_unavailable(self, times: int | None = 1) -> Fault:
        """Reject API calls with 503 SERVER_UNAVAILABLE."""
        reply = error_reply(503, "SERVER_UNAVAILABLE", "Service temporarily unavailable")
        return self.fail(reply, path="/services/data", times=times)

    @property
    def data_path(self) -> str:
        return f"/services/data/v{self.api_version}/"

    # Routing

    def route(self, request: RecordedRequest) -> Reply:
        if request.path == f"/services/Soap/u/{self.api_version}" and request.method == "POST":
            return self._soap_login(request)
        if request.path == "/services/oauth2/token" and request.method == "POST":
            return self._oauth_token(request)
        if request.path.startswith(self.data_path):
            return self._api_call(request)
        return error_reply(404, "NOT_FOUND", "The requested resource does not exist")

    def _api_call(self, request: RecordedRequest) -> Reply:
        with self.lock:
            self.api_calls += 1
            session_id = request.headers.get("Authorization", "").removeprefix("Bearer ")
            calls_left = self._calls_left.get(session_id, 0)
            if session_id not in self._calls_left or calls_left == 0:
                body = load_fixture("salesforce", "error_invalid_session")["response"]["body"]
                return Reply.json(401, body)
            if calls_left is not None:
                self._calls_left[session_id] = calls_left - 1

        try:
            reply = self._resource(request)
        except SalesforceError as error:
            reply = error_reply(error.status, error.code, error.message)
        reply.headers["Sforce-Limit-Info"] = f"api-usage={self.api_calls}/15000"
        return reply

    def _resource(self, request: RecordedRequest) -> Reply:
        resource = request.path.removeprefix(self.data_path).rstrip("/")
        method = request.method

        if resource == "search" and method == "GET":
            return Reply.json(200, self.search(request.param("q") or ""))
        if resource == "query" and method == "GET":
            return Reply.json(200, self.query(request.param("q") or ""))
        if resource.startswith("query/") and method == "GET":
            return Reply.json(200, self._next_page(resource.removeprefix("query/")))
        if resource == "composite" and method == "POST":
            return Reply.json(200, self._composite(request.json()))
        if resource.startswith("sobjects/"):
            return self._sobject(method, resource.split("/")[1:], request)
        raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")

    # Sign-in

    def issue_session(self) -> str:
        """Create a session id as a sign-in does, for tests that call the API directly."""
        with self.lock:
            index = len(self.issued_sessions)
            session_id = f"00D5e000000EXMP!STUB.session{index + 1}"
            self.issued_sessions.append(session_id)
            lifetime = self.session_lifetimes[index] if index < len(self.session_lifetimes) else None
            self._calls_left[session_id] = lifetime
            return session_id

    def _soap_login(self, request: RecordedRequest) -> Reply:
        with self.lock:
            self.login_attempts += 1
            self.grant_types.append("soap")
        has_username = b"<n1:username>" in request.body or b"<urn:username>" in request.body
        if self.login_broken or not has_username:
            fault = load_fixture("salesforce", "soap_login_fault_invalid_login")["response"]
            return Reply.text(fault["status"], fault["body"], "text/xml; charset=utf-8")

        fixture = load_fixture("salesforce", "soap_login_success")["response"]
        fixture_session = re.search(r"<sessionId>([^<]+)</sessionId>", fixture["body"]).group(1)
        body = fixture["body"].replace(FIXTURE_HOST, f"https://{self.host}")
        body = body.replace(fixture_session, self.issue_session())
        return Reply.text(200, body, "text/xml; charset=utf-8")

    def _oauth_token(self, request: RecordedRequest) -> Reply:
        form = request.form()
        grant_type = form.get("grant_type", "")
        with self.lock:
            self.login_attempts += 1
            self.grant_types.append(grant_type)

        if self.login_broken or not self._grant_is_complete(grant_type, form, request):
            return Reply.json(400, {"error": "invalid_grant", "error_description": "authentication failure"})

        name = "oauth_token_jwt_bearer" if grant_type.endswith("jwt-bearer") else "oauth_token_password_flow"
        body = dict(load_fixture("salesforce", name)["response"]["body"])
        body["access_token"] = self.issue_session()
        body["instance_url"] = f"https://{self.host}"
        return Reply.json(200, body)

    @staticmethod
    def _grant_is_complete(grant_type: str, form: dict[str, str], request: RecordedRequest) -> bool:
        if grant_type == "password":
            return all(form.get(key) for key in ("client_id", "client_secret", "username", "password"))
        if grant_type == "client_credentials":
            return request.headers.get("Authorization", "").startswith("Basic ")
        if grant_type == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return form.get("assertion", "").count(".") == 2
        return False

    # SOSL

    def search(self, sosl: str) -> dict[str, Any]:
        """Run `FIND {term} IN PHONE FIELDS RETURNING ...` on the stored records."""
        term, rest = parse_find_term(sosl)
        tail = SOSL_TAIL.match(rest)
        if tail is None:
            raise SalesforceError(400, "MALFORMED_SEARCH", f"unsupported search: {rest.strip()}")
        if tail.group("scope").upper() != "PHONE":
            raise SalesforceError(400, "MALFORMED_SEARCH", "the stub supports IN PHONE FIELDS only")

        digits = re.sub(r"\D", "", term)
        if len(digits) < 2:
            raise SalesforceError(400, "INVALID_SEARCH", f"search term must be longer than one character: {term}")

        found = []
        for sobject, fields in parse_returning(tail.group("returning")):
            for record in self.records.get(sobject, {}).values():
                if self._phone_contains(sobject, record, digits):
                    found.append(self.render(sobject, record, fields))
        return {"searchRecords": found}

    @staticmethod
    def _phone_contains(sobject: str, record: dict[str, Any], digits: str) -> bool:
        for field in PHONE_FIELDS.get(sobject, ()):
            stored = re.sub(r"\D", "", record.get(field) or "")
            if digits in stored:
                return True
        return False

    # SOQL

    def query(self, soql: str) -> dict[str, Any]:
        """Run a `SELECT ... FROM ... [WHERE a AND b] [ORDER BY] [LIMIT]` query."""
        parsed = SOQL.match(soql)
        if parsed is None or "(" in parsed.group("fields"):
            raise SalesforceError(400, "MALFORMED_QUERY", f"the stub cannot parse: {soql}")

        sobject = parsed.group("sobject")
        fields = [field.strip() for field in parsed.group("fields").split(",")]
        conditions = parse_where(parsed.group("where") or "")
        records = [
            record
            for record in self.records.get(sobject, {}).values()
            if all(self._holds(record, condition) for condition in conditions)
        ]
        records = order_records(records, parsed.group("order"))
        if parsed.group("limit"):
            records = records[: int(parsed.group("limit"))]

        rendered = [self.render(sobject, record, fields) for record in records]
        return self._page(rendered, total=len(rendered))

    def _holds(self, record: dict[str, Any], condition: tuple[str, str, Any]) -> bool:
        field, op, expected = condition
        actual = self.value(record, field)
        if op == "=":
            return actual == expected
        if op == "!=":
            return actual != expected
        if op == "IN":
            return actual in expected
        return actual not in expected

    def _page(self, records: list[dict[str, Any]], total: int) -> dict[str, Any]:
        page, rest = records[: self.query_page_size], records[self.query_page_size :]
        result: dict[str, Any] = {"totalSize": total, "done": not rest, "records": page}
        if rest:
            with self.lock:
                locator = f"01gSTUB{len(self._cursors) + 1:08d}-{self.query_page_size}"
                self._cursors[locator] = rest
            result["nextRecordsUrl"] = f"{self.data_path}query/{locator}"
        return result

    def _next_page(self, locator: str) -> dict[str, Any]:
        with self.lock:
            records = self._cursors.pop(locator, None)
        if records is None:
            raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(records, total=len(records))

    # Composite

    def _composite(self, payload: dict[str, Any]) -> dict[str, Any]:
        responses = []
        for item in payload.get("compositeRequest", []):
            path, _, raw_query = item["url"].partition("?")
            inner = RecordedRequest(item["method"], path, raw_query, {}, json.dumps(item.get("body")).encode())
            try:
                reply = self._resource(inner)
            except SalesforceError as error:
                reply = error_reply(error.status, error.code, error.message)
            responses.append(
                {
                    "body": json.loads(reply.body) if reply.body else None,
                    "httpHeaders": {},
                    "httpStatusCode": reply.status,
                    "referenceId": item["referenceId"],
                }
            )
        return {"compositeResponse": responses}

    # sObjects

    def _sobject(self, method: str, parts: list[str], request: RecordedRequest) -> Reply:
        sobject = parts[0]
        record_id = parts[1] if len(parts) > 1 and parts[1] else None

        if method == "POST" and record_id is None:
            record = self.add(sobject, **(request.json() or {}))
            return Reply.json(201, {"id": record["Id"], "success": True, "errors": []})

        found = self.find(record_id)
        if found is None or found[0] != sobject:
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        if method == "GET":
            return Reply.json(200, self.render(sobject, found[1], list(found[1])))
        if method == "PATCH":
            with self.lock:
                found[1].update(request.json() or {})
            return Reply(204)
        raise SalesforceError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed here")

    # Rendering

    def value(self, record: dict[str, Any], field: str) -> Any:
        """Read `field`, following one relationship (`Account.Name`) through its Id."""
        if "." not in field:
            return record.get(field)
        relationship, subfield = field.split(".", 1)
        related = self.find(record.get(f"{relationship}Id"))
        return related[1].get(subfield) if related else None

    def render(self, sobject: str, record: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        """Shape `record` the way the REST API returns it, with `attributes` first."""
        output: dict[str, Any] = {"attributes": self._attributes(sobject, record["Id"])}
        for field in fields:
            if "." not in field:
                output[field] = record.get(field)
                continue

            relationship, subfield = field.split(".", 1)
            related = self.find(record.get(f"{relationship}Id"))
            if related is None:
                output.setdefault(relationship, None)
                continue
            related_type = "Name" if relationship == "Owner" else related[0]
            nested = output.get(relationship) or {"attributes": self._attributes(related[0], related[1]["Id"])}
            nested["attributes"]["type"] = related_type
            nested[subfield] = related[1].get(subfield)
            output[relationship] = nested
        return output

    def _attributes(self, sobject: str, record_id: str) -> dict[str, str]:
        return {"type": sobject, "url": f"{self.data_path}sobjects/{sobject}/{record_id}"}


def parse_find_term(sosl: str) -> tuple[str, str]:
    """Split `FIND {term} rest` into the unescaped term and the rest.

    Raises:
        SalesforceError: MALFORMED_SEARCH on an unescaped reserved character, a
            backslash before any other character or a missing brace.
    """
    match = re.match(r"^\s*FIND\s*\{", sosl, re.IGNORECASE)
    if match is None:
        raise SalesforceError(400, "MALFORMED_SEARCH", "a search must start with FIND {")

    term = []
    position = match.end()
    while position < len(sosl):
        char = sosl[position]
        if char == "\\":
            escaped = sosl[position + 1 : position + 2]
            if escaped not in SOSL_RESERVED:
                raise SalesforceError(400, "MALFORMED_SEARCH", f"invalid escape sequence \\{escaped}")
            term.append(escaped)
            position += 2
            continue
        if char == "}":
            return "".join(term), sosl[position + 1 :]
        if char in SOSL_RESERVED:
            raise SalesforceError(
                400, "MALFORMED_SEARCH", f"unescaped reserved character {char!r} in the search term"
            )
        term.append(char)
        position += 1
    raise SalesforceError(400, "MALFORMED_SEARCH", "missing closing brace after the search term")


def parse_returning(clause: str) -> list[tuple[str, list[str]]]:
    """Split `Contact(Id, Name), Lead(Id)` into [(object, fields)]."""
    items, depth, current = [], 0, ""
    for char in clause:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)

    parsed = []
    for item in items:
        match = RETURNING_ITEM.match(item)
        if match is None or re.search(r"\b(WHERE|ORDER|LIMIT)\b", match.group("fields") or "", re.I):
            raise SalesforceError(400, "MALFORMED_SEARCH", f"the stub cannot parse {item.strip()!r}")
        fields = [field.strip() for field in (match.group("fields") or "Id").split(",")]
        parsed.append((match.group("sobject"), fields))
    return parsed


def parse_where(clause: str) -> list[tuple[str, str, Any]]:
    """Parse conditions joined by AND into (field, operator, value) tuples."""
    conditions = []
    position = 0
    while position < len(clause):
        match = CONDITION.match(clause, position)
        if match is None:
            raise SalesforceError(400, "MALFORMED_QUERY", f"unexpected token near: {clause[position:]}")
        op = " ".join(match.group("op").upper().split())
        conditions.append((match.group("field"), op, parse_literal(match.group("value"))))
        position = match.end()

        joiner = AND.match(clause, position)
        if joiner:
            position = joiner.end()
        elif clause[position:].strip():
            raise SalesforceError(400, "MALFORMED_QUERY", f"unexpected token near: {clause[position:]}")
        else:
            break
    return conditions


def parse_literal(text: str) -> Any:
    """Turn a SOQL literal into a Python value, and an IN list into a list."""
    lowered = text.lower()
    if text.startswith("("):
        return [parse_literal(f"'{value}'") for value in QUOTED.findall(text)]
    if text.startswith("'"):
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    return float(text) if "." in text else int(text)


def order_records(records: list[dict[str, Any]], order: str | None) -> list[dict[str, Any]]:
    """Sort by an `ORDER BY a [DESC], b` clause, ignoring NULLS FIRST/LAST."""
    if not order:
        return records
    keys = [part.split() for part in order.split(",")]
    for words in reversed(keys):
        field, descending = words[0], len(words) > 1 and words[1].upper() == "DESC"
        records = sorted(records, key=lambda record: str(record.get(field) or ""), reverse=descending)
    return records

"""Salesforce connector: find callers among Contacts, Leads and Accounts.

It talks to the REST API through simple-salesforce. Phone fields in Salesforce are
free text, so the connector searches with SOSL on the caller's national digits and
keeps only the records whose stored numbers normalize to the caller's E.164.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import ipaddress
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote_plus
from xml.parsers.expat import ExpatError

import requests

from app.phone import mask, national_digits, to_e164
from integrations import _writeback as writeback
from integrations._client import require_package
from integrations._http import DeadlineSession
from integrations.base import (
    LOG_CALL,
    LOG_MESSAGE,
    LOOKUP,
    AuthenticationFailed,
    Caller,
    Connector,
    ConnectorContext,
    ConnectorError,
    ExternalReference,
    Match,
    NotConfigured,
    OpenItem,
    RateLimited,
    TimedOut,
    TransientError,
)

try:
    import jwt
    from simple_salesforce import Salesforce
    from simple_salesforce.exceptions import (
        SalesforceAuthenticationFailed,
        SalesforceError,
        SalesforceExpiredSession,
        SalesforceRefusedRequest,
    )
    from simple_salesforce.login import SalesforceLogin, token_login
except ImportError:  # from_context reports the missing package
    Salesforce = None

log = logging.getLogger(__name__)

CLIENT_PACKAGE = "simple-salesforce"
# The oldest release this connector was tested with.
MIN_CLIENT_VERSION = (1, 12, 10)

DEFAULT_API_VERSION = "59.0"
DEFAULT_TIER_FIELD = "Type"
# Seconds a rejected sign-in blocks the next attempt. Salesforce locks a user out
# after a number of failed logins set by the org's password policy, so retrying
# on every call could lock the integration user.
DEFAULT_LOGIN_RETRY_S = 60.0
# Timeout of requests made outside a lookup, such as write-back jobs.
DEFAULT_REQUEST_TIMEOUT_S = 30.0
# Longest Task Description Salesforce stores, in characters.
MAX_DESCRIPTION = 32000
# LastName of the Lead created for an unknown caller when SALESFORCE_UNKNOWN_CALLER is lead.
UNKNOWN_CALLER_NAME = "Unknown caller"
# Maximum number of open cases, and separately of open opportunities, read for the best match.
MAX_OPEN_ITEMS = 20

# Characters SOSL reserves inside FIND {...}. A literal one needs a backslash.
SOSL_RESERVED = frozenset('?&|!{}[]()^~*:\\"\'+-')

# Phone fields compared with the caller's number, per object. Fax numbers are left
# out because a fax line does not place voice calls or send messages.
PHONE_FIELDS = {
    "Contact": ("Phone", "MobilePhone", "HomePhone", "OtherPhone", "AssistantPhone"),
    "Lead": ("Phone", "MobilePhone"),
    "Account": ("Phone",),
}
OWNER_FIELDS = ("OwnerId", "Owner.Name", "Owner.Email", "LastModifiedDate")
RECORD_ORDER = {"Contact": 0, "Lead": 1, "Account": 2}

SALESFORCE_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
API_VERSION = re.compile(r"^\d{2,3}\.0$")

T = TypeVar("T")


def escape_sosl(term: str) -> str:
    """Escape every SOSL reserved character of `term` with a backslash.

    simple-salesforce has no helper for this, and Salesforce rejects a search whose
    term contains an unescaped `+` or `-`.
    """
    return "".join(f"\\{char}" if char in SOSL_RESERVED else char for char in term)


def quote_soql(value: str) -> str:
    """Return `value` as a SOQL string literal."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def login_base_url(domain: str) -> str:
    """Return the sign-in base URL for SALESFORCE_DOMAIN.

    `login` and `test` are Salesforce's production and sandbox login hosts, and a
    name such as `acme.my` gets `.salesforce.com` appended, as simple-salesforce
    does. A full host (`acme.my.salesforce.com`, an IP address or `host:port`) is
    used as it is.

    Raises:
        NotConfigured: the value uses plain http, which simple-salesforce
            cannot use because it builds `https://` URLs only.
    """
    value = domain.strip().rstrip("/")
    if value.startswith("http://"):
        raise NotConfigured(f"SALESFORCE_DOMAIN {value!r} must use https")
    value = value.removeprefix("https://")

    host = value.rsplit(":", 1)[0] if ":" in value else value
    if ":" in value or value.endswith(".com") or _is_ip_address(host):
        return f"https://{value}"
    return f"https://{value}.salesforce.com"


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def require_client() -> None:
    """Check that simple-salesforce is installed and recent enough.

    Raises:
        ConnectorUnavailable: the package is missing or older than MIN_CLIENT_VERSION.
    """
    require_package("salesforce", CLIENT_PACKAGE, MIN_CLIENT_VERSION, Salesforce is not None)


@dataclasses.dataclass(frozen=True)
class SalesforceSettings:
    """The connector's settings, read from SALESFORCE_* configuration keys."""

    login_url: str
    api_version: str = DEFAULT_API_VERSION
    region: str = "US"
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    security_token: str | None = dataclasses.field(default=None, repr=False)
    consumer_key: str | None = None
    consumer_secret: str | None = dataclasses.field(default=None, repr=False)
    private_key_file: str | None = None
    instance_url: str | None = None
    session_id: str | None = dataclasses.field(default=None, repr=False)
    tier_field: str = DEFAULT_TIER_FIELD
    login_retry_s: float = DEFAULT_LOGIN_RETRY_S
    unknown_caller: str = "task"
    message_tasks: str = "conversation"
    log_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "SalesforceSettings":
        """Read and check the settings.

        Raises:
            NotConfigured: a required setting is missing or a value is invalid.
        """

        def read(key: str) -> str | None:
            value = config.get(key)
            if value is None:
                return None
            return str(value).strip() or None

        settings = cls(
            login_url=login_base_url(read("SALESFORCE_DOMAIN") or "login"),
            api_version=read("SALESFORCE_API_VERSION") or DEFAULT_API_VERSION,
            region=read("DEFAULT_REGION") or "US",
            username=read("SALESFORCE_USERNAME"),
            password=read("SALESFORCE_PASSWORD"),
            security_token=read("SALESFORCE_SECURITY_TOKEN"),
            consumer_key=read("SALESFORCE_CONSUMER_KEY"),
            consumer_secret=read("SALESFORCE_CONSUMER_SECRET"),
            private_key_file=read("SALESFORCE_PRIVATE_KEY_FILE"),
            instance_url=read("SALESFORCE_INSTANCE_URL"),
            session_id=read("SALESFORCE_SESSION_ID"),
            tier_field=read("SALESFORCE_TIER_FIELD") or DEFAULT_TIER_FIELD,
            login_retry_s=float(read("SALESFORCE_LOGIN_RETRY_S") or DEFAULT_LOGIN_RETRY_S),
            unknown_caller=(read("SALESFORCE_UNKNOWN_CALLER") or "task").lower(),
            message_tasks=(read("SALESFORCE_MESSAGE_TASKS") or "conversation").lower(),
            log_timeout_s=float(read("SALESFORCE_LOG_TIMEOUT_S") or DEFAULT_REQUEST_TIMEOUT_S),
        )
        settings.check()
        return settings

    @property
    def flow(self) -> str | None:
        """The sign-in flow the credentials allow, or None with a session id only."""
        if self.username and self.consumer_key and self.private_key_file:
            return "jwt-bearer"
        if self.username and self.password and self.consumer_key and self.consumer_secret:
            return "oauth-password"
        if self.username and self.password:
            return "soap"
        if self.consumer_key and self.consumer_secret and not self.username:
            return "client-credentials"
        return None

    def check(self) -> None:
        """Raise NotConfigured naming what is missing or invalid."""
        missing = []
        if self.username and not (self.password or self.private_key_file):
            missing.append("SALESFORCE_PASSWORD (or SALESFORCE_PRIVATE_KEY_FILE)")
        if self.private_key_file and not (self.username and self.consumer_key):
            missing.append("SALESFORCE_USERNAME and SALESFORCE_CONSUMER_KEY for the JWT bearer flow")
        if bool(self.instance_url) != bool(self.session_id):
            missing.append("SALESFORCE_INSTANCE_URL and SALESFORCE_SESSION_ID together")
        if self.consumer_key and not (self.consumer_secret or self.private_key_file):
            missing.append("SALESFORCE_CONSUMER_SECRET (or SALESFORCE_PRIVATE_KEY_FILE)")
        if missing:
            raise NotConfigured("Salesforce settings missing: " + "; ".join(missing))

        if self.flow is None and not self.session_id:
            raise NotConfigured(
                "Salesforce settings missing: set SALESFORCE_USERNAME and SALESFORCE_PASSWORD, "
                "or SALESFORCE_CONSUMER_KEY with SALESFORCE_CONSUMER_SECRET or "
                "SALESFORCE_PRIVATE_KEY_FILE, or SALESFORCE_INSTANCE_URL and SALESFORCE_SESSION_ID"
            )
        if self.flow == "client-credentials" and self.login_url in _SHARED_LOGIN_HOSTS:
            raise NotConfigured("the client credentials flow needs SALESFORCE_DOMAIN set to the My Domain host")
        if self.private_key_file and not Path(self.private_key_file).is_file():
            raise NotConfigured(f"SALESFORCE_PRIVATE_KEY_FILE {self.private_key_file!r} is not a readable file")
        if not API_VERSION.match(self.api_version):
            raise NotConfigured(f"SALESFORCE_API_VERSION {self.api_version!r} is invalid: expected a value such as '59.0'")
        if not FIELD_NAME.match(self.tier_field):
            raise NotConfigured(f"SALESFORCE_TIER_FIELD {self.tier_field!r} is not a field API name")
        if self.unknown_caller not in ("task", "lead"):
            raise NotConfigured(f"SALESFORCE_UNKNOWN_CALLER {self.unknown_caller!r} is invalid: expected task or lead")
        if self.message_tasks not in ("conversation", "per_message"):
            raise NotConfigured(
                f"SALESFORCE_MESSAGE_TASKS {self.message_tasks!r} is invalid: expected conversation or per_message"
            )
        if self.log_timeout_s <= 0:
            raise NotConfigured(f"SALESFORCE_LOG_TIMEOUT_S must be a positive number of seconds, got {self.log_timeout_s}")


_SHARED_LOGIN_HOSTS = ("https://login.salesforce.com", "https://test.salesforce.com")


class SignIn:
    """The Salesforce session shared by every connector of one user in this process.

    Salesforce caps logins at 3,600 per hour per user, so the session is created on
    first use and kept until Salesforce rejects it. The lock makes concurrent
    lookups wait for one sign-in instead of each starting its own.
    """

    def __init__(self, settings: SalesforceSettings):
        self.settings = settings
        self.http = DeadlineSession()
        self.lock = threading.Lock()
        self.client: Any = None
        self.instance: str | None = None
        self.failed_at: float | None = None
        if settings.session_id and settings.instance_url:
            self.client = Salesforce(
                instance_url=settings.instance_url,
                session_id=settings.session_id,
                session=self.http,
                version=settings.api_version,
            )
            self.instance = self.client.sf_instance

    def current(self) -> Any:
        """Return a signed-in simple-salesforce client, signing in when there is none."""
        with self._locked():
            if self.client is None:
                self.client = self._sign_in()
            return self.client

    def discard(self, stale: Any) -> None:
        """Forget `stale` so the next `current()` signs in, unless another thread already did."""
        with self._locked():
            if self.client is stale:
                self.client = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        left = self.http.time_left()
        acquired = self.lock.acquire(timeout=max(left, 0) if left is not None else -1)
        if not acquired:
            raise TimedOut("timed out waiting for another thread to sign in to Salesforce")
        try:
            yield
        finally:
            self.lock.release()

    def _sign_in(self) -> Any:
        settings = self.settings
        if settings.flow is None:
            raise AuthenticationFailed(
                "Salesforce rejected SALESFORCE_SESSION_ID and no credentials are set to sign in again"
            )
        if self.failed_at is not None:
            waited = time.monotonic() - self.failed_at
            if waited < settings.login_retry_s:
                raise AuthenticationFailed(
                    f"Salesforce sign-in failed {waited:.0f} s ago, so the next attempt waits until "
                    f"{settings.login_retry_s:.0f} s have passed (SALESFORCE_LOGIN_RETRY_S)"
                )

        try:
            session_id, instance = self._request_session()
        except SalesforceAuthenticationFailed as error:
            if _is_transient_login_error(error):
                raise TransientError(f"Salesforce sign-in failed with HTTP {error.code}") from error
            self.failed_at = time.monotonic()
            log.error("Salesforce sign-in with the %s flow was rejected: %s", settings.flow, error.code)
            raise AuthenticationFailed(f"Salesforce rejected the sign-in: {error.code}") from error

        self.failed_at = None
        self.instance = instance
        log.info("Salesforce: signed in to %s with the %s flow", instance, settings.flow)
        return Salesforce(instance=instance, session_id=session_id, session=self.http, version=settings.api_version)

    def _request_session(self) -> tuple[str, str]:
        """Sign in with the configured flow and return (session id, instance host)."""
        settings = self.settings
        token_url = f"{settings.login_url}/services/oauth2/token"
        host = settings.login_url.removeprefix("https://")

        if settings.flow == "soap":
            # scratch_url replaces the https://{domain}.salesforce.com base of the
            # SOAP URL, which is how a full My Domain host or host:port is reached.
            return SalesforceLogin(
                username=settings.username,
                password=settings.password,
                security_token=settings.security_token or "",
                sf_version=settings.api_version,
                session=self.http,
                scratch_url=settings.login_url,
            )

        if settings.flow == "oauth-password":
            data = {
                "grant_type": "password",
                "client_id": settings.consumer_key,
                "client_secret": settings.consumer_secret,
                "username": settings.username,
                "password": (settings.password or "") + (settings.security_token or ""),
            }
            return token_login(token_url, data, host, settings.consumer_key, None, None, self.http)

        if settings.flow == "jwt-bearer":
            claims = {
                "iss": settings.consumer_key,
                "sub": settings.username,
                "aud": settings.login_url,
                "exp": int(time.time()) + 180,
            }
            assertion = jwt.encode(claims, Path(settings.private_key_file).read_bytes(), algorithm="RS256")
            data = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
            return token_login(token_url, data, host, settings.consumer_key, None, None, self.http)

        credentials = f"{settings.consumer_key}:{settings.consumer_secret}".encode()
        headers = {"Authorization": "Basic " + base64.b64encode(credentials).decode()}
        data = {"grant_type": "client_credentials"}
        return token_login(token_url, data, host, settings.consumer_key, headers, None, self.http)

    def close(self) -> None:
        self.http.close()


def _is_transient_login_error(error: Any) -> bool:
    # simple-salesforce puts the HTTP status in `code` when the reply was not a
    # Salesforce login fault: a 5xx page, or a 200 whose body could not be read.
    return isinstance(error.code, int) and (error.code >= 500 or error.code < 400)


_SIGN_INS: dict[tuple, SignIn] = {}
_SIGN_INS_LOCK = threading.Lock()


def shared_sign_in(settings: SalesforceSettings) -> SignIn:
    """Return the process-wide SignIn for these credentials, creating it once."""
    key = (
        settings.login_url,
        settings.username,
        settings.consumer_key,
        settings.instance_url,
        settings.api_version,
    )
    with _SIGN_INS_LOCK:
        if key not in _SIGN_INS:
            _SIGN_INS[key] = SignIn(settings)
        return _SIGN_INS[key]


def release_sign_in(sign_in: SignIn) -> None:
    """Drop `sign_in` from the process-wide table and close its connections."""
    with _SIGN_INS_LOCK:
        for key, value in list(_SIGN_INS.items()):
            if value is sign_in:
                del _SIGN_INS[key]
    sign_in.close()


def translate_error(error: Exception) -> ConnectorError:
    """Map a simple-salesforce or requests exception to a connector error.

    Messages leave out URLs, because a search URL contains the caller's digits.
    """
    if isinstance(error, ConnectorError):
        return error
    if isinstance(error, SalesforceRefusedRequest) and _error_code(error) == "REQUEST_LIMIT_EXCEEDED":
        return RateLimited("Salesforce refused the request: the org's API request limit is exceeded")
    if isinstance(error, SalesforceAuthenticationFailed):
        return AuthenticationFailed(f"Salesforce rejected the sign-in: {error.code}")
    if isinstance(error, SalesforceError) and error.status >= 500:
        return TransientError(f"Salesforce returned HTTP {error.status} for {error.resource_name or 'a request'}")
    if isinstance(error, SalesforceError):
        code = _error_code(error) or f"HTTP {error.status}"
        return ConnectorError(f"Salesforce rejected the {error.resource_name or 'API'} request: {code}")
    if isinstance(error, requests.Timeout):
        return TimedOut("Salesforce did not reply within the timeout")
    if isinstance(error, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        return TransientError(f"could not reach Salesforce: {type(error).__name__}")
    if isinstance(error, (ValueError, ExpatError)):
        return TransientError("Salesforce returned a malformed reply")
    if isinstance(error, requests.RequestException):
        return ConnectorError(f"the request to Salesforce failed: {type(error).__name__}")
    return ConnectorError(f"unexpected {type(error).__name__} while reading Salesforce's reply")


def _error_code(error: Any) -> str | None:
    content = getattr(error, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        return content[0].get("errorCode")
    return None


def parse_datetime(value: str | None) -> datetime | None:
    """Parse Salesforce's `2026-01-14T22:41:07.000+0000` timestamps."""
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        return None


class SalesforceConnector(Connector):
    """Look callers up in Salesforce Contacts, Leads and Accounts.

    Write-back code shares this class's plumbing: `_call()` runs an operation with
    the shared session and signs in again once when Salesforce reports it expired.
    """

    name = "salesforce"
    display_name = "Salesforce"
    capabilities = frozenset({LOOKUP, LOG_CALL, LOG_MESSAGE})

    def __init__(self, settings: SalesforceSettings):
        require_client()
        self.settings = settings
        self._sign_in = shared_sign_in(settings)

    @classmethod
    def from_context(cls, context: ConnectorContext) -> "SalesforceConnector":
        require_client()
        return cls(SalesforceSettings.from_config(context.config))

    def close(self) -> None:
        release_sign_in(self._sign_in)

    # Plumbing

    @contextlib.contextmanager
    def _deadline(self, timeout: float) -> Iterator[None]:
        """Bound the block's requests by `timeout` and raise only ConnectorError."""
        with self._sign_in.http.deadline(timeout):
            try:
                yield
            except ConnectorError:
                raise
            except Exception as error:
                raise translate_error(error) from error

    def _call(self, operation: Callable[[Any], T], attempt: dict[str, bool] | None = None) -> T:
        """Run `operation(client)`, signing in again once if the session expired.

        Calls that pass the same `attempt` dict sign in again at most once in all,
        so a lookup or job that shares one dict never signs in again twice.
        """
        attempt = attempt if attempt is not None else {}
        client = self._sign_in.current()
        try:
            return operation(client)
        except SalesforceExpiredSession as error:
            if attempt.get("signed_in_again"):
                raise AuthenticationFailed("Salesforce rejected a session created moments ago") from error
            log.warning("Salesforce session expired, signing in again")
            attempt["signed_in_again"] = True
            self._sign_in.discard(client)

        client = self._sign_in.current()
        try:
            return operation(client)
        except SalesforceExpiredSession as error:
            raise AuthenticationFailed("Salesforce rejected a session created moments ago") from error

    def record_url(self, sobject: str, record_id: str) -> str:
        """Return the Lightning Experience link to a record."""
        return f"https://{self._sign_in.instance}/lightning/r/{sobject}/{record_id}/view"

    # Lookup

    def lookup(self, caller: Caller, timeout: float) -> list[Match]:
        if not caller.is_lookupable:
            return []

        started = time.monotonic()
        attempt: dict[str, bool] = {}
        with self._deadline(timeout):
            search = self.search_query(national_digits(caller.e164))
            found = self._call(lambda client: client.search(search), attempt)
            matches = self._matches(_search_records(found), caller.e164)
            if matches:
                self._add_open_items(matches[0], attempt)

        log.info(
            "Caller %s: %d Salesforce match(es) in %.0f ms",
            mask(caller.e164),
            len(matches),
            (time.monotonic() - started) * 1000,
        )
        return matches

    def search_query(self, digits: str) -> str:
        """Build the SOSL search for records whose phone fields hold `digits`."""
        tier = self.settings.tier_field
        contact = ["Id", "Name", *PHONE_FIELDS["Contact"], "Email", "AccountId", "Account.Name"]
        contact += [f"Account.{tier}", *OWNER_FIELDS]
        lead = ["Id", "Name", *PHONE_FIELDS["Lead"], "Company", "Email", "Status", *OWNER_FIELDS]
        account = ["Id", "Name", *PHONE_FIELDS["Account"], "Type", tier, *OWNER_FIELDS]

        returning = ", ".join(
            f"{sobject}({', '.join(dict.fromkeys(fields))})"
            for sobject, fields in (("Contact", contact), ("Lead", lead), ("Account", account))
        )
        return f"FIND {{{escape_sosl(digits)}}} IN PHONE FIELDS RETURNING {returning}"

    def _matches(self, records: list[dict[str, Any]], e164: str) -> list[Match]:
        """Keep the records with a phone value equal to `e164`, best match first.

        SOSL matches digits loosely (a stored `+52 415 555 0100` contains the digits
        searched for +1 415 555 0100), so every hit is checked again here.
        """
        matches = []
        for record in records:
            sobject = (record.get("attributes") or {}).get("type")
            if sobject not in PHONE_FIELDS:
                continue
            phones = self._phones(record, sobject)
            if e164 in phones:
                matches.append(self._to_match(sobject, record, phones))

        oldest = datetime.min.replace(tzinfo=timezone.utc)
        matches.sort(key=lambda match: match.modified_at or oldest, reverse=True)
        matches.sort(key=lambda match: RECORD_ORDER[match.record_type])
        return matches

    def _phones(self, record: dict[str, Any], sobject: str) -> list[str]:
        numbers = (to_e164(record.get(field), self.settings.region) for field in PHONE_FIELDS[sobject])
        return list(dict.fromkeys(number for number in numbers if number))

    def _to_match(self, sobject: str, record: dict[str, Any], phones: list[str]) -> Match:
        owner = record.get("Owner") or {}
        account = record.get("Account") or {}
        tier_field = self.settings.tier_field
        match = Match(
            system=self.name,
            record_type=sobject,
            external_id=record["Id"],
            display_name=record.get("Name") or record["Id"],
            owner=owner.get("Name"),
            owner_email=owner.get("Email"),
            emails=[record["Email"]] if record.get("Email") else [],
            phones=phones,
            url=self.record_url(sobject, record["Id"]),
            modified_at=parse_datetime(record.get("LastModifiedDate")),
            extra={"owner_id": record.get("OwnerId")},
        )

        if sobject == "Contact":
            match.company = account.get("Name")
            match.tier = account.get(tier_field)
            match.extra["account_id"] = record.get("AccountId")
        elif sobject == "Lead":
            match.company = record.get("Company")
            match.extra["lead_status"] = record.get("Status")
        else:
            match.company = record.get("Name")
            match.tier = record.get(tier_field)
            match.extra["account_type"] = record.get("Type")
        return match

    # Open cases and opportunities

    def _open_item_queries(self, match: Match) -> dict[str, str]:
        """Return the SOQL queries for the open cases and opportunities of `match`."""
        cases = (
            "SELECT Id, CaseNumber, Subject, Status, Priority, LastModifiedDate FROM Case "
            "WHERE {field} = {id} AND IsClosed = false ORDER BY LastModifiedDate DESC LIMIT {limit}"
        )
        opportunities = (
            "SELECT Id, Name, StageName, Amount, CloseDate, LastModifiedDate FROM Opportunity "
            "WHERE AccountId = {id} AND IsClosed = false ORDER BY LastModifiedDate DESC LIMIT {limit}"
        )
        account_id = match.external_id if match.record_type == "Account" else match.extra.get("account_id")

        queries = {}
        if match.record_type == "Contact":
            queries["cases"] = cases.format(field="ContactId", id=quote_soql(match.external_id), limit=MAX_OPEN_ITEMS)
        if match.record_type == "Account":
            queries["cases"] = cases.format(field="AccountId", id=quote_soql(account_id), limit=MAX_OPEN_ITEMS)
        if account_id and SALESFORCE_ID.match(account_id):
            queries["opportunities"] = opportunities.format(id=quote_soql(account_id), limit=MAX_OPEN_ITEMS)
        return queries

    def _add_open_items(self, match: Match, attempt: dict[str, bool]) -> None:
        """Read the open cases and opportunities of `match` in one composite request.

        A failure here leaves the match without open items rather than losing it,
        except when Salesforce reports its request limit, which the caller must see.
        """
        queries = self._open_item_queries(match)
        if not queries:
            return

        try:
            results = self._composite_queries(queries, attempt)
        except Exception as error:
            translated = translate_error(error)
            if isinstance(translated, RateLimited):
                raise translated from error
            log.warning(
                "Salesforce %s %s: open cases and opportunities not read: %s",
                match.record_type,
                match.external_id,
                translated,
            )
            match.extra["open_items_error"] = str(translated)
            return

        for record in results.get("cases", []):
            match.open_items.append(self._case_item(record))
        for record in results.get("opportunities", []):
            match.open_items.append(self._opportunity_item(record))

    def _composite_queries(self, queries: dict[str, str], attempt: dict[str, bool]) -> dict[str, list[dict]]:
        """Run several SOQL queries in one composite request and follow their pages."""
        prefix = f"/services/data/v{self.settings.api_version}/query/?q="
        body = {
            "allOrNone": False,
            "compositeRequest": [
                {"method": "GET", "url": prefix + quote_plus(soql), "referenceId": name}
                for name, soql in queries.items()
            ],
        }
        reply = self._call(lambda client: client.restful("composite", method="POST", data=json.dumps(body)), attempt)

        results: dict[str, list[dict]] = {}
        for item in reply.get("compositeResponse", []):
            name = item.get("referenceId")
            if item.get("httpStatusCode") != 200:
                log.warning("Salesforce composite query %s failed: %s", name, _composite_error(item))
                continue
            results[name] = self._all_pages(item["body"], attempt)
        return results

    def _all_pages(self, page: dict[str, Any], attempt: dict[str, bool]) -> list[dict]:
        records = list(page.get("records", []))
        while not page.get("done", True) and page.get("nextRecordsUrl") and len(records) < MAX_OPEN_ITEMS:
            next_url = page["nextRecordsUrl"]
            page = self._call(lambda client: client.query_more(next_url, identifier_is_url=True), attempt)
            records.extend(page.get("records", []))
        return records[:MAX_OPEN_ITEMS]

    def _case_item(self, record: dict[str, Any]) -> OpenItem:
        return OpenItem(
            kind="case",
            id=record["Id"],
            subject=record.get("Subject") or "",
            status=record.get("Status"),
            priority=record.get("Priority"),
            number=record.get("CaseNumber"),
            updated_at=parse_datetime(record.get("LastModifiedDate")),
            url=self.record_url("Case", record["Id"]),
        )

    def _opportunity_item(self, record: dict[str, Any]) -> OpenItem:
        return OpenItem(
            kind="opportunity",
            id=record["Id"],
            subject=record.get("Name") or "",
            stage=record.get("StageName"),
            amount=record.get("Amount"),
            updated_at=parse_datetime(record.get("LastModifiedDate")),
            url=self.record_url("Opportunity", record["Id"]),
        )

    # Write-back

    def log(self, interaction: Mapping[str, Any], match: Match | None) -> ExternalReference:
        """Create or update the Task of a call, or of a conversation's messages.

        The Task is found again by its CallObject (the CallSid, or a conversation
        key), so a retried job or a second call after a timeout updates the Task
        the first attempt created instead of adding one.
        """
        attempt: dict[str, bool] = {}
        with self._deadline(self.settings.log_timeout_s):
            if interaction.get("channel", "voice") == "voice":
                return self._log_call(interaction, match, attempt)
            return self._log_message(interaction, match, attempt)

    def _log_call(self, interaction: Mapping[str, Any], match: Match | None, attempt: dict[str, bool]) -> ExternalReference:
        key = writeback.call_sid(interaction)
        if not key:
            raise ConnectorError(f"interaction {interaction.get('id')} has no CallSid to log")

        existing = self._find_task(key, attempt)
        fields = self._call_task_fields(interaction)
        if existing is None or not existing.get("WhoId"):
            fields.update(self._related_ids(interaction, match, attempt))
        return self._save_task(interaction, key, existing, fields, attempt)

    def _log_message(self, interaction: Mapping[str, Any], match: Match | None, attempt: dict[str, bool]) -> ExternalReference:
        per_message = self.settings.message_tasks == "per_message" or not interaction.get("conversation_id")
        key = writeback.call_sid(interaction) if per_message else f"callcard-conversation-{interaction['conversation_id']}"

        existing = self._find_task(key, attempt, with_description=True)
        fields = self._message_task_fields(interaction, per_message)
        fields["Description"] = self._append_message(existing, interaction)
        if existing is not None and fields["Description"] is None:
            return self._task_reference(existing["Id"])
        if existing is None or not existing.get("WhoId"):
            fields.update(self._related_ids(interaction, match, attempt))
        return self._save_task(interaction, key, existing, fields, attempt)

    def _find_task(self, key: str, attempt: dict[str, bool], with_description: bool = False) -> dict[str, Any] | None:
        columns = "Id, WhoId, Description" if with_description else "Id, WhoId"
        soql = f"SELECT {columns} FROM Task WHERE CallObject = {quote_soql(key)} LIMIT 1"
        records = self._call(lambda client: client.query(soql), attempt).get("records") or []
        return records[0] if records else None

    def _save_task(
        self,
        interaction: Mapping[str, Any],
        key: str,
        existing: dict[str, Any] | None,
        fields: dict[str, Any],
        attempt: dict[str, bool],
    ) -> ExternalReference:
        fields = {name: value for name, value in fields.items() if value is not None}
        if existing is not None:
            # TaskSubtype can be set only when the Task is created.
            fields.pop("TaskSubtype", None)
            self._call(lambda client: client.Task.update(existing["Id"], fields), attempt)
            log.info("Interaction %s: Salesforce Task %s updated", interaction.get("id"), existing["Id"])
            return self._task_reference(existing["Id"])

        fields["CallObject"] = key
        created = self._call(lambda client: client.Task.create(fields), attempt)
        log.info("Interaction %s: Salesforce Task %s created", interaction.get("id"), created["id"])
        return self._task_reference(created["id"])

    def _task_reference(self, task_id: str) -> ExternalReference:
        return ExternalReference(external_id=task_id, url=self.record_url("Task", task_id), record_type="Task")

    def _call_task_fields(self, interaction: Mapping[str, Any]) -> dict[str, Any]:
        description = writeback.call_details(interaction)
        description.append(f"Logged by Callcard, interaction {interaction.get('id')}.")
        return {
            "Subject": writeback.call_subject(interaction)[:255],
            "TaskSubtype": "Call",
            "Type": "Call",
            "Status": "Completed",
            "Priority": "Normal",
            "CallType": "Inbound" if writeback.is_inbound(interaction) else "Outbound",
            "CallDurationInSeconds": writeback.duration_seconds(interaction),
            "CallDisposition": (interaction.get("disposition") or None) and str(interaction["disposition"])[:255],
            "ActivityDate": writeback.activity_date(interaction).isoformat(),
            "Description": "\n".join(description)[:MAX_DESCRIPTION],
            "OwnerId": writeback.agent_crm_id(interaction, self.name),
        }

    def _message_task_fields(self, interaction: Mapping[str, Any], per_message: bool) -> dict[str, Any]:
        channel = writeback.channel_name(interaction)
        party = writeback.party_label(interaction)
        if per_message:
            subject = f"{channel} from {party}" if writeback.is_inbound(interaction) else f"{channel} to {party}"
        else:
            subject = f"{channel} conversation with {party}"
        return {
            "Subject": subject[:255],
            "TaskSubtype": "Task",
            "Status": "Completed",
            "Priority": "Normal",
            "ActivityDate": writeback.activity_date(interaction).isoformat(),
            "OwnerId": writeback.agent_crm_id(interaction, self.name),
        }

    def _append_message(self, existing: dict[str, Any] | None, interaction: Mapping[str, Any]) -> str | None:
        """Return the Description with this message appended, or None when it is already there."""
        marker = writeback.reference_line("message", interaction.get("id"))
        current = (existing or {}).get("Description") or ""
        if marker in current:
            return None

        when = writeback.started_at(interaction).strftime("%Y-%m-%d %H:%M UTC")
        text = writeback.message_text(interaction).replace("\n", " ")
        line = f"{when} {writeback.message_author(interaction)}: {text} {marker}"
        description = f"{current}\n{line}" if current else line
        # NOTE: Salesforce caps Description at 32,000 characters, so a very long
        # conversation keeps its newest lines and loses the oldest.
        return description[-MAX_DESCRIPTION:]

    def _related_ids(self, interaction: Mapping[str, Any], match: Match | None, attempt: dict[str, bool]) -> dict[str, Any]:
        """Return WhoId and WhatId: the matched record, a new Lead, or nothing for a withheld caller."""
        chosen = interaction.get("chosen_match") or {}
        # An open item picked under another system's record is not a Salesforce id.
        picked = chosen.get("open_item_id") if chosen.get("system") == self.name else None
        if match is not None and match.record_type in ("Contact", "Lead"):
            what = None
            if match.record_type == "Contact":
                what = picked or match.extra.get("account_id")
            # Salesforce rejects a WhatId on a Task whose WhoId is a Lead.
            return {"WhoId": match.external_id, "WhatId": what}
        if match is not None and match.record_type == "Account":
            return {"WhatId": picked or match.external_id}

        e164 = writeback.customer_phone(interaction)
        if e164 and self.settings.unknown_caller == "lead":
            return {"WhoId": self._unknown_caller_lead(interaction, e164, attempt)}
        return {}

    def _unknown_caller_lead(self, interaction: Mapping[str, Any], e164: str, attempt: dict[str, bool]) -> str:
        """Return the Lead of an unknown caller, found again by its number or created."""
        soql = (
            f"SELECT Id FROM Lead WHERE Phone = {quote_soql(e164)} "
            f"AND LastName = {quote_soql(UNKNOWN_CALLER_NAME)} LIMIT 1"
        )
        records = self._call(lambda client: client.query(soql), attempt).get("records") or []
        if records:
            return records[0]["Id"]

        fields = {"LastName": UNKNOWN_CALLER_NAME, "Company": "Unknown", "Phone": e164}
        created = self._call(lambda client: client.Lead.create(fields), attempt)
        log.info("Interaction %s: Salesforce Lead %s created for an unknown caller", interaction.get("id"), created["id"])
        return created["id"]


def _search_records(result: Any) -> list[dict[str, Any]]:
    # API v36.0 and later wrap the records in searchRecords, older versions return
    # a bare list, and simple-salesforce returns None for an empty reply.
    if isinstance(result, Mapping):
        return list(result.get("searchRecords") or [])
    return list(result or [])


def _composite_error(item: Mapping[str, Any]) -> str:
    body = item.get("body")
    if isinstance(body, list) and body and isinstance(body[0], Mapping):
        return f"HTTP {item.get('httpStatusCode')} {body[0].get('errorCode')}"
    return f"HTTP {item.get('httpStatusCode')}"

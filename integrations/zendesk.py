"""Zendesk connector: find callers among Zendesk Support end users.

It talks to the Support API through zenpy, searches users by the caller's digits
and keeps only those whose stored number normalizes to the caller's E.164.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import logging
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from app.phone import mask, national_digits, to_e164
from integrations import _writeback as writeback
from integrations._client import require_package
from integrations._http import DeadlineSession
from integrations.base import (
    LOG_CALL,
    LOG_MESSAGE,
    LOOKUP,
    SCREEN_POP,
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
    from zenpy import Zenpy
    from zenpy.lib.exception import APIException, RatelimitBudgetExceeded, RecordNotFoundException, ZenpyException
except ImportError:  # from_context reports the missing package
    Zenpy = None

log = logging.getLogger(__name__)

CLIENT_PACKAGE = "zenpy"
# The oldest release this connector was tested with.
MIN_CLIENT_VERSION = (2, 0, 57)

# Timeout of requests made outside a lookup, such as write-back jobs.
DEFAULT_REQUEST_TIMEOUT_S = 30.0
# Timeout of a screen pop, which an agent waits for in the console.
SCREEN_POP_TIMEOUT_S = 5.0
# Ticket `via_id` values of the Talk Partner Edition voice ticket endpoint.
VIA_VOICEMAIL = 44
VIA_INBOUND_CALL = 45
VIA_OUTBOUND_CALL = 46
# Tag set on a ticket once its Talk Partner Edition call record exists.
CALL_RECORD_TAG = "callcard_call_record"
# Maximum number of comments read when checking a ticket for a reference line.
MAX_COMMENTS_SCANNED = 1000
UNSOLVED_STATUSES = frozenset({"new", "open", "pending", "hold"})
# Search hits checked per lookup. A number shared by more people than this is not
# a useful identity anyway.
MAX_USERS = 20
# Requested tickets read per user (two pages of 100) and unsolved ones kept.
MAX_TICKETS_SCANNED = 200
MAX_OPEN_ITEMS = 20


def require_client() -> None:
    """Check that zenpy is installed and recent enough.

    Raises:
        ConnectorUnavailable: the package is missing or older than MIN_CLIENT_VERSION.
    """
    require_package("zendesk", CLIENT_PACKAGE, MIN_CLIENT_VERSION, Zenpy is not None)


def parse_retry_after(value: str | None) -> float | None:
    """Read a Retry-After header given in seconds or as an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((moment - datetime.now(timezone.utc)).total_seconds(), 0.0)


def parse_datetime(value: str | None) -> datetime | None:
    """Parse Zendesk's `2026-01-15T17:01:03Z` timestamps."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True)
class ZendeskSettings:
    """The connector's settings, read from ZENDESK_* configuration keys."""

    base_url: str
    email: str | None = None
    api_token: str | None = dataclasses.field(default=None, repr=False)
    oauth_token: str | None = dataclasses.field(default=None, repr=False)
    region: str = "US"
    talk_partner_edition: bool = True
    app_id: int | None = None
    log_to_open_ticket: bool = False
    log_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "ZendeskSettings":
        """Read and check the settings.

        Raises:
            NotConfigured: a required setting is missing or a value is invalid.
        """

        def read(key: str) -> str | None:
            value = config.get(key)
            if value is None:
                return None
            return str(value).strip() or None

        url = read("ZENDESK_URL")
        if url is None:
            raise NotConfigured("Zendesk settings missing: ZENDESK_URL (such as https://acme.zendesk.com)")
        parts = urlsplit(url)
        if parts.scheme != "https" or "." not in parts.netloc:
            raise NotConfigured(
                f"ZENDESK_URL {url!r} is invalid: expected https://<subdomain>.zendesk.com, "
                "because zenpy builds https URLs only"
            )

        settings = cls(
            base_url=f"https://{parts.netloc}",
            email=read("ZENDESK_EMAIL"),
            api_token=read("ZENDESK_API_TOKEN"),
            oauth_token=read("ZENDESK_OAUTH_TOKEN"),
            region=read("DEFAULT_REGION") or "US",
            talk_partner_edition=_flag(read("ZENDESK_TALK_PARTNER_EDITION"), default=True),
            app_id=_whole_number("ZENDESK_APP_ID", read("ZENDESK_APP_ID")),
            log_to_open_ticket=_flag(read("ZENDESK_LOG_TO_OPEN_TICKET"), default=False),
            log_timeout_s=float(read("ZENDESK_LOG_TIMEOUT_S") or DEFAULT_REQUEST_TIMEOUT_S),
        )
        if settings.api_token and not settings.email:
            raise NotConfigured("Zendesk settings missing: ZENDESK_EMAIL, which goes with ZENDESK_API_TOKEN")
        if not settings.api_token and not settings.oauth_token:
            raise NotConfigured("Zendesk settings missing: ZENDESK_EMAIL and ZENDESK_API_TOKEN, or ZENDESK_OAUTH_TOKEN")
        return settings

    @property
    def subdomain_and_domain(self) -> tuple[str, str]:
        """Split the host for zenpy, which joins them back as `{subdomain}.{domain}`."""
        host = self.base_url.removeprefix("https://")
        subdomain, _, domain = host.partition(".")
        return subdomain, domain


def _flag(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.lower() in ("1", "true", "yes", "on")


def _whole_number(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise NotConfigured(f"{name} must be a whole number, got {value!r}") from None


class RecordMissing(ConnectorError):
    """Zendesk returned 404: the ticket, user or agent does not exist."""


class ZendeskSession(DeadlineSession):
    """A deadline-bounded session that raises RateLimited on a 429.

    zenpy 2.0.57 handles a 429 by sleeping for Retry-After and trying again inside
    the call. This session raises RateLimited before zenpy sees the reply, so no
    lookup or job ever sleeps there.
    """

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().request(method, url, *args, **kwargs)
        if response.status_code == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            response.close()
            raise RateLimited("Zendesk rate limit reached (HTTP 429)", retry_after=retry_after)
        return response


def translate_error(error: Exception) -> ConnectorError:
    """Map a zenpy or requests exception to a connector error."""
    if isinstance(error, ConnectorError):
        return error
    if isinstance(error, RatelimitBudgetExceeded):
        return RateLimited("Zendesk rate limit reached")

    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(error, (APIException, requests.HTTPError)) and status is not None:
        if status == 401:
            return AuthenticationFailed("Zendesk rejected the credentials (HTTP 401)")
        if status >= 500:
            return TransientError(f"Zendesk returned HTTP {status}")
        return ConnectorError(f"Zendesk rejected the request: HTTP {status}")

    if isinstance(error, requests.Timeout):
        return TimedOut("Zendesk did not reply within the timeout")
    if isinstance(error, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        return TransientError(f"could not reach Zendesk: {type(error).__name__}")
    if isinstance(error, ValueError):
        return TransientError("Zendesk returned a malformed reply")
    if isinstance(error, ZenpyException):
        return ConnectorError(f"zenpy could not handle Zendesk's reply: {type(error).__name__}")
    if isinstance(error, requests.RequestException):
        return ConnectorError(f"the request to Zendesk failed: {type(error).__name__}")
    return ConnectorError(f"unexpected {type(error).__name__} while reading Zendesk's reply")


class ZendeskConnector(Connector):
    """Look callers up among Zendesk Support users, with their unsolved tickets.

    Write-back code shares this class's plumbing: `_client()` returns the zenpy
    client and `_deadline()` bounds its requests and translates its errors.
    """

    name = "zendesk"
    display_name = "Zendesk"
    capabilities = frozenset({LOOKUP, LOG_CALL, LOG_MESSAGE, SCREEN_POP})

    def __init__(self, settings: ZendeskSettings):
        require_client()
        self.settings = settings
        self._http = ZendeskSession()
        subdomain, domain = settings.subdomain_and_domain
        self._zenpy = Zenpy(
            subdomain=subdomain,
            domain=domain,
            email=settings.email,
            token=settings.api_token,
            oauth_token=None if settings.api_token else settings.oauth_token,
            session=self._http,
            # Belt and braces: ZendeskSession raises on 429 first, and a budget of
            # zero makes zenpy raise instead of sleeping if a 429 ever reached it.
            ratelimit_budget=0,
            # The application's lookup cache decides how long data may be reused,
            # and zenpy's own object cache would serve stale users.
            disable_cache=True,
        )

    @classmethod
    def from_context(cls, context: ConnectorContext) -> "ZendeskConnector":
        require_client()
        return cls(ZendeskSettings.from_config(context.config))

    def close(self) -> None:
        self._http.close()

    # Plumbing

    def _client(self) -> Any:
        return self._zenpy

    @contextlib.contextmanager
    def _deadline(self, timeout: float) -> Iterator[None]:
        """Bound the block's requests by `timeout` and raise only ConnectorError."""
        with self._http.deadline(timeout):
            try:
                yield
            except ConnectorError:
                raise
            except Exception as error:
                raise translate_error(error) from error

    def user_url(self, user_id: int | str) -> str:
        return f"{self.settings.base_url}/agent/users/{user_id}"

    def ticket_url(self, ticket_id: int | str) -> str:
        return f"{self.settings.base_url}/agent/tickets/{ticket_id}"

    # Lookup

    def lookup(self, caller: Caller, timeout: float) -> list[Match]:
        if not caller.is_lookupable:
            return []

        started = time.monotonic()
        with self._deadline(timeout):
            users = self._find_users(caller.e164)
            organizations: dict[int, str | None] = {}
            matches = [self._to_match(user, organizations) for user in users]

        log.info(
            "Caller %s: %d Zendesk match(es) in %.0f ms",
            mask(caller.e164),
            len(matches),
            (time.monotonic() - started) * 1000,
        )
        return matches

    def search_query(self, e164: str) -> str:
        """Build the user search for `e164`.

        Zendesk advises searching phone numbers as digits with a leading wildcard,
        which matches whatever format the number was stored in. A `+` must never
        be sent, because the server decodes it to a space.
        """
        return f"role:end-user phone:*{national_digits(e164)}"

    def _find_users(self, e164: str) -> list[Any]:
        results = self._client().search(self.search_query(e164), type="user")
        return [user for user in itertools.islice(results, MAX_USERS) if e164 in self._phones(user)]

    def _phones(self, user: Any) -> list[str]:
        """Return the user's numbers in E.164: the phone field and phone identities."""
        values = [getattr(user, "phone", None)]
        for identity in getattr(user, "identities", None) or []:
            if isinstance(identity, Mapping) and identity.get("type") == "phone_number":
                values.append(identity.get("value"))
        numbers = (to_e164(value, self.settings.region) for value in values)
        return list(dict.fromkeys(number for number in numbers if number))

    def _to_match(self, user: Any, organizations: dict[int, str | None]) -> Match:
        organization_id = getattr(user, "organization_id", None)
        if organization_id and organization_id not in organizations:
            organizations[organization_id] = self._organization_name(organization_id)

        return Match(
            system=self.name,
            record_type=getattr(user, "role", None) or "end-user",
            external_id=str(user.id),
            display_name=getattr(user, "name", None) or str(user.id),
            company=organizations.get(organization_id) if organization_id else None,
            emails=[user.email] if getattr(user, "email", None) else [],
            phones=self._phones(user),
            open_items=self._unsolved_tickets(user.id),
            url=self.user_url(user.id),
            modified_at=parse_datetime(getattr(user, "updated_at", None)),
            extra={
                "organization_id": organization_id,
                "tags": list(getattr(user, "tags", None) or []),
                "shared_phone_number": getattr(user, "shared_phone_number", None),
                "external_id": getattr(user, "external_id", None),
            },
        )

    def _organization_name(self, organization_id: int) -> str | None:
        try:
            organization = self._client().organizations(id=organization_id)
        except RecordNotFoundException:
            log.warning("Zendesk organization %s not found", organization_id)
            return None
        return getattr(organization, "name", None)

    def _unsolved_tickets(self, user_id: int) -> list[OpenItem]:
        """Read the user's requested tickets and keep the unsolved ones, newest first.

        The requested-tickets list is read instead of the search API because search
        results lag behind writes, and a ticket opened minutes ago matters most.
        """
        tickets = itertools.islice(self._client().users.requested(user_id), MAX_TICKETS_SCANNED)
        items = [self._ticket_item(ticket) for ticket in tickets if ticket.status in UNSOLVED_STATUSES]

        oldest = datetime.min.replace(tzinfo=timezone.utc)
        items.sort(key=lambda item: item.updated_at or oldest, reverse=True)
        return items[:MAX_OPEN_ITEMS]

    def _ticket_item(self, ticket: Any) -> OpenItem:
        return OpenItem(
            kind="ticket",
            id=str(ticket.id),
            subject=getattr(ticket, "subject", None) or "",
            status=ticket.status,
            priority=getattr(ticket, "priority", None),
            number=str(ticket.id),
            updated_at=parse_datetime(getattr(ticket, "updated_at", None)),
            url=self.ticket_url(ticket.id),
        )

    # Write-back

    def log(self, interaction: Mapping[str, Any], match: Match | None) -> ExternalReference:
        """Log a call as a voice ticket (or a note on an open ticket), a message as a comment.

        Every ticket carries an external id built from our interaction or
        conversation id, and every comment ends with a reference line, so a retried
        job finds what an earlier attempt created instead of creating it again.
        """
        with self._deadline(self.settings.log_timeout_s):
            if interaction.get("channel", "voice") == "voice":
                return self._log_call(interaction, match)
            return self._log_message(interaction, match)

    def screen_pop(self, agent: Mapping[str, Any], match: Match) -> None:
        """Open the caller's user profile, or the picked ticket, in the agent's Zendesk browser tab.

        Raises:
            ConnectorError: the agent has no Zendesk id mapped, or Zendesk does not
                know the agent, user or ticket (HTTP 404).
        """
        agent_id = (agent.get("crm_user_ids") or {}).get(self.name)
        if not agent_id:
            raise ConnectorError(f"agent {agent.get('id')} has no Zendesk agent id mapped, so no screen pop is possible")
        ticket_id = (match.extra.get("open_item_id") or match.extra.get("ticket_id")
                     or (match.external_id if match.record_type == "ticket" else None))
        if ticket_id:
            path = f"channels/voice/agents/{int(agent_id)}/tickets/{int(ticket_id)}/display.json"
        else:
            path = f"channels/voice/agents/{int(agent_id)}/users/{int(match.external_id)}/display.json"

        with self._deadline(SCREEN_POP_TIMEOUT_S):
            try:
                self._api("POST", path, body="")
            except RecordMissing as error:
                raise ConnectorError(
                    f"Zendesk screen pop failed: agent {agent_id} or record {ticket_id or match.external_id} "
                    "not found (HTTP 404); check the agent's Zendesk id"
                ) from error

    def _log_call(self, interaction: Mapping[str, Any], match: Match | None) -> ExternalReference:
        external_id = f"callcard-{interaction['id']}"
        ticket = self._ticket_by_external_id(external_id)
        if ticket is None and (self.settings.log_to_open_ticket or _picked_ticket(interaction)):
            open_ticket = self._open_ticket(interaction, match)
            if open_ticket is not None:
                self._add_comment_once(open_ticket, self._call_note(interaction), interaction, public=False)
                return self._ticket_reference(open_ticket)

        if ticket is None:
            requester_id = self._requester_id(interaction, match)
            ticket = self._create_call_ticket(interaction, requester_id, external_id)
        elif interaction.get("notes") or interaction.get("disposition"):
            self._add_comment_once(ticket, self._call_note(interaction), interaction, public=False)

        if self.settings.talk_partner_edition and self.settings.app_id and CALL_RECORD_TAG not in ticket.get("tags", []):
            self._create_call_record(interaction, ticket, external_id)
        return self._ticket_reference(ticket["id"])

    def _create_call_ticket(self, interaction: Mapping[str, Any], requester_id: int | None, external_id: str) -> dict:
        """Create the voice ticket (Talk Partner Edition) or a ticket with an internal note."""
        subject = writeback.call_subject(interaction)
        ticket: dict[str, Any] = {"subject": subject, "external_id": external_id, "tags": ["callcard"]}
        if requester_id:
            ticket["requester_id"] = requester_id

        if self.settings.talk_partner_edition:
            ticket["via_id"] = self._via_id(interaction)
            ticket["voice_comment"] = self._voice_comment(interaction)
            created = self._api("POST", "channels/voice/tickets.json", json={"ticket": ticket})["ticket"]
        else:
            ticket["comment"] = {"body": self._call_note(interaction), "public": False}
            created = self._api("POST", "tickets.json", json={"ticket": ticket})["ticket"]
        log.info("Interaction %s: Zendesk ticket %s created", interaction.get("id"), created["id"])
        return created

    def _via_id(self, interaction: Mapping[str, Any]) -> int:
        if not writeback.is_inbound(interaction):
            return VIA_OUTBOUND_CALL
        return VIA_VOICEMAIL if writeback.is_voicemail(interaction) else VIA_INBOUND_CALL

    def _voice_comment(self, interaction: Mapping[str, Any]) -> dict[str, Any]:
        comment: dict[str, Any] = {
            "from": self._line(interaction, "from"),
            "to": self._line(interaction, "to"),
            "started_at": writeback.iso_utc(writeback.started_at(interaction)),
            "call_duration": writeback.duration_seconds(interaction),
        }
        if interaction.get("recording_url"):
            comment["recording_url"] = interaction["recording_url"]
        if interaction.get("transcription"):
            comment["transcription_text"] = interaction["transcription"]
        agent_id = writeback.agent_crm_id(interaction, self.name)
        if agent_id and writeback.was_answered(interaction):
            comment["answered_by_id"] = int(agent_id)
        return comment

    def _line(self, interaction: Mapping[str, Any], side: str) -> str:
        """Return one end of the call; the customer's end is blank when withheld or not a number."""
        customer_side = "from" if writeback.is_inbound(interaction) else "to"
        if side == customer_side:
            return writeback.customer_phone(interaction) or ""
        return str(interaction.get(side) or "")

    def _call_note(self, interaction: Mapping[str, Any]) -> str:
        lines = [writeback.call_subject(interaction), *writeback.call_details(interaction)]
        lines.append(f"Started at {writeback.iso_utc(writeback.started_at(interaction))}")
        return "\n".join(lines)

    def _create_call_record(self, interaction: Mapping[str, Any], ticket: dict[str, Any], external_id: str) -> None:
        """Create the Talk Partner Edition call record of a ticket, then tag the ticket.

        NOTE: the tag is the only mark that the record exists. When a request times
        out after Zendesk stored the call record but before the tag was set, the
        retry adds a second call record, though never a second ticket.
        """
        started = writeback.started_at(interaction)
        call: dict[str, Any] = {
            "app_id": self.settings.app_id,
            "external_id": external_id,
            "ticket_id": ticket["id"],
            "direction": "inbound" if writeback.is_inbound(interaction) else "outbound",
            "from_line": self._line(interaction, "from"),
            "to_line": self._line(interaction, "to"),
            "call_started_at": writeback.iso_utc(started),
            "duration": writeback.duration_seconds(interaction),
            "completion_status": "completed" if writeback.was_answered(interaction) else "not_answered",
            "voicemail": writeback.is_voicemail(interaction),
        }
        ended = writeback.parse_time(interaction.get("ended_at"))
        agent_id = writeback.agent_crm_id(interaction, self.name)
        optional = {
            "call_ended_at": writeback.iso_utc(ended) if ended else None,
            "recording_url": interaction.get("recording_url"),
            "transcript": interaction.get("transcription"),
            "call_disposition": interaction.get("disposition"),
            "agent_id": int(agent_id) if agent_id else None,
            "end_user_id": ticket.get("requester_id"),
        }
        call.update({key: value for key, value in optional.items() if value})
        created = self._api("POST", "calls.json", json={"call": call})["call"]
        tags = [*ticket.get("tags", []), CALL_RECORD_TAG]
        self._api("PUT", f"tickets/{ticket['id']}.json", json={"ticket": {"tags": tags}})
        log.info("Interaction %s: Zendesk call record %s added to ticket %s", interaction.get("id"), created["id"], ticket["id"])

    def _log_message(self, interaction: Mapping[str, Any], match: Match | None) -> ExternalReference:
        conversation_id = interaction.get("conversation_id")
        external_id = f"callcard-conversation-{conversation_id}" if conversation_id else f"callcard-{interaction['id']}"
        requester_id = self._requester_id(interaction, match)
        inbound = writeback.is_inbound(interaction)
        author_id = requester_id if inbound else writeback.agent_crm_id(interaction, self.name)

        ticket = self._ticket_by_external_id(external_id)
        if ticket is not None:
            self._add_comment_once(ticket, writeback.message_text(interaction), interaction, public=inbound, author_id=author_id)
            return self._ticket_reference(ticket["id"])

        channel = writeback.channel_name(interaction)
        comment = self._comment(writeback.message_text(interaction), interaction, public=inbound, author_id=author_id)
        fields: dict[str, Any] = {
            "subject": f"{channel} conversation with {writeback.party_label(interaction)}",
            "external_id": external_id,
            "tags": ["callcard", channel.lower()],
            "comment": comment,
        }
        if requester_id:
            fields["requester_id"] = requester_id
        created = self._api("POST", "tickets.json", json={"ticket": fields})["ticket"]
        log.info("Interaction %s: Zendesk ticket %s created for the conversation", interaction.get("id"), created["id"])
        return self._ticket_reference(created["id"])

    def _comment(
        self, text: str, interaction: Mapping[str, Any], public: bool, author_id: Any = None
    ) -> dict[str, Any]:
        marker = writeback.reference_line(_comment_kind(interaction), interaction.get("id"))
        comment: dict[str, Any] = {"body": f"{text}\n\n{marker}", "public": public}
        if author_id:
            comment["author_id"] = int(author_id)
        return comment

    def _add_comment_once(
        self, ticket: Mapping[str, Any], text: str, interaction: Mapping[str, Any], public: bool, author_id: Any = None
    ) -> None:
        """Add a comment ending with the interaction's reference line, unless the ticket has one already."""
        comment = self._comment(text, interaction, public, author_id)
        marker = comment["body"].rsplit("\n", 1)[-1]
        if any(marker in (existing.get("body") or "") for existing in self._comments(ticket["id"])):
            return
        self._api("PUT", f"tickets/{ticket['id']}.json", json={"ticket": {"comment": comment}})
        log.info("Interaction %s: comment added to Zendesk ticket %s", interaction.get("id"), ticket["id"])

    def _comments(self, ticket_id: int) -> list[dict[str, Any]]:
        comments: list[dict[str, Any]] = []
        path: str | None = f"tickets/{ticket_id}/comments.json"
        while path and len(comments) < MAX_COMMENTS_SCANNED:
            page = self._api("GET", path)
            comments.extend(page.get("comments") or [])
            path = page.get("next_page")
        return comments

    def _ticket_by_external_id(self, external_id: str) -> dict[str, Any] | None:
        """Find our ticket with the tickets list filtered by external id, which has no search index lag."""
        tickets = self._api("GET", "tickets.json", params={"external_id": external_id}).get("tickets") or []
        return tickets[0] if tickets else None

    def _open_ticket(self, interaction: Mapping[str, Any], match: Match | None) -> dict[str, Any] | None:
        """Return the ticket the agent picked, else the caller's most recently updated unsolved one."""
        if match is None:
            return None
        picked = (interaction.get("chosen_match") or {}).get("open_item_id")
        candidates = [item for item in match.open_items if item.kind == "ticket"]
        chosen = next((item for item in candidates if item.id == str(picked)), None) if picked else None
        chosen = chosen or (candidates[0] if candidates else None)
        if chosen is None:
            return None
        return self._api("GET", f"tickets/{int(chosen.id)}.json")["ticket"]

    def _requester_id(self, interaction: Mapping[str, Any], match: Match | None) -> int | None:
        """Return the matched end user, or a user created for an unknown number; None when withheld."""
        if match is not None:
            return int(match.external_id)
        e164 = writeback.customer_phone(interaction)
        if e164 is None:
            return None

        external_id = f"callcard-phone-{e164}"
        users = self._api("GET", "users/search.json", params={"external_id": external_id}).get("users") or []
        if users:
            return int(users[0]["id"])
        user = {"name": f"Caller {writeback.party_label(interaction)}", "phone": e164, "role": "end-user", "external_id": external_id}
        created = self._api("POST", "users.json", json={"user": user})["user"]
        log.info("Interaction %s: Zendesk end user %s created for an unknown number", interaction.get("id"), created["id"])
        return int(created["id"])

    def _ticket_reference(self, ticket: Mapping[str, Any] | int) -> ExternalReference:
        ticket_id = ticket["id"] if isinstance(ticket, Mapping) else ticket
        return ExternalReference(external_id=str(ticket_id), url=self.ticket_url(ticket_id), record_type="ticket")

    def _api(self, method: str, path: str, json: Any = None, params: Any = None, body: str | None = None) -> dict:
        """Send one request to the Support API and return its JSON body.

        Raises:
            RecordMissing: HTTP 404.
            ConnectorError: any other error status, mapped like zenpy's errors.
        """
        url = path if path.startswith("https://") else f"{self.settings.base_url}/api/v2/{path}"
        response = self._http.request(method, url, json=json, params=params, data=body)
        if response.status_code == 404:
            raise RecordMissing(f"Zendesk returned HTTP 404 for {method} {path.split('?')[0]}")
        if response.status_code >= 400:
            raise translate_error(requests.HTTPError(response=response))
        if not response.content.strip():
            return {}
        return response.json()


def _comment_kind(interaction: Mapping[str, Any]) -> str:
    if interaction.get("channel", "voice") != "voice":
        return "message"
    # A note changes with the agent's notes, so its marker must change with them too.
    notes = f"{interaction.get('notes')}|{interaction.get('disposition')}"
    return f"call-{hashlib.sha256(notes.encode()).hexdigest()[:8]}"


def _picked_ticket(interaction: Mapping[str, Any]) -> bool:
    """Tell whether the agent picked a Zendesk ticket for this call; the pick wins over a new ticket."""
    chosen = interaction.get("chosen_match") or {}
    return chosen.get("system") == "zendesk" and bool(chosen.get("open_item_id"))

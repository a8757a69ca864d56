"""The connector interface every CRM and helpdesk integration implements."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

# Capabilities a connector can declare in `Connector.capabilities`.
LOOKUP = "lookup"
LOG_CALL = "log_call"
LOG_MESSAGE = "log_message"
SCREEN_POP = "screen_pop"
CAPABILITIES = frozenset({LOOKUP, LOG_CALL, LOG_MESSAGE, SCREEN_POP})


def _parse_datetime(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


@dataclasses.dataclass(frozen=True)
class Caller:
    """The party on the line, as parsed from the webhook.

    `kind` is one of `phone`, `withheld`, `alphanumeric`, `shortcode` or `invalid`.
    Only a `phone` caller has an `e164` value, and only a `phone` caller is looked up.
    """

    raw: str
    kind: str
    e164: str | None = None
    channel: str = "voice"

    @property
    def is_lookupable(self) -> bool:
        return self.kind == "phone" and self.e164 is not None


@dataclasses.dataclass
class OpenItem:
    """An open case, ticket or opportunity attached to a matched record."""

    kind: str
    id: str
    subject: str
    status: str | None = None
    priority: str | None = None
    number: str | None = None
    updated_at: datetime | None = None
    url: str | None = None
    stage: str | None = None
    amount: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["updated_at"] = self.updated_at.isoformat() if self.updated_at else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "OpenItem":
        values = dict(data)
        values["updated_at"] = _parse_datetime(values.get("updated_at"))
        return cls(**values)


@dataclasses.dataclass
class Match:
    """One record in an external system that belongs to the caller.

    `record_type` is the system's own name for the object (`Contact`, `Lead`,
    `Account`, `end-user`, `contact`). `phones` contains every number of the record in
    E.164 and `emails` every address, so matches from several systems can be merged
    into one customer.
    """

    system: str
    record_type: str
    external_id: str
    display_name: str
    company: str | None = None
    owner: str | None = None
    owner_email: str | None = None
    tier: str | None = None
    emails: list[str] = dataclasses.field(default_factory=list)
    phones: list[str] = dataclasses.field(default_factory=list)
    open_items: list[OpenItem] = dataclasses.field(default_factory=list)
    recent_activity: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    url: str | None = None
    modified_at: datetime | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["open_items"] = [item.to_dict() for item in self.open_items]
        data["modified_at"] = self.modified_at.isoformat() if self.modified_at else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Match":
        values = dict(data)
        values["open_items"] = [OpenItem.from_dict(item) for item in values.get("open_items", [])]
        values["modified_at"] = _parse_datetime(values.get("modified_at"))
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class ExternalReference:
    """The record `Connector.log` created or found: its id and a link to it."""

    external_id: str
    url: str | None = None
    record_type: str | None = None


@dataclasses.dataclass(frozen=True)
class ConnectorContext:
    """The resources the host application gives a connector when it builds one.

    `config` is the application configuration (a mapping of setting names to
    values), `engine` the SQLAlchemy engine of Callcard's own database and `redis`
    an object whose `client` attribute is the Redis client. Connectors that talk to
    a remote API need only `config`.
    """

    config: Mapping[str, Any]
    engine: Any = None
    redis: Any = None


class ConnectorError(Exception):
    """A lookup or log call failed; the fan-out marks the system as failed."""


class ConnectorUnavailable(ConnectorError):
    """The connector cannot work here: a client library is missing or too old."""


class NotConfigured(ConnectorError):
    """The settings the connector needs are missing."""


class TransientError(ConnectorError):
    """A failure worth retrying: timeouts, 5xx responses, connection errors."""


class TimedOut(TransientError, TimeoutError):
    """The system did not answer within the time the caller gave."""


class RateLimited(TransientError):
    """The system refused the request for now; `retry_after` is in seconds."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class AuthenticationFailed(ConnectorError):
    """The credentials were rejected; retrying with them will not help."""


class Connector(abc.ABC):
    """Base class of CRM and helpdesk connectors.

    A subclass sets `name` (a stable lower-case identifier, used in settings, logs
    and the card) and `capabilities`, and implements `lookup` and, when it declares
    `log_call` or `log_message`, `log`.
    """

    name: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[str]] = frozenset({LOOKUP})

    @classmethod
    def from_context(cls, context: ConnectorContext) -> "Connector":
        """Build the connector from the application's settings.

        Raises:
            NotConfigured: a required setting is missing.
        """
        return cls()

    @abc.abstractmethod
    def lookup(self, caller: Caller, timeout: float) -> list[Match]:
        """Return every record of this system that belongs to `caller`.

        `timeout` is the time left in seconds; a connector passes it to its HTTP
        client. An empty list means the caller is not known here.
        """

    def log(self, interaction: Mapping[str, Any], match: Match | None) -> ExternalReference:
        """Write `interaction` to this system and return what was created.

        Must be idempotent: called again for the same interaction it returns the
        same reference and creates nothing new.
        """
        raise NotImplementedError(f"connector {self.name!r} does not log interactions")

    def screen_pop(self, agent: Mapping[str, Any], match: Match) -> None:
        """Open `match` in the agent's own tool, where the system supports it.

        `agent` carries `id`, `name`, `email` and `crm_user_ids`. When the agent picked
        one of the match's open items, `match.extra["open_item_id"]` is its id.
        """
        raise NotImplementedError(f"connector {self.name!r} has no screen pop")

    def close(self) -> None:
        """Release sessions and sockets; called when the application shuts down."""

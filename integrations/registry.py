"""Find connector classes, check their contract and build the enabled ones."""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Iterable
from importlib.metadata import entry_points

from integrations.base import CAPABILITIES, Connector, ConnectorContext, ConnectorError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "callcard.connectors"

BUILT_IN = {
    "directory": "integrations.directory:DirectoryConnector",
    "salesforce": "integrations.salesforce:SalesforceConnector",
    "zendesk": "integrations.zendesk:ZendeskConnector",
}


class ContractError(ConnectorError):
    """A connector class does not meet the connector interface."""


def load_reference(reference: str) -> type:
    """Import `package.module:ClassName`."""
    module_name, _, attribute = reference.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute)


def check_contract(name: str, cls: object) -> type[Connector]:
    """Return `cls` when it implements the connector interface, else raise ContractError."""
    if not inspect.isclass(cls) or not issubclass(cls, Connector):
        raise ContractError(f"connector {name!r}: {cls!r} is not a subclass of Connector")

    problems = []
    if cls.name != name:
        problems.append(f"its name attribute is {cls.name!r}, expected {name!r}")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        problems.append(f"it does not implement {missing}")
    unknown = set(cls.capabilities) - CAPABILITIES
    if unknown:
        problems.append(f"it declares unknown capabilities {sorted(unknown)}")
    logs = {"log_call", "log_message"} & set(cls.capabilities)
    if logs and cls.log is Connector.log:
        problems.append(f"it declares {sorted(logs)} but does not override log()")
    if "screen_pop" in cls.capabilities and cls.screen_pop is Connector.screen_pop:
        problems.append("it declares screen_pop but does not override screen_pop()")

    if problems:
        raise ContractError(f"connector {name!r} rejected: " + "; ".join(problems))
    return cls


def available_connectors() -> dict[str, str]:
    """Map each known connector name to its `module:Class` reference.

    Third-party connectors come from the `callcard.connectors` entry-point group; a
    built-in name cannot be replaced by a third party.
    """
    references = dict(BUILT_IN)
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in BUILT_IN:
            log.warning(
                "Connector %s from entry point %s ignored: the name is built in",
                entry_point.name,
                entry_point.value,
            )
            continue
        references[entry_point.name] = entry_point.value
    return references


def resolve(name: str) -> type[Connector]:
    """Load and check the connector class called `name`."""
    references = available_connectors()
    if name not in references:
        known = ", ".join(sorted(references))
        raise ContractError(f"unknown connector {name!r}; known connectors: {known}")
    return check_contract(name, load_reference(references[name]))


def enabled_names(config) -> list[str]:
    """Return the connectors the settings enable.

    `CONNECTORS` lists them explicitly (comma-separated). Without it the directory
    is enabled, plus Salesforce and Zendesk when their settings are present.
    """
    explicit = config.get("CONNECTORS")
    if explicit:
        return [name.strip() for name in explicit.split(",") if name.strip()]

    names = ["directory"]
    if config.get("SALESFORCE_USERNAME") or config.get("SALESFORCE_SESSION_ID"):
        names.append("salesforce")
    if config.get("ZENDESK_URL"):
        names.append("zendesk")
    return names


def build_connectors(names: Iterable[str], context: ConnectorContext) -> list[Connector]:
    """Resolve and build each named connector; any failure stops start-up."""
    connectors = []
    for name in names:
        cls = resolve(name)
        connectors.append(cls.from_context(context))
    return connectors

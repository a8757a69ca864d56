"""Fixtures for connector tests: vendor stubs over TLS on 127.0.0.1 and connectors that use them."""

from __future__ import annotations

import pathlib
import ssl
from collections.abc import Callable, Iterator

import pytest
import trustme

from app.phone import parse_caller
from integrations.base import Caller, Connector, ConnectorContext
from integrations.salesforce import SalesforceConnector
from integrations.zendesk import ZendeskConnector
from tests.stubs import StubServer, server_ssl_context
from tests.stubs.salesforce import SalesforceStub
from tests.stubs.zendesk import ZendeskStub

ZENDESK_EMAIL = "integration@example.com"
ZENDESK_TOKEN = "FAKEZENDESKAPITOKEN0123456789"


def caller(number: str, region: str = "US") -> Caller:
    """Parse a webhook From value the way the application does."""
    return parse_caller(number, region)


@pytest.fixture(scope="session")
def certificate_authority() -> trustme.CA:
    """A throwaway CA that signs the stubs' certificates."""
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_bundle(certificate_authority: trustme.CA, tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("tls") / "stub-ca.pem"
    certificate_authority.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="session")
def stub_ssl_context(certificate_authority: trustme.CA) -> ssl.SSLContext:
    """The stubs' server TLS context, built once because issuing a certificate is slow."""
    return server_ssl_context(certificate_authority)


@pytest.fixture
def trust_stubs(monkeypatch, ca_bundle: pathlib.Path) -> None:
    """Make requests trust the stubs' CA and reach 127.0.0.1 without a proxy.

    requests lets REQUESTS_CA_BUNDLE (then CURL_CA_BUNDLE) override a session's
    `verify`, so pointing the variable at our CA is the only setting that works.
    """
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_bundle))
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def run_stub(stub: StubServer) -> Iterator[StubServer]:
    """Start `stub`, yield it to the test and stop it afterwards, for use in a fixture."""
    with stub:
        yield stub


@pytest.fixture
def salesforce_stub(stub_ssl_context, trust_stubs) -> Iterator[SalesforceStub]:
    yield from run_stub(SalesforceStub(stub_ssl_context))


@pytest.fixture
def zendesk_stub(stub_ssl_context, trust_stubs) -> Iterator[ZendeskStub]:
    stub = ZendeskStub(stub_ssl_context, email=ZENDESK_EMAIL, api_token=ZENDESK_TOKEN)
    yield from run_stub(stub)


@pytest.fixture
def salesforce_config(salesforce_stub: SalesforceStub) -> dict[str, str]:
    return {
        "SALESFORCE_USERNAME": "integration@example.com",
        "SALESFORCE_PASSWORD": "p&ss-fake1",
        "SALESFORCE_SECURITY_TOKEN": "FAKESECURITYTOKEN",
        "SALESFORCE_DOMAIN": salesforce_stub.host,
        "DEFAULT_REGION": "US",
    }


@pytest.fixture
def zendesk_config(zendesk_stub: ZendeskStub) -> dict[str, str]:
    return {
        "ZENDESK_URL": zendesk_stub.url,
        "ZENDESK_EMAIL": ZENDESK_EMAIL,
        "ZENDESK_API_TOKEN": ZENDESK_TOKEN,
        "DEFAULT_REGION": "US",
    }


def _connector_factory(cls: type[Connector], base_config: dict[str, str]) -> Iterator[Callable[..., Connector]]:
    built: list[Connector] = []

    def make(**overrides: str | None) -> Connector:
        config = {**base_config, **overrides}
        connector = cls.from_context(ConnectorContext(config=config))
        built.append(connector)
        return connector

    yield make
    for connector in built:
        connector.close()


@pytest.fixture
def make_salesforce(salesforce_config) -> Iterator[Callable[..., SalesforceConnector]]:
    """Build Salesforce connectors on the stub, with keyword arguments overriding settings."""
    yield from _connector_factory(SalesforceConnector, salesforce_config)


@pytest.fixture
def make_zendesk(zendesk_config) -> Iterator[Callable[..., ZendeskConnector]]:
    """Build Zendesk connectors on the stub, with keyword arguments overriding settings."""
    yield from _connector_factory(ZendeskConnector, zendesk_config)


@pytest.fixture
def salesforce(make_salesforce) -> SalesforceConnector:
    return make_salesforce()


@pytest.fixture
def zendesk(make_zendesk) -> ZendeskConnector:
    return make_zendesk()

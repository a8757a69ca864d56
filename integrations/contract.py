"""Contract tests every connector must pass, for use with pytest.

A connector author subclasses `ConnectorContract` in a test module named
`Test...`, overrides the fixtures that describe their system, and pytest runs the
inherited tests:

    class TestAcmeContract(ConnectorContract):
        @pytest.fixture
        def connector(self, acme_server):
            return AcmeConnector.from_context(ConnectorContext(config={...}))

        @pytest.fixture
        def known_caller(self):
            return Caller(raw="+14155550100", kind="phone", e164="+14155550100")

        @pytest.fixture
        def unknown_caller(self):
            return Caller(raw="+14155550199", kind="phone", e164="+14155550199")

`slow_connector`, `failing_connector` and `interaction` are optional; the tests
that need them are skipped until they are overridden.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest

from integrations.base import (
    CAPABILITIES,
    LOG_CALL,
    LOG_MESSAGE,
    Caller,
    Connector,
    ConnectorError,
    ExternalReference,
    Match,
)

WITHHELD_CALLERS = (
    Caller(raw="anonymous", kind="withheld"),
    Caller(raw="+266696687", kind="withheld"),
    Caller(raw="", kind="withheld"),
    Caller(raw="whatsapp:restricted", kind="withheld", channel="whatsapp"),
)


class ConnectorContract:
    """Tests of the connector interface: override the fixtures and inherit the tests."""

    # Seconds given to each lookup, and the slack allowed on top of it.
    lookup_timeout: float = 2.0
    timeout_margin: float = 0.5

    # Fixtures to override

    @pytest.fixture
    def connector(self) -> Connector:
        """Return a connector whose system contains `known_caller` and not `unknown_caller`."""
        pytest.fail("override the `connector` fixture with a connector built for the tests")

    @pytest.fixture
    def known_caller(self) -> Caller:
        """Return a caller with at least one record in the connector's system."""
        pytest.fail("override the `known_caller` fixture")

    @pytest.fixture
    def unknown_caller(self) -> Caller:
        """Return a valid phone caller with no record in the connector's system."""
        pytest.fail("override the `unknown_caller` fixture")

    @pytest.fixture
    def slow_connector(self) -> Connector:
        """Return a connector whose system replies later than `lookup_timeout` + `timeout_margin`."""
        pytest.skip("no slow_connector fixture: the timeout test needs a system that replies late")

    @pytest.fixture
    def failing_connector(self) -> Connector:
        """Return a connector whose system is unreachable or fails every request."""
        pytest.skip("no failing_connector fixture: the error tests need a system that fails")

    @pytest.fixture
    def interaction(self, known_caller: Caller) -> dict[str, Any]:
        """Return an interaction to log. Override it with the fields your `log` reads."""
        return {
            "id": f"contract-{uuid.uuid4()}",
            "channel": "voice",
            "direction": "inbound",
            "status": "completed",
            "from": known_caller.raw,
            "caller_e164": known_caller.e164,
            "call_sid": "CA" + uuid.uuid4().hex,
            "started_at": datetime.now(timezone.utc).isoformat(),
            "duration_s": 42,
        }

    # Declarations

    def test_name_is_stable_identifier(self, connector: Connector) -> None:
        assert connector.name
        assert connector.name == connector.name.lower()
        assert connector.name.isidentifier()

    def test_capabilities_are_known(self, connector: Connector) -> None:
        assert connector.capabilities
        assert set(connector.capabilities) <= CAPABILITIES

    # Lookup

    def test_lookup_returns_matches(self, connector: Connector, known_caller: Caller) -> None:
        matches = connector.lookup(known_caller, self.lookup_timeout)

        assert isinstance(matches, list)
        assert matches
        assert all(isinstance(match, Match) for match in matches)

    def test_matches_name_this_system(self, connector: Connector, known_caller: Caller) -> None:
        matches = connector.lookup(known_caller, self.lookup_timeout)

        assert {match.system for match in matches} == {connector.name}

    def test_matches_have_required_fields(self, connector: Connector, known_caller: Caller) -> None:
        for match in connector.lookup(known_caller, self.lookup_timeout):
            assert match.record_type, match
            assert match.external_id, match
            assert match.display_name, match

    def test_matches_carry_caller_number(self, connector: Connector, known_caller: Caller) -> None:
        for match in connector.lookup(known_caller, self.lookup_timeout):
            assert known_caller.e164 in match.phones, match

    def test_lookup_of_unknown_caller_is_empty(self, connector: Connector, unknown_caller: Caller) -> None:
        assert connector.lookup(unknown_caller, self.lookup_timeout) == []

    @pytest.mark.parametrize("withheld", WITHHELD_CALLERS, ids=lambda caller: caller.raw or "empty")
    def test_lookup_of_withheld_caller_is_empty(self, connector: Connector, withheld: Caller) -> None:
        assert connector.lookup(withheld, self.lookup_timeout) == []

    @pytest.mark.parametrize("withheld", WITHHELD_CALLERS, ids=lambda caller: caller.raw or "empty")
    def test_withheld_caller_needs_no_request(self, failing_connector: Connector, withheld: Caller) -> None:
        # The system fails every request, so an empty result proves none was made.
        assert failing_connector.lookup(withheld, self.lookup_timeout) == []

    def test_lookup_honours_timeout(self, slow_connector: Connector, known_caller: Caller) -> None:
        started = time.monotonic()
        try:
            slow_connector.lookup(known_caller, self.lookup_timeout)
        except ConnectorError:
            pass
        elapsed = time.monotonic() - started

        assert elapsed <= self.lookup_timeout + self.timeout_margin

    def test_timeout_raises_connector_error(self, slow_connector: Connector, known_caller: Caller) -> None:
        with pytest.raises(ConnectorError):
            slow_connector.lookup(known_caller, self.lookup_timeout)

    def test_failure_raises_connector_error(self, failing_connector: Connector, known_caller: Caller) -> None:
        with pytest.raises(ConnectorError):
            failing_connector.lookup(known_caller, self.lookup_timeout)

    # Logging

    def test_log_is_idempotent(self, connector: Connector, known_caller: Caller, interaction: dict) -> None:
        if not {LOG_CALL, LOG_MESSAGE} & set(connector.capabilities):
            pytest.skip(f"connector {connector.name!r} declares no log capability")
        match = connector.lookup(known_caller, self.lookup_timeout)[0]

        first = connector.log(interaction, match)
        second = connector.log(interaction, match)

        assert isinstance(first, ExternalReference)
        assert second == first

"""The connector contract kit run against the Salesforce connector and its stub."""

from __future__ import annotations

import pytest

from integrations.contract import ConnectorContract
from tests.integrations.conftest import caller


class TestSalesforceContract(ConnectorContract):
    lookup_timeout = 1.0

    @pytest.fixture
    def connector(self, salesforce_stub, salesforce):
        salesforce_stub.add_contact(Name="Ada Example", Phone="(415) 555-0100")
        salesforce_stub.add_lead(Name="Cy Example", Phone="001 415 555 0100")
        return salesforce

    @pytest.fixture
    def known_caller(self):
        return caller("+14155550100")

    @pytest.fixture
    def unknown_caller(self):
        return caller("+14155550104")

    @pytest.fixture
    def slow_connector(self, connector, salesforce_stub):
        salesforce_stub.delay(self.lookup_timeout + 2)
        return connector

    @pytest.fixture
    def failing_connector(self, connector, salesforce_stub):
        salesforce_stub.service_unavailable(times=None)
        return connector

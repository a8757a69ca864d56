"""The connector contract kit run against the Zendesk connector and its stub."""

from __future__ import annotations

import pytest

from integrations.contract import ConnectorContract
from tests.integrations.conftest import caller


class TestZendeskContract(ConnectorContract):
    lookup_timeout = 1.0

    @pytest.fixture
    def connector(self, zendesk_stub, zendesk):
        zendesk_stub.add_user(id=9001, name="Dee Example", phone="+14155550101")
        zendesk_stub.add_ticket(requester_id=9001, subject="Where is my parcel?", status="open")
        return zendesk

    @pytest.fixture
    def known_caller(self):
        return caller("whatsapp:+14155550101")

    @pytest.fixture
    def unknown_caller(self):
        return caller("+14155550104")

    @pytest.fixture
    def slow_connector(self, connector, zendesk_stub):
        zendesk_stub.delay(self.lookup_timeout + 2)
        return connector

    @pytest.fixture
    def failing_connector(self, connector, zendesk_stub):
        zendesk_stub.service_unavailable(times=None)
        return connector

"""The built-in directory: contacts kept in Callcard's own database."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.orm import Session

from integrations.base import LOOKUP, Caller, Connector, ConnectorContext, Match, NotConfigured

log = logging.getLogger(__name__)


class DirectoryConnector(Connector):
    """Look callers up in the `directory_contacts` table.

    Contacts are imported from CSV with `flask contacts import FILE`; their phone
    numbers are stored as typed and as E.164, and lookups match on E.164.
    """

    name = "directory"
    display_name = "Directory"
    capabilities = frozenset({LOOKUP})

    def __init__(self, engine: sa.Engine):
        self.engine = engine

    @classmethod
    def from_context(cls, context: ConnectorContext) -> "DirectoryConnector":
        if context.engine is None:
            raise NotConfigured("the directory connector needs Callcard's database engine")
        return cls(context.engine)

    def lookup(self, caller: Caller, timeout: float) -> list[Match]:
        if not caller.is_lookupable:
            return []

        from app.models import DirectoryContact

        query = (
            sa.select(DirectoryContact)
            .where(DirectoryContact.phone_e164 == caller.e164)
            .order_by(DirectoryContact.updated_at.desc())
        )
        with Session(self.engine) as session:
            contacts = session.scalars(query).all()
        return [self._to_match(contact) for contact in contacts]

    def _to_match(self, contact) -> Match:
        return Match(
            system=self.name,
            record_type="contact",
            external_id=str(contact.id),
            display_name=contact.name,
            company=contact.company,
            owner=contact.owner_email,
            owner_email=contact.owner_email,
            tier=contact.tier,
            emails=[contact.email] if contact.email else [],
            phones=[contact.phone_e164],
            modified_at=contact.updated_at,
            extra={"phone_as_stored": contact.phone, "notes": contact.notes},
        )

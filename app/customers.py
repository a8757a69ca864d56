"""Identity merge: matches from every system that share a number or an e-mail are one customer."""

from __future__ import annotations

import logging
import time
from datetime import timezone

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from app.db import is_sqlite_lock_error
from app.models import Conversation, Customer, Identity, Interaction
from integrations.base import Caller, Match

log = logging.getLogger(__name__)

# Display rank per record type. A Zendesk end user is a person, as a contact is, so
# it ranks with contacts; any other type comes after accounts.
MERGE_ATTEMPTS = 5
RECORD_TYPE_ORDER = {"contact": 0, "end-user": 0, "lead": 1, "account": 2}
OTHER_RECORD_RANK = 3


def order_matches(matches: list[Match]) -> list[Match]:
    """Order matches for display: contacts, then leads, then accounts, each most recently modified first.

    A match without a modification time comes last within its rank, and a naive
    time is read as UTC.
    """

    def sort_key(match: Match):
        rank = RECORD_TYPE_ORDER.get(match.record_type.lower(), OTHER_RECORD_RANK)
        modified = match.modified_at
        if modified is not None and modified.tzinfo is None:
            modified = modified.replace(tzinfo=timezone.utc)
        return (rank, modified is None, -modified.timestamp() if modified else 0)

    return sorted(matches, key=sort_key)


def identity_keys(caller: Caller, matches: list[Match]) -> set[tuple[str, str, str]]:
    """Return the (kind, system, value) identities that the caller and matches carry."""
    keys: set[tuple[str, str, str]] = set()
    if caller.is_lookupable:
        keys.add(("phone", "", caller.e164))
    for match in matches:
        keys.add(("record", match.system, match.external_id))
        keys.update(("phone", "", phone) for phone in match.phones if phone)
        keys.update(("email", "", email.strip().lower()) for email in match.emails if email)
    return keys


def resolve_customer(session: Session, caller: Caller, matches: list[Match]) -> Customer | None:
    """Find or create the one customer behind `caller` and `matches`, and record identities.

    Returns None for a caller that carries no identity (withheld, alphanumeric or
    short-code senders with no match). Two existing customers found to share an
    identity are merged into the older one.
    """
    keys = identity_keys(caller, matches)
    if not keys:
        return None

    for attempt in range(MERGE_ATTEMPTS):
        try:
            with session.begin_nested():
                customer = _merge_into_one(session, keys, matches)
            session.flush()
            return customer
        except IntegrityError:
            # Another process recorded one of these identities first; read it and retry.
            log.info("Identity recorded concurrently, retrying merge (attempt %d)", attempt + 1)
        except OperationalError as error:
            if not is_sqlite_lock_error(error):
                raise
            # SQLite refuses to turn this read transaction into a write once another
            # process has written; start a new transaction and read again.
            log.info("Database busy, retrying merge (attempt %d)", attempt + 1)
            session.rollback()
            time.sleep(0.05 * (attempt + 1))
    raise RuntimeError(f"could not record the customer's identities after {MERGE_ATTEMPTS} attempts")


def _merge_into_one(session: Session, keys, matches: list[Match]) -> Customer:
    existing = _find_identities(session, keys)
    customer_ids = sorted({identity.customer_id for identity in existing})

    if customer_ids:
        customer = session.get(Customer, customer_ids[0])
        for other_id in customer_ids[1:]:
            _absorb(session, customer, other_id)
    else:
        customer = Customer()
        session.add(customer)
        session.flush()

    best = order_matches(matches)[0] if matches else None
    if best is not None:
        customer.display_name = best.display_name or customer.display_name
        customer.company = best.company or customer.company

    known = {(i.kind, i.system, i.value) for i in existing if i.customer_id in customer_ids}
    labels = {("record", m.system, m.external_id): m.display_name for m in matches}
    for kind, system, value in sorted(keys - known):
        session.add(
            Identity(
                customer_id=customer.id,
                kind=kind,
                system=system,
                value=value,
                label=labels.get((kind, system, value)),
            )
        )
    return customer


def _find_identities(session: Session, keys) -> list[Identity]:
    conditions = [
        sa.and_(Identity.kind == kind, Identity.system == system, Identity.value == value)
        for kind, system, value in keys
    ]
    return list(session.scalars(sa.select(Identity).where(sa.or_(*conditions))))


def _absorb(session: Session, customer: Customer, other_id: int) -> None:
    """Move everything of customer `other_id` to `customer`, then delete it."""
    log.info("Customer %s merged into customer %s", other_id, customer.id)
    for model in (Identity, Interaction, Conversation):
        session.execute(
            sa.update(model).where(model.customer_id == other_id).values(customer_id=customer.id)
        )
    session.execute(sa.delete(Customer).where(Customer.id == other_id))


def name_conflicts(matches: list[Match]) -> list[dict[str, str]]:
    """List the records whose name differs from the best match's, so the card shows them."""
    ordered = order_matches(matches)
    if not ordered:
        return []
    reference = ordered[0].display_name.strip().casefold()
    return [
        {"system": m.system, "external_id": m.external_id, "display_name": m.display_name}
        for m in ordered[1:]
        if m.display_name and m.display_name.strip().casefold() != reference
    ]

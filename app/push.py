"""Push cards and card updates to agents' consoles, for calls and messages alike."""

from __future__ import annotations

import logging
import time

from flask import Flask
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.cards import build_card
from app.customers import resolve_customer
from app.db import get_db, is_sqlite_lock_error
from app.lookup import LateCallback, LookupResult
from app.models import Interaction
from app.streams import get_streams
from integrations.base import Caller

log = logging.getLogger(__name__)

# How long a late connector result waits for the webhook to store the first card.
FIRST_CARD_WAIT_S = 5.0
UPDATE_ATTEMPTS = 5


def publish(agent_ids: list[int], event: str, data: dict, sid: str) -> None:
    """Push `event` to the agents' streams. A Redis failure is logged and not raised.

    `sid` is the CallSid or MessageSid the event is about, used only in logs.
    """
    if not agent_ids:
        log.info("Interaction %s: no agent online to receive the %s event", sid, event)
        return

    try:
        get_streams().publish(agent_ids, event, data)
    except Exception:
        log.exception("Interaction %s: publishing the %s event failed", sid, event)


def late_update(app: Flask, interaction_id: int, caller: Caller) -> LateCallback:
    """Return the callback that publishes a `card.update` when a connector returns after the deadline.

    The new card keeps every section of the stored card that `build_card` does not
    produce (routing, the message and conversation sections), so a late result
    never drops what the first card showed.
    """

    def publish_update(lookup: LookupResult) -> None:
        for attempt in range(UPDATE_ATTEMPTS):
            try:
                return _store_and_publish(lookup)
            except OperationalError as error:
                if not is_sqlite_lock_error(error) or attempt == UPDATE_ATTEMPTS - 1:
                    raise
                log.info("Interaction %s: database busy, retrying the card update", interaction_id)
                time.sleep(0.05 * (attempt + 1))

    def _store_and_publish(lookup: LookupResult) -> None:
        with app.app_context():
            with get_db().new_session() as session:
                interaction = _wait_for_card(session, interaction_id)
                if interaction is None:
                    log.warning("Interaction %s: no card to update", interaction_id)
                    return

                customer = resolve_customer(session, caller, lookup.matches)
                if customer is not None and interaction.customer_id is None:
                    interaction.customer_id = customer.id

                stored = interaction.card
                revision = stored.get("revision", 1) + 1
                card = build_card(session, interaction, caller, customer, lookup, revision)
                card = {**{k: v for k, v in stored.items() if k not in card}, **card}
                interaction.card = card
                session.commit()
                notify = (interaction.routing or {}).get("notified", [])

            publish(notify, "card.update", card, interaction.provider_sid)

    return publish_update


def _wait_for_card(session: Session, interaction_id: int) -> Interaction | None:
    """Return the interaction once the webhook has stored its first card."""
    deadline = time.monotonic() + FIRST_CARD_WAIT_S
    while True:
        interaction = session.get(Interaction, interaction_id, populate_existing=True)
        if interaction is not None and interaction.card is not None:
            return interaction
        if time.monotonic() > deadline:
            return None
        session.rollback()
        time.sleep(0.05)

"""The timeline store: customers, identities, conversations, interactions, outbox, agents."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: sa.JSON, list[Any]: sa.JSON}


class Customer(Base):
    """One person, merged from the records of every connected system."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str | None] = mapped_column(sa.String(255))
    company: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    identities: Mapped[list["Identity"]] = relationship(back_populates="customer")


class Identity(Base):
    """A phone number, e-mail address or external record that belongs to a customer.

    `kind` is `phone` (E.164), `email`, `whatsapp` (E.164 of a WhatsApp sender) or
    `record`; a `record` identity has `system` set and `value` is the record id there.
    """

    __tablename__ = "identities"
    __table_args__ = (sa.UniqueConstraint("kind", "system", "value", name="uq_identity"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    system: Mapped[str] = mapped_column(sa.String(64), default="")
    value: Mapped[str] = mapped_column(sa.String(255))
    label: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="identities")


class DirectoryContact(Base):
    """A contact of the built-in directory connector, kept in Callcard's own database."""

    __tablename__ = "directory_contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    company: Mapped[str | None] = mapped_column(sa.String(255))
    phone: Mapped[str] = mapped_column(sa.String(64))
    phone_e164: Mapped[str] = mapped_column(sa.String(32), index=True)
    email: Mapped[str | None] = mapped_column(sa.String(255))
    owner_email: Mapped[str | None] = mapped_column(sa.String(255))
    tier: Mapped[str | None] = mapped_column(sa.String(64))
    notes: Mapped[str | None] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Agent(Base):
    """A person who answers calls and messages in the console."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(16), default="agent")
    team: Mapped[str] = mapped_column(sa.String(64), default="support")
    language: Mapped[str | None] = mapped_column(sa.String(8))
    answer_mode: Mapped[str] = mapped_column(sa.String(8), default="client")
    client_identity: Mapped[str | None] = mapped_column(sa.String(128))
    phone_number: Mapped[str | None] = mapped_column(sa.String(32))
    presence: Mapped[str] = mapped_column(sa.String(16), default="available")
    last_call_ended_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    crm_user_ids: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class Conversation(Base):
    """Messages of one customer on one channel, until closed or idle too long."""

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    channel: Mapped[str] = mapped_column(sa.String(16))
    address: Mapped[str] = mapped_column(sa.String(255), index=True)
    business_address: Mapped[str | None] = mapped_column(sa.String(255))
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    assigned_agent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("agents.id"))
    opened_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    last_inbound_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class Interaction(Base):
    """One call or message, inbound or outbound, on the customer's timeline.

    `provider_sid` is Twilio's CallSid or MessageSid and is unique, which makes
    webhook deliveries idempotent. `status_rank`, `status_sequence` and
    `status_timestamp` order status callbacks that arrive out of order.
    """

    __tablename__ = "interactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_sid: Mapped[str] = mapped_column(sa.String(64), unique=True)
    channel: Mapped[str] = mapped_column(sa.String(16))
    direction: Mapped[str] = mapped_column(sa.String(16), default="inbound")
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("conversations.id"), index=True
    )
    agent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("agents.id"), index=True)
    from_address: Mapped[str] = mapped_column(sa.String(255), default="")
    to_address: Mapped[str] = mapped_column(sa.String(255), default="")
    caller_kind: Mapped[str] = mapped_column(sa.String(16), default="phone")
    caller_e164: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    status: Mapped[str] = mapped_column(sa.String(32))
    status_rank: Mapped[int] = mapped_column(default=0)
    status_sequence: Mapped[int] = mapped_column(default=-1)
    status_timestamp: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    started_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    duration_seconds: Mapped[int | None] = mapped_column()
    body: Mapped[str | None] = mapped_column(sa.Text)
    media: Mapped[list[Any]] = mapped_column(sa.JSON, default=list)
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    error_code: Mapped[str | None] = mapped_column(sa.String(16))
    recording_url: Mapped[str | None] = mapped_column(sa.String(1024))
    recording_duration: Mapped[int | None] = mapped_column()
    transcription: Mapped[str | None] = mapped_column(sa.Text)
    notes: Mapped[str | None] = mapped_column(sa.Text)
    disposition: Mapped[str | None] = mapped_column(sa.String(64))
    chosen_match: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    routing: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    card: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    twiml: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class OutboxEntry(Base):
    """The sync state of one interaction with one connector.

    `state` is `pending`, `retrying`, `done` or `dead`. The row, not the Redis job,
    is the source of truth: a sweeper re-enqueues rows whose job was lost.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        sa.UniqueConstraint("interaction_id", "connector", "kind", name="uq_outbox_entry"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    interaction_id: Mapped[int] = mapped_column(sa.ForeignKey("interactions.id"), index=True)
    connector: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(16), default="log")
    state: Mapped[str] = mapped_column(sa.String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    external_id: Mapped[str | None] = mapped_column(sa.String(255))
    external_url: Mapped[str | None] = mapped_column(sa.String(1024))
    version: Mapped[int] = mapped_column(default=0)
    synced_version: Mapped[int] = mapped_column(default=-1)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

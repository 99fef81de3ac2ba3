"""The database is the queue: inbound activities and outbound deliveries, one row each."""

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from fedsph.models.base import Base, utcnow


class QueueColumns:
    """The columns every unit of work has: status, attempts, when to try next, lease, error."""

    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class InboxItem(QueueColumns, Base):
    """A verified activity as received; processed later by the worker.

    status: pending, done, ignored, failed.
    """

    __tablename__ = "inbox_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    activity_uri: Mapped[str] = mapped_column(String(2048), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    actor_uri: Mapped[str] = mapped_column(String(2048))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    # The actor's own key signed the request (not a relay's): its Update of itself is then as
    # fresh as a fetch (fedsph/actors.embedded_update_is_fresh).
    signed_by_actor: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The local actor whose own inbox received it (NULL: the shared inbox). A Create delivered
    # to a personal inbox addresses that account, named or not (Mastodon's delivered_to_account).
    delivered_to: Mapped[str | None] = mapped_column(String(2048))

    __table_args__ = (
        Index("ix_inbox_items_due", "status", "next_attempt_at"),
        # A claim looks for earlier pending items of the same sender (the ordering key,
        # fedsph/federation/queue.py claim_inbox_items).
        Index("ix_inbox_items_order", "actor_uri", "status", "id"),
    )


class Delivery(QueueColumns, Base):
    """One activity to one inbox. status: pending, sent, failed, gone."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    inbox: Mapped[str] = mapped_column(String(2048))
    host: Mapped[str] = mapped_column(String(255), index=True)
    last_status: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        UniqueConstraint("activity_id", "inbox", name="uq_deliveries_activity_inbox"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
    )


class HostState(Base):
    """How a remote host has been answering, so a dead host is paused rather than hammered."""

    __tablename__ = "host_states"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    paused_until: Mapped[datetime | None] = mapped_column(DateTime)
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime)

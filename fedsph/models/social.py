"""What other servers tell our members about: notifications, and reports (Flag) for the admin."""

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fedsph.models.base import Base, utcnow


class Notification(Base):
    """follow, follow_request, mention, favourite, reblog, for a local actor."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"),
                                              index=True)
    type: Mapped[str] = mapped_column(String(32))
    from_actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    # Indexed: a deleted post's notifications are deleted by it (fedsph.projects.tombstone).
    object_uri: Mapped[str | None] = mapped_column(String(2048), index=True)
    activity_uri: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    dismissed_at: Mapped[datetime | None] = mapped_column(DateTime)

    # One notification per activity and recipient: handling an activity twice notifies once.
    __table_args__ = (UniqueConstraint("activity_uri", "recipient_id",
                                       name="uq_notifications_activity_recipient"),)


class Report(Base):
    """A Flag received from another server, kept for the node admin."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    activity_uri: Mapped[str] = mapped_column(String(2048), unique=True)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("actors.id", ondelete="SET NULL"))
    target_id: Mapped[int | None] = mapped_column(ForeignKey("actors.id", ondelete="SET NULL"))
    object_uris: Mapped[list | None] = mapped_column(JSON)
    content: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)

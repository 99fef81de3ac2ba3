"""What the streaming API tells apps: one row per event, written with the change it reports."""

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fedsph.models.base import Base, utcnow


class StreamEvent(Base):
    """A post, edit, delete, boost or notification to stream (fedsph/projects/stream_events.py).

    Only ids: each stream renders the event itself, with its own account's visibility, when it
    reads the row (fedsph/api/streaming.py). No foreign keys, so the INSERT is all it costs;
    rows are pruned by the worker after STREAM_EVENT_RETENTION.
    """

    __tablename__ = "stream_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # update, status.update, delete, reblog, notification
    ref_id: Mapped[int] = mapped_column(Integer)  # objects, reactions or notifications .id
    actor_id: Mapped[int] = mapped_column(Integer)  # the author, booster or recipient
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

"""What the streaming API tells apps: one row per event, written with the change it reports."""

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fedsph.models.base import Base, utcnow


class StreamEvent(Base):
    """A post, edit, delete, boost, boost taken back or notification to stream
    (fedsph/projects/stream_events.py inserts them just before the commit).

    Ids, and for posts what the public and hashtag streams decide by (visibility, local, shown,
    tags) as it was at the change: a process decides those streams once per row with no query,
    and renders an entity only for the streams that want it (fedsph/api/stream_filters.py).
    No foreign keys and no trigger, so one INSERT per commit is all it costs the writer; rows
    are pruned by the worker after STREAM_EVENT_RETENTION. AUTOINCREMENT on SQLite: an id is
    never used twice, even after the prune empties the table (readers ask for id > the last).
    """

    __tablename__ = "stream_events"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # update, status.update, delete, reblog, unreblog, notification
    kind: Mapped[str] = mapped_column(String(16))
    # objects.id, reactions.id (reblog), the boost's status id (unreblog) or notifications.id
    ref_id: Mapped[int] = mapped_column(Integer)
    actor_id: Mapped[int] = mapped_column(Integer)  # the author, booster or recipient
    visibility: Mapped[str | None] = mapped_column(String(16))  # posts only, as below
    local: Mapped[bool | None] = mapped_column(Boolean)
    shown: Mapped[bool | None] = mapped_column(Boolean)  # not hidden and approved
    tags: Mapped[str | None] = mapped_column(String(1024))  # " a b ": lower case, no '#'
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

"""Events for the streaming API, written in the transaction of the change they report.

One `after_flush` listener sees every post stored or received (`update`), edited
(`status.update`) or deleted (`delete`), every boost (`reblog`) and every notification
(`notification`), whichever process made it: a client API request, a page, the CLI or the
worker handling another server's activity. So no call site needs a hook, and a change that is
rolled back streams nothing (its row goes with it). Each row holds only ids; a stream renders
it for its own account when it reads it (fedsph/api/streaming.py). The cost for a node with
nobody streaming is one INSERT per flush that touched a post, a boost or a notification; a
flush that touched none of them writes nothing (a loop over the flush's new and dirty rows).
Bulk UPDATE/DELETE statements (an actor deleted with its posts) are not seen: an app finds
those gone when it next reads.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, event, insert, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from fedsph.models import Notification, Object, Reaction, StreamEvent, utcnow

# An event older than this is of no use to a stream (each process reads new rows as they come);
# the worker's hourly housekeeping deletes them.
STREAM_EVENT_RETENTION = timedelta(minutes=10)


def _became_deleted(obj: Object) -> bool:
    history = inspect(obj).attrs.deleted_at.history
    return bool(history.added) and history.added[0] is not None \
        and not any(v is not None for v in history.deleted)


def _edited(obj: Object) -> bool:
    return obj.deleted_at is None and obj.updated is not None \
        and inspect(obj).attrs.updated.history.has_changes()


def events_of_flush(session: Session) -> list[dict]:
    """The events the flush that just ran makes: new rows first, then changed posts."""
    rows = []
    for item in session.new:
        if isinstance(item, Object) and item.deleted_at is None:
            rows.append({"kind": "update", "ref_id": item.id, "actor_id": item.actor_id})
        elif isinstance(item, Notification):
            rows.append({"kind": "notification", "ref_id": item.id,
                         "actor_id": item.recipient_id})
        elif isinstance(item, Reaction) and item.type == "Announce":
            rows.append({"kind": "reblog", "ref_id": item.id, "actor_id": item.actor_id})
    for item in session.dirty:
        if not isinstance(item, Object) or item.id is None:
            continue
        if _became_deleted(item):
            rows.append({"kind": "delete", "ref_id": item.id, "actor_id": item.actor_id})
        elif _edited(item):
            rows.append({"kind": "status.update", "ref_id": item.id, "actor_id": item.actor_id})
    return rows


def after_flush(session: Session, _context) -> None:
    rows = events_of_flush(session)
    if rows:
        now = utcnow()
        session.connection().execute(insert(StreamEvent.__table__), [{**r, "created_at": now}
                                                           for r in rows])


def connect(session_class: type[Session] = Session) -> None:
    """Install the listener (again is harmless); fedsph.app.connect_features calls it."""
    if not event.contains(session_class, "after_flush", after_flush):
        event.listen(session_class, "after_flush", after_flush)


async def prune_stream_events(db: AsyncSession) -> int:
    """Delete events older than STREAM_EVENT_RETENTION (the worker's housekeeping)."""
    result = await db.execute(delete(StreamEvent).where(
        StreamEvent.created_at < utcnow() - STREAM_EVENT_RETENTION))
    return result.rowcount or 0

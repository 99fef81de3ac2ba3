"""Events for the streaming API, written in the transaction of the change they report.

An `after_flush` listener sees every post stored or received (`update`), edited
(`status.update`) or deleted (`delete`), every boost (`reblog`) and boost taken back
(`unreblog`, streamed as a `delete` of the boost's status id) and every notification
(`notification`), whichever process made it: a client API request, a page, the CLI or the
worker handling another server's activity. So no call site needs a hook. The listener only
collects them in the session; a `before_commit` listener inserts them, with one multi-row
INSERT, just before the commit. Why that late: on PostgreSQL the ids are taken then, a few
milliseconds before they become visible, so a reader that sees id n+1 before id n waits for n
only that long (fedsph/api/stream_hub.py), however long the transaction ran. A change rolled
back (a savepoint included) streams nothing. A commit that touched no post, boost or
notification writes nothing.

Each row holds ids and what the public and hashtag streams decide by (visibility, local, shown,
tags) as they were at the change, so a process decides those streams once per row without a
query; a delete keeps the tags and flags its post had. Bulk UPDATE/DELETE statements (an actor
deleted with its posts) are not seen: an app finds those gone when it next reads.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, event, insert, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from fedsph.models import Notification, Object, Reaction, StreamEvent, utcnow

log = logging.getLogger("fedsph.streaming")

# An event older than this is of no use to a stream (each process reads new rows as they come);
# the worker's hourly housekeeping deletes them.
STREAM_EVENT_RETENTION = timedelta(minutes=10)
PENDING = "fedsph_stream_events"  # session.info: [(transaction, row)] not yet inserted
MAX_TAGS_TEXT = 1024
# One multi-row INSERT needs the same keys in every row: the post columns of the others.
NOT_A_POST = {"visibility": None, "local": None, "shown": None, "tags": None}


def _became_deleted(obj: Object) -> bool:
    history = inspect(obj).attrs.deleted_at.history
    return bool(history.added) and history.added[0] is not None \
        and not any(v is not None for v in history.deleted)


def _edited(obj: Object) -> bool:
    return obj.deleted_at is None and obj.updated is not None \
        and inspect(obj).attrs.updated.history.has_changes()


def _old(obj: Object, name: str):
    """The value before this flush (a tombstone has lost its tags by now)."""
    history = getattr(inspect(obj).attrs, name).history
    return history.deleted[0] if history.deleted else getattr(obj, name)


def tags_text(tags) -> str | None:
    """" a b " for tags [#A, b]: lower case, no '#', spaces around each (matched whole)."""
    names = {str(t.get("name") or "").lstrip("#").lower() for t in tags or []
             if isinstance(t, dict) and t.get("type") in ("Hashtag", "theme")}
    names.discard("")
    text = " " + " ".join(sorted(n for n in names if " " not in n)) + " "
    return text[:MAX_TAGS_TEXT] if names else None


def _post_row(kind: str, obj: Object, old: bool = False) -> dict:
    """A delete keeps what its post was before this flush; an update or edit is read again
    at the commit (fill_post), as a post may be held or hidden in a later flush."""
    value = (lambda name: _old(obj, name)) if old else (lambda name: getattr(obj, name))
    return {"kind": kind, "ref_id": obj.id, "actor_id": obj.actor_id,
            "visibility": value("visibility"), "local": bool(obj.local),
            "shown": not value("hidden") and bool(value("approved")),
            "tags": tags_text(value("tags")), "post": None if old else obj}


def fill_post(row: dict) -> dict:
    obj = row.pop("post", None)
    state = inspect(obj) if obj is not None else None
    if state is not None and not state.deleted and not state.was_deleted \
            and obj.deleted_at is None:
        row.update(_post_row(row["kind"], obj))
        row.pop("post")
    return row


def events_of_flush(session: Session) -> list[dict]:
    """The events the flush that just ran makes: new rows, changed posts, boosts taken back."""
    rows = []
    for item in session.new:
        if isinstance(item, Object) and item.deleted_at is None:
            rows.append(_post_row("update", item))
        elif isinstance(item, Notification):
            rows.append({"kind": "notification", "ref_id": item.id,
                         "actor_id": item.recipient_id})
        elif isinstance(item, Reaction) and item.type == "Announce":
            rows.append({"kind": "reblog", "ref_id": item.id, "actor_id": item.actor_id})
    for item in session.dirty:
        if not isinstance(item, Object) or item.id is None:
            continue
        if _became_deleted(item):
            rows.append(_post_row("delete", item, old=True))
        elif _edited(item):
            rows.append(_post_row("status.update", item))
    boosts = [item for item in session.deleted
              if isinstance(item, Reaction) and item.type == "Announce" and item.status_id]
    if boosts:
        rows.extend(_unreblogs(session, boosts))
    return rows


def _unreblogs(session: Session, boosts: list[Reaction]) -> list[dict]:
    """A boost taken back: a delete of its status id, with what its post is (a boost of a
    followers-only, hidden or held post was streamed nowhere, so is its delete). The posts are
    read here, one query for the flush's boosts: a caller's loaded copy may be gone from the
    identity map (it holds objects weakly), and an Undo of a Like loads no post for this."""
    uris = {boost.object_uri for boost in boosts}
    posts = {uri: (visibility, local, not hidden and bool(approved))
             for uri, visibility, local, hidden, approved in session.connection().execute(
                 select(Object.uri, Object.visibility, Object.local, Object.hidden,
                        Object.approved).where(Object.uri.in_(uris)))}
    rows = []
    for boost in boosts:
        visibility, local, shown = posts.get(boost.object_uri, (None, None, False))
        rows.append({"kind": "unreblog", "ref_id": boost.status_id, "actor_id": boost.actor_id,
                     "visibility": visibility, "local": None if local is None else bool(local),
                     "shown": shown, "tags": None})
    return rows


def after_flush(session: Session, _context) -> None:
    rows = events_of_flush(session)
    if rows:
        at = session.get_nested_transaction() or session.get_transaction()
        session.info.setdefault(PENDING, []).extend((at, row) for row in rows)


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    """A rolled-back savepoint takes its events with it; a whole rollback takes them all."""
    pending = session.info.get(PENDING)
    if not pending:
        return
    if previous.nested:
        pending[:] = [(at, row) for at, row in pending if not _within(at, previous)]
    else:
        pending.clear()


def before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: its events wait for the outer commit
    session.flush()  # the commit's own flush comes after this event: its events too
    pending = session.info.pop(PENDING, None)
    if pending:
        now = utcnow()
        session.connection().execute(insert(StreamEvent.__table__),
                                     [{**NOT_A_POST, **fill_post(row), "created_at": now}
                                      for _, row in pending])


def after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    """The events of a transaction end with it: a root committed while a savepoint was still
    open (before_commit saw the savepoint) must not leave them to the session's next one."""
    if transaction.parent is None:
        left = session.info.pop(PENDING, None)
        if left:
            log.warning("stream events: %d left at the end of a transaction, dropped", len(left))


def connect(session_class: type[Session] = Session) -> None:
    """Install the listeners (again is harmless); fedsph.app.connect_features calls it."""
    for name, listener in (("after_flush", after_flush), ("before_commit", before_commit),
                           ("after_soft_rollback", after_soft_rollback),
                           ("after_transaction_end", after_transaction_end)):
        if not event.contains(session_class, name, listener):
            event.listen(session_class, name, listener)


async def prune_stream_events(db: AsyncSession) -> int:
    """Delete events older than STREAM_EVENT_RETENTION (the worker's housekeeping)."""
    result = await db.execute(delete(StreamEvent).where(
        StreamEvent.created_at < utcnow() - STREAM_EVENT_RETENTION))
    return result.rowcount or 0

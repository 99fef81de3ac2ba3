"""One id space for statuses: posts (Object.id) and boosts (Reaction.status_id of an Announce).

The client API shows a boost as a status of its own (a reblog wrapper), and Mastodon apps key
statuses by id, page timelines by id (max_id, since_id, min_id) and expect a boost made now to
sort above every post made before it. So a boost takes its id from the same counter as posts,
at the moment it is stored.

Why not boosts as rows of `objects`: some forty queries select objects (timelines, pages,
search, feeds, federation lookups by URI) and each would need a filter to keep boosts out; one
forgotten filter would show a boost as a post. A nullable column on the reaction that already
records the boost, drawn from the objects' counter, changes only the queries that want boosts.

How the counter is shared, concurrency-safe on both engines:
- PostgreSQL: `objects.id` is a serial column; a boost takes `nextval` of the same sequence, so
  posts and boosts never share a number whatever the concurrency.
- SQLite: `objects.id` is a rowid without AUTOINCREMENT (the next one is the largest + 1, and
  the table cannot be rebuilt safely under its foreign keys). So each new post and boost takes
  its number from `status_counter`, one row holding the last number taken, in the INSERT's own
  transaction: fedsph's SQLite writers begin with BEGIN IMMEDIATE (fedsph.db), so no other
  writer runs between that UPDATE and the INSERT. The counter never goes back: an undone
  boost's number (the largest, say) is not given again, so an app's since_id or a cached
  wrapper id never names a newer status. It also passes the largest id of both tables, in
  case a row came in without it (a statement that bypasses the ORM, a restored table).
`fedsph db copy` sets the PostgreSQL sequence past the counter too (fedsph.admin.dbcopy).
"""

from __future__ import annotations

from sqlalchemy import Integer, event, text
from sqlalchemy.orm import Mapped, mapped_column

from fedsph.models.base import Base
from fedsph.models.content import Object, Reaction

NEXT_SQLITE = text("UPDATE status_counter SET n = max(n, "
                   "coalesce((SELECT max(id) FROM objects), 0), "
                   "coalesce((SELECT max(status_id) FROM reactions), 0)) + 1 RETURNING n")
# The counter's row made again when it is gone (SQL by hand, a database stamped past 0015
# without it): past every id of both tables, so no number is given twice.
RESEED_SQLITE = text("INSERT OR IGNORE INTO status_counter (id, n) VALUES (1, max("
                     "coalesce((SELECT max(id) FROM objects), 0), "
                     "coalesce((SELECT max(status_id) FROM reactions), 0)))")
NEXT_POSTGRESQL = text("SELECT nextval(pg_get_serial_sequence('objects', 'id'))")


class StatusCounter(Base):
    """One row (SQLite): the last status id taken, posts' and boosts' (seeded by migration
    0015). Unused on PostgreSQL, where the objects' sequence is the record."""

    __tablename__ = "status_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


def next_status_id(connection) -> int:
    """The next id of the shared space, on the caller's (writing) connection. Each call takes
    a new one, so two new statuses of one flush (whose before_insert hooks all run before
    their INSERTs) never share it; one taken in a transaction rolled back is not taken at all."""
    if connection.dialect.name == "postgresql":
        return connection.scalar(NEXT_POSTGRESQL)
    taken = connection.scalar(NEXT_SQLITE)
    if taken is None:  # no counter row: the UPDATE matched nothing
        connection.execute(RESEED_SQLITE)
        taken = connection.scalar(NEXT_SQLITE)
    return taken


def give_object_id(mapper, connection, target: Object) -> None:
    # PostgreSQL's serial default already draws from the shared sequence.
    if target.id is None and connection.dialect.name != "postgresql":
        target.id = next_status_id(connection)


def give_boost_id(mapper, connection, target: Reaction) -> None:
    if target.type == "Announce" and target.status_id is None:
        target.status_id = next_status_id(connection)


def connect() -> None:
    """Listen to new posts and boosts (again after a test left them out); twice is once."""
    for model, listener in ((Object, give_object_id), (Reaction, give_boost_id)):
        if not event.contains(model, "before_insert", listener):
            event.listen(model, "before_insert", listener)


connect()

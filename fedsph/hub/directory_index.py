"""Keeps the directory's index (fedsph/models/directory.py) in step with actors and memberships.

Whatever changes a listed project — a remote profile stored by federation, a local profile
edit, a membership approved, left or removed, an actor deleted — goes through a session flush,
so one `after_flush` listener re-derives the index rows of the actors it touched, in the same
transaction (a reader never sees a profile without its index, nor the reverse). Federation does
not import the hub: `connect(Session)` is called by fedsph.app.connect_features, like the
other hooks. Bulk statements bypass the unit of work: `do_orm_execute` bumps the generation
for those on actors, memberships and blocks, and rows of deleted actors go by ON DELETE CASCADE.

The values are computed here with the same functions the pure directory uses
(directory.searchable_text, directory.public_point), so the index says what the old in-Python
filtering said.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from types import SimpleNamespace

from sqlalchemy import delete, event, exists, insert, inspect, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from fedsph.federation.activitystreams import as_list
from fedsph.federation.blocks import host_of
from fedsph.hub import exports
from fedsph.hub.directory import LIST_FILTERS, fold, public_point, searchable_text
from fedsph.models import (
    Actor,
    Block,
    DirectoryEntry,
    DirectoryFacet,
    DirectoryState,
    Hub,
    HubMembership,
)

log = logging.getLogger("fedsph.directory")

ENTRY = DirectoryEntry.__table__
FACET = DirectoryFacet.__table__
STATE = DirectoryState.__table__
ACTOR = Actor.__table__
# SQLite's FTS5 search table; migration 0011 creates it under the same name (a migration runs no
# application code, so the name is spelled in both: change both together).
FTS_TABLE = "hub_directory_fts"
# Changing any of these changes what the directory shows about an actor.
ACTOR_FIELDS = ("name", "username", "summary", "name_map", "summary_map", "profile", "url",
                "uri", "local")
LIST_FIELDS = ("approach", "tenure", "themes", "languages")
WATCHED_TABLES = {"actors", "hub_memberships", "blocks"}
CHUNK = 500
BUMPED = "fedsph.directory_bumped"  # session.info: the transaction that moved the generation


def _strings(value) -> list[str]:
    return [v for v in as_list(value) if isinstance(v, str)]


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def entry_values(actor) -> dict:
    """The index row of one actor (an Actor or a row with the same attributes), hub apart."""
    profile = actor.profile if isinstance(actor.profile, dict) else {}
    point = public_point(actor)
    completed, planned = _int(profile.get("homes_completed")), _int(profile.get("homes_planned"))
    name = actor.name or actor.username
    values = {
        "actor_id": actor.id, "sort_name": fold(name), "uri": actor.uri,
        "host": host_of(actor.uri) or "", "local": bool(actor.local), "name": name,
        "name_map": actor.name_map if isinstance(actor.name_map, dict) else None,
        "url": actor.url or actor.uri,
        "country": profile["country"] if isinstance(profile.get("country"), str) else None,
        "region": profile.get("region") if isinstance(profile.get("region"), str) else None,
        "stage": profile["stage"] if isinstance(profile.get("stage"), str) else None,
        "lists": {key: _strings(profile.get(key)) for key in LIST_FIELDS},
        "homes_completed": completed if completed and completed > 0 else 0,
        "homes_planned": planned if planned and planned > 0 else 0,
        "homes_completed_raw": completed, "homes_planned_raw": planned,
        "latitude": point[0] if point else None, "longitude": point[1] if point else None,
        "precision": point[2] if point else None,
        "search_text": searchable_text(actor),
    }
    entry = SimpleNamespace(**values)
    return {**values, "feature": exports.feature_json(entry), "csv_row": exports.csv_chunk([entry])}


def facet_values(actor) -> set[tuple[str, str]]:
    """(facet, value) pairs: what the filters match and the filter form counts."""
    profile = actor.profile if isinstance(actor.profile, dict) else {}
    pairs = set()
    for name, key in LIST_FILTERS.items():
        for value in _strings(profile.get(key)):
            if name == "language":
                pairs.add(("language", value.split("-")[0].lower()[:255]))
                pairs.add(("language_tag", value.lower()[:255]))
            else:
                pairs.add((name, value[:255]))
    return pairs


# -- writing ---------------------------------------------------------------------------------------

def _is_sqlite(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def bump(conn: Connection) -> None:
    """Move the generation; recreate the counter's row if it is missing (an UPDATE of no row
    would leave every process's page cache stale for good, and nothing would say so)."""
    moved = conn.execute(update(STATE).where(STATE.c.id == 1)
                         .values(generation=STATE.c.generation + 1))
    if moved.rowcount == 0:
        ensure_state_row(conn)
        conn.execute(update(STATE).where(STATE.c.id == 1)
                     .values(generation=STATE.c.generation + 1))


def ensure_state_row(conn: Connection) -> bool:
    """Insert the generation counter's one row when it is missing (migration 0011 inserts it;
    someone may have emptied the table); True if it was missing. ON CONFLICT: two processes
    may find it missing at once (SQLite and PostgreSQL both take this syntax)."""
    if conn.execute(select(STATE.c.id).where(STATE.c.id == 1)).first() is not None:
        return False
    conn.exec_driver_sql(f"INSERT INTO {STATE.name} (id, generation) VALUES (1, 0) "
                         "ON CONFLICT (id) DO NOTHING")
    log.warning("%s had no row: recreated (page caches could not see changes meanwhile)",
                STATE.name)
    return True


def bump_once(session: Session) -> None:
    """Move the generation once per transaction: every process's caches see the change when it
    commits, and on PostgreSQL a transaction takes the counter's row lock once, not per flush
    (concurrent writers queue on that row until commit either way)."""
    conn = session.connection()  # begins the transaction if a bulk statement comes first
    root = session.get_transaction()
    if session.info.get(BUMPED) is not root:
        bump(conn)
        session.info[BUMPED] = root


def transaction_ended(session: Session, transaction) -> None:
    """Forget the bump when its transaction ends, and when a savepoint ends (a savepoint rolled
    back may have undone it: the next change bumps again, which is only one more write)."""
    if transaction.parent is None or transaction.nested:
        session.info.pop(BUMPED, None)


def reindex(conn: Connection, actor_ids: Iterable[int]) -> bool:
    """Re-derive the index rows of these actors: rows for each local hub they are an approved
    member of, none otherwise. True when any of them had or now has rows (most flushes touch
    actors no hub lists: the caller then leaves the shared counter alone)."""
    ids = sorted(set(actor_ids))
    changed = False
    for start in range(0, len(ids), CHUNK):
        changed = _reindex_chunk(conn, ids[start:start + CHUNK]) or changed
    return changed


def _reindex_chunk(conn: Connection, ids: list[int]) -> bool:
    """True when the chunk had or now has index rows."""
    # Most flushes touch actors no hub lists (a new actor, a membership requested): one read
    # instead of three deletes. Facets exist only beside an entry; a search row may outlive its
    # entry (a deleted actor's goes by ON DELETE CASCADE, the virtual table's does not).
    listed = ",".join(map(str, ids))  # ints: row ids
    if _is_sqlite(conn):  # as a driver statement: its text differs each time (no compile cache)
        had = conn.exec_driver_sql(
            f"SELECT actor_id FROM {ENTRY.name} WHERE actor_id IN ({listed}) UNION ALL "
            f"SELECT rowid FROM {FTS_TABLE} WHERE rowid IN ({listed}) LIMIT 1").first() is not None
    else:
        had = conn.execute(select(ENTRY.c.actor_id).where(ENTRY.c.actor_id.in_(ids))
                           .limit(1)).first() is not None
    if had:
        conn.execute(delete(FACET).where(FACET.c.actor_id.in_(ids)))
        conn.execute(delete(ENTRY).where(ENTRY.c.actor_id.in_(ids)))
        if _is_sqlite(conn):
            conn.exec_driver_sql(f"DELETE FROM {FTS_TABLE} WHERE rowid IN ({listed})")
    memberships = conn.execute(
        select(HubMembership.project_id, HubMembership.hub_id)
        .join(Hub, Hub.actor_id == HubMembership.hub_id)
        .where(HubMembership.project_id.in_(ids), HubMembership.state == "approved")).all()
    hubs_of: dict[int, list[int]] = {}
    for project_id, hub_id in memberships:
        hubs_of.setdefault(project_id, []).append(hub_id)
    if not hubs_of:
        return had
    actors = conn.execute(select(*(ACTOR.c[c] for c in ("id", *ACTOR_FIELDS)))
                          .where(ACTOR.c.id.in_(list(hubs_of)))).all()
    entries, facets, texts = [], [], []
    for actor in actors:
        values, pairs = entry_values(actor), facet_values(actor)
        texts.append({"rowid": actor.id, "text": values["search_text"]})
        for hub_id in hubs_of[actor.id]:
            entries.append({**values, "hub_id": hub_id})
            facets.extend({"hub_id": hub_id, "actor_id": actor.id, "facet": f, "value": v}
                          for f, v in pairs)
    conn.execute(insert(ENTRY), entries)
    if facets:
        conn.execute(insert(FACET), facets)
    if _is_sqlite(conn) and texts:
        conn.exec_driver_sql(f"INSERT INTO {FTS_TABLE}(rowid, text) VALUES (?, ?)",
                             [(t["rowid"], t["text"]) for t in texts])
    return True


def rebuild(conn: Connection) -> None:
    """The whole index from scratch: every approved member of every local hub."""
    conn.execute(delete(FACET))
    conn.execute(delete(ENTRY))
    if _is_sqlite(conn):
        conn.exec_driver_sql(f"DELETE FROM {FTS_TABLE}")
    members = conn.execute(select(HubMembership.project_id).distinct()
                           .join(Hub, Hub.actor_id == HubMembership.hub_id)
                           .where(HubMembership.state == "approved")).scalars().all()
    reindex(conn, members)
    bump(conn)
    if conn.dialect.name == "postgresql":
        # Fresh statistics after a bulk load: without them the planner takes the tables for
        # empty and nests loops over thousands of rows (seconds instead of milliseconds).
        conn.exec_driver_sql("ANALYZE hub_directory")
        conn.exec_driver_sql("ANALYZE hub_directory_facets")


def unindexed_member(conn: Connection):
    """An approved member of a local hub that has no index row for it, if any (an index that
    migration 0011 created empty on a node that already had members; the index is kept by
    the hook afterwards)."""
    return conn.execute(
        select(HubMembership.project_id).join(Hub, Hub.actor_id == HubMembership.hub_id)
        .where(HubMembership.state == "approved", ~exists(select(ENTRY.c.actor_id).where(
            ENTRY.c.hub_id == HubMembership.hub_id,
            ENTRY.c.actor_id == HubMembership.project_id)))
        .limit(1)).first()


def rebuild_if_needed(conn: Connection) -> bool:
    """Fill the index when members lack rows (run at start-up, see fedsph.app); True if it did.
    The counter's row is written (locked) before the second look, so two processes starting
    together rebuild once; a missing counter row is recreated first.

    This is what a migration that changes what the index keeps relies on: it must empty
    `hub_directory` itself (plain SQL), not only the FTS table, because only members without
    a `hub_directory` row trigger the rebuild."""
    ensure_state_row(conn)
    if unindexed_member(conn) is None:
        return False
    bump(conn)
    if unindexed_member(conn) is None:
        return False
    rebuild(conn)
    return True


# -- the hook --------------------------------------------------------------------------------------

def _changed(obj) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in ACTOR_FIELDS)


def touched_actors(session: Session) -> tuple[set[int], set[int], bool]:
    """Actor ids whose index rows may have changed in this flush, hub actors that became (or
    stopped being) this node's hub, and whether blocks changed."""
    ids: set[int] = set()
    hubs: set[int] = set()
    blocks = False
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Hub):
            hubs.add(obj.actor_id)
        elif isinstance(obj, Actor):
            # A new actor has no index rows nor memberships yet (both go with a deleted actor by
            # ON DELETE CASCADE, so even a reused SQLite id has none; a search row it might
            # inherit matches no entry, and is replaced when it is listed). A membership made
            # in the same flush adds its id below. Most new actors are remote senders.
            if obj in session.deleted or (obj not in session.new and _changed(obj)):
                ids.add(obj.id)
        elif isinstance(obj, HubMembership):
            ids.add(obj.project_id)
        elif isinstance(obj, Block):
            blocks = True
    ids.discard(None)
    return ids, hubs, blocks


def hub_actor_ids(conn: Connection) -> set[int]:
    """This node's hub actors: one look at a table of a row or two. A node without a hub keeps
    no index, so its flushes write nothing for it."""
    return set(conn.execute(select(Hub.actor_id)).scalars())


def after_flush(session: Session, _context) -> None:
    ids, hubs, blocks = touched_actors(session)
    if not (ids or hubs or blocks):
        return
    conn = session.connection()
    hub_actors = hub_actor_ids(conn)
    if not hubs and not hub_actors:
        return
    if hubs:  # its members, approved before it was a hub here, are listed now (or not)
        ids.update(conn.execute(select(HubMembership.project_id).where(
            HubMembership.hub_id.in_(hubs))).scalars())
    changed = reindex(conn, ids)
    # Blocked members are left out when read; the hub's name heads its pages. The hubs are
    # compared in Python: a flush may touch more ids than a statement may bind (~32,000).
    if changed or hubs or blocks or not ids.isdisjoint(hub_actors):
        bump_once(session)


def on_bulk_statement(state) -> None:
    """An UPDATE or DELETE statement on actors, memberships or blocks, run without the unit of
    work (an actor deleting its account, an unblock): the cached views may be stale."""
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in WATCHED_TABLES:
        bump_once(state.session)


def connect(session_class: type[Session] = Session) -> None:
    """Install the listeners (again is harmless)."""
    for name, listener in (("after_flush", after_flush), ("do_orm_execute", on_bulk_statement),
                           ("after_transaction_end", transaction_ended)):
        if not event.contains(session_class, name, listener):
            event.listen(session_class, name, listener)

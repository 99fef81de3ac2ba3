"""The signing keys of remote actors, held in memory so the inbox verifies without the database.

key id -> (actor URI, domain, public key PEM, fetched_at), least recently used first out, each
entry kept at most `ttl` seconds (FEDSPH_KEY_CACHE_SECONDS, default 60). The database stays
the truth; this is a copy of what was read from it or written to it:

One cache per database (`keys_for`), so two nodes in one process never share keys.

- In this process, storing an actor (fedsph/federation/actors.py `store_remote_actor`) drops its
  entries when that transaction ends (`forget_when_committed`), and a read from the database
  that began before a change (an `epoch` ago) puts nothing: it may hold the row being
  replaced. The inbox puts the key it fetched and stored after the commit.
- A signature that fails against a cached key is checked against the database's copy before
  anything is fetched, so a key another process refetched is used at once.
- An actor deleted by another process (its Delete handled by `fedsph worker`) is still believed
  for at most `ttl` seconds here; the inbox marks an actor whose Delete of itself it accepts,
  and its key is then read from the database (never cached) for `ttl` seconds, as before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from cachetools import TTLCache
from sqlalchemy import event

from fedsph.db import database_name

CACHE_SIZE = 4096  # keys of as many senders; an entry is about 1 KB (a PEM and two URIs)
DEFAULT_TTL = 60.0


@dataclass(frozen=True)
class CachedKey:
    """What verifying a request needs of its signer."""

    key_id: str
    uri: str
    domain: str
    public_key_pem: str | None
    fetched_at: datetime | None


class KeyCache:
    """An LRU of CachedKey with a time-to-live; `timer` is replaceable for tests."""

    def __init__(self, ttl: float = DEFAULT_TTL, size: int = CACHE_SIZE, timer=time.monotonic):
        self.ttl = ttl
        self._timer = timer
        self._keys: TTLCache[str, CachedKey] = TTLCache(size, max(ttl, 1e-9), timer=timer)
        # Actors whose Delete of themselves was accepted: never cached while it may be pending.
        self._deleting: TTLCache[str, bool] = TTLCache(size, max(ttl, 1e-9), timer=timer)
        # Moved by every change of an actor in this process: a database read that started
        # before one (put(entry, epoch) with the epoch it read first) may be of the old row.
        self.epoch = getattr(self, "epoch", 0) + 1

    def configure(self, ttl: float) -> None:
        """A new, empty cache with this time-to-live (0: nothing is kept)."""
        self.__init__(ttl, self._keys.maxsize, self._timer)

    def get(self, key_id: str) -> CachedKey | None:
        return self._keys.get(key_id)

    def put(self, entry: CachedKey, epoch: int | None = None) -> None:
        """Keep `entry`; read from the database, with the `epoch` taken before that read."""
        if self.ttl > 0 and entry.uri not in self._deleting and epoch in (None, self.epoch):
            self._keys[entry.key_id] = entry

    def forget_actor(self, uri: str) -> None:
        """Drop every key of the actor at `uri` (its row changed or went in this process)."""
        self.epoch += 1
        for key_id in list(self._keys):  # (an entry may expire meanwhile: .get, never [])
            entry = self._keys.get(key_id)
            if entry is not None and entry.uri == uri:
                self._keys.pop(key_id, None)

    def deleting(self, uri: str) -> None:
        """The actor asked to be deleted: forget its keys and keep none for `ttl` seconds."""
        self.forget_actor(uri)
        if self.ttl > 0:
            self._deleting[uri] = True

    def clear(self) -> None:
        self._keys.clear()
        self._deleting.clear()


# One cache per database in this process (the inbox, signed fetches and the in-process worker of
# a node share it; two nodes in one process, as in tests, do not). Empty until used.
_CACHES: dict[str, KeyCache] = {}


def keys_for(bind) -> KeyCache:
    """The cache of the database behind `bind` (an engine: a session's `.bind`)."""
    name = database_name(bind)
    cache = _CACHES.get(name)
    if cache is None:
        cache = _CACHES[name] = KeyCache()
    return cache



PENDING = "fedsph_keys_to_forget"  # session.info: {(KeyCache, actor URI)} to forget at its end


def forget_when_committed(db, uri: str) -> None:
    """The keys of the actor at `uri`, whose row `db` (an AsyncSession) is changing, are
    dropped now and again when the transaction ends (committed or not: a rollback only costs a
    read), and no read under way puts the old row's key meanwhile (the epoch moves with each).
    Now too, as the end's drop could be missed: SQLAlchemy signals the end after giving the
    connection back, which can fail or be cancelled after the commit. A worker's handler
    transaction stays open while it runs; an inbox request may read the old row meanwhile.

    One listener per session, whatever the number of actors and transactions; it acts at the
    end of the outermost transaction only, never at a savepoint's."""
    keys = keys_for(db.bind)
    keys.forget_actor(uri)
    session = db.sync_session
    pending = session.info.get(PENDING)
    if pending is None:
        pending = session.info[PENDING] = set()
        event.listen(session, "after_transaction_end", _forget_pending)
    pending.add((keys, uri))


def _forget_pending(session, transaction) -> None:
    if transaction.parent is not None:
        return
    pending = session.info.get(PENDING, set())
    try:
        for keys, uri in list(pending):
            keys.forget_actor(uri)
    finally:
        pending.clear()

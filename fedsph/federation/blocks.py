"""Node-wide blocks: which host names a domain block covers, and the one query that asks.

A block of `evil.example` covers every name under it (`a.evil.example`) on any port. Host names
are compared in one form: lower case, no trailing dot, no port, IDNA (punycode) for non-ASCII,
so `EVIL.example.`, `evil.example:8443` and a full-width spelling are the same host. Domains
are stored in that form too, so the inbox asks with one `IN (…)` of the host and its parents.
Only admins change blocks (fedsph/web/project_manage.py and the CLI check that before calling).

The inbox asks `snapshot_for(engine)` instead of the database: every block, loaded in one query and reloaded
when older than FEDSPH_BLOCK_REFRESH_SECONDS (default 5). A block added or lifted in this
process (block_account, block_domain, unblock) reloads it at the next request after the commit;
one added by another process (the CLI, another `fedsph serve`) takes effect here within that time.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import time
from urllib.parse import urlsplit

from sqlalchemy import delete, event, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedsph.core.safe_links import http_url, origin
from fedsph.db import database_name
from fedsph.errors import UserError
from fedsph.models import Actor, Block, Follow

HOST_MAX = 253


def normalise_host(raw: str | None) -> str | None:
    """`Evil.Example.` or `ｅvil.example` -> `evil.example`; an IP in its short form; None if
    `raw` is not a host name (no port: use `host_of` for URLs and `parse_domain` for input)."""
    return _normalise_host(raw) if isinstance(raw, str) else None


@functools.lru_cache(maxsize=4096)  # pure; the inbox asks it for the same few hosts all the time
def _normalise_host(raw: str) -> str | None:
    host = (raw or "").strip().strip("[]").rstrip(".")
    if not host or len(host) > HOST_MAX:
        return None
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        pass
    try:
        # Python's IDNA codec applies nameprep: case folding and compatibility mapping, so
        # look-alike spellings our HTTP client would send to the same host compare equal.
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    if any(not label or not label.replace("-", "").replace("_", "").isalnum()
           for label in ascii_host.split(".")):
        return None
    return ascii_host


def host_of(uri: str | None) -> str | None:
    """The normalised host of a URL (port, user info and path dropped); None if it has none."""
    try:
        return normalise_host(urlsplit(uri or "").hostname)
    except ValueError:
        return None


def parse_domain(raw: str) -> str:
    """A domain as someone types it (`https://Example.org/path`, `@user@example.org`,
    `example.org:8443`) -> `example.org`. UserError if it is not a domain."""
    text = raw.strip()
    if "://" not in text:
        text = "//" + text.rsplit("@", 1)[-1]
    host = host_of(text)
    if host is None or ("." not in host and ":" not in host):
        raise UserError("not a domain")
    return host


def parent_domains(host: str) -> list[str]:
    """`a.evil.example` -> [`a.evil.example`, `evil.example`, `example`]: the blocks that cover it."""
    if ":" in host or host.replace(".", "").isdigit():
        return [host]  # an IP address has no parents
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def covers(domain: str, host: str | None) -> bool:
    """True if a block of `domain` (normalised) applies to `host` (normalised)."""
    return host is not None and domain in parent_domains(host)


async def is_blocked(db: AsyncSession, actor_uri: str) -> bool:
    """True if the actor, or its host or any parent domain of it, is blocked. One query.

    A URI whose host cannot be read in the one form (`ev%69l.example`) counts as blocked: what
    another parser would make of it is exactly what a block must not have to guess."""
    host = host_of(actor_uri)
    if host is None:
        return True
    return await db.scalar(select(Block.id).where(or_(
        Block.actor_uri == actor_uri, Block.domain.in_(parent_domains(host)))).limit(1)) is not None


class BlockSnapshot:
    """Every block of the node, in memory: the rules of `is_blocked` without a query."""

    def __init__(self, max_age: float = 5.0, timer=time.monotonic):
        self.max_age = max_age
        self._timer = timer
        self.accounts: frozenset[str] = frozenset()
        self.domains: frozenset[str] = frozenset()
        self._loaded_at: float | None = None  # None: never loaded, or stale
        self._generation = 0  # bumped by invalidate(), so a load that raced it is not trusted
        self._lock: asyncio.Lock | None = None

    def invalidate(self) -> None:
        self._loaded_at = None
        self._generation += 1

    def fresh(self) -> bool:
        return self._loaded_at is not None and self._timer() - self._loaded_at < self.max_age

    async def blocks(self, readers: async_sessionmaker[AsyncSession], *uris: str) -> bool:
        """True if any URI is blocked (as `is_blocked` decides), reloading the snapshot first
        when it is stale."""
        if not self.fresh():
            await self._reload(readers)
        return any(self._blocks(uri) for uri in uris)

    async def blocks_server(self, readers: async_sessionmaker[AsyncSession], url: str) -> bool:
        """True if the server of `url` (an inbox: it names no account) is blocked."""
        if not self.fresh():
            await self._reload(readers)
        return _host_blocked(self.domains, url)

    def _blocks(self, uri: str) -> bool:
        return uri in self.accounts or _host_blocked(self.domains, uri)

    async def _reload(self, readers: async_sessionmaker[AsyncSession]) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()  # made on first use, inside the running loop
        async with self._lock:
            if self.fresh():
                return  # another request reloaded it while this one waited
            generation, started = self._generation, self._timer()
            async with readers() as db:
                rows = (await db.execute(select(Block.actor_uri, Block.domain))).all()
            self.accounts = frozenset(row.actor_uri for row in rows if row.actor_uri)
            self.domains = frozenset(row.domain for row in rows if row.domain)
            if generation == self._generation:
                self._loaded_at = started


# One snapshot per database in this process (two nodes in one process, as in tests, keep their
# own); each is empty until first used.
_SNAPSHOTS: dict[str, BlockSnapshot] = {}


def snapshot_for(bind) -> BlockSnapshot:
    """The snapshot of the database behind `bind` (an engine: a session's `.bind`)."""
    name = database_name(bind)
    snapshot = _SNAPSHOTS.get(name)
    if snapshot is None:
        snapshot = _SNAPSHOTS[name] = BlockSnapshot()
    return snapshot


def _reload_after_commit(db: AsyncSession) -> None:
    """The snapshot is reloaded once this change is committed (and now, in case it is already)."""
    db.info.pop(SESSION_BLOCKS, None)  # this transaction's reads of the blocks, too
    snapshot = snapshot_for(db.bind)
    snapshot.invalidate()
    event.listen(db.sync_session, "after_commit", lambda _session: snapshot.invalidate(),
                 once=True)


async def fetchable(db: AsyncSession, uri: str | None) -> bool:
    """True when a URI that came in an activity may be fetched: an http(s) URL of an account and
    server that are not blocked. A followed account's boost, reply or Move must not make us ask
    a blocked server for anything (nor keep what it would answer)."""
    url = http_url(uri)
    return url is not None and not await is_blocked(db, url)


async def is_blocked_domain(db: AsyncSession, domain: str) -> bool:
    """True if a server named by its domain (`host` or `host:port`, as Actor.domain keeps it) is
    blocked; an unreadable name counts as blocked, as in is_blocked."""
    host = host_of("//" + domain)
    if host is None:
        return True
    return await db.scalar(select(Block.id).where(
        Block.domain.in_(parent_domains(host))).limit(1)) is not None


async def unblocked(db: AsyncSession, recipients: list[Actor]) -> list[Actor]:
    """The recipients we may deliver to: nothing of ours goes to a blocked account or server,
    whoever addresses it (a mention, a reply, an old follow), nor to a remote actor whose inbox
    names a blocked host or this node (its document chose the inbox; our own actors are reached
    as local rows, never over HTTP)."""
    remote = [actor for actor in recipients if not actor.local]
    if not remote:
        return recipients
    accounts, domains = await _blocks_of_transaction(db)
    own = await _own_origin(db)
    return [actor for actor in recipients if actor.local or (
        actor.uri not in accounts and origin(actor.delivery_inbox) != own
        and not any(_host_blocked(domains, uri) for uri in (actor.uri, actor.delivery_inbox)))]


SESSION_BLOCKS = "fedsph.blocks"  # session.info: (transaction, accounts, domains) read in it


async def _blocks_of_transaction(db: AsyncSession) -> tuple[set[str], set[str]]:
    """Every block, read once per transaction (one that sends several activities reads them
    once). Not across transactions: a block committed meanwhile counts from the next one on.
    Blocking here (block_account, block_domain, unblock) drops what was read. The innermost
    savepoint is the key, so what was read inside a savepoint that rolled back (an unblock
    undone) is read again."""
    session = db.sync_session
    transaction = session.get_nested_transaction() or session.get_transaction()
    held = db.info.get(SESSION_BLOCKS)
    if transaction is None or held is None or held[0] is not transaction:
        rows = (await db.execute(select(Block.actor_uri, Block.domain))).all()
        transaction = session.get_nested_transaction() or session.get_transaction()
        held = (transaction, {row.actor_uri for row in rows if row.actor_uri},
                {row.domain for row in rows if row.domain})
        db.info[SESSION_BLOCKS] = held
    return held[1], held[2]


# This node's origin, per database (as _SNAPSHOTS): the origin of its actors, which the node's
# URL fixes while it runs; read once per process, not once per transaction that sends.
_OWN_ORIGINS: dict[str, str] = {}


async def _own_origin(db: AsyncSession) -> str | None:
    """The origin of this node's actors (None while it has none: not kept, asked again)."""
    name = database_name(db.bind)
    if name not in _OWN_ORIGINS:
        found = origin(await db.scalar(select(Actor.uri).where(Actor.local.is_(True)).limit(1)))
        if found is None:
            return None
        _OWN_ORIGINS[name] = found
    return _OWN_ORIGINS[name]


def _host_blocked(domains: set[str], uri: str | None) -> bool:
    """The URI's host is covered by one of `domains`, or cannot be read (counts as blocked)."""
    host = host_of(uri)
    return host is None or bool(domains.intersection(parent_domains(host)))


async def block_account(db: AsyncSession, actor: Actor) -> None:
    """Block one remote actor; it no longer follows nor is followed by anyone here."""
    if await db.scalar(select(Block.id).where(Block.actor_uri == actor.uri)) is None:
        db.add(Block(actor_uri=actor.uri))
        _reload_after_commit(db)
    await _drop_follows(db, [actor.id])


async def block_domain(db: AsyncSession, domain: str) -> None:
    """Block a normalised domain and all names under it; their follows here are dropped."""
    if await db.scalar(select(Block.id).where(Block.domain == domain)) is None:
        db.add(Block(domain=domain))
        _reload_after_commit(db)
    # Actor.domain keeps the host as it was sent (with port, maybe not IDNA): test the URIs.
    related = select(Follow.follower_id).union(select(Follow.followed_id))
    candidates = await db.execute(select(Actor.id, Actor.uri).where(
        Actor.local.is_(False), Actor.id.in_(related)))
    await _drop_follows(db, [row.id for row in candidates if covers(domain, host_of(row.uri))])


async def unblock(db: AsyncSession, block_id: int) -> bool:
    """Lift a block by its id; False if there was none."""
    _reload_after_commit(db)
    return (await db.execute(delete(Block).where(Block.id == block_id))).rowcount > 0


async def get_blocks(db: AsyncSession) -> list[Block]:
    """All blocks, newest first."""
    return list(await db.scalars(select(Block).order_by(Block.id.desc())))


async def _drop_follows(db: AsyncSession, actor_ids: list[int]) -> None:
    if actor_ids:
        await db.execute(delete(Follow).where(or_(Follow.follower_id.in_(actor_ids),
                                                  Follow.followed_id.in_(actor_ids))))

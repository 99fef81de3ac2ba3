"""The inbox's in-memory copies: signing keys (fedsph/federation/keycache.py) and blocks
(fedsph/federation/blocks.py BlockSnapshot). Changes made in this process count at once;
changes another process makes to the database count within the documented bound."""

import asyncio
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select, update

from fedsph.federation import blocks
from fedsph.federation.actors import (
    get_cached_key_owner,
    parse_actor_document,
    remember_key,
    store_remote_actor,
)
from fedsph.federation.keycache import CachedKey, KeyCache, keys_for
from fedsph.models import Actor, Block, utcnow
from tests.support.db import inbox_items, store_remote
from tests.support.inbox import follow, project_and_sender

FETCHED = utcnow()


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def key(n: int, uri: str = "https://peer.example/users/a") -> CachedKey:
    return CachedKey(f"{uri}#key{n}", uri, "peer.example", f"PEM {n}", FETCHED)


def test_key_cache_expires_and_is_bounded():
    clock = Clock()
    cache = KeyCache(ttl=60, size=2, timer=clock)
    cache.put(key(1))
    clock.now += 59
    assert cache.get(key(1).key_id) == key(1)
    clock.now += 2
    assert cache.get(key(1).key_id) is None  # older than its time-to-live
    cache.put(key(1))
    cache.put(key(2))
    cache.get(key(1).key_id)  # used: key 2 is now the least recently used
    cache.put(key(3))
    assert cache.get(key(2).key_id) is None
    assert cache.get(key(1).key_id) is not None and cache.get(key(3).key_id) is not None


def test_an_actor_deleting_itself_is_not_cached_for_a_while():
    clock = Clock()
    cache = KeyCache(ttl=60, timer=clock)
    cache.put(key(1))
    cache.put(key(2, uri="https://peer.example/users/b"))
    cache.deleting("https://peer.example/users/a")
    assert cache.get(key(1).key_id) is None
    cache.put(key(1))
    assert cache.get(key(1).key_id) is None  # read from the database until it is gone
    assert cache.get(key(2, uri="https://peer.example/users/b").key_id) is not None
    clock.now += 61
    cache.put(key(1))
    assert cache.get(key(1).key_id) is not None


def test_a_zero_lifetime_keeps_nothing():
    cache = KeyCache(ttl=0)
    cache.put(key(1))
    assert cache.get(key(1).key_id) is None


async def test_key_is_read_once_then_served_from_memory_and_dropped_when_stored(node, peer):
    alice = peer.add_actor("alice")
    await store_remote(node, alice.document)
    keys = keys_for(node.writers.kw["bind"])
    assert keys.get(alice.key_id) is None  # storing an actor drops, never fills
    async with node.readers() as db:
        first = await get_cached_key_owner(db, alice.key_id)
    assert keys.get(alice.key_id) == first and first.uri == alice.uri
    # Another process changes the row: this process keeps its copy (bounded by the lifetime)…
    async with node.writers() as db, db.begin():
        await db.execute(update(Actor).where(Actor.uri == alice.uri)
                         .values(public_key_pem="changed elsewhere"))
    async with node.readers() as db:
        assert (await get_cached_key_owner(db, alice.key_id)).public_key_pem == alice.public_pem
        # … unless asked for the database's copy, as the inbox does when a signature fails.
        fresh = await get_cached_key_owner(db, alice.key_id, fresh=True)
    assert fresh.public_key_pem == "changed elsewhere"
    # Stored in this process (a refetch): dropped at once.
    await store_remote(node, alice.document)
    assert keys.get(alice.key_id) is None


async def test_a_key_cached_while_its_row_is_replaced_is_dropped_at_the_commit(node, peer):
    # The worker refreshes an actor inside its handler's transaction; an inbox request in the
    # meantime reads the row still committed (the old key) and caches it.
    alice = peer.add_actor("alice")
    await store_remote(node, alice.document)
    keys = keys_for(node.writers.kw["bind"])
    old = CachedKey(alice.key_id, alice.uri, "old.example", "the old PEM", FETCHED)
    async with node.writers() as db, db.begin():
        await store_remote_actor(db, parse_actor_document(alice.document))
        keys.put(old)  # the request in between
        assert keys.get(alice.key_id) == old
    assert keys.get(alice.key_id) is None  # dropped when the new row was committed


async def test_a_read_begun_before_a_change_puts_nothing(node, peer):
    # The inbox read the old row, then the actor was replaced and committed, then the read's
    # answer comes back: it must not be cached.
    alice = peer.add_actor("alice")
    await store_remote(node, alice.document)
    keys = keys_for(node.writers.kw["bind"])
    epoch = keys.epoch  # taken before the read, as get_cached_key_owner does
    await store_remote(node, alice.document)
    keys.put(CachedKey(alice.key_id, alice.uri, "peer.example", "the old PEM", FETCHED), epoch)
    assert keys.get(alice.key_id) is None


async def test_a_key_remembered_after_a_newer_change_is_not_kept(node, peer):
    # The inbox stored what it fetched and committed; before it remembers the key, the worker
    # stores a newer document of the same actor: the inbox's (older) key is not cached.
    alice = peer.add_actor("alice")
    await store_remote(node, alice.document)
    bind = node.writers.kw["bind"]
    keys = keys_for(bind)
    epoch = keys.epoch  # as the inbox reads it after its commit
    await store_remote(node, alice.document)  # the worker's newer store
    remember_key(bind, {"key_id": alice.key_id, "uri": alice.uri, "domain": "peer.example",
                        "public_key_pem": "the older PEM"}, FETCHED, epoch)
    assert keys.get(alice.key_id) is None
    remember_key(bind, {"key_id": alice.key_id, "uri": alice.uri, "domain": "peer.example",
                        "public_key_pem": alice.public_pem}, FETCHED, keys.epoch)
    assert keys.get(alice.key_id).public_key_pem == alice.public_pem


async def test_a_savepoint_does_not_end_the_wait_and_one_listener_serves_a_session(node, peer):
    alice, bob = peer.add_actor("alice"), peer.add_actor("bob")
    keys = keys_for(node.writers.kw["bind"])
    old = CachedKey(alice.key_id, alice.uri, "peer.example", "the old PEM", FETCHED)
    async with node.writers() as db:
        for _ in range(3):  # several transactions of one session, each storing actors
            async with db.begin():
                async with db.begin_nested():
                    await store_remote_actor(db, parse_actor_document(alice.document))
                await store_remote_actor(db, parse_actor_document(bob.document))
                keys.put(old)  # after the savepoint's release, before the commit
                assert keys.get(alice.key_id) == old
            assert keys.get(alice.key_id) is None
        listeners = [fn for fn in db.sync_session.dispatch.after_transaction_end
                     if fn.__name__ == "_forget_pending"]
    assert len(listeners) == 1


async def test_a_key_rotated_by_another_process_is_used_at_once(node, peer):
    project, alice, inbox = await project_and_sender(node, peer)
    assert (await peer.post(alice, inbox, follow(peer, alice, project.uri)))[0] == 202
    fetches = len(peer.gets())
    # Another process refetched the rotated key and stored it: our cached copy is the old one.
    peer.rotate_key(alice)
    async with node.writers() as db, db.begin():
        await db.execute(update(Actor).where(Actor.uri == alice.uri)
                         .values(public_key_pem=alice.public_pem))
    assert (await peer.post(alice, inbox, follow(peer, alice, project.uri)))[0] == 202
    assert len(peer.gets()) == fetches  # the database's copy verified it: nothing fetched
    assert len(await inbox_items(node)) == 2


async def test_a_deleted_actor_is_refetched_not_believed_from_memory(node, peer):
    project, alice, inbox = await project_and_sender(node, peer)
    assert (await peer.post(alice, inbox, follow(peer, alice, project.uri)))[0] == 202
    delete_self = {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.new_id(),
                   "type": "Delete", "actor": alice.uri, "object": alice.uri}
    assert (await peer.post(alice, inbox, delete_self))[0] == 202
    await node.run_worker()  # the Delete is handled: the row is gone
    async with node.readers() as db:
        assert await get_cached_key_owner(db, alice.key_id) is None
    del peer.actors["alice"]  # its server answers 404 for it now
    status, _ = await peer.post(alice, inbox, follow(peer, alice, project.uri))
    assert status == 401
    assert len(await inbox_items(node)) == 2


async def test_handling_an_account_delete_drops_its_key_from_memory(node, peer):
    # Review: a Delete that waits in the queue longer than the "deleting" mark lasts lets a
    # request cache the key again; handling the Delete must drop it, not leave it trusted.
    project, alice, inbox = await project_and_sender(node, peer)
    assert (await peer.post(alice, inbox, follow(peer, alice, project.uri)))[0] == 202
    delete_self = {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.new_id(),
                   "type": "Delete", "actor": alice.uri, "object": alice.uri}
    assert (await peer.post(alice, inbox, delete_self))[0] == 202
    cache = keys_for(node.readers.kw["bind"])
    cache._deleting.clear()  # the mark has run out
    cache.put(CachedKey(alice.key_id, alice.uri, peer.domain, "PEM", FETCHED))
    await node.run_worker()
    assert cache.get(alice.key_id) is None


async def test_a_block_added_in_this_process_counts_at_once(node, peer):
    project, alice, inbox = await project_and_sender(node, peer)
    assert (await peer.post(alice, inbox, follow(peer, alice, project.uri)))[0] == 202
    snapshot = blocks.snapshot_for(node.writers.kw["bind"])
    assert snapshot.fresh()
    async with node.writers() as db, db.begin():
        await blocks.block_domain(db, blocks.parse_domain(peer.domain))
    assert (await peer.post(alice, inbox, follow(peer, alice, project.uri)))[0] == 202
    assert len(await inbox_items(node)) == 1  # dropped: the snapshot was reloaded
    async with node.writers() as db, db.begin():
        for block in await blocks.get_blocks(db):
            await blocks.unblock(db, block.id)
    assert (await peer.post(alice, inbox, follow(peer, alice, project.uri)))[0] == 202
    assert len(await inbox_items(node)) == 2


async def test_a_block_written_by_another_process_counts_within_the_bound(node):
    clock = Clock()
    snapshot = blocks.BlockSnapshot(max_age=5, timer=clock)
    account = "https://bad.example:8443/users/x"
    assert not await snapshot.blocks(node.readers, account)
    # What `fedsph block domain` in another process does: a row, and no word to this process.
    async with node.writers() as db, db.begin():
        db.add(Block(domain="bad.example"))
    clock.now += 4.9
    assert not await snapshot.blocks(node.readers, account)  # within the bound: not yet seen
    clock.now += 0.2
    assert await snapshot.blocks(node.readers, account)
    assert await snapshot.blocks(node.readers, "https://sub.bad.example/users/y")
    assert not await snapshot.blocks(node.readers, "https://good.example/users/z")
    async with node.writers() as db, db.begin():
        await db.execute(delete(Block))
        db.add(Block(actor_uri="https://good.example/users/z"))
    clock.now += 5.1
    assert not await snapshot.blocks(node.readers, account)
    assert await snapshot.blocks(node.readers, "https://good.example/users/z")
    assert await snapshot.blocks(node.readers, "https://ev%69l.example/")  # unreadable host



async def test_a_burst_from_a_new_server_fetches_its_key_once(db_node, peer):
    project, alice, inbox = await project_and_sender(db_node, peer)
    answers = await asyncio.gather(*(peer.post(alice, inbox, follow(peer, alice, project.uri))
                                     for _ in range(20)))
    assert [status for status, _ in answers] == [202] * 20
    assert peer.gets().count(urlsplit(alice.uri).path) == 1
    assert len(await inbox_items(db_node)) == 20
    async with db_node.readers() as db:
        assert await db.scalar(select(func.count()).select_from(Actor)
                               .where(Actor.uri == alice.uri)) == 1

"""Node-wide blocks: only admins set or lift them, and a block of a domain covers its
subdomains, every port and every spelling of the host (fedsph/federation/blocks.py).

Each refused attempt also checks that the blocks table (or the inbox) is unchanged.
"""

from __future__ import annotations

import sqlite3
import uuid

import pytest
from sqlalchemy import select

from fedsph.errors import UserError
from fedsph.federation import blocks
from fedsph.federation.actors import parse_actor_document, store_remote_actor
from fedsph.federation.crypto import generate_rsa_keypair
from fedsph.federation.emit import enqueue_deliveries
from fedsph.models import Activity, Actor, Block, Delivery, InboxItem
from tests.fakepeer import PeerActor
from tests.support import testdb
from tests.support.members import browser, login, make_user, post_form

AS = "https://www.w3.org/ns/activitystreams"


@pytest.fixture
async def project(node):
    return await node.create_actor("coop", "Group")


async def block_rows(node) -> set[tuple]:
    async with node.readers() as db:
        return {(b.id, b.domain, b.actor_uri) for b in await db.scalars(select(Block))}


async def seed_blocks(node) -> set[tuple]:
    """What an admin blocked earlier: a domain and an account."""
    async with node.writers() as db, db.begin():
        db.add(Block(domain="evil.example"))
        db.add(Block(actor_uri="https://bad.example/users/troll"))
    return await block_rows(node)


# --- who may change blocks -----------------------------------------------------------------------

async def test_a_member_who_is_not_admin_cannot_add_or_lift_blocks(node, project):
    before = await seed_blocks(node)
    await make_user(node, "ana", project)
    manage = f"{node.base}/actors/coop/manage"
    async with browser() as client:
        await login(client, node, "ana")
        async with client.get(manage) as page:
            text = await page.text()
        assert page.status == 200
        assert 'id="blocks"' not in text and "evil.example" not in text
        block_id = next(row[0] for row in before if row[1] == "evil.example")
        for fields in ({"action": "unblock", "block": str(block_id)},
                       {"action": "block_domain", "domain": "victim.example"},
                       {"action": "block_account", "handle": "friend@victim.example"}):
            response = await post_form(client, manage, fields)
            assert response.status == 403, fields
    assert await block_rows(node) == before


async def test_an_admin_sees_adds_and_lifts_blocks(node, project):
    await seed_blocks(node)
    await make_user(node, "root", admin=True)
    manage = f"{node.base}/actors/coop/manage"
    async with browser() as client:
        await login(client, node, "root")
        async with client.get(manage) as page:
            assert 'id="blocks"' in await page.text()
        response = await post_form(client, manage, {"action": "block_domain",
                                                     "domain": "https://SPAM.Example.:8443/x"})
        assert response.status == 303
        async with node.readers() as db:
            spam = await db.scalar(select(Block).where(Block.domain == "spam.example"))
        assert spam is not None  # stored in the one normalised form
        response = await post_form(client, manage, {"action": "unblock", "block": str(spam.id)})
        assert response.status == 303
    assert {row[1] for row in await block_rows(node)} == {"evil.example", None}


async def test_an_admin_cannot_block_this_nodes_own_host(node, project):
    await make_user(node, "root", admin=True)
    manage = f"{node.base}/actors/coop/manage"
    async with browser() as client:
        await login(client, node, "root")
        # The node is on 127.0.0.1: any port of it is the node itself.
        response = await post_form(client, manage, {"action": "block_domain",
                                                     "domain": "127.0.0.1:1"})
        assert response.status == 400
    assert await block_rows(node) == set()


# --- what a block covers ---------------------------------------------------------------------------

async def cached_actor(node, uri: str) -> PeerActor:
    """A remote actor whose key this node already holds (so no fetch is needed to verify)."""
    private_pem, public_pem = generate_rsa_keypair()
    document = {"@context": AS, "id": uri, "type": "Person", "preferredUsername": "m",
                "inbox": f"{uri}/inbox",
                "publicKey": {"id": f"{uri}#main-key", "owner": uri, "publicKeyPem": public_pem}}
    async with node.writers() as db, db.begin():
        await store_remote_actor(db, parse_actor_document(document))
    return PeerActor("m", uri, f"{uri}#main-key", private_pem, public_pem, document)


BLOCKED_SPELLINGS = [
    "https://a.evil.example/users/m",      # a subdomain
    "https://deep.a.evil.example/users/m",
    "https://evil.example:8443/users/m",   # another port
    "https://EVIL.Example./users/m",       # case and a trailing dot
    "https://ｅｖｉｌ.example/users/m",     # full-width letters, the same host after IDNA
]


@pytest.mark.parametrize("uri", BLOCKED_SPELLINGS)
async def test_the_inbox_drops_every_spelling_of_a_blocked_domain(node, peer, project, uri):
    async with node.writers() as db, db.begin():
        db.add(Block(domain="evil.example"))
    blocked, allowed = await cached_actor(node, uri), await cached_actor(
        node, "https://notevil.example/users/m")  # a name that only ends like the block
    for sender in (blocked, allowed):
        origin = sender.uri.rsplit("/users/", 1)[0]
        status, _ = await peer.post(sender, project.inbox, {
            "@context": AS, "id": f"{origin}/activities/{uuid.uuid4().hex}", "type": "Follow",
            "actor": sender.uri, "object": project.uri})
        assert status == 202
    async with node.readers() as db:
        stored = set(await db.scalars(select(InboxItem.actor_uri)))
    assert stored == {allowed.uri}


@pytest.mark.parametrize(("typed", "stored"), [
    ("evil.example", "evil.example"),
    ("https://Evil.Example/about", "evil.example"),
    ("@someone@EVIL.example.", "evil.example"),
    ("evil.example:8443", "evil.example"),
    ("ｅｖｉｌ.example", "evil.example"),
    ("bücher.example", "xn--bcher-kva.example"),
])
def test_a_typed_domain_is_stored_in_one_form(typed, stored):
    assert blocks.parse_domain(typed) == stored


@pytest.mark.parametrize("typed", ["", "evil", "evil example.org", "a..b", "https://",
                                   "x" * 300 + ".example"])
def test_what_is_not_a_domain_is_refused(typed):
    with pytest.raises(UserError):
        blocks.parse_domain(typed)


@pytest.mark.parametrize(("uri", "blocked"), [
    ("https://a.evil.example/u", True),
    ("https://evil.example.:443/u", True),
    ("https://notevil.example/u", False),
    ("https://evil.example.org/u", False),
    ("https://ev%69l.example/u", True),  # a host we cannot read in one form fails closed
])
async def test_is_blocked_reads_hosts_in_one_form(node, uri, blocked):
    async with node.writers() as db, db.begin():
        db.add(Block(domain="evil.example"))
    async with node.readers() as db:
        assert await blocks.is_blocked(db, uri) is blocked


# --- the command line ------------------------------------------------------------------------------

def blocks_in(tmp_path) -> set[str]:
    return {row[0] for row in testdb.sql(tmp_path / "data",
                                         "SELECT coalesce(domain, actor_uri) FROM blocks")}


def test_cli_blocks_and_admin_role(fedsph, tmp_path):
    assert fedsph("migrate")[0] == 0
    assert fedsph("user", "create", "ana")[0] == 0
    code, out = fedsph("admin", "grant", "ana")
    assert code == 0 and "now an admin" in out
    code, out = fedsph("admin", "revoke", "ana")
    assert code == 1 and "only admin" in out  # a node keeps at least one admin
    assert fedsph("block", "domain", "https://A.Evil.Example:8443/")[0] == 0
    assert blocks_in(tmp_path) == {"a.evil.example"}
    assert fedsph("block", "domain", "127.0.0.1:9")[0] == 1  # the node itself (FEDSPH_BASE_URL)
    code, out = fedsph("block", "list")
    block_id = out.split("\t")[0]
    assert fedsph("block", "remove", block_id)[0] == 0
    assert blocks_in(tmp_path) == set()


# --- data stored under the old rules ---------------------------------------------------------------

@pytest.mark.sqlite  # the old rows are written through SQLite's own driver
def test_the_migration_normalises_old_blocks_and_drops_unsafe_app_websites(tmp_path):
    from alembic import command

    from fedsph.db import alembic_config

    path = tmp_path / "old.sqlite3"
    config = alembic_config(f"sqlite+aiosqlite:///{path}")
    command.upgrade(config, "0005")
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO blocks (domain, created_at) VALUES (?, '2026-01-01')",
                       [("evil.example:8443",), ("evil.example",), ("Spam.Example.",)])
        db.executemany("INSERT INTO oauth_apps (client_id, client_secret_hash, name, website, "
                       "redirect_uris, scopes, created_at) VALUES (?, 'h', 'a', ?, 'urn:x', "
                       "'read', '2026-01-01')",
                       [("1", "javascript:alert(1)"), ("2", "https://app.example/")])
    command.upgrade(config, "head")
    with sqlite3.connect(path) as db:
        assert {row[0] for row in db.execute("SELECT domain FROM blocks")} == {
            "evil.example", "spam.example"}
        assert dict(db.execute("SELECT client_id, website FROM oauth_apps")) == {
            "1": None, "2": "https://app.example/"}


# --- nothing of ours goes to a blocked server ------------------------------------------------------

async def test_nothing_is_delivered_to_a_blocked_account_or_server(node, project):
    """A mention or an old follow does not carry our posts past a block (fedsph/blocks.unblocked,
    called by emit.enqueue_deliveries, the one place that makes delivery rows)."""
    for uri in ("https://a.evil.example/users/m", "https://bad.example/users/troll",
                "https://good.example/users/friend"):
        await cached_actor(node, uri)
    await seed_blocks(node)
    async with node.writers() as db, db.begin():
        recipients = list(await db.scalars(select(Actor).where(Actor.local.is_(False))))
        activity = Activity(uri=f"{project.uri}/activities/1", type="Create",
                            actor_id=project.id, body=b"{}")
        db.add(activity)
        await db.flush()
        assert await enqueue_deliveries(db, activity, recipients) == 1
    async with node.readers() as db:
        assert set(await db.scalars(select(Delivery.inbox))) == {
            "https://good.example/users/friend/inbox"}


async def test_a_blocked_server_is_not_a_server_that_may_fetch_private_posts(node):
    async with node.writers() as db, db.begin():
        db.add(Block(domain="evil.example"))
    async with node.readers() as db:
        assert await blocks.is_blocked_domain(db, "sub.evil.example:8443")
        assert await blocks.is_blocked_domain(db, "not a host")
        assert not await blocks.is_blocked_domain(db, "good.example")

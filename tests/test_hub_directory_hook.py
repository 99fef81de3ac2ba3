"""What the directory's index costs the rest of the node (issue 12 review): a node without a hub
writes nothing for it, a transaction moves the cache generation once however many listed
projects it changes, an index migration 0011 left empty is filled at start-up; and the hub's
events take its listed members from the index."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete, func, select, update

from fedsph.federation.blocks import block_account
from fedsph.hub import directory_index, directory_query
from fedsph.models import Actor, DirectoryEntry, DirectoryState, Hub, HubMembership
from fedsph.web.event_pages import hub_and_event_actors
from tests.support.nodes import statements

MIGRATION = Path(__file__).parents[1] / "migrations" / "versions" / "0011_hub_directory.py"


def remote(username: str) -> Actor:
    uri = f"https://{username}.example/actors/{username}"
    return Actor(uri=uri, local=False, type="Group", username=username,
                 domain=f"{username}.example", name=username.title(), inbox=uri + "/inbox",
                 profile={"country": "UY", "stage": "forming"})


async def generation(node) -> int:
    async with node.readers() as db:
        return await directory_query.generation(db)


async def test_a_node_without_a_hub_writes_nothing_for_the_directory(db_node):
    with statements(db_node) as seen:
        async with db_node.writers() as db, db.begin():
            actor = remote("solo")
            db.add(actor)
            await db.flush()
            actor.profile = {**actor.profile, "stage": "living"}
            await db.flush()
    directory_sql = [s for s in seen if "hub_directory" in s or "hub_memberships" in s]
    assert directory_sql == [] and any("FROM hubs" in s for s in seen), seen
    assert await generation(db_node) == 0


async def test_one_transaction_moves_the_generation_once(db_node):
    hub = await db_node.create_actor("hub", "Group")
    async with db_node.writers() as db, db.begin():
        db.add(Hub(actor_id=hub.id))
        members = [remote("uno"), remote("dos")]
        db.add_all(members)
        await db.flush()
        db.add_all(HubMembership(hub_id=hub.id, project_id=m.id, state="approved")
                   for m in members)
    before = await generation(db_node)
    async with db_node.writers() as db, db.begin():
        for member in await db.scalars(select(Actor).where(Actor.username.in_(["uno", "dos"]))):
            member.profile = {**member.profile, "stage": "living"}
            await db.flush()  # two flushes, each reindexing a listed project
    assert await generation(db_node) == before + 1
    async with db_node.readers() as db:
        stages = set(await db.scalars(select(DirectoryEntry.stage)))
    assert stages == {"living"}
    # An actor no hub lists changes nothing the directory shows: no write to the counter.
    async with db_node.writers() as db, db.begin():
        db.add(remote("outsider"))
    assert await generation(db_node) == before + 1
    # The next transaction moves it again.
    async with db_node.writers() as db, db.begin():
        member = await db.scalar(select(Actor).where(Actor.username == "uno"))
        member.name = "Uno Renamed"
    assert await generation(db_node) == before + 2


async def test_an_empty_index_is_filled_at_start_up(db_node):
    hub = await hub_with_a_listed_member(db_node)
    async with db_node.writers() as db, db.begin():
        await db.execute(delete(DirectoryEntry))  # as migration 0011 leaves it: empty
    (fill,) = [hook for hook in db_node.app.on_startup  # as `fedsph serve` starts
               if getattr(hook, "__name__", "") == "_directory_index"]
    await fill(db_node.app)
    async with db_node.readers() as db:
        rows = (await db.execute(select(DirectoryEntry.hub_id, DirectoryEntry.name))).all()
        assert [tuple(r) for r in rows] == [(hub.id, "Listed")]
    async with db_node.writers() as db, db.begin():
        rebuilt = await (await db.connection()).run_sync(directory_index.rebuild_if_needed)
        assert rebuilt is False  # nothing missing: no second rebuild
        assert await db.scalar(select(func.count()).select_from(DirectoryEntry)) == 1


async def hub_with_a_listed_member(node) -> Actor:
    """A local hub with one approved remote member, "Listed"; returns the hub."""
    hub = await node.create_actor("hub", "Group")
    async with node.writers() as db, db.begin():
        db.add(Hub(actor_id=hub.id))
        member = remote("listed")
        db.add(member)
        await db.flush()
        db.add(HubMembership(hub_id=hub.id, project_id=member.id, state="approved"))
    return hub


async def test_a_missing_generation_row_is_recreated(db_node):
    """Without the counter's row, generation() read 0 and a bump updated nothing: the page
    caches never saw a change again."""
    await hub_with_a_listed_member(db_node)
    async with db_node.writers() as db, db.begin():
        await db.execute(delete(DirectoryState))
    async with db_node.writers() as db, db.begin():  # at start-up
        await (await db.connection()).run_sync(directory_index.rebuild_if_needed)
    async with db_node.readers() as db:
        assert (await db.execute(select(DirectoryState.id, DirectoryState.generation))).all() \
            == [(1, 0)]
    async with db_node.writers() as db, db.begin():  # gone again while serving: a change
        await db.execute(delete(DirectoryState))
    async with db_node.writers() as db, db.begin():
        member = await db.scalar(select(Actor).where(Actor.username == "listed"))
        member.name = "Listed Renamed"
    assert await generation(db_node) == 1


async def test_a_change_to_the_hub_actor_moves_the_generation(db_node):
    """Its name heads the hub's pages; the hub actors are compared in Python, not bound as an
    IN list of every id the flush touched."""
    hub = await hub_with_a_listed_member(db_node)
    before = await generation(db_node)
    with statements(db_node) as seen:
        async with db_node.writers() as db, db.begin():
            (await db.get(Actor, hub.id)).name = "Red Hub"
    assert await generation(db_node) == before + 1
    assert not [s for s in seen if "hubs.actor_id IN" in s], seen


def test_migration_0011_runs_no_application_code():
    source = MIGRATION.read_text()
    assert "from fedsph" not in source and "import fedsph" not in source


async def test_a_bulk_statement_first_in_a_session_moves_the_generation(db_node):
    before = await generation(db_node)
    async with db_node.writers() as db:  # no begin(): the statement starts the transaction
        await db.execute(update(Actor).where(Actor.id == -1).values(name="x"))
        await db.commit()
    assert await generation(db_node) == before + 1


async def test_the_hub_events_actors_are_the_listed_members(db_node):
    """/hub/events and its iCal feed: the hub and its listed members, from the index (a
    requested membership and a blocked member are left out, as in the directory)."""
    hub = await db_node.create_actor("hub", "Group")
    async with db_node.writers() as db, db.begin():
        db.add(Hub(actor_id=hub.id))
        members = [remote("uno"), remote("dos"), remote("tres")]
        db.add_all(members)
        await db.flush()
        db.add_all(HubMembership(hub_id=hub.id, project_id=m.id,
                                 state="requested" if m.username == "tres" else "approved")
                   for m in members)
        await block_account(db, members[1])
    async with db_node.readers() as db:
        found, actors = await hub_and_event_actors(db)
        assert found.id == hub.id
        assert set(await db.scalars(actors)) == {hub.id, members[0].id}

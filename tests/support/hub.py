"""A hub and its members on in-process nodes, and a Mastodon-like relay subscriber."""

from __future__ import annotations

import argparse

from sqlalchemy import select

from fedsph.federation.actors import get_local_actor
from fedsph.hub import membership as hubs
from fedsph.hub.commands import COMMANDS
from fedsph.models import Follow, Hub, HubMembership, Object
from fedsph.projects import outbox
from tests.mastodon_peer import AS, PUBLIC, MastodonPeer, _id
from tests.support.nodes import cli_node, settle
from tests.support.proofs import mastodon_verify


async def run(node, command: str, **args) -> int:
    return await COMMANDS[command](cli_node(node), argparse.Namespace(**args))


async def states(node) -> list[str]:
    async with node.writers() as db:
        return list(await db.scalars(select(HubMembership.state)))


async def hub_actor(node):
    async with node.writers() as db:
        return await hubs.local_hub(db)


async def set_auto_approve(hub_node, rule: str) -> None:
    await run(hub_node, "hub enable", name=None, region=None, auto_approve=rule)


async def join(hub_node, project_node) -> None:
    hub = await hub_actor(hub_node)
    await run(project_node, "hub join", slug="coop", hub=hub.uri)
    await settle(hub_node, project_node)


def coop_handle(project_node) -> str:
    return f"coop@{project_node.settings.domain}"


async def post(project_node, text: str, visibility: str = "public") -> Object:
    async with project_node.writers() as db, db.begin():
        coop = await get_local_actor(db, "coop")
        return await outbox.publish_text_post(db, project_node.urls, coop, text,
                                              visibility=visibility)


async def follow_hub(hub_node, peer):
    carla = peer.add_actor("carla")
    hub = await hub_actor(hub_node)
    follow = {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.new_id(),
              "type": "Follow", "actor": carla.uri, "object": hub.uri}
    status, _ = await peer.post(carla, hub.inbox, follow)
    assert status == 202
    await settle(hub_node)
    return carla


class RelaySubscriber(MastodonPeer):
    """The strict Mastodon peer, as Mastodon 4.7 treats a relay's deliveries: an activity signed
    by someone else than its actor is taken when it carries an integrity proof that verifies
    (checked here with the test's own implementation and the author's published key)."""

    author_keys: dict[str, str]

    def __post_init__(self):
        super().__post_init__()
        self.author_keys = {}

    def _check_activity(self, activity: dict, signer: str) -> None:
        author = _id(activity.get("actor"))
        if author != signer and "proof" in activity:
            # As app/services/activitypub/process_collection_service.rb: a relayed activity is
            # the actor's own when its proof verifies (app/lib/activitypub/object_integrity_proof.rb).
            mastodon_verify(activity, self.author_keys[author])
            signer = author
        MastodonPeer._check_activity(activity, signer)


async def hub_node(node):
    hub = await node.create_actor("hub", "Group")
    async with node.writers() as db, db.begin():
        db.add(Hub(actor_id=hub.id))
    return hub


def relay_follow(peer, instance_actor) -> dict:
    return {"@context": AS, "id": f"{peer.base}/{instance_actor.username}#relay-follow",
            "type": "Follow", "actor": instance_actor.uri, "object": PUBLIC}


async def relay_rows(node) -> list[Follow]:
    async with node.readers() as db:
        return list(await db.scalars(select(Follow).where(Follow.relay.is_(True))))

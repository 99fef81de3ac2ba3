"""Activities posted to an inbox the way a remote server posts them."""

from __future__ import annotations


def follow(peer, actor, target: str, activity_id: str | None = None) -> dict:
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": activity_id or peer.new_id(),
            "type": "Follow", "actor": actor.uri, "object": target}


async def project_and_sender(node, peer):
    project = await node.create_actor("coop")
    return project, peer.add_actor("alice"), f"{node.base}/actors/coop/inbox"


async def post_raw(peer, url: str, body: bytes, headers: dict) -> tuple[int, str]:
    async with peer.http.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.text()

"""A deleted post's boosts go with it: here, and on the servers of our boosters' followers.

Mastodon removes every reblog of a deleted status (app/services/remove_status_service.rb,
`remove_reblogs`), and a server that receives the Delete of a status its accounts reblogged
forwards that Delete to their followers when it can vouch for itself (an LD signature:
app/lib/activitypub/activity/delete.rb, `forward_for_reblogs`). Otherwise a booster's followers
elsewhere keep the boost, and the post in it, after the author deleted it.

So for each boost of the post:
- by one of our actors: an `Undo{Announce}` goes where the boost went (its followers and the
  post's author, fedsph.projects.outbox_reactions), which every server takes to remove the boost
  from its timelines, whether or not it can check a forwarded Delete;
- by another server's actor: the row goes (that server withdraws its own boost when the
  Delete reaches it: fedsph.projects.outbox sends our Deletes to the boosters too).
The reblog notifications of those boosts go with them. And a received Delete whose integrity
proof (FEP-8b32) verified here is forwarded as received to our boosters' followers on other
servers, so that fedsph followers delete the post itself (fedsph.federation.integrity accepts a
relayed Delete only with its author's proof; Mastodon drops it without an LD signature and
relies on the Undo). One whose proof we could not check (unusable, expired) is not: the HTTP
signature that let us accept it means nothing to the servers we would pass it to.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.core.urls import URLs
from fedsph.federation import emit
from fedsph.federation.activitystreams import get_id, get_type
from fedsph.federation.visibility import VISIBLE_TO_ALL
from fedsph.models import Activity, Actor, Notification, Object, Reaction
from fedsph.projects.outbox_reactions import unannounce_object


async def withdraw_boosts(db: AsyncSession, urls: URLs, obj: Object,
                          delete_activity: dict | None = None,
                          proven_body: bytes | None = None) -> list[Actor]:
    """Remove the boosts of the deleted `obj` (in the caller's transaction), undoing ours where
    they were sent; forward `proven_body` (the author's Delete as received, given only when the
    worker verified its integrity proof: HandlerContext.proof_verified) to our boosters'
    followers elsewhere. Returns our actors whose boost was undone.

    Our own Delete must be queued before (fedsph.projects.outbox.delete_post): its recipients
    include the boosters elsewhere, found from the rows removed here."""
    boosts = list(await db.scalars(select(Reaction).where(
        Reaction.type == "Announce", Reaction.object_uri == obj.uri).order_by(Reaction.id)))
    ours = []
    for boost in boosts:
        await db.execute(delete(Notification).where(
            Notification.activity_uri == boost.activity_uri))
        booster = await db.get(Actor, boost.actor_id)
        if booster is not None and booster.local:
            await unannounce_object(db, urls, booster, obj)
            ours.append(booster)
        else:
            await db.delete(boost)
    if ours and delete_activity is not None and proven_body is not None:
        await _forward_delete(db, ours, delete_activity, proven_body, obj)
    return ours


async def _forward_delete(db: AsyncSession, boosters: list[Actor], activity: dict, body: bytes,
                          obj: Object) -> None:
    """The author's Delete, unchanged, to our boosters' followers on other servers (but the
    author's), HTTP-signed by the first booster; once per Delete."""
    if "proof" not in activity or obj.visibility not in VISIBLE_TO_ALL:
        return
    origin = urlsplit(get_id(activity.get("actor")) or "").netloc
    recipients, seen = [], set()
    for booster in boosters:
        for follower in await emit.follower_actors(db, booster):
            if not follower.local and follower.domain != origin and follower.id not in seen:
                seen.add(follower.id)
                recipients.append(follower)
    uri = "urn:fedsph:forwarded-for-boosts:" + hashlib.sha256(activity["id"].encode()).hexdigest()
    if not recipients or await db.scalar(select(Activity.id).where(Activity.uri == uri)):
        return
    await emit.forward(db, boosters[0], body, uri, get_type(activity) or "Delete", recipients)

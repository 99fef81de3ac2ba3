"""The hub re-shares its members' public activities with the hub's followers.

Two forms, so that both kinds of follower see them:
- Announce{object: the member's Create/Update/Delete, embedded}: FEP-1b12, what Lemmy groups
  send; group-aware servers take the embedded activity as the member's.
- Announce{object: the post's id} for a new post: what Mastodon shows as a boost.
A Delete of a boosted post also undoes the boost (Undo{Announce}), which is how Mastodon's
followers of the hub, who do not follow the project, see it go. It undoes the Announce{Create}
too: Mastodon fetches an embedded activity's id and turns that Announce into the same boost when
it is processed first (activity/announce.rb, fetch_remote_original_status), and its Undo finds a
boost only by the Announce's id. The boost's id is the Announce{Create}'s id + BOOST_SUFFIX,
which is how the Delete finds both.

Addressed as Lemmy addresses a community's Announce (generate_to): to the hub and as:Public, cc
the hub's followers.

Relay subscribers (Follow.relay) get neither: fedsph.hub.relay forwards them the member's
original bytes instead, so the author's integrity proof still verifies.

Only public (or unlisted) activities of approved members are re-shared; a followers-only post
stays with the project's followers. Backfilled posts never come through here.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.federation import emit
from fedsph.federation.activitystreams import PUBLIC, build_activity, get_id, get_type, is_public
from fedsph.federation.emit import follower_actors
from fedsph.federation.incoming import HandlerContext
from fedsph.federation.visibility import VISIBLE_TO_ALL
from fedsph.hub import relay
from fedsph.hub.membership import local_hub, membership
from fedsph.models import Activity, Actor, Object

BOOSTED_TYPES = {"Note", "Article", "Page", "Question", "Event"}
BOOST_SUFFIX = "-boost"  # still one path segment: /activities/<hex>-boost is served


async def _announced(db: AsyncSession, hub: Actor, uri: str) -> Activity | None:
    return await db.scalar(select(Activity).where(
        Activity.actor_id == hub.id, Activity.type == "Announce", Activity.object_uri == uri))


async def _boosts_of(db: AsyncSession, hub: Actor, post_uri: str) -> list[Activity]:
    """The hub's boost of a post and the Announce{Create} it was sent with (either may be the
    boost a Mastodon follower kept)."""
    boost = await _announced(db, hub, post_uri)
    if boost is None:
        return []
    if not boost.uri.endswith(BOOST_SUFFIX):  # sent before the two ids were paired
        return [boost]
    create = await db.scalar(select(Activity).where(
        Activity.actor_id == hub.id, Activity.type == "Announce",
        Activity.uri == boost.uri.removesuffix(BOOST_SUFFIX)))
    return [boost] if create is None else [boost, create]


async def reshare_member_activity(ctx: HandlerContext, activity: dict, author: Actor,
                                  public: bool | None = None) -> int:
    """Called by the post handlers after storing a Create/Update (of a post or of the author's
    profile) or a Delete. `public` overrides the addressing check (a Delete names its post by id:
    the caller knows whether the post was public). Returns how many announces were queued."""
    db, urls = ctx.db, ctx.urls
    hub = await local_hub(db)
    if hub is None or author.id == hub.id:
        return 0
    row = await membership(db, hub, author)
    if row is None or row.state != "approved":
        return 0
    if not (await _is_public(db, activity) if public is None else public):
        return 0
    if await _announced(db, hub, activity["id"]) is not None:
        return 0  # the same activity again (redelivered, or sent to two of our actors)
    # follower_actors leaves out relay subscribers: they get the original (fedsph.hub.relay).
    recipients = [a for a in await follower_actors(db, hub) if a.id != author.id]
    to = [hub.uri, PUBLIC]
    cc = [hub.followers_url] if hub.followers_url else None
    sent = 0
    embedded_id = urls.new_activity()
    embedded = build_activity("Announce", embedded_id, hub.uri, activity, to=to, cc=cc)
    await emit.send(db, hub, embedded, recipients, activity["id"], public=True)
    sent += 1
    obj = activity.get("object")
    kind = get_type(activity)
    if kind == "Create" and isinstance(obj, dict) and get_type(obj) in BOOSTED_TYPES:
        boost = build_activity("Announce", embedded_id + BOOST_SUFFIX, hub.uri, obj["id"],
                               to=to, cc=cc)
        await emit.send(db, hub, boost, recipients, obj["id"], public=True)
        sent += 1
    if kind == "Delete":
        for announce in await _boosts_of(db, hub, get_id(obj) or ""):
            original = {"id": announce.uri, "type": "Announce", "actor": hub.uri,
                        "object": announce.object_uri}
            undo = build_activity("Undo", urls.new_activity(), hub.uri, original, to=to, cc=cc)
            await emit.send(db, hub, undo, recipients, announce.uri, public=True)
            sent += 1
    if ctx.body is not None:
        await relay.forward_to_relays(db, hub, ctx.body)
    return sent


async def _is_public(db: AsyncSession, activity: dict) -> bool:
    """Whether a member's activity may go to everyone (re-shared here, forwarded to relays).

    The addressing is the audience its author chose: followers-only stays so. For a Create or
    Update of a post, the post's own visibility as we stored it decides too (as for a Delete):
    an activity can be addressed to Public around a post stored as direct or followers-only.
    """
    if not is_public(activity):
        return False
    object_uri = get_id(activity.get("object"))
    if get_type(activity) not in ("Create", "Update") or object_uri == get_id(activity.get("actor")):
        return True  # a profile Update, or an activity with nothing stored to look at
    visibility = await db.scalar(select(Object.visibility).where(Object.uri == object_uri))
    return visibility in VISIBLE_TO_ALL

"""Hub membership as activities: Join and Leave of a hub, Invite to one, and their answers.

Both sides are here: a hub receives Join, Leave, Accept{Invite} and Reject{Invite}; a project
receives Invite, Accept{Join} and Reject{Join} (or Reject{Invite}: the hub ends a membership by
rejecting what began it). On one node the project and the hub share one membership row, so
every handler accepts finding the row already in the state it would set.
What each side sends is in fedsph/hub/membership.py.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from fedsph.db import one_at_a_time
from fedsph.federation.activitystreams import get_id, get_type
from fedsph.federation.actors import get_actor_by_uri
from fedsph.federation.blocks import host_of
from fedsph.federation.incoming import HandlerContext, Ignored
from fedsph.handlers.answers import answered_activity
from fedsph.hub import membership as hubs
from fedsph.hub.backfill import store_backfilled
from fedsph.models import Actor, Follow, Hub, HubMembership, utcnow
from fedsph.projects.outbox import answer_follow

log = logging.getLogger("fedsph.hubs")


async def _our_hub(ctx: HandlerContext, uri: str | None) -> Actor:
    """The local hub actor named by `uri`; Ignored for anything else."""
    return (await _our_hub_and_rules(ctx, uri))[0]


async def actor_and_rules(ctx: HandlerContext, uri: str) -> tuple[Actor, Hub | None] | None:
    """The actor at `uri` and, when it is a hub, its rules (one query); None for no actor."""
    found = (await ctx.db.execute(select(Actor, Hub).outerjoin(Hub, Hub.actor_id == Actor.id)
                                  .where(Actor.uri == uri).limit(1))).first()
    return (found[0], found[1]) if found is not None else None


async def _our_hub_and_rules(ctx: HandlerContext, uri: str | None,
                             named: tuple[Actor, Hub | None] | None = None) -> tuple[Actor, Hub]:
    """The local hub named by `uri` and its rules, in one query (none when the caller has read
    them already: `named`, from actor_and_rules); Ignored for anything else."""
    if named is not None:
        found = named if named[0].local and named[1] is not None else None
    else:
        found = (await ctx.db.execute(select(Actor, Hub).join(Hub, Hub.actor_id == Actor.id)
                                      .where(Actor.uri == (uri or ""), Actor.local.is_(True))
                                      .limit(1))).first()
    if found is None:
        raise Ignored("not addressed to a hub of this node")
    return found[0], found[1]


async def _local_project(ctx: HandlerContext, uri: str | None) -> Actor:
    project = await get_actor_by_uri(ctx.db, uri or "")
    if project is None or not project.local or project.type != "Group":
        raise Ignored("not about a project of this node")
    return project


async def _answered(ctx: HandlerContext, activity: dict) -> dict:
    """The Join or Invite that an Accept or Reject answers: embedded, or one we recorded."""
    answered = await answered_activity(ctx, activity)
    if answered is None:
        raise Ignored("answer to an activity we do not know")
    return answered


# -- the hub's side -----------------------------------------------------------------------------


async def handle_hub_join(ctx: HandlerContext, activity: dict, actor: Actor,
                          named: tuple[Actor, Hub | None] | None = None) -> str:
    """A project asks to join: approved at once when the hub invited it or its rule says so.
    `named`: the actor the Join's object names and its hub rules (actor_and_rules), when the
    caller has read them already."""
    hub, rules = await _our_hub_and_rules(ctx, get_id(activity.get("object")), named)
    if actor.id == hub.id:
        raise Ignored("a hub cannot join itself")
    if actor.type != "Group":
        raise Ignored("only projects (Group actors) join a hub")
    host = host_of(actor.uri)  # every spelling of a server (case, port, user info) is one
    await one_at_a_time(ctx.db, f"hub requests from {host}")  # the cap below
    row = await hubs.membership(ctx.db, hub, actor)
    if row is None and await hubs.waiting_from(ctx.db, host, "requested", hub) \
            >= hubs.MAX_PENDING_PER_DOMAIN:
        log.warning("Join of the hub by %s refused: %s requests from %s wait", actor.uri,
                    hubs.MAX_PENDING_PER_DOMAIN, host)
        await hubs.refuse_join(ctx.db, ctx.urls, hub, actor, activity["id"])
        return "done"
    if row is None:
        # Not flushed here: approved at once, it is written once, as approved (the directory
        # index, fedsph/hub/directory_index.py, is then derived once, not twice).
        row = HubMembership(hub_id=hub.id, project_id=actor.id, state="requested",
                            activity_uri=activity["id"])
        ctx.db.add(row)
    elif row.state == "requested":
        row.activity_uri = activity["id"]
    if row.state == "invited":
        # The hub asked first: the Join is the project's yes (answered as the Join it is).
        row.state, row.activity_uri = "requested", activity["id"]
    elif not (row.state == "approved" or hubs.auto_approves(rules.auto_approve, actor)):
        return "done"
    # Approved again when approved already: the project may have lost our first Accept. The
    # row names this Join unless approved already (then the Join or Invite that began it).
    # This Join's id is the project's (the inbox takes no id of ours from outside), or, from a
    # project of this node, recorded as a Join: `opening` would find it a Join either way.
    await hubs.approve(ctx.db, ctx.urls, hub, actor, row,
                       row_names_their_join=row.activity_uri == activity["id"])
    return "done"


async def handle_hub_leave(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    hub = await _our_hub(ctx, get_id(activity.get("object")))
    await hubs.forget(ctx.db, ctx.urls, hub, actor)
    return "done"


async def invite_accepted(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    """The project accepts the hub's invitation: approved, and the hub follows it."""
    invite = await _answered(ctx, activity)
    hub = await _our_hub(ctx, get_id(invite.get("actor")))
    if get_id(invite.get("target")) not in (None, actor.uri):
        raise Ignored("Accept of an invitation sent to someone else")
    row = await hubs.membership(ctx.db, hub, actor)
    if row is None or row.state not in ("invited", "approved"):
        raise Ignored("Accept of an invitation we did not send")
    if row.state != "approved":
        row.state, row.approved_at = "approved", utcnow()
    await hubs.start_following(ctx.db, ctx.urls, hub, actor)
    return "done"


async def handle_backfill(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    """Store what the worker fetched from a new member's outbox (fedsph/hub/backfill.py)."""
    if not ctx.urls.is_local(get_id(activity)):
        raise Ignored("backfills are queued by this node only")
    # The hub and its membership in one query: the backfill's is the common case.
    row = (await ctx.db.execute(
        select(HubMembership.state).join(Actor, Actor.id == HubMembership.hub_id)
        .join(Hub, Hub.actor_id == Actor.id)
        .where(Actor.uri == (get_id(activity.get("target")) or ""), Actor.local.is_(True),
               HubMembership.project_id == actor.id))).first()
    if row is None or row.state != "approved":
        raise Ignored("not addressed to a hub of this node, or no longer a member")
    await store_backfilled(ctx.db, activity.get("items") or [], actor)
    return "done"


# -- the project's side -------------------------------------------------------------------------


async def handle_invite(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    """A hub invites one of our projects: kept as invited until a member accepts."""
    if get_id(activity.get("object")) != actor.uri or not hubs.is_hub_actor(actor):
        raise Ignored("Invite to something other than the inviting hub")
    project = await _local_project(ctx, get_id(activity.get("target")))
    host = host_of(actor.uri)  # every spelling of a server (case, port, user info) is one
    await one_at_a_time(ctx.db, f"hub invitations from {host}")  # the cap below
    row = await hubs.membership(ctx.db, actor, project)
    if row is None and await hubs.waiting_from(ctx.db, host, "invited") \
            >= hubs.MAX_PENDING_PER_DOMAIN:
        raise Ignored(f"{hubs.MAX_PENDING_PER_DOMAIN} invitations from {host} wait")
    if row is None:
        ctx.db.add(HubMembership(hub_id=actor.id, project_id=project.id, state="invited",
                                 activity_uri=activity["id"]))
    # A project that asked already waits for the hub's Accept, which its Join brings.
    return "done"


async def _project_that_joined(ctx: HandlerContext, answer: dict, hub: Actor) -> Actor:
    """Our project whose Join of `hub` this Accept or Reject (sent by `hub`) answers."""
    join = await _answered(ctx, answer)
    if get_id(join.get("object")) != hub.uri:
        raise Ignored(f"{get_type(answer)} of a Join of another hub")
    return await _local_project(ctx, get_id(join.get("actor")))


async def accept_hub_join(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    """The hub approved our project's Join; the hub's Follow that comes with it is accepted."""
    project = await _project_that_joined(ctx, activity, actor)
    row = await hubs.membership(ctx.db, actor, project)
    if row is None or row.state not in ("requested", "approved"):
        # An invited project says yes itself (Accept{Invite}); a hub cannot answer for it.
        raise Ignored("Accept of a Join we did not send")
    if row.state != "approved":
        row.state, row.approved_at = "approved", utcnow()
    # The Follow may have come before this Accept and be waiting for a manual approval.
    waiting = await ctx.db.scalar(select(Follow).where(
        Follow.follower_id == actor.id, Follow.followed_id == project.id,
        Follow.state == "pending"))
    if waiting is not None:
        await answer_follow(ctx.db, ctx.urls, waiting, accept=True)
    return "done"


async def reject_hub_join(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    """The hub turned down our project's request, or removed it from the hub."""
    project = await _project_that_joined(ctx, activity, actor)
    await hubs.forget(ctx.db, ctx.urls, actor, project)
    return "done"


async def invite_rejected(ctx: HandlerContext, activity: dict, actor: Actor) -> str:
    """Either side ends what an Invite began: the project declines it, or the hub withdraws it
    (or removes the member it brought in)."""
    invite = await _answered(ctx, activity)
    hub_uri, project_uri = get_id(invite.get("actor")), get_id(invite.get("target"))
    if actor.uri not in (hub_uri, project_uri):
        raise Ignored("Reject of an invitation between others")
    hub = await get_actor_by_uri(ctx.db, hub_uri or "")
    project = await get_actor_by_uri(ctx.db, project_uri or "")
    if hub is None or project is None:
        raise Ignored("Reject of an invitation we do not know")
    await hubs.forget(ctx.db, ctx.urls, hub, project)
    return "done"

"""Hub membership, with consent on both sides: the hub, its rules, and what each side sends.

A project asks (Join) and the hub approves (Accept{Join}), by a coordinator or by its
auto-approve rule; or the hub invites (Invite) and the project accepts (Accept{Invite}). Once
approved, the hub follows the project, so its public posts, profile updates and events reach the
hub, which re-shares them (fedsph.hub.reshare). Either side ends it: the project with Leave, the
hub with a Reject of the Join (or Invite) that began the membership; the hub then unfollows.

The functions here run in the caller's transaction (like fedsph.projects.outbox) and work whether the
project and the hub are on the same node (one shared row) or not (a row on each node).
The inbox side is fedsph/handlers/hubs.py.
"""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.core import vocab
from fedsph.core.urls import URLs
from fedsph.errors import N_, UserError
from fedsph.federation import emit
from fedsph.federation.activitystreams import build_activity
from fedsph.federation.actors import create_local_actor
from fedsph.federation.blocks import host_of
from fedsph.federation.local_names import local_name_taken
from fedsph.hub.backfill import queue_backfill
from fedsph.models import Activity, Actor, Follow, Hub, HubMembership, utcnow
from fedsph.projects import outbox
from fedsph.projects.profile import send_actor_update

HUB_USERNAME = "hub"
HUB_TERM = "fedsph:hub"  # in the hub actor's document: this Group is a hub
STATES = ("requested", "invited", "approved")
# Rows a stranger's server alone can create wait for a person's answer: past this many waiting
# (requested Joins of our hub, or Invites of our projects) from one server (its normalised
# host, however its actors' URIs spell it), a Join gets a Reject and an Invite is dropped, and
# nothing is stored.
MAX_PENDING_PER_DOMAIN = 20


# -- the hub ------------------------------------------------------------------------------------


def is_hub_actor(actor: Actor) -> bool:
    """A local hub marks its profile; a remote one says so in its actor document."""
    if actor.local:
        return bool((actor.profile or {}).get("hub"))
    return (actor.document or {}).get(HUB_TERM) is True


async def local_hub(db: AsyncSession) -> Actor | None:
    """This node's hub actor, or None when the node is not a hub."""
    return await db.scalar(select(Actor).join(Hub, Hub.actor_id == Actor.id).limit(1))


async def hub_rules(db: AsyncSession, hub: Actor) -> Hub | None:
    return await db.scalar(select(Hub).where(Hub.actor_id == hub.id))


def approved_projects(db: AsyncSession | None, hub: Actor) -> Select:
    """A Select of the Actor rows of the hub's approved members (db is not used: callers run
    and refine the query themselves)."""
    return (select(Actor).join(HubMembership, HubMembership.project_id == Actor.id)
            .where(HubMembership.hub_id == hub.id, HubMembership.state == "approved"))


def parse_auto_approve(text: str) -> dict:
    """`all`, `none`, or a comma-separated list of `region:<slug>` and `country:<CC>` (a project
    matching any of them is let in) as the Hub.auto_approve rule."""
    text = (text or "").strip()
    if text == "all":
        return {"all": True}
    if text == "none":
        return {}
    rule: dict[str, list[str]] = {}
    for item in (part.strip() for part in text.split(",")):
        kind, _, value = item.partition(":")
        if kind == "region" and vocab.is_valid("region", value):
            rule.setdefault("regions", []).append(value)
        elif kind == "country" and len(value) == 2 and value.isalpha():
            rule.setdefault("countries", []).append(value.upper())
        else:
            raise UserError(N_("--auto-approve must be all, none, or region:<region> and "
                               "country:<CC> separated by commas, not %(value)r"), value=item)
    return rule


def auto_approves(rule: dict | None, project: Actor) -> bool:
    """Whether the hub's rule lets `project` in without a coordinator (by its profile)."""
    rule = rule or {}
    if rule.get("all"):
        return True
    profile = project.profile or {}
    return (profile.get("region") in (rule.get("regions") or [])
            or str(profile.get("country") or "").upper() in (rule.get("countries") or []))


async def ensure_hub(db: AsyncSession, urls: URLs, domain: str, name: str | None = None,
                     region: str | None = None, auto_approve: dict | None = None) -> Actor:
    """This node's hub, created when missing (a local Group named `hub`, or `hub_2`… when that
    name is taken), and updated with the values given."""
    if region is not None and not vocab.is_valid("region", region):
        raise UserError(N_("%(value)r is not a known region"), value=region)
    hub = await local_hub(db)
    if hub is None:
        username = HUB_USERNAME
        suffix = 1
        while await local_name_taken(db, username):
            suffix += 1
            username = f"{HUB_USERNAME}_{suffix}"
        hub = await create_local_actor(db, urls, domain, username, "Group", name=name or "Hub")
        hub.profile = {"hub": True}
        db.add(Hub(actor_id=hub.id, auto_approve={}))
        await db.flush()
        created = True
    else:
        created = False
    rules = await hub_rules(db, hub)
    before = (hub.name, hub.profile)
    if name:
        hub.name = name
    if region is not None:
        rules.region = region
        hub.profile = {**(hub.profile or {}), "hub": True, "region": region}
    if auto_approve is not None:
        rules.auto_approve = auto_approve
    if not created and (hub.name, hub.profile) != before:
        await send_actor_update(db, urls, hub)  # followers see the new name or region
    return hub


# -- memberships --------------------------------------------------------------------------------


async def membership(db: AsyncSession, hub: Actor, project: Actor) -> HubMembership | None:
    return await db.scalar(select(HubMembership).where(
        HubMembership.hub_id == hub.id, HubMembership.project_id == project.id))


async def _row(db: AsyncSession, hub: Actor, project: Actor, state: str,
               activity_uri: str | None) -> HubMembership:
    row = await membership(db, hub, project)
    if row is None:
        row = HubMembership(hub_id=hub.id, project_id=project.id, state=state,
                            activity_uri=activity_uri)
        db.add(row)
        await db.flush()
    return row


async def opening(db: AsyncSession, row: HubMembership, hub: Actor, project: Actor) -> dict:
    """The Join or Invite that began `row`: ours are recorded with their type; one from the
    other side is known by the row's state (invited: theirs was an Invite)."""
    kind = await db.scalar(select(Activity.type).where(Activity.uri == row.activity_uri))
    if kind == "Invite" or (kind is None and row.state == "invited"):
        return {"id": row.activity_uri, "type": "Invite", "actor": hub.uri, "object": hub.uri,
                "target": project.uri}
    return {"id": row.activity_uri, "type": "Join", "actor": project.uri, "object": hub.uri}


async def waiting_from(db: AsyncSession, host: str | None, state: str,
                       hub: Actor | None = None) -> int:
    """Rows waiting in `state` whose stranger is on `host` (normalised, blocks.host_of): the
    project asking to join `hub` ("requested"), or the hub inviting any of our projects
    ("invited"). Compared in Python, as links.service.offers_waiting_from does: Actor.domain is
    the netloc as sent, so `EVIL.example`, `evil.example:443` and `x@evil.example` would each
    get a cap of their own in SQL."""
    stranger = HubMembership.project_id if state == "requested" else HubMembership.hub_id
    query = (select(Actor.uri).join(HubMembership, Actor.id == stranger)
             .where(HubMembership.state == state))
    if hub is not None:
        query = query.where(HubMembership.hub_id == hub.id)
    return sum(host_of(uri) == host for uri in await db.scalars(query))


async def refuse_join(db: AsyncSession, urls: URLs, hub: Actor, project: Actor,
                      join_id: str) -> None:
    """Reject{Join} without a row: the hub keeps no trace of a request it will not consider."""
    join = {"id": join_id, "type": "Join", "actor": project.uri, "object": hub.uri}
    document = build_activity("Reject", urls.new_activity(), hub.uri, join, to=[project.uri])
    await emit.send(db, hub, document, [project], join_id)


# -- the project's side -------------------------------------------------------------------------


async def request_join(db: AsyncSession, urls: URLs, project: Actor, hub: Actor) -> HubMembership:
    """`project` asks to join `hub`: Join{actor: project, object: hub}."""
    if not is_hub_actor(hub):
        raise UserError(N_("%(hub)s is not a hub"), hub=hub.uri)
    row = await membership(db, hub, project)
    if row is not None and row.state == "approved":
        raise UserError(N_("%(project)s is already a member of %(hub)s"), project=project.username,
                        hub=hub.uri)
    if row is not None and row.state == "invited":
        return await accept_invitation(db, urls, project, hub)
    document = build_activity("Join", urls.new_activity(), project.uri, hub.uri, to=[hub.uri])
    row = await _row(db, hub, project, "requested", document["id"])
    row.activity_uri = document["id"]
    await emit.send(db, project, document, [hub], hub.uri)
    return row


async def accept_invitation(db: AsyncSession, urls: URLs, project: Actor,
                            hub: Actor) -> HubMembership:
    """`project` accepts the hub's Invite: Accept{Invite}; both sides agreed, so approved."""
    return await _answer_invitation(db, urls, project, hub, accept=True)


async def decline_invitation(db: AsyncSession, urls: URLs, project: Actor, hub: Actor) -> None:
    """`project` declines the hub's Invite: Reject{Invite}, and the invitation is gone."""
    await _answer_invitation(db, urls, project, hub, accept=False)


async def _answer_invitation(db: AsyncSession, urls: URLs, project: Actor, hub: Actor,
                             accept: bool) -> HubMembership:
    row = await membership(db, hub, project)
    if row is None or row.state != "invited":
        raise UserError(N_("%(hub)s has not invited %(project)s"), hub=hub.uri,
                        project=project.username)
    invite = await opening(db, row, hub, project)
    document = build_activity("Accept" if accept else "Reject", urls.new_activity(), project.uri,
                              invite, to=[hub.uri])
    if accept:
        row.state, row.approved_at = "approved", utcnow()
    else:
        await db.delete(row)
    await emit.send(db, project, document, [hub], row.activity_uri)
    return row


async def leave(db: AsyncSession, urls: URLs, project: Actor, hub: Actor) -> None:
    """`project` leaves `hub` (or withdraws its request): Leave{actor: project, object: hub}."""
    row = await membership(db, hub, project)
    if row is None:
        raise UserError(N_("%(project)s is not in %(hub)s"), project=project.username, hub=hub.uri)
    document = build_activity("Leave", urls.new_activity(), project.uri, hub.uri, to=[hub.uri])
    await db.delete(row)
    await emit.send(db, project, document, [hub], hub.uri)


# -- the hub's side -----------------------------------------------------------------------------


async def start_following(db: AsyncSession, urls: URLs, hub: Actor, project: Actor) -> None:
    """After approval: the hub follows the project (its posts come to the hub) and, the first
    time, fetches its recent posts."""
    if project.id == hub.id:
        return
    existing = await db.scalar(select(Follow.id).where(
        Follow.follower_id == hub.id, Follow.followed_id == project.id))
    if existing is None:
        await outbox.follow(db, urls, hub, project, checked=True)
        await queue_backfill(db, urls, hub, project)


async def approve(db: AsyncSession, urls: URLs, hub: Actor, project: Actor,
                  row: HubMembership | None = None, row_names_their_join: bool = False
                  ) -> HubMembership:
    """Approve a request to join: Accept{Join} to the project, then follow it. `row`: the
    membership, when the caller holds it already; `row_names_their_join`: the caller knows
    that row.activity_uri is the project's Join (it has just received it), so `opening` need
    not look it up."""
    row = row if row is not None else await membership(db, hub, project)
    if row is not None and (row.hub_id, row.project_id) != (hub.id, project.id):
        raise ValueError("approve() was given the membership of another hub or project")
    if row is None or row.state not in ("requested", "approved"):
        raise UserError(N_("%(project)s has not asked to join"), project=f"{project.username}@{project.domain}")
    # Approved before `opening` reads (and so flushes): a new row is written once, approved.
    # `opening` reads the state only for an invited row, which this is not.
    row.state, row.approved_at = "approved", row.approved_at or utcnow()
    if row_names_their_join:
        join = {"id": row.activity_uri, "type": "Join", "actor": project.uri, "object": hub.uri}
    else:
        join = await opening(db, row, hub, project)
    document = build_activity("Accept", urls.new_activity(), hub.uri, join, to=[project.uri])
    await emit.send(db, hub, document, [project], row.activity_uri)
    await start_following(db, urls, hub, project)
    return row


async def invite(db: AsyncSession, urls: URLs, hub: Actor, project: Actor) -> HubMembership:
    """Invite a project: Invite{actor: hub, object: hub, target: project}. A project that asked
    already is simply approved."""
    row = await membership(db, hub, project)
    if row is not None and row.state == "requested":
        return await approve(db, urls, hub, project)
    if row is not None and row.state == "approved":
        raise UserError(N_("%(project)s is already a member"), project=f"{project.username}@{project.domain}")
    if project.type != "Group":
        raise UserError(N_("%(project)s is not a project (a Group)"), project=project.uri)
    document = build_activity("Invite", urls.new_activity(), hub.uri, hub.uri, to=[project.uri],
                              target=project.uri)
    row = await _row(db, hub, project, "invited", document["id"])
    row.activity_uri = document["id"]
    await emit.send(db, hub, document, [project], project.uri)
    return row


async def reject_or_remove(db: AsyncSession, urls: URLs, hub: Actor, project: Actor) -> str:
    """Turn down a request, withdraw an invitation or remove a member: a Reject of the Join (or
    Invite) that began it tells the project; the hub stops following it. Returns the old state."""
    row = await membership(db, hub, project)
    if row is None:
        raise UserError(N_("%(project)s is not in this hub"), project=f"{project.username}@{project.domain}")
    began = await opening(db, row, hub, project)
    document = build_activity("Reject", urls.new_activity(), hub.uri, began, to=[project.uri])
    state = row.state
    await db.delete(row)
    await emit.send(db, hub, document, [project], row.activity_uri)
    await outbox.unfollow(db, urls, hub, project)
    return state


async def forget(db: AsyncSession, urls: URLs, hub: Actor, project: Actor) -> None:
    """The other side ended it (Leave, Reject): drop the row; a local hub stops following."""
    row = await membership(db, hub, project)
    if row is not None:
        await db.delete(row)
        await db.flush()
    if hub.local:
        await outbox.unfollow(db, urls, hub, project)


async def hub_follow_agreed(db: AsyncSession, follower: Actor, project: Actor) -> bool:
    """A hub's Follow of its approved member project needs no second approval: the project
    agreed when it joined (fedsph.handlers.follows accepts it even if it approves follows)."""
    row = await membership(db, follower, project)
    return row is not None and row.state == "approved"


async def ensure_hub_exists(writers, urls: URLs, settings) -> Actor:
    """Hub mode (FEDSPH_HUB=1) at `serve` or `bootstrap`: the hub, made with FEDSPH_HUB_NAME
    when there is none; an existing hub is left as it is."""
    async with writers() as db, db.begin():
        hub = await local_hub(db)
        if hub is None:
            hub = await ensure_hub(db, urls, settings.domain, name=settings.hub_name)
        return hub

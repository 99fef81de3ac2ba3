"""A project's manage page: its follows and follow requests, invitations, comments waiting for
approval, recent mentions, hub memberships and (for the node's admins) blocks.

Every POST has passed the CSRF check of fedsph/web/auth_middleware.py before it reaches a handler.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from fedsph.accounts import create_invite
from fedsph.config import mail_enabled
from fedsph.core.numbers import parse_id
from fedsph.errors import BadRequest, FetchError, Forbidden, UserError
from fedsph.federation import blocks
from fedsph.federation.actors import get_actor_by_uri, resolve_handle
from fedsph.i18n import N_
from fedsph.mail.queue import queue_invite
from fedsph.models import Actor, Follow, Object
from fedsph.projects import outbox, queries
from fedsph.web import project_hubs
from fedsph.web.auth_middleware import local_actor_or_404, read_form, require_member
from fedsph.web.hrefs import remote_href
from fedsph.web.keys import READERS, REMOTE, SETTINGS, URLS, USER, WRITERS
from fedsph.web.languages import visitor_lang
from fedsph.web.render import error_message, html_response


async def _manage_context(db, actor: Actor) -> dict:
    requests = (await db.execute(
        select(Follow, Actor).join(Actor, Actor.id == Follow.follower_id)
        .where(Follow.followed_id == actor.id, Follow.state == "pending")
        .order_by(Follow.id).limit(queries.MAX_LISTED))).all()
    own_updates = select(Object.uri).where(Object.actor_id == actor.id)
    comments = (await db.execute(
        select(Object, Actor).join(Actor, Actor.id == Object.actor_id)
        .where(Object.in_reply_to.in_(own_updates), Object.deleted_at.is_(None))
        .order_by(Object.approved, Object.published.desc()).limit(50))).all()
    return {
        "followers": await queries.relation_actors(db, actor, followers=True),
        "following": await queries.relation_actors(db, actor, followers=False),
        "pending_out": await queries.relation_actors(db, actor, followers=False, state="pending"),
        "requests": requests,
        "comments": comments,
        "mentions": await _mentions(db, actor),
        "hubs": await project_hubs.memberships(db, actor),
        "hubs_total": await project_hubs.membership_count(db, actor),
    }


async def _mentions(db, actor: Actor) -> list[tuple]:
    """The latest mentions of (and replies to) the project: (notification, author, href).

    Public posts link to their page here; others to their own server, where only their
    addressees can read them."""
    rows = await queries.notifications_for(db, actor, limit=20, types=["mention"],
                                           include_dismissed=True)
    uris = [notification.object_uri for notification, _ in rows if notification.object_uri]
    public = set(await db.scalars(select(Object.uri).where(
        Object.uri.in_(uris), queries.shown_to_visitors()))) if uris else set()
    return [(notification, author,
             remote_href("objects", notification.object_uri)
             if notification.object_uri in public else notification.object_uri)
            for notification, author in rows]


async def _render_manage(request: web.Request, actor: Actor, status: int = 200, **extra):
    admin = request.get(USER) is not None and request[USER].is_admin
    async with request.app[READERS]() as db:
        context = await _manage_context(db, actor)
        # Only admins see (and may change) the node-wide blocks.
        context["blocks"] = await blocks.get_blocks(db) if admin else None
    return html_response(request, "manage.html", status=status, actor=actor,
                         handle=f"{actor.username}@{request.app[SETTINGS].domain}",
                         done=request.query.get("done"),
                         mail_on=mail_enabled(request.app[SETTINGS]),
                         **{"error": None, "invite_link": None, **context, **extra})


async def manage_page(request: web.Request) -> web.Response:
    actor = await local_actor_or_404(request)
    await require_member(request, actor)
    # Prefilled by /authorize_interaction, where a remote follow from another server lands.
    return await _render_manage(request, actor, follow_prefill=request.query.get("follow", ""))


def _done(actor: Actor, what: str) -> web.HTTPSeeOther:
    # Post/redirect/get: reloading the page does not send the form again.
    return web.HTTPSeeOther(f"/actors/{actor.username}/manage?done={what}")


async def _remote_actor(request: web.Request, target: str) -> Actor:
    """A remote actor by handle or URL, from the cache or fetched. BadRequest with a reason."""
    target = target.strip()
    if not target:
        raise BadRequest(N_("Enter a handle like name@example.org or an account address."))
    try:
        actor_id = await resolve_handle(request.app[WRITERS], request.app[REMOTE], target)
    except FetchError as exc:
        raise BadRequest(f"cannot find {target}: {exc}") from None
    async with request.app[READERS]() as db:
        return await db.get(Actor, actor_id)


async def manage_action(request: web.Request) -> web.Response:
    actor = await local_actor_or_404(request)
    user = await require_member(request, actor)
    form = await read_form(request)
    action = form.get("action", "")
    handler = MANAGE_ACTIONS.get(action)
    if handler is None:
        raise BadRequest(f"unknown action {action!r}")
    try:
        return await handler(request, actor, user, form)
    except (BadRequest, UserError) as exc:
        message = exc.message if isinstance(exc, BadRequest) else error_message(request, exc)
        return await _render_manage(request, actor, status=400, error=message)


async def _follow(request, actor, user, form):
    target = await _remote_actor(request, form.get("handle", ""))
    async with request.app[WRITERS]() as db, db.begin():
        await outbox.follow(db, request.app[URLS], await db.get(Actor, actor.id), target)
    raise _done(actor, "follow")


async def _unfollow(request, actor, user, form):
    async with request.app[WRITERS]() as db, db.begin():
        target = await get_actor_by_uri(db, form.get("target", ""))
        if target is None or not await outbox.unfollow(db, request.app[URLS], actor, target):
            raise BadRequest("this project does not follow that account")
    raise _done(actor, "unfollow")


async def _answer(request, actor, user, form, accept: bool):
    request_id = parse_id(form.get("request"))
    if request_id is None:
        raise BadRequest("which follow request?")
    async with request.app[WRITERS]() as db, db.begin():
        relation = await db.scalar(select(Follow).where(
            Follow.id == request_id, Follow.followed_id == actor.id, Follow.state == "pending"))
        if relation is None:
            raise BadRequest("this follow request was already answered")
        await outbox.answer_follow(db, request.app[URLS], relation, accept=accept)
    raise _done(actor, "approved" if accept else "rejected")


async def _approve(request, actor, user, form):
    return await _answer(request, actor, user, form, True)


async def _reject(request, actor, user, form):
    return await _answer(request, actor, user, form, False)


async def _invite(request, actor, user, form):
    address = form.get("email", "").strip()
    if address and mail_enabled(request.app[SETTINGS]):
        # Mailed: the worker makes the invitation when it sends it (fedsph/mail/sender.py), in
        # the inviter's language; the link is in the mail only.
        async with request.app[WRITERS]() as db, db.begin():
            await queue_invite(db, actor, user, address[:300], visitor_lang(request))
        raise _done(actor, "invite_mailed")
    async with request.app[WRITERS]() as db, db.begin():
        token = await create_invite(db, actor, user)
    # Shown once, never stored in clear: no redirect, the link is in this answer only.
    link = f"{request.app[URLS].base}/invite/{token}"
    return await _render_manage(request, actor, invite_link=link)


def clean_domain(raw: str) -> str:
    """`https://Example.org/path` or `@user@example.org` -> `example.org` (see fedsph.federation.blocks)."""
    try:
        return blocks.parse_domain(raw)
    except UserError:
        raise BadRequest(N_("Enter a domain like example.org.")) from None


def _require_admin(user) -> None:
    """Blocks apply to the whole node, so only its admins set or lift them."""
    if not user.is_admin:
        # Not in the catalogs: only a crafted request gets here, the controls are not shown.
        raise Forbidden("Only the node's admins can change blocks.")


async def _block_account(request, actor, user, form):
    _require_admin(user)
    target = await _remote_actor(request, form.get("handle", ""))
    if target.local:
        raise BadRequest("accounts on this node cannot be blocked here")
    async with request.app[WRITERS]() as db, db.begin():
        await blocks.block_account(db, target)
    raise _done(actor, "blocked")


async def _block_domain(request, actor, user, form):
    _require_admin(user)
    domain = clean_domain(form.get("domain", ""))
    if blocks.covers(domain, blocks.host_of(request.app[URLS].base)):
        raise BadRequest(N_("This node cannot block itself."))
    async with request.app[WRITERS]() as db, db.begin():
        await blocks.block_domain(db, domain)
    raise _done(actor, "blocked")


async def _unblock(request, actor, user, form):
    _require_admin(user)
    block_id = parse_id(form.get("block"))
    if block_id is None:
        raise BadRequest("which block?")
    async with request.app[WRITERS]() as db, db.begin():
        await blocks.unblock(db, block_id)
    raise _done(actor, "unblocked")


async def _hold_replies(request, actor, user, form):
    async with request.app[WRITERS]() as db, db.begin():
        (await db.get(Actor, actor.id)).hold_replies = form.get("hold_replies") == "on"
    raise _done(actor, "saved")


async def _comment(request, actor, form, db) -> Object:
    """A reply to one of this project's updates, by its row id."""
    comment_id = parse_id(form.get("comment"))
    if comment_id is None:
        raise BadRequest("which comment?")
    own_updates = select(Object.uri).where(Object.actor_id == actor.id)
    comment = await db.scalar(select(Object).where(Object.id == comment_id,
                                                   Object.in_reply_to.in_(own_updates)))
    if comment is None:
        raise BadRequest("this is not a comment on one of this project's updates")
    return comment


async def _moderate(request, actor, user, form):
    verb = form.get("action")
    async with request.app[WRITERS]() as db, db.begin():
        comment = await _comment(request, actor, form, db)
        if verb == "approve_comment":
            await outbox.approve_comment(db, comment)
        else:
            await outbox.hide_comment(db, comment, verb == "hide_comment")
    raise _done(actor, "moderated")


MANAGE_ACTIONS = {
    "follow": _follow,
    "unfollow": _unfollow,
    "approve": _approve,
    "reject": _reject,
    "invite": _invite,
    "block_account": _block_account,
    "block_domain": _block_domain,
    "unblock": _unblock,
    "hold_replies": _hold_replies,
    "hide_comment": _moderate,
    "show_comment": _moderate,
    "approve_comment": _moderate,
    **project_hubs.MANAGE_ACTIONS,  # join, accept or decline an invitation, leave
}


def add_routes(app: web.Application) -> None:
    app.router.add_get("/actors/{username}/manage", manage_page)
    app.router.add_post("/actors/{username}/manage", manage_action)

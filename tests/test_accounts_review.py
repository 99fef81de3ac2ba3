"""Account management (issue 14, item 2), what a review found: ways in that outlived a password
change or a disable (authorization codes, invitations), the hub actor deleted as a project,
servers that got a project's posts through the hub missing its Delete, content written for a
tombstone, the last-admin rule, and federation input to a deleted actor. Every attack checks
that nothing was stored or changed."""

from __future__ import annotations

import asyncio
import io
import types
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import func, select

from fedsph.accounts import (
    InvitationGone,
    change_password,
    create_invite,
    hash_password,
    hash_token,
    redeem_invitation,
    set_disabled,
)
from fedsph.admin import account_commands
from fedsph.api import tokens as api_tokens
from fedsph.errors import Gone, UserError
from fedsph.federation.actors import find_actor
from fedsph.models import (
    Activity,
    Actor,
    Follow,
    HubMembership,
    InboxItem,
    Invite,
    OAuthApp,
    OAuthCode,
    OAuthToken,
    Object,
    User,
    utcnow,
)
from fedsph.projects import commands as project_commands
from fedsph.projects import outbox
from fedsph.projects.deletion import delete_actor
from fedsph.web import compose
from fedsph.web.keys import DOCUMENTS, REMOTE
from tests.fakepeer import FakePeer
from tests.support.hub import hub_node
from tests.support.members import (
    PASSWORD,
    api,
    browser,
    csrf_from,
    login,
    make_user,
    member_token,
    multipart,
    post_form,
)
from tests.support.nodes import cli_node

OOB = "urn:ietf:wg:oauth:2.0:oob"


async def _count(node, model, *where) -> int:
    async with node.readers() as db:
        return await db.scalar(select(func.count()).select_from(model).where(*where))


# --- 1. an unused authorization code ends with the password or the account -----------------------

@pytest.mark.parametrize("ending", ["password", "disable"])
async def test_an_unused_code_buys_no_token_after_a_password_change_or_a_disable(node, ending):
    user = await make_user(node, "ana")
    await make_user(node, "root", admin=True)
    code = "code-of-ana-" + "x" * 20
    async with node.writers() as db, db.begin():
        app = OAuthApp(client_id="app-1", client_secret_hash=hash_token("secret"), name="app",
                       redirect_uris=OOB, scopes="read")
        db.add(app)
        await db.flush()
        db.add(OAuthCode(code_hash=hash_token(code), app_id=app.id, user_id=user.id,
                         actor_id=user.actor_id, redirect_uri=OOB, scopes="read",
                         expires_at=utcnow() + timedelta(minutes=10)))
    new_hash = await hash_password("una clave nueva")
    async with node.writers() as db, db.begin():
        ana = await db.get(User, user.id)
        if ending == "password":
            await change_password(db, ana, new_hash)
        else:
            await set_disabled(db, ana, True)
    fields = {"grant_type": "authorization_code", "code": code, "client_id": "app-1",
              "client_secret": "secret", "redirect_uri": OOB}
    async with aiohttp.ClientSession() as http, http.post(f"{node.base}/oauth/token",
                                                          data=fields) as answer:
        assert answer.status == 400 and (await answer.json())["error"] == "invalid_grant"
    assert await _count(node, OAuthToken) == 0
    assert await _count(node, OAuthCode) == 0


# --- 2. the invitations of a disabled or deleted user --------------------------------------------

async def test_a_disabled_or_deleted_users_invitations_stop_working(node):
    casa = await node.create_actor("casa")
    ana = await make_user(node, "ana", casa)
    bea = await make_user(node, "bea", casa)
    root = await make_user(node, "root", admin=True)
    async with node.writers() as db, db.begin():
        project = await db.get(Actor, casa.id)
        by_ana = await create_invite(db, project, await db.get(User, ana.id))
        by_bea = await create_invite(db, project, await db.get(User, bea.id))
        by_root = await create_invite(db, project, await db.get(User, root.id))
    async with node.writers() as db, db.begin():
        await set_disabled(db, await db.get(User, ana.id), True)
    args = types.SimpleNamespace(username="bea", with_projects=False, yes=True)
    assert await account_commands.user_delete(cli_node(node), args) == 0
    users = await _count(node, User)
    password_hash = await hash_password(PASSWORD)
    for token, name in ((by_ana, "nuevo1"), (by_bea, "nuevo2")):
        with pytest.raises(InvitationGone):
            async with node.writers() as db, db.begin():
                await redeem_invitation(db, node.urls, node.settings.domain, token, name,
                                        password_hash)
    assert await _count(node, User) == users
    assert await _count(node, Actor, Actor.username.in_(["nuevo1", "nuevo2"])) == 0
    # An active admin's invitation still works.
    async with node.writers() as db, db.begin():
        await redeem_invitation(db, node.urls, node.settings.domain, by_root, "nuevo3",
                                password_hash)
    assert await _count(node, Invite, Invite.used_at.is_(None)) == 0


# --- 3. the node's hub is no project to delete ---------------------------------------------------

async def test_the_hub_actor_cannot_be_deleted_as_a_project(node):
    hub = await hub_node(node)
    await make_user(node, "root", admin=True)
    for yes in (True, False):  # said before asking to confirm
        with pytest.raises(UserError, match="this node's hub"):
            await project_commands.project_delete(cli_node(node),
                                                  types.SimpleNamespace(slug="hub", yes=yes))
    async with browser() as root:
        await login(root, node, "root")
        async with root.get(f"{node.base}/admin") as page:
            assert 'name="project" value="hub"' not in await page.text()
        answer = await post_form(root, f"{node.base}/admin/projects",
                                 {"action": "delete", "project": "hub", "confirm": "hub"},
                                 page=f"{node.base}/admin")
        assert answer.status == 404
    async with node.readers() as db:
        assert (await db.get(Actor, hub.id)).deleted_at is None
    assert await _count(node, Activity) == 0


# --- 4. the Delete reaches the servers that got the posts through the hub ------------------------

async def test_the_delete_reaches_the_hubs_followers_and_relay_subscribers(node):
    peer = await FakePeer(shared_inbox=False).start()
    try:
        hub = await hub_node(node)
        casa = await node.create_actor("casa")
        carla, relay = peer.add_actor("carla"), peer.add_actor("relay", "Application")
        remote = node.app[REMOTE]
        held = [await find_actor(node.writers, remote, who.uri) for who in (carla, relay)]
        async with node.writers() as db, db.begin():
            db.add(HubMembership(hub_id=hub.id, project_id=casa.id, state="approved"))
            db.add(Follow(follower_id=held[0].id, followed_id=hub.id, state="accepted"))
            db.add(Follow(follower_id=held[1].id, followed_id=hub.id, state="accepted",
                          relay=True))
        peer.key_lookup[casa.key_id] = casa.public_key_pem  # as it was fetched earlier
        await project_commands.project_delete(cli_node(node),
                                              types.SimpleNamespace(slug="casa", yes=True))
        await node.run_worker()
        deletes = {r.path: r.activity for r in peer.received if r.verified}
        assert set(deletes) == {"/users/carla/inbox", "/users/relay/inbox"}
        assert {(d["type"], d["object"]) for d in deletes.values()} == {("Delete", casa.uri)}
    finally:
        await peer.stop()


# --- 5. nothing is written for a tombstone -------------------------------------------------------

async def test_nothing_is_published_for_a_deleted_actor(node):
    casa = await node.create_actor("casa")
    async with node.writers() as db, db.begin():
        await delete_actor(db, node.urls, await db.get(Actor, casa.id))
    with pytest.raises(Gone):
        async with node.writers() as db, db.begin():
            await outbox.publish_text_post(db, node.urls, await db.get(Actor, casa.id), "tarde")
    # Deleted twice (two admins at once): the second finds the tombstone, sends nothing more.
    stale = Actor(**{c: getattr(casa, c) for c in ("id", "uri", "local", "type", "username")})
    with pytest.raises(UserError, match="already deleted"):
        async with node.writers() as db, db.begin():
            await delete_actor(db, node.urls, await db.merge(stale))
    assert await _count(node, Object) == 0
    assert await _count(node, Activity) == 1  # its own Delete


async def test_a_post_racing_the_deletion_answers_410_and_stores_nothing(node, monkeypatch):
    casa = await node.create_actor("casa")
    await make_user(node, "ana", casa)
    member = compose._member_actor

    async def deleted_meanwhile(request):  # the admin deletes casa after the checks passed
        actor = await member(request)
        async with node.writers() as db, db.begin():
            await delete_actor(db, node.urls, await db.get(Actor, actor.id))
        return actor
    async with browser() as ana:
        await login(ana, node, "ana")
        page = f"{node.base}/actors/casa/compose"
        token = await csrf_from(ana, page)
        monkeypatch.setattr(compose, "_member_actor", deleted_meanwhile)
        async with ana.post(page, data=multipart(token, {"text_en": "tarde", "text_es": "tarde"}),
                            allow_redirects=False) as answer:
            assert answer.status == 410, await answer.text()
    assert await _count(node, Object) == 0
    assert await _count(node, Activity) == 1


async def test_an_api_post_racing_the_deletion_answers_410_and_stores_nothing(node, monkeypatch):
    token, person = await member_token(node, "ana", None)
    caller_for = api_tokens.caller_for

    async def deleted_meanwhile(request, secret):
        caller = await caller_for(request, secret)
        async with node.writers() as db, db.begin():
            await delete_actor(db, node.urls, await db.get(Actor, person.id))
        return caller
    monkeypatch.setattr(api_tokens, "caller_for", deleted_meanwhile)
    status, body = await api(node, token, "POST", "/api/v1/statuses", json={"status": "tarde"})
    assert status == 410 and body["error"] == "This account was deleted."
    assert await _count(node, Object) == 0
    assert await _count(node, Activity) == 1


# --- 6. the last admin -------------------------------------------------------------------------

async def test_a_disabled_admin_may_be_disabled_again_and_the_last_one_not_deleted(node):
    root = await make_user(node, "root", admin=True)
    old = await make_user(node, "old", admin=True)
    async with node.writers() as db, db.begin():
        await set_disabled(db, await db.get(User, old.id), True)
    async with node.writers() as db, db.begin():  # once more: nothing to refuse
        await set_disabled(db, await db.get(User, old.id), True)
    before = await _count(node, User)
    with pytest.raises(UserError, match="only admin"):
        await account_commands.user_delete(
            cli_node(node), types.SimpleNamespace(username="root", with_projects=False,
                                                  yes=True))
    assert await _count(node, User) == before
    async with node.readers() as db:
        assert (await db.get(User, root.id)).disabled_at is None


async def test_two_admins_disabling_each_other_at_once_leave_one(node):
    one = await make_user(node, "uno", admin=True)
    two = await make_user(node, "dos", admin=True)

    async def disable(user_id: int) -> None:
        async with node.writers() as db, db.begin():
            await set_disabled(db, await db.get(User, user_id), True)
    async with node.writers() as first:
        async with first.begin():
            await set_disabled(first, await first.get(User, two.id), True)
            second = asyncio.create_task(disable(one.id))
            await asyncio.sleep(0.5)
            assert not second.done(), "the second waits for the first's locks"
        with pytest.raises(UserError, match="only admin"):
            await second
    async with node.readers() as db:
        assert list(await db.execute(select(User.username, User.disabled_at.is_(None))
                                     .order_by(User.username))) == [("dos", False), ("uno", True)]


# --- 7. federation input to a tombstone ----------------------------------------------------------

async def test_activities_to_a_deleted_actor_are_refused_or_ignored(node, peer):
    casa = await node.create_actor("casa")
    alice = peer.add_actor("alice")
    await project_commands.project_delete(cli_node(node),
                                          types.SimpleNamespace(slug="casa", yes=True))
    await node.run_worker()
    before = (await _count(node, InboxItem), await _count(node, Activity))
    follow = {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.new_id(),
              "type": "Follow", "actor": alice.uri, "object": casa.uri}
    status, text = await peer.post(alice, f"{node.base}/actors/casa/inbox", follow)
    assert status == 410 and "deleted" in text
    assert (await _count(node, InboxItem), await _count(node, Activity)) == before
    join = {**follow, "id": peer.new_id(), "type": "Join"}
    for activity in ({**follow, "id": peer.new_id()}, join):
        status, _ = await peer.post(alice, f"{node.base}/inbox", activity)
        assert status in (202, 200)
    await node.run_worker()
    assert await _count(node, Follow) == 0
    assert await _count(node, HubMembership) == 0
    assert await _count(node, Activity) == before[1], "no Accept, no Reject: nothing sent"
    assert not peer.activities()


# --- nits -------------------------------------------------------------------------------------

async def test_user_password_names_a_missing_user_before_asking(node, monkeypatch):
    def asked(stream=None):
        raise AssertionError("asked for a password for nobody")
    monkeypatch.setattr(account_commands, "read_new_password", asked)
    with pytest.raises(UserError, match="no user called 'nadie'"):
        await account_commands.user_password(cli_node(node),
                                             types.SimpleNamespace(username="nadie"))


def test_a_password_piped_from_windows_loses_its_line_end():
    assert account_commands.read_new_password(io.StringIO("una clave larga\r\n")) == \
        "una clave larga"


async def test_deleting_on_the_admin_page_drops_the_cached_webfinger_answer(node):
    await node.create_actor("casa")
    await make_user(node, "root", admin=True)
    finger = f"{node.base}/.well-known/webfinger?resource=acct:casa@{node.settings.domain}"
    async with aiohttp.ClientSession() as http:
        async with http.get(finger) as answer:
            assert answer.status == 200
        assert any(key[0] == "webfinger" for key in node.app[DOCUMENTS])
        async with browser() as root:
            await login(root, node, "root")
            answer = await post_form(root, f"{node.base}/admin/projects",
                                     {"action": "delete", "project": "casa", "confirm": "casa"},
                                     page=f"{node.base}/admin")
            assert answer.status == 303
        async with http.get(finger) as answer:
            assert answer.status == 410
        async with http.get(f"{node.base}/actors/casa?lang=es",
                            headers={"Accept": "text/html"}) as page:
            assert page.status == 410 and "Esta cuenta fue eliminada." in await page.text()


async def test_the_password_form_says_the_minimum_length_it_checks(node):
    await make_user(node, "ana")
    async with browser() as ana:
        await login(ana, node, "ana")
        async with ana.get(f"{node.base}/account/password?lang=fr") as page:
            assert "au moins 8 caractères" in await page.text()

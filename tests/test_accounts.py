"""Account management (issue 14, item 2), in process: deleting a project (the Delete a follower
on another node acts on, the 410 Tombstone, WebFinger, its media files, its name reserved), the
admin page and its attacks, and a member's password form. The same through real processes and
Mastodon.py: tests/test_accounts_e2e.py."""

from __future__ import annotations

import json
import types
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import func, select

from fedsph.accounts import (
    InvitationGone,
    create_invite,
    hash_password,
    hash_token,
    redeem_invitation,
    set_disabled,
)
from fedsph.errors import UserError
from fedsph.federation.actors import create_local_actor, find_actor
from fedsph.models import (
    Activity,
    Actor,
    Delivery,
    Follow,
    LoginSession,
    Media,
    OAuthApp,
    OAuthCode,
    OAuthToken,
    Object,
    User,
    utcnow,
)
from fedsph.projects import commands as project_commands
from fedsph.projects import outbox
from fedsph.projects.media import media_dir, save_upload
from fedsph.web.documents import forget_actor
from fedsph.web.keys import DOCUMENTS, REMOTE
from tests.support.images import jpeg
from tests.support.members import (
    PASSWORD,
    browser,
    csrf_from,
    login,
    make_user,
    member_token,
    post_form,
)
from tests.support.nodes import cli_node, settle


async def _project_on_a_followed_from_b(a, b):
    """casa on A (with a post and an image), followed by beta on B."""
    casa = await a.create_actor("casa")
    beta = await b.create_actor("beta")
    async with a.writers() as db, db.begin():
        casa = await db.get(Actor, casa.id)
        await outbox.publish_text_post(db, a.urls, casa, "Primera piedra")
        await save_upload(db, a.settings, casa, jpeg(), "Obra", "CC-BY-4.0", None)
    casa_on_b = await find_actor(b.writers, b.app[REMOTE], f"{a.base}/actors/casa")
    async with b.writers() as db, db.begin():
        await outbox.follow(db, b.urls, await db.get(Actor, beta.id),
                            await db.get(Actor, casa_on_b.id))
    await settle(a, b)
    return casa_on_b


async def _fetch(url: str, accept: str = "application/activity+json") -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url, headers={"Accept": accept}) as r:
        return r.status, await r.text()


async def test_a_deleted_project_is_gone_here_and_on_the_follower_node(two_nodes, capsys):
    a, b = two_nodes
    casa_on_b = await _project_on_a_followed_from_b(a, b)
    async with b.readers() as db:
        assert await db.scalar(select(func.count()).select_from(Follow).where(
            Follow.followed_id == casa_on_b.id, Follow.state == "accepted")) == 1
    files = sorted(media_dir(a.settings).iterdir())
    assert files, "the upload wrote its renditions"

    args = types.SimpleNamespace(slug="casa", yes=True)
    assert await project_commands.project_delete(cli_node(a), args) == 0
    assert "Delete queued to 1 inbox(es)" in capsys.readouterr().out
    assert not any(media_dir(a.settings).iterdir()), "its media files are freed"
    async with a.readers() as db:
        row = await db.scalar(select(Actor).where(Actor.username == "casa", Actor.local))
        assert row.deleted_at is not None and row.private_key_pem  # the key signs the Delete
        assert await db.scalar(select(func.count()).select_from(Object).where(
            Object.actor_id == row.id)) == 0
        assert await db.scalar(select(func.count()).select_from(Media)) == 0
        sent = await db.scalar(select(Activity).where(Activity.actor_id == row.id))
        body = json.loads(sent.body)
        assert (body["type"], body["object"], body["actor"]) == ("Delete", row.uri, row.uri)
        assert "proof" in body

    await settle(a, b)  # A's worker signs and sends it; B's handles it
    async with a.readers() as db:
        assert {d.status for d in await db.scalars(select(Delivery))} <= {"sent"}
    async with b.readers() as db:
        assert await db.get(Actor, casa_on_b.id) is None, "B forgot the deleted project"

    # The CLI is another process: a serve process keeps its cached copy of the actor document
    # for at most FEDSPH_DOCUMENT_CACHE_SECONDS (ARCHITECTURE.md, "Caches"); here it ends now.
    forget_actor(a.app[DOCUMENTS], "casa")
    status, text = await _fetch(f"{a.base}/actors/casa")
    assert status == 410 and json.loads(text)["type"] == "Tombstone"
    assert json.loads(text)["formerType"] == "Group"
    assert (await _fetch(f"{a.base}/actors/casa", "text/html"))[0] == 410
    finger = f"{a.base}/.well-known/webfinger?resource=acct:casa@{a.settings.domain}"
    assert (await _fetch(finger, "application/jrd+json"))[0] == 410
    assert (await _fetch(f"{a.base}/.well-known/webfinger?resource=acct:nunca@"
                         f"{a.settings.domain}", "application/jrd+json"))[0] == 404
    status, page = await _fetch(f"{a.base}/", "text/html")
    assert status == 200 and "/actors/casa" not in page


async def test_a_deleted_name_is_never_given_again(node, capsys):
    project = await node.create_actor("casa")
    await make_user(node, "ana", project)
    async with node.writers() as db, db.begin():
        invite = await create_invite(db, await db.get(Actor, project.id), None)
    args = types.SimpleNamespace(slug="casa", yes=True)
    await project_commands.project_delete(cli_node(node), args)
    before = await _actor_rows(node)
    for actor_type in ("Group", "Person"):
        with pytest.raises(UserError, match="already taken"):
            async with node.writers() as db, db.begin():
                await create_local_actor(db, node.urls, node.settings.domain, "casa", actor_type)
    # The invitation went with its project.
    with pytest.raises(InvitationGone):
        async with node.writers() as db, db.begin():
            await redeem_invitation(db, node.urls, node.settings.domain, invite, "casa",
                                    await hash_password(PASSWORD))
    assert await _actor_rows(node) == before
    with pytest.raises(UserError, match="no project called 'casa'"):
        await project_commands.project_delete(cli_node(node), args)


async def _actor_rows(node) -> list[tuple]:
    async with node.readers() as db:
        return list(await db.execute(select(Actor.id, Actor.username, Actor.type,
                                            Actor.deleted_at).order_by(Actor.id)))


# --- the admin page ------------------------------------------------------------------------------

async def _state(node) -> tuple:
    async with node.readers() as db:
        users = list(await db.execute(select(User.username, User.disabled_at).order_by(User.id)))
        sessions = await db.scalar(select(func.count()).select_from(LoginSession))
    return users, sessions, await _actor_rows(node)


async def test_the_admin_page_is_for_admins_only_and_checks_every_form(node):
    casa = await node.create_actor("casa")
    await make_user(node, "root", admin=True)
    await make_user(node, "ana", casa)
    await make_user(node, "bea")
    async with browser() as anonymous, anonymous.get(f"{node.base}/admin",
                                                     allow_redirects=False) as page:
        assert page.status == 303 and page.headers["Location"].startswith("/login")
    async with browser() as ana:
        await login(ana, node, "ana")
        before = await _state(node)
        async with ana.get(f"{node.base}/admin") as page:
            assert page.status == 403
        # A member of casa (who may manage it) still may not delete it, nor disable anyone;
        # with a valid CSRF token from her own pages.
        token = await csrf_from(ana, f"{node.base}/actors/casa/manage")
        for path, fields in (("/admin/projects", {"action": "delete", "project": "casa",
                                                  "confirm": "casa"}),
                             ("/admin/users", {"action": "disable", "username": "bea"})):
            async with ana.post(node.base + path, data={"csrf": token, **fields},
                                allow_redirects=False) as answer:
                assert answer.status == 403
        assert await _state(node) == before

    async with browser() as root:
        await login(root, node, "root")
        async with root.get(f"{node.base}/admin") as page:
            text = await page.text()
            assert page.status == 200 and "ana" in text and "casa" in text
        async with root.get(f"{node.base}/admin?lang=fr") as page:
            assert "Utilisateurs et projets" in await page.text()
        async with root.get(f"{node.base}/admin?lang=en") as page:  # remembered: back to en
            assert page.status == 200
        before = await _state(node)
        # No CSRF token, a wrong one, a wrong confirmation, an unknown action: nothing changes.
        for fields in ({"action": "delete", "project": "casa", "confirm": "casa"},
                       {"csrf": "forged" * 5, "action": "delete", "project": "casa",
                        "confirm": "casa"}):
            async with root.post(f"{node.base}/admin/projects", data=fields) as answer:
                assert answer.status == 403
        for fields, status in (({"action": "delete", "project": "casa", "confirm": "cas"}, 400),
                               ({"action": "purge", "project": "casa", "confirm": "casa"}, 400),
                               ({"action": "delete", "project": "root", "confirm": "root"}, 404)):
            answer = await post_form(root, f"{node.base}/admin/projects", fields,
                                     page=f"{node.base}/admin")
            assert answer.status == status, await answer.text()
        answer = await post_form(root, f"{node.base}/admin/users",
                                 {"action": "disable", "username": "root"},
                                 page=f"{node.base}/admin")
        assert answer.status == 400 and "only admin" in await answer.text()
        assert await _state(node) == before

        # The real thing: ana disabled (her session ends at once), then enabled; casa deleted.
        async with browser() as ana:
            await login(ana, node, "ana")
            answer = await post_form(root, f"{node.base}/admin/users",
                                     {"action": "disable", "username": "ana"},
                                     page=f"{node.base}/admin")
            assert answer.status == 303
            async with ana.get(f"{node.base}/actors/casa/manage", allow_redirects=False) as page:
                assert page.status == 303 and page.headers["Location"].startswith("/login")
            refused = await login(ana, node, "ana")
            assert refused.status == 403 and "disabled" in await refused.text()
            wrong = await login(ana, node, "ana", password="not the password")
            assert wrong.status == 401  # a wrong password says only that, disabled or not
            await post_form(root, f"{node.base}/admin/users",
                            {"action": "enable", "username": "ana"}, page=f"{node.base}/admin")
            assert (await login(ana, node, "ana")).status == 303
        answer = await post_form(root, f"{node.base}/admin/projects",
                                 {"action": "delete", "project": "casa", "confirm": " Casa "},
                                 page=f"{node.base}/admin")
        assert answer.status == 303
    async with node.readers() as db:
        assert (await db.get(Actor, casa.id)).deleted_at is not None


# --- a member's password form --------------------------------------------------------------------

async def _password_hash(node, username: str) -> str:
    async with node.readers() as db:
        return await db.scalar(select(User.password_hash).where(User.username == username))


async def test_changing_the_password_ends_other_sessions_and_app_tokens(node):
    token, _ = await member_token(node, "ana", None)
    api = f"{node.base}/api/v1/accounts/verify_credentials"
    headers = {"Authorization": f"Bearer {token}"}
    async with browser() as here, browser() as elsewhere, browser() as stranger:
        await login(here, node, "ana")
        await login(elsewhere, node, "ana")
        old_hash = await _password_hash(node, "ana")
        form = f"{node.base}/account/password"
        # Wrong current password, new ones that differ or are too short, no CSRF token.
        for fields, status in (({"current": "nope nope", "password": "nueva clave 1",
                                 "password2": "nueva clave 1"}, 403),
                               ({"current": PASSWORD, "password": "nueva clave 1",
                                 "password2": "nueva clave 2"}, 400),
                               ({"current": PASSWORD, "password": "corta", "password2": "corta"},
                                400)):
            answer = await post_form(here, form, fields)
            assert answer.status == status, await answer.text()
        async with here.post(form, data={"current": PASSWORD, "password": "nueva clave 1",
                                         "password2": "nueva clave 1"}) as answer:
            assert answer.status == 403
        # Someone else's session cannot change ana's password: it checks its own user.
        await make_user(node, "bea")
        await login(stranger, node, "bea")
        answer = await post_form(stranger, form, {"current": PASSWORD, "password": "nueva clave 1",
                                                  "password2": "nueva clave 1"})
        assert answer.status == 303
        assert await _password_hash(node, "ana") == old_hash
        async with aiohttp.ClientSession() as http, http.get(api, headers=headers) as r:
            assert r.status == 200

        answer = await post_form(here, form, {"current": PASSWORD, "password": "nueva clave 1",
                                              "password2": "nueva clave 1"})
        assert answer.status == 303 and answer.headers["Location"].endswith("done=changed")
        assert await _password_hash(node, "ana") != old_hash
        async with here.get(node.base + answer.headers["Location"]) as page:
            assert page.status == 200 and "was changed" in await page.text()
        async with elsewhere.get(form, allow_redirects=False) as page:
            assert page.status == 303  # the other session ended
        async with aiohttp.ClientSession() as http, http.get(api, headers=headers) as r:
            assert r.status == 401  # the app's token was revoked
        assert (await login(elsewhere, node, "ana")).status == 401
        assert (await login(elsewhere, node, "ana", password="nueva clave 1")).status == 303


async def test_the_password_form_is_throttled_like_the_login_form(node):
    await make_user(node, "ana")
    form = f"{node.base}/account/password"
    async with browser() as here:
        await login(here, node, "ana")
        before = await _password_hash(node, "ana")
        wrong = {"current": "a guess a guess", "password": "nueva clave 1",
                 "password2": "nueva clave 1"}
        for _ in range(5):
            assert (await post_form(here, form, wrong)).status == 403
        # Even the right current password waits now: a stolen session cannot guess on and on.
        answer = await post_form(here, form, {**wrong, "current": PASSWORD})
        assert answer.status == 429 and int(answer.headers["Retry-After"]) >= 1
        assert await _password_hash(node, "ana") == before
        async with here.get(f"{form}?lang=es") as page:
            assert "Cambia tu contraseña" in await page.text()


async def test_a_code_given_before_the_user_was_disabled_buys_no_token(node):
    """The authorization code a member consented to is refused once they are disabled (it
    lives 10 minutes), as their password and their tokens are."""
    user = await make_user(node, "ana")
    code = "code-of-ana-" + "x" * 20
    async with node.writers() as db, db.begin():
        app = OAuthApp(client_id="app-1", client_secret_hash=hash_token("secret"), name="app",
                       redirect_uris="urn:ietf:wg:oauth:2.0:oob", scopes="read")
        db.add(app)
        await db.flush()
        db.add(OAuthCode(code_hash=hash_token(code), app_id=app.id, user_id=user.id,
                         actor_id=user.actor_id, redirect_uri="urn:ietf:wg:oauth:2.0:oob",
                         scopes="read", expires_at=utcnow() + timedelta(minutes=10)))
        await set_disabled(db, await db.get(User, user.id), True)
    fields = {"grant_type": "authorization_code", "code": code, "client_id": "app-1",
              "client_secret": "secret", "redirect_uri": "urn:ietf:wg:oauth:2.0:oob"}
    async with aiohttp.ClientSession() as http, http.post(f"{node.base}/oauth/token",
                                                          data=fields) as answer:
        assert answer.status == 400 and (await answer.json())["error"] == "invalid_grant"
    async with node.readers() as db:
        assert await db.scalar(select(func.count()).select_from(OAuthToken)) == 0

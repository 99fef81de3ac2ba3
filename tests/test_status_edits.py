"""Edit history and sources (issue 13, item 5), and the smaller items of issue 13's item 9 that
live beside them: notifications that go with a deleted post, last_status_at, hashtags read alike
on every way of writing a post. In-process nodes and a fake peer; the real-process end-to-end
tests are in test_status_history_e2e.py.
"""

from __future__ import annotations

import types

from multidict import MultiDict
from sqlalchemy import func, select

from fedsph.models import Actor, Media, Notification, Object, StatusEdit
from fedsph.projects import commands
from fedsph.projects.media_prune import prune_media
from fedsph.projects.outbox import (
    delete_post,
    edit_post,
    editable_post_fields,
    publish_post,
    publish_text_post,
)
from fedsph.web.compose import form_from_post, post_fields_from_form
from tests.fakepeer import AS
from tests.support.db import add_follow, add_remote_follower
from tests.support.edits import anonymous_status, count_edits, old_image, remote_note, send_update
from tests.support.members import (
    api,
    browser,
    csrf_from,
    login,
    make_user,
    member_token,
    multipart,
)
from tests.support.nodes import cli_node, flush

PUBLIC = f"{AS}#Public"


async def test_source_and_history_of_a_post_edited_twice(node):
    token, ana = await member_token(node, "ana", None)
    typed = "Primera versión\n\n\ncon   espacios y un enlace https://example.org/a."
    status, posted = await api(node, token, "POST", "/api/v1/statuses", json={
        "status": typed, "spoiler_text": "obras & ruido"})
    assert status == 200, posted
    sid = posted["id"]
    status, source = await api(node, token, "GET", f"/api/v1/statuses/{sid}/source")
    # The text exactly as typed (blank lines and spaces that the HTML does not keep).
    assert status == 200 and source == {"id": sid, "text": typed.strip(),
                                        "spoiler_text": "obras & ruido"}
    status, history = await api(node, token, "GET", f"/api/v1/statuses/{sid}/history")
    assert status == 200 and len(history) == 1  # never edited: the one version it has
    assert history[0]["content"] == posted["content"]
    assert history[0]["created_at"] == posted["created_at"] and posted["edited_at"] is None

    await api(node, token, "PUT", f"/api/v1/statuses/{sid}", json={
        "status": "Segunda versión", "spoiler_text": ""})
    status, edited = await api(node, token, "PUT", f"/api/v1/statuses/{sid}", json={
        "status": "Tercera versión", "spoiler_text": "aviso"})
    assert status == 200 and edited["edited_at"] is not None
    status, source = await api(node, token, "GET", f"/api/v1/statuses/{sid}/source")
    assert source == {"id": sid, "text": "Tercera versión", "spoiler_text": "aviso"}
    status, history = await api(node, token, "GET", f"/api/v1/statuses/{sid}/history")
    assert [("Primera versión" in h["content"], "Segunda versión" in h["content"],
             "Tercera versión" in h["content"]) for h in history] == [
        (True, False, False), (False, True, False), (False, False, True)]
    assert [(h["spoiler_text"], h["sensitive"]) for h in history] == [
        ("obras & ruido", True), ("", False), ("aviso", True)]
    assert history[0]["created_at"] == posted["created_at"]
    assert history[-1]["created_at"] == edited["edited_at"]  # the current version
    assert history[-1]["content"] == edited["content"]
    assert [h["created_at"] for h in history] == sorted(h["created_at"] for h in history)
    assert all(h["account"]["id"] == str(ana.id) for h in history)
    # A public post's history needs no token, as on Mastodon.
    assert await anonymous_status(node, f"/api/v1/statuses/{sid}/history") == 200
    assert await anonymous_status(node, f"/api/v1/statuses/{sid}/source") == 401


async def test_another_accounts_source_and_unknown_ids_are_404_and_change_nothing(node):
    token, _ = await member_token(node, "ana", None)
    bea_token, _ = await member_token(node, "bea", None)
    _, posted = await api(node, token, "POST", "/api/v1/statuses", json={"status": "Mío"})
    sid = posted["id"]
    await api(node, token, "PUT", f"/api/v1/statuses/{sid}", json={"status": "Mío, editado"})
    before = await count_edits(node, sid)
    status, error = await api(node, bea_token, "GET", f"/api/v1/statuses/{sid}/source")
    assert status == 404 and error["error"] == "Record not found"
    status, _ = await api(node, bea_token, "PUT", f"/api/v1/statuses/{sid}",
                          json={"status": "de bea"})
    assert status == 404
    for path in ("/api/v1/statuses/99999999/source", "/api/v1/statuses/99999999/history"):
        assert (await api(node, token, "GET", path))[0] == 404
    assert await count_edits(node, sid) == before == 1
    _, source = await api(node, token, "GET", f"/api/v1/statuses/{sid}/source")
    assert source["text"] == "Mío, editado"


async def test_history_is_no_more_visible_than_its_post(node):
    token, ana = await member_token(node, "ana", None)
    bea_token, _ = await member_token(node, "bea", None)
    eva_token, eva = await member_token(node, "eva", None)
    await add_follow(node, eva, ana)
    _, private = await api(node, token, "POST", "/api/v1/statuses", json={
        "status": "Solo para quien me sigue", "visibility": "private"})
    await api(node, token, "PUT", f"/api/v1/statuses/{private['id']}",
              json={"status": "Solo para quien me sigue, editado"})
    path = f"/api/v1/statuses/{private['id']}/history"
    assert await anonymous_status(node, path) == 404
    assert (await api(node, bea_token, "GET", path))[0] == 404
    status, history = await api(node, eva_token, "GET", path)  # a follower sees the post
    assert status == 200 and len(history) == 2
    # Only its author gets the source, even a follower who sees the post does not.
    assert (await api(node, eva_token, "GET", f"/api/v1/statuses/{private['id']}/source"))[0] == 404
    _, direct = await api(node, token, "POST", "/api/v1/statuses", json={
        "status": "@bea un secreto", "visibility": "direct"})
    await api(node, token, "PUT", f"/api/v1/statuses/{direct['id']}", json={"status": "@bea otro"})
    path = f"/api/v1/statuses/{direct['id']}/history"
    assert (await api(node, eva_token, "GET", path))[0] == 404  # a follower, not addressed
    assert (await api(node, bea_token, "GET", path))[0] == 200
    assert (await api(node, token, "GET", path))[0] == 200


async def test_a_received_update_keeps_the_version_it_replaces(node, peer):
    token, ana = await member_token(node, "ana", None)
    mia, mallory = peer.add_actor("mia"), peer.add_actor("mallory")
    follower = await add_remote_follower(node, ana, mia)  # stores mia
    await add_follow(node, ana, follower)  # ana follows mia, so her posts are kept
    note = await remote_note(node, peer, mia, "Reunión el lunes")
    async with node.readers() as db:
        sid = await db.scalar(select(Object.id).where(Object.uri == note["id"]))
    # Not an edit readers see (the same text again): no version; by someone else: ignored.
    await send_update(node, peer, mia, {**note, "updated": "2026-01-02T11:00:00Z"})
    await send_update(node, peer, mallory, {**note, "attributedTo": mallory.uri,
                                        "content": "<p>Reunión cancelada</p>",
                                        "updated": "2026-01-02T11:30:00Z"})
    assert await count_edits(node, sid) == 0
    await send_update(node, peer, mia, {**note, "content": "<p>Reunión el martes</p>",
                                    "summary": "cambio", "updated": "2026-01-02T12:00:00Z"})
    _, history = await api(node, token, "GET", f"/api/v1/statuses/{sid}/history")
    assert ["lunes" in h["content"] for h in history] == [True, False]
    assert "martes" in history[1]["content"] and history[1]["spoiler_text"] == "cambio"
    assert history[0]["created_at"].startswith("2026-01-02T10:00:00")
    assert history[1]["created_at"].startswith("2026-01-02T12:00:00")
    _, status_entity = await api(node, token, "GET", f"/api/v1/statuses/{sid}")
    assert status_entity["edited_at"] == history[-1]["created_at"]
    # An older version sent again (a replay) changes nothing.
    await send_update(node, peer, mia, {**note, "content": "<p>Reunión el jueves</p>",
                                    "updated": "2026-01-02T11:45:00Z"})
    assert await count_edits(node, sid) == 1
    _, status_entity = await api(node, token, "GET", f"/api/v1/statuses/{sid}")
    assert "martes" in status_entity["content"]  # the replay did not roll the edit back
    # Another server's post has no source here.
    assert (await api(node, token, "GET", f"/api/v1/statuses/{sid}/source"))[0] == 404


async def _notifications(node, token) -> list[dict]:
    status, notes = await api(node, token, "GET", "/api/v1/notifications")
    assert status == 200
    return notes


async def test_notifications_go_with_a_deleted_post(node, peer):
    token, ana = await member_token(node, "ana", None)
    bea_token, _ = await member_token(node, "bea", None)
    _, posted = await api(node, token, "POST", "/api/v1/statuses", json={"status": "Borrable"})
    await api(node, bea_token, "POST", f"/api/v1/statuses/{posted['id']}/favourite")
    await api(node, bea_token, "POST", f"/api/v1/statuses/{posted['id']}/reblog")
    await flush(node)
    kinds = {n["type"] for n in await _notifications(node, token)}
    assert {"favourite", "reblog"} <= kinds
    assert (await api(node, token, "DELETE", f"/api/v1/statuses/{posted['id']}"))[0] == 200
    notes = await _notifications(node, token)
    assert [n for n in notes if n["type"] in ("favourite", "reblog", "mention")] == []
    assert all(n.get("status") for n in notes if n["type"] not in ("follow", "follow_request"))

    # A received Delete takes the notifications of the deleted post with it too.
    mia = peer.add_actor("mia")
    note = await remote_note(node, peer, mia, f"Hola @ana@{node.settings.domain}",
                              tag=[{"type": "Mention", "href": ana.uri,
                                    "name": f"@ana@{node.settings.domain}"}],
                              cc=[mia.document["followers"], ana.uri])
    assert [n["type"] for n in await _notifications(node, token)] == ["mention"]
    status, body = await peer.post(mia, f"{node.base}/inbox", {
        "@context": AS, "id": peer.new_id(), "type": "Delete", "actor": mia.uri,
        "object": {"id": note["id"], "type": "Tombstone"}, "to": [PUBLIC]})
    assert status == 202, body
    await flush(node)
    assert await _notifications(node, token) == []
    async with node.readers() as db:
        assert await db.scalar(select(func.count(Notification.id))) == 0


async def test_last_status_at_is_the_date_of_the_newest_post(node, peer):
    token, ana = await member_token(node, "ana", None)
    _, me = await api(node, token, "GET", "/api/v1/accounts/verify_credentials")
    assert me["last_status_at"] is None
    _, posted = await api(node, token, "POST", "/api/v1/statuses", json={"status": "Hoy"})
    _, me = await api(node, token, "GET", "/api/v1/accounts/verify_credentials")
    assert me["last_status_at"] == posted["created_at"][:10]
    mia = peer.add_actor("mia")
    follower = await add_remote_follower(node, ana, mia)
    await add_follow(node, ana, follower)
    # The newest first: an older post stored after it must not set the date back.
    await remote_note(node, peer, mia, "Del futuro", published="2999-01-01T00:00:00Z")
    await remote_note(node, peer, mia, "Antiguo", published="2020-01-01T00:00:00Z")
    _, account = await api(node, token, "GET", f"/api/v1/accounts/{follower.id}")
    # A date in the future (another server's claim) counts as the day it arrived.
    assert account["last_status_at"] == me["last_status_at"]
    _, followers = await api(node, token, "GET", f"/api/v1/accounts/{ana.id}/followers")
    assert [a["last_status_at"] for a in followers] == [me["last_status_at"]]


async def test_the_cli_sends_a_hashtag_as_the_client_api_does(node, peer):
    project = await node.create_actor("casa")
    await add_remote_follower(node, project, peer.add_actor("mia"))
    args = types.SimpleNamespace(slug="casa", text="Cosecha de hoy #Huerta #2026", lang=None)
    assert await commands.post(cli_node(node), args) == 0
    await flush(node)
    [create] = peer.activities("Create")
    hashtags = [t for t in create["object"]["tag"] if t["type"] == "Hashtag"]
    assert hashtags == [{"type": "Hashtag", "name": "#Huerta", "href": f"{node.base}/tags/huerta"}]
    # Its edit follows the new text: the old tag goes, the new one comes.
    args = types.SimpleNamespace(slug="casa", object=create["object"]["id"],
                                 text="Cosecha de hoy #Tomates")
    assert await commands.edit(cli_node(node), args) == 0
    await flush(node)
    [update] = peer.activities("Update")
    assert [t["name"] for t in update["object"]["tag"]] == ["#Tomates"]


async def test_the_web_form_reads_hashtags_in_the_text_as_the_client_api_does(node):
    form = MultiDict({"text_es": "Asamblea #Vivienda y #vivienda", "primary": "es",
                      "hashtags": "#Barrio"})
    fields = post_fields_from_form(form, ["es", "en"])
    assert fields["hashtags"] == ["Barrio", "Vivienda"]
    project = await node.create_actor("casa")
    async with node.writers() as db, db.begin():
        obj = await publish_post(db, node.urls, await db.get(Actor, project.id), **fields)
        # The edit form's field keeps only what the text does not say, so taking the tag out
        # of the text takes it off the post.
        form = form_from_post(await editable_post_fields(db, obj))
    assert form["hashtags"] == "#Barrio"
    form["text_es"] = "Asamblea"
    assert post_fields_from_form(form, ["es", "en"])["hashtags"] == ["Barrio"]


async def test_the_api_the_cli_and_the_web_form_tag_the_same_text_alike(node):
    typed = "Asamblea #Vivienda a#b x/#frag #123 #ok y #vivienda"
    token, ana = await member_token(node, "ana", None)
    _, posted = await api(node, token, "POST", "/api/v1/statuses", json={"status": typed})
    async with node.writers() as db, db.begin():
        author = await db.get(Actor, ana.id)
        cli = await publish_text_post(db, node.urls, author, typed)
        web = await publish_post(db, node.urls, author, **post_fields_from_form(
            MultiDict({"text_es": typed, "primary": "es"}), ["es"]))
    async with node.readers() as db:
        tagged = [[t["name"] for t in (await db.get(Object, int(sid))).tags
                   if t["type"] == "Hashtag"] for sid in (posted["id"], cli.id, web.id)]
    assert tagged == [["#Vivienda", "#ok"]] * 3


async def test_an_earlier_versions_image_is_not_pruned_until_its_post_is_deleted(node):
    project = await node.create_actor("coop")
    first, second = [await old_image(node, project) for _ in range(2)]
    async with node.writers() as db, db.begin():
        actor = await db.get(Actor, project.id)
        post = await publish_post(db, node.urls, actor, contents={"es": "Techo"},
                                  media=[await db.get(Media, first.id)])
    async with node.writers() as db, db.begin():
        actor, obj = await db.get(Actor, project.id), await db.get(Object, post.id)
        fields = await editable_post_fields(db, obj)
        await edit_post(db, node.urls, actor, obj, **{**fields, "media": [
            await db.get(Media, second.id)]})
    assert (await prune_media(node.writers, node.settings)).count == 0  # the history shows it
    async with node.writers() as db, db.begin():
        await delete_post(db, node.urls, await db.get(Actor, project.id),
                          await db.get(Object, post.id))
    assert (await prune_media(node.writers, node.settings)).count == 2


async def test_the_web_form_sends_the_texts_hashtags_and_its_edits_keep_versions(node, peer):
    project = await node.create_actor("coop")
    await make_user(node, "ana", project)
    await add_remote_follower(node, project, peer.add_actor("mia"))
    async with browser() as client:
        await login(client, node, "ana")
        compose = f"{node.base}/actors/coop/compose"
        token = await csrf_from(client, compose)
        async with client.post(compose, data=multipart(token, {
                "text_es": "Minga el sábado #Huerta", "primary": "es"}),
                allow_redirects=False) as response:
            assert response.status == 303, await response.text()
        await flush(node)
        [create] = peer.activities("Create")
        note = create["object"]
        assert {"type": "Hashtag", "name": "#Huerta",
                "href": f"{node.base}/tags/huerta"} in note["tag"]
        edit = f"{node.base}/actors/coop/updates/{note['id'].rsplit('/', 1)[1]}/edit"
        token = await csrf_from(client, edit)
        async with client.post(edit, data=multipart(token, {
                "text_es": "Minga el domingo #Huerta", "primary": "es"}),
                allow_redirects=False) as response:
            assert response.status == 303, await response.text()
    await flush(node)
    [update] = peer.activities("Update")
    assert "domingo" in update["object"]["content"]
    assert [t["name"] for t in update["object"]["tag"]] == ["#Huerta"]
    async with node.readers() as db:
        obj = await db.scalar(select(Object).where(Object.uri == note["id"]))
        [version] = await db.scalars(select(StatusEdit).where(StatusEdit.object_id == obj.id))
    assert "sábado" in version.content and obj.source == "Minga el domingo #Huerta"

"""Posting from Mastodon apps: media uploads and statuses, driven by Mastodon.py against a real
`fedsph serve` process, and checked again where other servers read them (the AS2 object).
"""

from __future__ import annotations

import io

import pytest
import requests
from mastodon import Mastodon, MastodonAPIError, MastodonNotFoundError
from PIL import Image

from fedsph.projects.notes import build_note
from fedsph.projects.outbox import publish_post, publish_text_post
from tests.mastodon_client import logged_in, start_server, stop_server

pytestmark = pytest.mark.e2e

AS2 = {"Accept": "application/activity+json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("mastodon-statuses"))
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def api(server) -> Mastodon:
    return logged_in(server, "ana")


def png(width: int = 640, height: int = 480) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def as2(url: str) -> requests.Response:
    return requests.get(url, headers=AS2, timeout=10)


def test_media_then_status_with_language_and_content_warning(api):
    media = api.media_post(png(), mime_type="image/png", description="A red wall")
    assert media.type == "image" and media.description == "A red wall"
    assert media.blurhash and media.url and media.preview_url
    assert media.meta.original.width == 640 and media.meta.small.width == 320
    assert requests.get(media.preview_url, timeout=10).ok
    updated = api.media_update(media.id, description="A red brick wall")
    assert updated.description == "A red brick wall"
    assert api.media(media.id).description == "A red brick wall"

    posted = api.status_post("Hola desde Mastodon", media_ids=[media], language="es",
                             spoiler_text="obras")
    status = api.status(posted.id)
    assert status.id == posted.id and status.account.username == "ana"
    assert "Hola desde Mastodon" in status.content
    assert status.language == "es" and status.visibility == "public"
    assert status.spoiler_text == "obras" and status.sensitive is True
    [attachment] = status.media_attachments
    assert attachment.id == media.id and attachment.blurhash == media.blurhash
    assert attachment.description == "A red brick wall"
    assert status.replies_count == 0 and status.favourited is False

    # Other servers see the same post, image and alt text included.
    note = as2(status.uri).json()
    assert note["type"] == "Note" and note["contentMap"]["es"] == status.content
    assert note["summary"] == "obras"
    [image] = note["attachment"]
    assert image["type"] == "Image" and image["name"] == "A red brick wall"
    assert image["url"] == attachment.url and image["blurhash"] == attachment.blurhash

    # An attached image keeps its description; the post is edited instead.
    with pytest.raises(MastodonAPIError):
        api.media_update(media.id, description="something else")


def test_media_described_after_upload_and_required_to_post(api):
    # Apps upload first and send the description later: the upload is accepted.
    media = api.media_post(png(), mime_type="image/png")
    assert media.type == "image" and media.description is None
    with pytest.raises(MastodonAPIError, match=rf"description \(alt text\).*image {media.id}"):
        api.status_post("Sin descripción", media_ids=[media])
    with pytest.raises(MastodonAPIError, match="(?i)describe the image"):
        api.media_update(media.id, description="   ")
    assert api.media(media.id).description is None  # nothing was published or changed

    described = api.media_post(png(), mime_type="image/png", description="A wall")
    # An edit adding an undescribed image is refused too, and leaves the post as it was.
    posted = api.status_post("Con descripción", media_ids=[described])
    with pytest.raises(MastodonAPIError, match=f"image {media.id}"):
        api.status_update(posted.id, "Con dos fotos", media_ids=[described, media])
    assert [a.id for a in api.status(posted.id).media_attachments] == [described.id]

    api.media_update(media.id, description="A ladder against the wall")
    later = api.status_post("Ahora sí", media_ids=[media])
    [image] = as2(later.uri).json()["attachment"]
    assert image["name"] == "A ladder against the wall"


def test_reply_context_edit_and_delete(api):
    parent = api.status_post("Parent post")
    reply = api.status_reply(parent, "A reply")
    assert reply.in_reply_to_id == parent.id
    assert reply.in_reply_to_account_id == parent.account.id
    assert as2(reply.uri).json()["inReplyTo"] == parent.uri

    context = api.status_context(parent)
    assert context.ancestors == [] and [s.id for s in context.descendants] == [reply.id]
    assert [s.id for s in api.status_context(reply).ancestors] == [parent.id]
    assert api.status(parent.id).replies_count == 1

    edited = api.status_update(parent.id, "Parent post, edited")
    assert "Parent post, edited" in edited.content and edited.edited_at is not None
    assert "Parent post, edited" in as2(parent.uri).json()["content"]

    deleted = api.status_delete(reply.id)
    assert deleted.id == reply.id and deleted.text == "@ana A reply"
    with pytest.raises(MastodonNotFoundError):
        api.status(reply.id)
    assert as2(reply.uri).status_code == 410
    assert api.status_context(parent).descendants == []


def test_idempotency_key_posts_once(api):
    first = api.status_post("Only once", idempotency_key="retry-1")
    again = api.status_post("Only once", idempotency_key="retry-1")
    other = api.status_post("Only once", idempotency_key="retry-2")
    assert first.id == again.id and other.id != first.id


def test_followers_only_and_refusals(server, api):
    private = api.status_post("For followers", visibility="private")
    assert private.visibility == "private"
    assert api.status(private.id).visibility == "private"
    anonymous = requests.get(f"{server.base}/api/v1/statuses/{private.id}", timeout=10)
    assert anonymous.status_code == 404 and anonymous.json() == {"error": "Record not found"}

    with pytest.raises(MastodonAPIError, match="(?i)direct"):
        api.status_post("secret", visibility="direct")
    with pytest.raises(MastodonAPIError, match="(?i)blank"):
        api.status_post("   ")
    with pytest.raises(MastodonAPIError, match="(?i)language"):
        api.status_post("text", language="not a language")
    with pytest.raises(MastodonAPIError, match="(?i)no image"):
        api.status_post("text", media_ids=["999999"])
    assert requests.delete(f"{server.base}/api/v1/statuses/{private.id}", timeout=10,
                           headers={"Authorization": "Bearer nope"}).status_code == 401

    # Another account cannot edit or delete ana's status, nor use her images.
    public = api.status_post("Mine")
    media = api.media_post(png(), mime_type="image/png", description="Ana's photo")
    bea = logged_in(server, "bea")
    with pytest.raises(MastodonNotFoundError):
        bea.status_delete(public.id)
    with pytest.raises(MastodonNotFoundError):
        bea.status_update(public.id, "taken over")
    with pytest.raises(MastodonNotFoundError):
        bea.media(media.id)
    with pytest.raises(MastodonAPIError, match="(?i)no image"):
        bea.status_post("with her photo", media_ids=[media.id])
    with pytest.raises(MastodonNotFoundError):
        bea.status(private.id)  # not a follower
    assert bea.status(public.id).favourited is False


async def test_publish_update_in_reply_to(node):
    project = await node.create_actor("huerta")
    async with node.writers() as db, db.begin():
        author = await db.get(type(project), project.id)
        parent = await publish_text_post(db, node.urls, author, "Parent")
        reply = await publish_post(db, node.urls, author, contents={"": "Child"},
                                     in_reply_to=parent.uri)
        assert reply.in_reply_to == parent.uri
        assert build_note(reply, author)["inReplyTo"] == parent.uri
        assert reply.document["inReplyTo"] == parent.uri

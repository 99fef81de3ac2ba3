"""What a project does with its posts, and whom it follows: each action is stored and sent.

Publishing, editing, pinning, moderating comments and deleting posts (a deleted post becomes the
tombstone of fedsph.projects.tombstone), sending them to followers, and Follow, Undo{Follow} and
the answer to a follow request. The fields of a post are checked in fedsph.projects.post_fields.
Each function runs inside the caller's transaction, so the object, the activity and its
delivery rows are committed together or not at all; sending goes through fedsph.federation.emit.
"""

from __future__ import annotations

import html
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from fedsph.core.hashtags import hashtags, retagged
from fedsph.core.urls import URLs
from fedsph.errors import N_, UserError
from fedsph.federation import emit
from fedsph.federation.activitystreams import PUBLIC, build_activity
from fedsph.federation.remote_objects import saw_post
from fedsph.federation.visibility import (
    DIRECT,
    VISIBLE_TO_ALL,
    addressed_actors,
    store_addressees,
)
from fedsph.models import Activity, Actor, Follow, Media, Object, Reaction, utcnow
from fedsph.projects.conversations import add_direct_post
from fedsph.projects.deleted_boosts import withdraw_boosts
from fedsph.projects.edits import current_version, keep_version
from fedsph.projects.media import attachment_document
from fedsph.projects.notes import NOTE_CONTEXT, build_note, source_texts
from fedsph.projects.notifications import notify
from fedsph.projects.post_fields import link_mentions_in, mention_tags, post_columns
from fedsph.projects.profile import set_profile
from fedsph.projects.tombstone import turn_into_tombstone


def featured_url(actor: Actor) -> str:
    """The actor's collection of pinned posts (Mastodon's `featured`)."""
    return actor.uri + "/featured"


async def _attach_media(db: AsyncSession, urls: URLs, obj: Object, media: list[Media]) -> None:
    """Link the images to the object in order; images it no longer carries are let go."""
    wanted = {m.id for m in media}
    for old in await db.scalars(select(Media).where(Media.object_id == obj.id)):
        if old.id not in wanted:
            old.object_id = None
    for position, item in enumerate(media):
        if item.object_id not in (None, obj.id):
            raise UserError(N_("an image is already used by another update"))
        item.object_id, item.position = obj.id, position
    obj.attachments = [attachment_document(m, urls) for m in media] or None


async def _apply_stage_change(db: AsyncSession, urls: URLs, actor: Actor, stage: str | None) -> None:
    """A milestone that changes the stage changes the project's profile too."""
    if not stage or (actor.profile or {}).get("stage") == stage:
        return
    # The dict form also records the change, dated today, in the stage history.
    await set_profile(db, urls, actor,
                              {"stage": {"stage": stage, "date": utcnow().date().isoformat()}})


async def publish_post(db: AsyncSession, urls: URLs, actor: Actor, *, contents: dict[str, str],
                         title_map: dict[str, str] | None = None, kind: str | None = None,
                         stage_change: str | None = None, hashtags=(), themes=(),
                         place: dict | None = None, summary: str | None = None,
                         media: list[Media] = (), visibility: str = "public",
                         published: datetime | None = None, in_reply_to: str | None = None,
                         mentions: list[Actor] = ()) -> Object:
    """Create a project post (a Note) as `actor` and queue a Create to its followers.

    `contents` maps language tags to plain text; the first is the primary language.
    `in_reply_to` is the URI of the object this answers (a reply made from a Mastodon app).
    `mentions` are actors named in the text: they get Mention tags, are cc'd, and are sent the
    Create even when they do not follow `actor` (so their servers notify them).
    Raises UserError with a message for people when a field is not acceptable.
    """
    media = list(media)
    columns = post_columns(urls, actor, contents, title_map, kind, stage_change, hashtags,
                           themes, place, summary, media, visibility)
    if visibility == DIRECT and not [m for m in mentions if m.id != actor.id]:
        raise UserError(N_("a direct message needs at least one mentioned account"))
    columns["tags"] = (columns["tags"] or []) + mention_tags(mentions) or None
    link_mentions_in(columns, actor, list(mentions))
    uri = urls.new_object()
    obj = Object(uri=uri, type="Note", actor_id=actor.id, local=True, url=uri,
                 published=published or utcnow(), in_reply_to=in_reply_to, **columns)
    db.add(obj)
    await saw_post(db, actor, obj.published)
    await db.flush()
    await store_addressees(db, obj, [m.uri for m in mentions if m.id != actor.id])
    await _attach_media(db, urls, obj, media)
    note = build_note(obj, actor)
    obj.document = note
    create = build_activity("Create", urls.new_activity(), actor.uri, note,
                            to=note["to"], cc=note["cc"], published=note["published"])
    create["@context"] = NOTE_CONTEXT
    # As on Mastodon, a reply also reaches the author of the post it answers, named or not.
    answered = await db.scalar(select(Actor).join(Object, Object.actor_id == Actor.id)
                               .where(Object.uri == in_reply_to)) if in_reply_to else None
    also = [m for m in [*mentions, answered] if m is not None and m.id != actor.id]
    await send_to_followers(db, actor, create, obj.uri, obj.visibility, also=also)
    # Our inbox finds the object already stored when it handles the local copy, so local
    # mentioned actors are notified here (notify skips remote ones).
    await notify(db, list(mentions), "mention", actor, create["id"], obj.uri)
    await add_direct_post(db, obj)  # the conversations of the author and local addressees
    await _apply_stage_change(db, urls, actor, obj.stage_change)
    return obj


async def edit_post(db: AsyncSession, urls: URLs, actor: Actor, obj: Object, *,
                      contents: dict[str, str], title_map: dict[str, str] | None = None,
                      kind: str | None = None, stage_change: str | None = None, hashtags=(),
                      themes=(), place: dict | None = None, summary: str | None = None,
                      media: list[Media] = (), visibility: str | None = None) -> Object:
    """Replace a post's fields and queue an Update carrying `updated`.

    Every field is replaced (the edit form sends them all); the visibility cannot change.
    """
    if obj.deleted_at is not None:
        raise UserError(N_("this update was deleted"))
    if obj.actor_id != actor.id or not obj.local:
        raise UserError(N_("this update belongs to someone else"))
    if visibility and visibility != obj.visibility and DIRECT in (visibility, obj.visibility):
        raise UserError(N_("a direct message stays direct: who it addresses cannot change"))
    if visibility and visibility != obj.visibility:
        # Mastodon never changes a post's visibility on edit (other servers would keep the old
        # one), and the versions kept (fedsph.projects.edits) were written for the first readers.
        raise UserError(N_("who can see an update cannot change once it is published"))
    media = list(media)
    previous_stage = obj.stage_change
    columns = post_columns(urls, actor, contents, title_map, kind, stage_change, hashtags,
                           themes, place, summary, media, visibility or obj.visibility)
    # The edit forms do not send mentions: the ones the post was published with stay.
    kept = [t for t in obj.tags or [] if t.get("type") == "Mention"]
    columns["tags"] = (columns["tags"] or []) + kept or None
    mentioned = list(await db.scalars(select(Actor).where(
        Actor.uri.in_([t["href"] for t in kept])))) if kept else []
    link_mentions_in(columns, actor, mentioned)
    before = current_version(obj)
    for column, value in columns.items():
        setattr(obj, column, value)
    await _attach_media(db, urls, obj, media)
    # Sent to the second (iso): a second edit within the same second would carry the same
    # `updated` and every receiver would refuse it as no edit (fedsph.projects.edits.is_an_edit).
    obj.updated = max(utcnow().replace(microsecond=0),
                      (obj.updated or obj.published).replace(microsecond=0) + timedelta(seconds=1))
    await keep_version(db, obj, before, always=True)  # Mastodon records every local edit
    note = build_note(obj, actor)
    obj.document = note
    update = build_activity("Update", urls.new_activity(), actor.uri, note,
                            to=note["to"], cc=note["cc"])
    update["@context"] = NOTE_CONTEXT
    await send_to_followers(db, actor, update, obj.uri, obj.visibility,
                             also=[m for m in mentioned if m.id != actor.id])
    if obj.stage_change != previous_stage:
        await _apply_stage_change(db, urls, actor, obj.stage_change)
    return obj


async def editable_post_fields(db: AsyncSession, obj: Object) -> dict:
    """A post's current fields as publish_post/edit_post take them (for edit forms)."""
    tags = obj.tags or []
    return {
        "contents": source_texts(obj),
        "title_map": dict(obj.name_map or ({obj.language or "": obj.name} if obj.name else {})),
        "kind": obj.kind,
        "stage_change": obj.stage_change,
        "hashtags": [t["name"].lstrip("#") for t in tags if t.get("type") == "Hashtag"],
        "themes": [t["name"] for t in tags if t.get("type") == "theme"],
        "place": obj.place,
        "summary": html.unescape(obj.summary) if obj.summary else None,
        "media": list(await db.scalars(select(Media).where(Media.object_id == obj.id)
                                       .order_by(Media.position))),
        "visibility": obj.visibility,
    }


async def publish_text_post(db: AsyncSession, urls: URLs, actor: Actor, text: str,
                            language: str | None = None, visibility: str = "public",
                            summary: str | None = None, published: datetime | None = None) -> Object:
    """A plain post in one language (the CLI's `post`): publish_post with only a text, whose
    #hashtags become Hashtag tags as they do from the client API."""
    return await publish_post(db, urls, actor, contents={language or "": text},
                              visibility=visibility, summary=summary, published=published,
                              hashtags=hashtags(text))


async def edit_post_text(db: AsyncSession, urls: URLs, actor: Actor, obj: Object, text: str) -> Object:
    """Change the primary language's text of a post, keeping everything else."""
    fields = await editable_post_fields(db, obj)
    primary = next(iter(fields["contents"]), "")
    contents = {**fields["contents"], primary: text}
    fields["hashtags"] = retagged(fields["hashtags"], fields["contents"].values(), contents.values())
    fields["contents"] = contents
    if not text.strip():
        raise UserError(N_("an update needs some text"))
    return await edit_post(db, urls, actor, obj, **fields)


async def pin_post(db: AsyncSession, actor: Actor, obj: Object, urls: URLs | None = None) -> Object:
    """Put a post in the actor's `featured` collection (what a new Mastodon follower sees).

    With `urls`, followers are also sent Add{Note, target: featured}, which Mastodon applies.
    """
    if obj.actor_id != actor.id or not obj.local or obj.deleted_at is not None:
        raise UserError(N_("only this project's own updates can be pinned"))
    if obj.visibility not in ("public", "unlisted") or obj.in_reply_to:
        raise UserError(N_("only public updates can be pinned"))
    if obj.pinned_at is None:
        obj.pinned_at = utcnow()
        await _announce_pin(db, urls, actor, obj, "Add")
    return obj


async def unpin_post(db: AsyncSession, actor: Actor, obj: Object, urls: URLs | None = None) -> Object:
    """Take a post out of the `featured` collection (Remove{Note} to followers with `urls`)."""
    if obj.actor_id != actor.id:
        raise UserError(N_("only this project's own updates can be unpinned"))
    if obj.pinned_at is not None:
        obj.pinned_at = None
        await _announce_pin(db, urls, actor, obj, "Remove")
    return obj


async def _announce_pin(db: AsyncSession, urls: URLs | None, actor: Actor, obj: Object,
                        verb: str) -> None:
    if urls is None:
        return
    document = build_activity(verb, urls.new_activity(), actor.uri, obj.uri,
                              to=[PUBLIC], cc=[actor.followers_url], target=featured_url(actor))
    await send_to_followers(db, actor, document, obj.uri, obj.visibility)


def _check_comment(obj: Object) -> None:
    if not obj.in_reply_to or obj.local:
        raise UserError(N_("this is not a comment from elsewhere"))


async def hide_comment(db: AsyncSession, obj: Object, hidden: bool = True) -> Object:
    """Hide (or show again) a reply under one of our posts. Nothing is sent: it is our page."""
    _check_comment(obj)
    obj.hidden = hidden
    return obj


async def approve_comment(db: AsyncSession, obj: Object) -> Object:
    """Show a reply that was held because the project holds replies for approval."""
    _check_comment(obj)
    obj.approved = True
    return obj


async def delete_post(db: AsyncSession, urls: URLs, actor: Actor, obj: Object,
                      also: list[Actor] = ()) -> Object:
    """Delete one of our posts or events: it becomes a tombstone (fedsph.projects.tombstone,
    its URL then answers 410) and a Delete goes where it went, and to the actors in `also`."""
    if obj.deleted_at is not None:
        return obj
    # Addressed as the object was; its document is cleared with the rest.
    to, cc = (obj.document or {}).get("to"), (obj.document or {}).get("cc")
    tombstone = await turn_into_tombstone(db, obj)
    delete_activity = build_activity("Delete", urls.new_activity(), actor.uri, tombstone, to=to, cc=cc)
    await send_to_followers(db, actor, delete_activity, obj.uri, obj.visibility, also=also)
    # Only now: the Delete's recipients were found among the boosters (remote ones by their
    # boost rows, which go here) and their followers (tests/test_deleted_boosts.py checks).
    await withdraw_boosts(db, urls, obj)
    return obj


async def _booster_followers(db: AsyncSession, actor: Actor, object_uri: str,
                             visibility: str) -> list[Actor]:
    """The followers of our other actors who boosted `object_uri` (the follows follower_actors
    counts: accepted, relay subscribers left out), and the other servers' actors who boosted it,
    whose servers then withdraw their boosts (Mastodon's StatusReachFinder reaches reblogs'
    accounts too), in one query. None for a post that is not public: it cannot be boosted, and
    a boost row of one (stored before that was refused) must not widen its audience."""
    if visibility not in VISIBLE_TO_ALL:
        return []
    booster = aliased(Actor)
    follower_ids = (
        select(Follow.follower_id)
        .join(Reaction, Reaction.actor_id == Follow.followed_id)
        .join(booster, booster.id == Reaction.actor_id)
        .where(Reaction.type == "Announce", Reaction.object_uri == object_uri,
               booster.local.is_(True), booster.id != actor.id,
               Follow.state == "accepted", Follow.relay.is_(False)))
    remote_boosters = (
        select(Reaction.actor_id).join(booster, booster.id == Reaction.actor_id)
        .where(Reaction.type == "Announce", Reaction.object_uri == object_uri,
               booster.local.is_(False)))
    return list(await db.scalars(select(Actor).where(
        Actor.id.in_(follower_ids) | Actor.id.in_(remote_boosters))))


async def send_to_followers(db: AsyncSession, actor: Actor, document: dict, object_uri: str,
                             visibility: str, also: list[Actor] = ()) -> Activity:
    """Record `document` and queue it to the followers, and to the actors in `also`.

    The followers of our actors who boosted the post saw it too (a project announcing its
    member's post, FEP-1b12): its edits and its deletion reach them as well, as on Mastodon.
    """
    public = visibility in ("public", "unlisted")
    if visibility == DIRECT:  # the addressed actors only: no followers, boosters, hubs or relays
        return await emit.send(db, actor, document, await addressed_actors(db, object_uri),
                               object_uri, public)
    recipients = await emit.follower_actors(db, actor)
    known = {r.id for r in recipients}
    recipients += [a for a in await _booster_followers(db, actor, object_uri, visibility) if a.id not in known]
    known = {r.id for r in recipients}
    recipients += [a for a in also if a.id not in known]
    return await emit.send(db, actor, document, recipients, object_uri, public)


async def follow(db: AsyncSession, urls: URLs, actor: Actor, target: Actor,
                 checked: bool = False) -> Follow:
    """Ask `target` to let `actor` follow it; pending until an Accept arrives. `checked`: the
    caller has just found that `actor` does not follow `target` (no second look)."""
    if target.id == actor.id:
        raise UserError(N_("an actor cannot follow itself"))
    existing = None if checked else await db.scalar(select(Follow).where(
        Follow.follower_id == actor.id, Follow.followed_id == target.id))
    if existing is not None:
        return existing
    document = build_activity("Follow", urls.new_activity(), actor.uri, target.uri, to=[target.uri])
    relation = Follow(follower_id=actor.id, followed_id=target.id, state="pending",
                      activity_uri=document["id"])
    db.add(relation)
    await emit.send(db, actor, document, [target], target.uri)
    return relation


async def unfollow(db: AsyncSession, urls: URLs, actor: Actor, target: Actor) -> bool:
    """Stop following `target` and tell it with Undo{Follow}. False if we did not follow it."""
    relation = await db.scalar(select(Follow).where(
        Follow.follower_id == actor.id, Follow.followed_id == target.id))
    if relation is None:
        return False
    original = {"id": relation.activity_uri, "type": "Follow", "actor": actor.uri,
                "object": target.uri}
    document = build_activity("Undo", urls.new_activity(), actor.uri, original, to=[target.uri])
    await db.delete(relation)
    await emit.send(db, actor, document, [target], relation.activity_uri)
    return True


async def answer_follow(db: AsyncSession, urls: URLs, relation: Follow, accept: bool) -> None:
    """Accept or Reject a follow request that was made to one of our actors."""
    followed = await db.get(Actor, relation.followed_id)
    follower = await db.get(Actor, relation.follower_id)
    # A relay subscription (fedsph/hub/relay.py) followed as:Public, not the hub actor.
    original = {"id": relation.activity_uri, "type": "Follow", "actor": follower.uri,
                "object": PUBLIC if relation.relay else followed.uri}
    verb = "Accept" if accept else "Reject"
    document = build_activity(verb, urls.new_activity(), followed.uri, original, to=[follower.uri])
    if accept:
        relation.state = "accepted"
    else:
        await db.execute(delete(Follow).where(Follow.id == relation.id))
    await emit.send(db, followed, document, [follower], relation.activity_uri)

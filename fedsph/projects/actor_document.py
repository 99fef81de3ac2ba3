"""The document of a local actor (a project, a hub, a person or the node's Application): the
generic ActivityPub fields, its keys, and the project profile in fedsph terms
(fedsph/projects/profile_wire.py). What the actor's URL serves and what its Update carries."""

from __future__ import annotations

from fedsph.core.urls import URLs
from fedsph.federation.activitystreams import ACTOR_CONTEXT, iso
from fedsph.federation.proofs import DATA_INTEGRITY_CONTEXT, MULTIKEY_CONTEXT, multikey
from fedsph.models import Actor
from fedsph.projects.profile_wire import CONTEXT as PROFILE_CONTEXT
from fedsph.projects.profile_wire import actor_profile_properties

# The fedsph terms are embedded like Mastodon's toot: terms, so no one needs to fetch {base}/ns.
# data-integrity and multikey define `proof` and the Multikey in `assertionMethod` (FEP-521a).
LOCAL_ACTOR_CONTEXT = [*ACTOR_CONTEXT[:-1], DATA_INTEGRITY_CONTEXT, MULTIKEY_CONTEXT,
                       {**ACTOR_CONTEXT[-1], **PROFILE_CONTEXT}]


def build_actor_document(actor: Actor, urls: URLs) -> dict:
    """The AS2 document for a local actor (Group, Person or the Application)."""
    document = {
        "@context": LOCAL_ACTOR_CONTEXT,
        "id": actor.uri,
        "type": actor.type,
        "preferredUsername": actor.username,
        "name": actor.name,
        "summary": actor.summary or "",
        "url": actor.url,
        "inbox": actor.inbox,
        "outbox": actor.outbox,
        "endpoints": {"sharedInbox": actor.shared_inbox},
        "manuallyApprovesFollowers": actor.manually_approves,
        "discoverable": actor.type != "Application",
        "indexable": actor.type != "Application",
        "published": iso(actor.created_at),
        "publicKey": {"id": actor.key_id, "owner": actor.uri, "publicKeyPem": actor.public_key_pem},
    }
    if actor.proof_key_pem:
        document["assertionMethod"] = [multikey(actor.uri, actor.proof_key_pem)]
    if actor.followers_url:
        document["followers"] = actor.followers_url
        document["following"] = actor.following_url
        document["featured"] = actor.uri + "/featured"  # pinned posts (fedsph.projects.outbox.pin_post)
    document.update(actor_profile_properties(actor, urls))
    if (actor.profile or {}).get("hub"):
        document["fedsph:hub"] = True  # a hub (fedsph/hub): projects may Join it
    return document

"""Local actor creation, and the cache of remote actors and keys. The document a local actor
serves is fedsph/projects/actor_document.py (it carries the profile: projects' business)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urldefrag, urlsplit

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedsph.core.safe_links import first_http_url, http_url
from fedsph.core.sanitize import clean_html
from fedsph.core.urls import RESERVED_USERNAMES, URLs
from fedsph.errors import N_, FetchError, UserError
from fedsph.federation.activitystreams import as_list, get_id, get_type, parse_iso, same_origin
from fedsph.federation.crypto import generate_rsa_keypair
from fedsph.federation.keycache import CachedKey, forget_when_committed, keys_for
from fedsph.federation.local_names import local_name_taken
from fedsph.federation.proofs import generate_proof_key
from fedsph.federation.remote import Remote, Signer
from fedsph.models import Actor, utcnow

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,62}$")
ACTOR_TYPES = {"Person", "Group", "Organization", "Application", "Service"}
# A remote actor document is refreshed on use when older than this (and on key failure).
ACTOR_MAX_AGE = timedelta(days=1)
NAME_MAX = 255  # Actor.username and Actor.domain are String(255).


# What a feature keeps of a remote actor's document beyond the generic fields below (projects:
# projects.profile_wire.remote_profile_values): a hook the feature fills, as federation may not
# import the features above it. A reader returns Actor column values; drops bad ones, never fatal.
ActorReader = Callable[[dict], dict]
ACTOR_READERS: list[ActorReader] = []


class InvalidActor(ValueError):
    """A remote actor document we cannot use."""


def check_username(username: str) -> str:
    """Lower-case letters, digits and underscores; not one of the reserved names."""
    if not USERNAME_RE.match(username):
        raise UserError(
            f"{username!r} is not a valid name: use 1-63 lower-case letters, digits or _, "
            "starting with a letter or digit")
    if username in RESERVED_USERNAMES:
        raise UserError(f"{username!r} is reserved")
    return username


async def get_local_actor(db: AsyncSession, username: str) -> Actor | None:
    return await db.scalar(select(Actor).where(Actor.local.is_(True), Actor.username == username,
                                               Actor.deleted_at.is_(None)))


async def get_actor_by_uri(db: AsyncSession, uri: str) -> Actor | None:
    return await db.scalar(select(Actor).where(Actor.uri == uri, Actor.deleted_at.is_(None)))


async def create_local_actor(
    db: AsyncSession, urls: URLs, domain: str, username: str, actor_type: str,
    name: str | None = None, summary: str | None = None, manually_approves: bool = False,
) -> Actor:
    """Create a local Group/Person with a fresh RSA key. Raises UserError if the name is taken."""
    check_username(username)
    if await local_name_taken(db, username):
        raise UserError(f"the name {username!r} is already taken on this node")
    private_pem, public_pem = generate_rsa_keypair()
    uri = urls.actor(username)
    actor = Actor(
        uri=uri, local=True, type=actor_type, username=username, domain=domain,
        name=name or username, summary=summary, url=uri,
        inbox=urls.inbox(username), shared_inbox=urls.shared_inbox(), outbox=urls.outbox(username),
        followers_url=urls.followers(username), following_url=urls.following(username),
        key_id=urls.key_id(uri), public_key_pem=public_pem, private_key_pem=private_pem,
        manually_approves=manually_approves,
        # Signs integrity proofs (FEP-8b32). Made here, with the actor, and nowhere else: actors
        # made before proofs got theirs from migration 0010, so reading a key never writes.
        proof_key_pem=generate_proof_key(),
    )
    db.add(actor)
    await db.flush()
    return actor


def signer_for(actor: Actor) -> Signer:
    return Signer(actor.key_id, actor.private_key_pem)


def parse_actor_document(document: dict) -> dict:
    """Check a remote actor document and return the column values we keep for it.

    It says nothing about where the document came from: fetch_actor binds it to its origin.
    """
    uri = document.get("id")
    if not http_url(uri):
        raise InvalidActor("actor has no http(s) id")
    actor_type = get_type(document)
    if actor_type not in ACTOR_TYPES:
        raise InvalidActor(f"{uri} is a {actor_type}, not an actor")
    inbox = _http_id(document.get("inbox"))
    if not inbox:
        raise InvalidActor(f"{uri} has no http(s) inbox")
    keys = published_keys(document)
    key_id, public_pem = next(iter(keys.items()), (None, None))
    endpoints = document.get("endpoints") if isinstance(document.get("endpoints"), dict) else {}
    username = document.get("preferredUsername")
    _check_handle_length(uri, username)
    return {
        "uri": uri,
        "type": actor_type,
        "username": username if isinstance(username, str) and username else uri.rsplit("/", 1)[-1],
        "domain": urlsplit(uri).netloc,
        "name": document.get("name") if isinstance(document.get("name"), str) else None,
        "summary": clean_html(document.get("summary")) if isinstance(document.get("summary"), str) else None,
        "url": first_http_url(document.get("url")) or uri,
        "inbox": inbox,
        "shared_inbox": _http_id(endpoints.get("sharedInbox")),
        "outbox": _http_id(document.get("outbox")),
        "followers_url": _http_id(document.get("followers")),
        "following_url": _http_id(document.get("following")),
        "key_id": key_id,
        "public_key_pem": public_pem,
        "manually_approves": bool(document.get("manuallyApprovesFollowers")),
        # Account moves: where the account went, and the accounts it says it also is (a Move to
        # it is only believed when the old account is listed here).
        "moved_to": _http_id(document.get("movedTo")),
        "also_known_as": [alias for alias in map(_http_id, as_list(document.get("alsoKnownAs")))
                          if alias] or None,
        "document": document,
        # Translations, images and (from other fedsph nodes) the project profile, checked.
        **{column: value for read in ACTOR_READERS for column, value in read(document).items()},
    }


def _check_handle_length(uri: str, username) -> None:
    """The username and domain fit their String(NAME_MAX) columns (PostgreSQL refuses longer)."""
    name = username if isinstance(username, str) and username else uri.rsplit("/", 1)[-1]
    if len(name) > NAME_MAX:
        raise InvalidActor(f"{uri} has a username longer than {NAME_MAX} characters")
    if len(urlsplit(uri).netloc) > NAME_MAX:
        raise InvalidActor(f"the actor's domain is longer than {NAME_MAX} characters")


def published_keys(document: dict) -> dict[str, str]:
    """{key id: PEM} of the keys an actor document publishes as its own.

    A key of another origin than the actor, or owned by someone else, is not the actor's: it
    could otherwise be cached as the key of an actor that never published it.
    """
    uri, keys = document.get("id"), {}
    for key in as_list(document.get("publicKey")):
        if not isinstance(key, dict) or not isinstance(key.get("publicKeyPem"), str):
            continue
        key_id = key.get("id")
        if get_id(key.get("owner")) in (None, uri) and same_origin(key_id, uri):
            keys.setdefault(key_id, key["publicKeyPem"])
    return keys


def _http_id(value) -> str | None:
    return http_url(get_id(value))


def embedded_update_is_fresh(activity: dict, held: Actor, signed_by_actor: bool) -> bool:
    """Whether an actor's Update of itself may carry its new document, as Mastodon reads it.

    Signed over HTTP with the actor's own key, its own server sent it just now: it is as fresh
    as a fetch (with or without a proof; a fetch could even be older, from a cache). Relayed,
    it may be an old Update sent again: only one whose proof was made after we last fetched
    the actor is newer than our copy. Keys never come this way (`values_from_update`)."""
    proof = activity.get("proof")
    if signed_by_actor or proof is None:  # the inbox takes no other signer without a proof
        return True
    created = parse_iso(proof.get("created")) if isinstance(proof, dict) else None
    return created is not None and held.fetched_at is not None and created > held.fetched_at


def values_from_update(document: dict, held: Actor) -> dict:
    """Column values from an actor's Update of itself, its keys excepted: the signing key and the
    proof key are only ever taken from its own document fetched from its id."""
    values = parse_actor_document(document)
    kept = {name: (held.document or {}).get(name) for name in ("publicKey", "assertionMethod")}
    values["document"] = {**values["document"], **{k: v for k, v in kept.items() if v}}
    for name in ("publicKey", "assertionMethod"):
        if not kept[name]:
            values["document"].pop(name, None)
    return {**values, "key_id": held.key_id, "public_key_pem": held.public_key_pem}


async def store_remote_actor(db: AsyncSession, values: dict) -> Actor:
    """Insert or refresh a remote actor row from parsed values (bound by fetch_actor, or sent
    by the actor itself). Never touches an actor of this node."""
    # One read for three questions: the row at this uri, a row holding its handle, and whether
    # the domain is ours (a local actor of it). Local actors all have this node's domain, so
    # for another domain at most two rows match; for ours one local row is enough to refuse.
    uri, username, domain = values["uri"], values["username"], values["domain"]
    rows = (await db.scalars(select(Actor).where(or_(
        Actor.uri == uri, and_(Actor.username == username, Actor.domain == domain),
        and_(Actor.local.is_(True), Actor.domain == domain))).limit(3))).all()
    actor = next((row for row in rows if row.uri == uri), None)
    if (actor is not None and actor.local) or any(row.local and row.domain == domain
                                                   for row in rows):
        raise InvalidActor(f"{values['uri']} is on this node: it is never taken from the network")
    if actor is None:
        # Another actor may have held this handle before (an account re-created on its server).
        clash = next((row for row in rows
                      if row.username == username and row.domain == domain), None)
        if clash is not None and not clash.local:
            clash.username = f"{clash.username[:NAME_MAX - 21]}~{clash.id}"
        actor = Actor(local=False)
        db.add(actor)
    for column, value in values.items():
        setattr(actor, column, value)
    actor.fetched_at = utcnow()
    await db.flush()
    forget_when_committed(db, actor.uri)  # its key may have changed: the next request reads the row
    return actor


async def resolve_actor(writers: async_sessionmaker[AsyncSession], remote: Remote, uri: str,
                        refresh: bool = False, readers=None) -> int:
    """The row id of the actor at `uri`, fetched (signed) when we lack it or it is stale.

    No transaction is open during the network fetch: on SQLite a
    writer's transaction holds the database's only write lock, and the inbox must keep accepting
    while another server takes its time to answer. The row we hold is read through `readers`
    when given (the worker's, fedsph/worker_sessions.py): most items' senders are known, and
    on SQLite a read through the writers would queue for the only write lock.
    """
    async with (readers or writers)() as db:
        cached = await held_actor(db, uri)
    return await resolve_held(writers, remote, uri, cached, refresh)


async def held_actor(db: AsyncSession, uri: str) -> Actor | None:
    """The row we hold for the actor at `uri` (its fragment dropped), if any."""
    return await get_actor_by_uri(db, urldefrag(uri)[0])


async def resolve_held(writers: async_sessionmaker[AsyncSession], remote: Remote, uri: str,
                       cached: Actor | None, refresh: bool = False) -> int:
    """resolve_actor for a caller that has read the row itself (`cached`, by held_actor, in a
    session it has closed): its id when it needs no fetch, else fetched and stored."""
    found = await fetch_unless_held(remote, uri, cached, refresh)
    if isinstance(found, int):
        return found
    async with writers() as db, db.begin():
        return (await store_fetched_actor(db, found)).id


async def fetch_unless_held(remote: Remote, uri: str, cached: Actor | None,
                            refresh: bool = False) -> int | dict:
    """`cached`'s id when it needs no fetch (or one failed); else the values fetched, to store."""
    if cached is not None and (cached.local or (not refresh and not _is_stale(cached))):
        return cached.id
    uri = urldefrag(uri)[0]
    try:
        values = await fetch_actor(remote, uri)
        if not same_origin(values["uri"], uri):
            raise FetchError(f"{uri} names the actor {values['uri']} of another server")
    except FetchError:
        if cached is not None:
            return cached.id  # a stale copy beats none when the other server is down
        raise
    return values


async def store_fetched_actor(db: AsyncSession, values: dict) -> Actor:
    """store_remote_actor for values from fetch_unless_held; an actor it refuses: FetchError."""
    try:
        return await store_remote_actor(db, values)
    except InvalidActor as exc:
        raise FetchError(str(exc)) from None


def _is_stale(actor: Actor) -> bool:
    return actor.fetched_at is None or utcnow() - actor.fetched_at > ACTOR_MAX_AGE


async def get_cached_key_owner(db: AsyncSession, key_id: str, fresh: bool = False
                               ) -> CachedKey | None:
    """The key `key_id` as we hold it: from the in-memory cache (fedsph/federation/keycache.py),
    else (or with `fresh`) from the database, which then fills the cache."""
    keys = keys_for(db.bind)
    entry = None if fresh else keys.get(key_id)
    if entry is None:
        epoch = keys.epoch  # the row read may be replaced before this put (keycache.py)
        row = (await db.execute(select(Actor.uri, Actor.domain, Actor.public_key_pem,
                                       Actor.fetched_at).where(Actor.key_id == key_id))).first()
        if row is None:
            return None
        entry = CachedKey(key_id, row.uri, row.domain, row.public_key_pem, row.fetched_at)
        keys.put(entry, epoch)
    return entry


def remember_key(bind, values: dict, fetched_at, epoch: int) -> None:
    """Put a key just stored (and committed) into the cache: the next request needs no read;
    `epoch`, read after the commit, keeps it out if the actor changed again since."""
    keys_for(bind).put(CachedKey(values["key_id"], values["uri"], values["domain"],
                       values["public_key_pem"], fetched_at), epoch)


async def fetch_actor(remote: Remote, uri: str, refetch: bool = True) -> dict:
    """Parsed values of the actor document at `uri`, bound to where its bytes came from."""
    document, final_url = await remote.fetch_document(urldefrag(uri)[0])
    return await _bound_actor(remote, document, final_url, refetch)


async def _bound_actor(remote: Remote, document: dict, final_url: str, refetch: bool) -> dict:
    """An actor document is believed only as the URL its `id` names (after redirects) serves it;
    served elsewhere, it is fetched once more from its id (Mastodon's CVE-2024-23832)."""
    claimed = document.get("id")
    if claimed != urldefrag(final_url)[0]:
        if not refetch or not http_url(claimed):
            raise FetchError(f"{final_url} serves a document whose id is {claimed!r}")
        return await fetch_actor(remote, claimed, refetch=False)
    try:
        return parse_actor_document(document)
    except InvalidActor as exc:
        raise FetchError(str(exc)) from None


async def fetch_key_owner(remote: Remote, key_id: str) -> dict:
    """The parsed values of the actor that publishes `key_id`, its key set to that one.

    A key is the actor's only if the actor's own document, fetched from its own id, lists it:
    a key document never vouches for an actor by naming it as its owner.
    """
    if not http_url(key_id):
        raise FetchError(f"key id {key_id!r} is not an http(s) URL")
    document, final_url = await remote.fetch_document(urldefrag(key_id)[0])
    if get_type(document) in ACTOR_TYPES:
        values = await _bound_actor(remote, document, final_url, refetch=True)
    else:
        # A standalone key document (some servers): its owner must list it.
        owner = get_id(document.get("owner"))
        if not http_url(owner):
            raise FetchError(f"{key_id} is neither an actor nor a key with an owner")
        values = await fetch_actor(remote, owner)
    pem = published_keys(values["document"]).get(key_id)
    if pem is None:
        raise FetchError(f"{values['uri']} does not publish the key {key_id}")
    return {**values, "key_id": key_id, "public_key_pem": pem}


async def resolve_handle(writers: async_sessionmaker[AsyncSession], remote: Remote, target: str,
                         refresh: bool = True) -> int:
    """The row id of the actor named by `user@host` (through WebFinger) or by its URL."""
    target = target.strip()
    uri = target if target.startswith(("http://", "https://")) else await remote.webfinger(target)
    return await resolve_actor(writers, remote, uri, refresh=refresh)


async def find_actor(writers: async_sessionmaker[AsyncSession], remote: Remote, target: str,
                     refresh: bool = True) -> Actor:
    """The actor named by `user@host` (through WebFinger) or by its URL, fetched (signed) and
    cached (resolve_handle: network I/O, so called before a write transaction opens).

    UserError "cannot find TARGET: why" when it cannot be fetched.
    """
    try:
        actor_id = await resolve_handle(writers, remote, target, refresh=refresh)
    except FetchError as exc:
        raise UserError(N_("cannot find %(handle)s: %(reason)s"), handle=target,
                        reason=str(exc)) from None
    async with writers() as db:
        return await db.get(Actor, actor_id)


async def actor_uris(writers: async_sessionmaker[AsyncSession], remote: Remote,
                     targets: list[str]) -> list[str]:
    """The ids of the actors named by `user@host` handles or URLs (find_actor: network I/O,
    so called before a write transaction opens). UserError for one that cannot be found."""
    return [(await find_actor(writers, remote, target)).uri for target in targets]

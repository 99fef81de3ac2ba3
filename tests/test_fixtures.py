"""Real-world ActivityPub payloads (tests/fixtures, see its README) delivered to our shared inbox.

Every JSON document there is ActivityStreams (a JSON object with a "type"): each goes to the
shared inbox of one fedsph node, signed by a local fake peer, and must be accepted (202) and then
processed by the worker as "done" or "ignored": never a 5xx, never a worker error, never an item
left waiting for a retry. The fixtures live in the repository, so a missing set, a file that is
not JSON or a document without a type is a failure, not a skip.

How a fixture becomes a delivery:

- An activity (it has both "actor" and "object") is sent as it is, by its actor.
- An actor document (Person, Group, Service, ...) is sent as the Update of itself that servers
  send when a profile changes; its publicKey is the fake peer's, since the original server's key
  would not be the key the peer signs with.
- Any other object (Note, Page, Video, ChatMessage, and also collections, funkwhale Tracks, a
  Tombstone) is wrapped in a Create by its attributedTo (else its "actor", else a fresh actor):
  Create is how objects reach an inbox, and the types we do not keep must be ignored politely.

Ids stay consistent after the move to the fake peer: the sending actor's URL becomes the peer
actor's URI (its inbox/outbox/followers/following too), and every other URL on the fixture's
own hosts becomes {peer}/o/<host-and-path>, so same-origin checks see what they saw on the
original server. Hosts named in "@context" (vocabularies: w3.org, joinmastodon.org, ...) are
left alone, and "@context" itself is never touched. Every embedded object is also served by the
peer at its new id, so the worker can fetch it; nothing else on the network is contacted (the
node's Remote is fenced to 127.0.0.1 and the test fails if it tried to go elsewhere).

A local member follows each sending actor once it is known, so posts are stored (which runs
our parsing of real content) instead of being ignored as "nobody here follows this".

One node serves the whole module (a migration per test would dominate the run time); each test
has its own fake peer on its own port, so ids never collide between fixtures.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from sqlalchemy import select

from fedsph.errors import FetchError
from fedsph.federation.activitystreams import PUBLIC, as_list, get_id, get_type
from fedsph.federation.actors import ACTOR_TYPES, get_actor_by_uri
from fedsph.models import Follow, InboxItem
from fedsph.web.keys import REMOTE
from tests.fakepeer import FakePeer, PeerActor
from tests.support.nodes import make_settings, start_node

pytestmark = pytest.mark.asyncio(loop_scope="module")

FIXTURES_DIR = Path(__file__).parent / "fixtures"

# The captured sets and how many documents each holds at least (tests/fixtures/README.md): a set
# that lost files fails here instead of quietly testing less.
FIXTURE_SETS = {"fedidocs": 41, "lemmy-assets": 88}

# Fixtures our inbox may refuse with a 4xx, and why. Empty: every well-formed activity from the
# right actor must be accepted, whatever we later do with it.
EXPECTED_REFUSALS: dict[str, str] = {}

URL_RE = re.compile(r"https?://[^\s\"'<>()\[\]{}\\]+")
ACTOR_COLLECTIONS = {"inbox", "outbox", "followers", "following"}


# -- collecting ---------------------------------------------------------------------------------


def _collect() -> list:
    """One case per JSON document; a broken one becomes a failing case, never a skipped one."""
    params = []
    for path in sorted(FIXTURES_DIR.rglob("*.json")):
        name = path.relative_to(FIXTURES_DIR).as_posix()
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            document = f"not JSON: {exc}"
        params.append(pytest.param(name, document, id=name))
    return params


async def test_every_fixture_set_is_present():  # async only because the module marks every test
    for folder, at_least in FIXTURE_SETS.items():
        found = len(list((FIXTURES_DIR / folder).rglob("*.json")))
        assert found >= at_least, f"tests/fixtures/{folder}: {found} documents, expected {at_least}"


# -- moving a fixture onto the fake peer --------------------------------------------------------


def _url_key(url: str) -> str:
    """host + path without the scheme or a trailing slash: Lemmy mixes http and https ids."""
    parts = urlsplit(url)
    return parts.netloc.lower() + parts.path.rstrip("/")


def _context_hosts(value) -> set[str]:
    hosts = set()
    for url in URL_RE.findall(json.dumps(value)):
        try:
            hosts.add(urlsplit(url).netloc.lower())
        except ValueError:
            pass
    return hosts


@dataclass
class Rewriter:
    """Maps every URL on the fixture's hosts onto the fake peer, the same way everywhere."""

    base: str
    actor_url: str | None
    actor_uri: str
    keep_hosts: set[str]

    def url(self, url: str) -> str:
        try:
            parts = urlsplit(url)
        except ValueError:
            return url
        host = parts.netloc.lower()
        fragment = f"#{parts.fragment}" if parts.fragment else ""
        if self.actor_url:
            actor_key, key = _url_key(self.actor_url), _url_key(url)
            if key == actor_key:
                return self.actor_uri + fragment
            rest = key.removeprefix(actor_key + "/")
            if key != rest and rest in ACTOR_COLLECTIONS:
                return f"{self.actor_uri}/{rest}"
        if not host or host in self.keep_hosts:
            return url
        flat = host + parts.path + (f"?{parts.query}" if parts.query else "")
        slug = re.sub(r"[^A-Za-z0-9._~-]+", "-", flat).strip("-")
        return f"{self.base}/o/{slug}{fragment}"

    def __call__(self, value):
        if isinstance(value, str):
            return URL_RE.sub(lambda m: self.url(m.group(0)), value)
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, dict):
            return {k: (v if k == "@context" else self(v)) for k, v in value.items()}
        return value


@dataclass
class Delivery:
    kind: str  # "activity", "actor update" or "wrapped object"
    actor: PeerActor
    activity: dict


def _sender(document: dict) -> tuple[str, str | None, str]:
    """(how it is delivered, the URL of the actor that sends it, that actor's type)."""
    if "actor" in document and "object" in document:
        actor = as_list(document["actor"])[0] if document["actor"] else None
        return "activity", get_id(actor), get_type(actor) or "Person"
    if get_type(document) in ACTOR_TYPES:
        return "actor update", get_id(document.get("id")), get_type(document)
    author = get_id(document.get("attributedTo")) or get_id(document.get("actor"))
    return "wrapped object", author, "Person"


def _peer_name(actor_url: str | None) -> str:
    last = (urlsplit(actor_url).path.rstrip("/").rsplit("/", 1)[-1] if actor_url else "")
    return re.sub(r"[^a-z0-9_]", "", last.lower())[:30] or "author"


def _serve_embedded(peer: FakePeer, value) -> None:
    """Every embedded object with an id on the peer becomes fetchable there."""
    if isinstance(value, list):
        for item in value:
            _serve_embedded(peer, item)
    elif isinstance(value, dict):
        object_id = value.get("id")
        if isinstance(object_id, str) and object_id.startswith(f"{peer.base}/o/"):
            peer.objects.setdefault(object_id.split("#")[0], value)
        for key, item in value.items():
            if key != "@context":
                _serve_embedded(peer, item)


def prepare(document: dict, peer: FakePeer) -> Delivery:
    kind, actor_url, actor_type = _sender(document)
    if actor_type not in ACTOR_TYPES:
        actor_type = "Person"
    actor = peer.add_actor(_peer_name(actor_url), actor_type)
    keep = _context_hosts(document.get("@context")) | {"www.w3.org"}
    if actor_url:
        keep.discard(urlsplit(actor_url).netloc.lower())
    moved = Rewriter(peer.base, actor_url, actor.uri, keep)(document)
    if kind == "activity":
        activity = moved
    elif kind == "actor update":
        moved["id"] = actor.uri
        moved["publicKey"] = actor.document["publicKey"]
        activity = {"@context": moved.get("@context", actor.document["@context"]),
                    "id": peer.new_id(), "type": "Update", "actor": actor.uri,
                    "object": moved, "to": [PUBLIC]}
    else:
        if not isinstance(moved.get("id"), str):
            moved["id"] = peer.new_id("o")
        activity = {"@context": moved.get("@context", actor.document["@context"]),
                    "id": peer.new_id(), "type": "Create", "actor": actor.uri,
                    "object": moved, "to": moved.get("to", [PUBLIC]),
                    "cc": moved.get("cc", [])}
    _serve_embedded(peer, activity)
    return Delivery(kind, actor, activity)


# -- the node -----------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fedsph_node(tmp_path_factory):
    node = await start_node(make_settings(tmp_path_factory.mktemp("fixtures-node")))
    node.outside_requests = []
    remote = node.app[REMOTE]
    fetch_json, post_signed = remote.fetch_json, remote.post_signed

    def fenced(method):
        # The fixtures name real servers: make sure a test never reaches them.
        async def call(url, *args, **kwargs):
            if urlsplit(url).hostname != "127.0.0.1":
                node.outside_requests.append(url)
                raise FetchError(f"test: refusing to contact {url}")
            return await method(url, *args, **kwargs)
        return call

    remote.fetch_json, remote.post_signed = fenced(fetch_json), fenced(post_signed)
    node.member = await node.create_actor("watcher", "Person")
    yield node
    await node.runner.cleanup()


async def _follow_locally(node, actor_uri: str) -> None:
    """The member follows the sender (if the inbox stored it), as after a Follow/Accept."""
    async with node.writers() as db, db.begin():
        sender = await get_actor_by_uri(db, actor_uri)
        if sender is None:
            return
        exists = await db.scalar(select(Follow.id).where(
            Follow.follower_id == node.member.id, Follow.followed_id == sender.id))
        if exists is None:
            db.add(Follow(follower_id=node.member.id, followed_id=sender.id, state="accepted",
                          activity_uri=f"{node.member.uri}#follows/{sender.id}"))


async def _items_from(node, actor_uri: str) -> list[InboxItem]:
    async with node.readers() as db:
        return list(await db.scalars(select(InboxItem).where(InboxItem.actor_uri == actor_uri)))


def _is_delete_of_self(activity: dict) -> bool:
    return get_type(activity) == "Delete" and get_id(activity.get("object")) == get_id(
        activity.get("actor"))


# -- the test -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "document"), _collect())
async def test_fixture_is_accepted_or_ignored(fedsph_node, name, document):
    assert isinstance(document, dict) and get_type(document), (
        f"{name}: not an ActivityStreams document ({str(document)[:80]})")
    node = fedsph_node
    peer = await FakePeer().start()
    try:
        delivery = prepare(document, peer)
        status, text = await peer.post(delivery.actor, node.urls.shared_inbox(), delivery.activity)
        assert status < 500, f"{name}: inbox answered {status}: {text}"
        if name in EXPECTED_REFUSALS:
            assert 400 <= status < 500, f"{name}: expected a refusal ({EXPECTED_REFUSALS[name]})"
            return
        assert status == 202, f"{name} ({delivery.kind}): inbox refused it with {status}: {text}"

        await _follow_locally(node, delivery.actor.uri)
        await node.run_worker()

        items = await _items_from(node, delivery.actor.uri)
        if not _is_delete_of_self(delivery.activity):
            # A Delete of an account we never saw is dropped unstored; everything else is kept.
            assert items, f"{name}: accepted but not queued"
        problems = [f"{item.type} {item.activity_uri}: {item.status} after {item.attempts} "
                    f"attempt(s): {item.last_error}"
                    for item in items if item.status not in ("done", "ignored")]
        assert not problems, f"{name}: worker did not finish cleanly:\n" + "\n".join(problems)
        assert not node.outside_requests, f"{name}: tried to contact {node.outside_requests}"
    finally:
        node.outside_requests.clear()
        await peer.stop()

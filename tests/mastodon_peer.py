"""A strict Mastodon-like peer for tests.

It reuses FakePeer's server, actors and key handling, but every check it makes on what fedsph
sends is written here from Mastodon's rules (see FEDERATION.md), not borrowed from fedsph:

- app/lib/signed_request.rb / app/controllers/concerns/signature_verification.rb: a POST must sign
  `digest`, a GET must sign `host`, one of `date`/`(created)` and one of `(request-target)`/
  `digest` must be signed; algorithm rsa-sha256 or hs2019 (the default when absent); the Date
  must be no more than CLOCK_SKEW_MARGIN ahead and the signature expires 5 minutes after it
  (never more than EXPIRATION_WINDOW_LIMIT), plus CLOCK_SKEW_MARGIN; Digest must offer SHA-256
  and match the body.
- app/helpers/jsonld_helper.rb: fetches send Accept activity+json / ld+json with the AS profile,
  are signed by the instance actor, and only accept those content types back; `id` must equal the
  URL fetched; `@context` must include ActivityStreams.
- app/services/activitypub/fetch_remote_key_service.rb and fetch_remote_actor_service.rb: the key
  document's owner must be the actor; the actor needs `preferredUsername` and `inbox`; WebFinger
  for acct:preferredUsername@domain must answer a subject for the same account whose `self` link
  is the actor id (the loop-back).
- process_collection_service.rb: without an LD signature, the activity's actor must be the
  signer; create.rb: the object's id must be on the actor's host.

Its own requests are signed the way Mastodon signs them, with `(request-target)` listed last,
and its actors are served only to signed GETs (authorized-fetch mode), answering 401 otherwise.
Everything that fails a check is recorded in `failures` with the reason.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import urlencode, urlsplit

import aiohttp
import orjson
from aiohttp import web

from fedsph.federation.crypto import rsa_sign, rsa_verify
from tests.fakepeer import FakePeer, PeerActor, Received

AS = "https://www.w3.org/ns/activitystreams"
PUBLIC = AS + "#Public"
SECURITY = "https://w3id.org/security/v1"
EXPIRATION_WINDOW_LIMIT = timedelta(hours=12)
CLOCK_SKEW_MARGIN = timedelta(hours=1)
DEFAULT_EXPIRY = timedelta(minutes=5)
ACCEPT = f'application/activity+json, application/ld+json; profile="{AS}"'
ACTOR_TYPES = ("Application", "Group", "Organization", "Person", "Service")
# The context Mastodon puts on statuses (abridged): objects arrive with extension terms.
NOTE_CONTEXT = [AS, {"ostatus": "http://ostatus.org#", "sensitive": "as:sensitive",
                     "toot": "http://joinmastodon.org/ns#", "Hashtag": "as:Hashtag"}]


class CheckFailed(Exception):
    """A request fedsph sent would be refused by Mastodon; the message says why."""


@dataclass
class Failure:
    what: str
    reason: str


def _is_activitypub_type(content_type: str | None) -> bool:
    """application/activity+json, or application/ld+json with the ActivityStreams profile."""
    parts = [p.strip() for p in (content_type or "").split(";")]
    if parts[0].lower() == "application/activity+json":
        return True
    if parts[0].lower() != "application/ld+json":
        return False
    return any(p.startswith('profile="') and AS in p[9:-1].split() for p in parts[1:])


def _parse_signature(value: str) -> dict[str, str]:
    params = {}
    for part in value.split(","):
        name, sep, quoted = part.strip().partition("=")
        if sep and len(quoted) >= 2 and quoted[0] == quoted[-1] == '"':
            params[name] = quoted[1:-1]
    return params


def _as_list(value) -> list:
    return value if isinstance(value, list) else ([] if value is None else [value])


def _id(value):
    return value.get("id") if isinstance(value, dict) else value


def _host(uri: str) -> str:
    return urlsplit(uri).netloc.lower()


@dataclass
class MastodonPeer(FakePeer):
    """A FakePeer that checks fedsph's requests as Mastodon does and signs like Mastodon."""

    require_signed_get: bool = True
    failures: list[Failure] = field(default_factory=list)
    verified_owners: dict[str, str] = field(default_factory=dict)  # key id -> actor id

    def __post_init__(self):
        super().__post_init__()
        self.instance = self.add_actor("instance.actor", "Application")

    # -- signing the way Mastodon does ---------------------------------------------------------

    def _signed_headers(self, method: str, url: str, actor: PeerActor, body: bytes | None,
                        accept: str | None = None) -> dict[str, str]:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Host": parts.netloc, "Date": format_datetime(datetime.now(UTC), usegmt=True)}
        if body is not None:
            headers["Digest"] = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
            headers["Content-Type"] = "application/activity+json"
        if accept is not None:
            headers["Accept"] = accept
        values = {k.lower(): v for k, v in headers.items()}
        values["(request-target)"] = f"{method.lower()} {target}"
        names = list(values)  # (request-target) last
        text = "\n".join(f"{name}: {values[name]}" for name in names)
        signature = base64.b64encode(rsa_sign(actor.private_pem, text.encode())).decode()
        headers["Signature"] = (f'keyId="{actor.key_id}",algorithm="rsa-sha256",'
                                f'headers="{" ".join(names)}",signature="{signature}"')
        return headers

    async def post(self, actor: PeerActor, inbox: str, activity: dict | bytes,
                   extra_headers: dict | None = None) -> tuple[int, str]:
        body = activity if isinstance(activity, bytes) else orjson.dumps(activity)
        headers = self._signed_headers("POST", inbox, actor, body)
        headers.update(extra_headers or {})
        async with self.http.post(inbox, data=body, headers=headers) as resp:
            return resp.status, await resp.text()

    async def fetch(self, url: str, accept: str = ACCEPT) -> dict:
        """A GET as Mastodon's JsonLdHelper makes it: signed by the instance actor."""
        headers = self._signed_headers("GET", url, self.instance, None, accept)
        async with self.http.get(url, headers=headers, allow_redirects=False) as resp:
            if resp.status != 200:
                raise CheckFailed(f"GET {url} answered {resp.status}")
            if accept == ACCEPT and not _is_activitypub_type(resp.headers.get("Content-Type")):
                raise CheckFailed(f"GET {url} answered Content-Type "
                                  f"{resp.headers.get('Content-Type')!r}")
            document = orjson.loads(await resp.read())
        if not isinstance(document, dict):
            raise CheckFailed(f"GET {url} is not a JSON object")
        return document

    # -- checking signatures -------------------------------------------------------------------

    def _check_strength(self, method: str, params: dict[str, str]) -> list[str]:
        if not params.get("keyId") or not params.get("signature"):
            raise CheckFailed("Signature lacks keyId or signature")
        algorithm = params.get("algorithm", "hs2019")
        if algorithm not in ("rsa-sha256", "hs2019"):
            raise CheckFailed(f"unsupported algorithm {algorithm!r}")
        signed = params.get("headers", "(created)" if algorithm == "hs2019" else "date").lower().split()
        if "date" not in signed and "(created)" not in signed:
            raise CheckFailed("neither Date nor (created) is signed")
        if "(request-target)" not in signed and "digest" not in signed:
            raise CheckFailed("neither (request-target) nor Digest is signed")
        if method == "GET" and "host" not in signed:
            raise CheckFailed("a GET must sign Host")
        if method == "POST" and "digest" not in signed:
            raise CheckFailed("a POST must sign Digest")
        return signed

    @staticmethod
    def _check_time_window(params: dict[str, str], headers: dict[str, str]) -> None:
        created = expires = None
        try:
            if params.get("algorithm", "hs2019") == "hs2019" and params.get("created"):
                created = datetime.fromtimestamp(int(params["created"]), UTC)
            elif headers.get("date"):
                created = parsedate_to_datetime(headers["date"])
            if params.get("expires"):
                expires = datetime.fromtimestamp(int(params["expires"]), UTC)
        except (TypeError, ValueError):
            raise CheckFailed("invalid Date header") from None
        now = datetime.now(UTC)
        if created is not None:
            expires = min(expires or created + DEFAULT_EXPIRY, created + EXPIRATION_WINDOW_LIMIT)
            if created > now + CLOCK_SKEW_MARGIN:
                raise CheckFailed("Date is more than an hour in the future")
        if expires is not None and now > expires + CLOCK_SKEW_MARGIN:
            raise CheckFailed("signed request date outside acceptable time window")

    @staticmethod
    def _check_digest(headers: dict[str, str], body: bytes) -> None:
        if "digest" not in headers:
            raise CheckFailed("Digest header missing")
        offered = {name.strip().lower(): value for name, _, value in
                   (part.partition("=") for part in headers["digest"].split(","))}
        if "sha-256" not in offered:
            raise CheckFailed(f"Digest offers no SHA-256: {sorted(offered)}")
        if offered["sha-256"] != base64.b64encode(hashlib.sha256(body).digest()).decode():
            raise CheckFailed("Digest does not match the body")

    async def _verify(self, request: web.Request, body: bytes | None) -> str:
        """The actor id that signed `request`, or CheckFailed."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        if "signature" not in headers:
            raise CheckFailed("request not signed")
        params = _parse_signature(headers["signature"])
        signed = self._check_strength(request.method, params)
        self._check_time_window(params, headers)
        if body is not None and "digest" in signed:
            self._check_digest(headers, body)
        lines = []
        for name in signed:
            if name == "(request-target)":
                value = f"{request.method.lower()} {request.rel_url.raw_path_qs}"
            elif name in ("(created)", "(expires)"):
                value = params.get(name[1:-1])
            else:
                value = headers.get(name)
            if value is None:
                raise CheckFailed(f"signed header {name} is missing")
            lines.append(f"{name}: {value}")
        owner, pem = await self._resolve_key(params["keyId"])
        signature = base64.b64decode(params["signature"])
        if not rsa_verify(pem, signature, "\n".join(lines).encode()):
            raise CheckFailed(f"signature by {params['keyId']} does not verify")
        return owner

    async def _resolve_key(self, key_id: str) -> tuple[str, str]:
        """Fetch the key's actor (signed), check its owner and its WebFinger loop-back."""
        actor_url = key_id.split("#")[0]
        actor = await self.fetch(actor_url)
        if actor.get("id") != actor_url:
            raise CheckFailed(f"{actor_url} serves a document with id {actor.get('id')!r}")
        if AS not in _as_list(actor.get("@context")):
            raise CheckFailed(f"{actor_url} lacks the ActivityStreams @context")
        if actor.get("type") not in ACTOR_TYPES:
            raise CheckFailed(f"{actor_url} has type {actor.get('type')!r}")
        for required in ("preferredUsername", "inbox"):
            if not actor.get(required):
                raise CheckFailed(f"{actor_url} has no {required}")
        key = actor.get("publicKey")
        key = next((k for k in _as_list(key) if isinstance(k, dict) and k.get("id") == key_id), None)
        if key is None or not key.get("publicKeyPem"):
            raise CheckFailed(f"{actor_url} publishes no key {key_id}")
        if _id(key.get("owner")) != actor["id"]:
            raise CheckFailed(f"key {key_id} is owned by {key.get('owner')!r}, not {actor['id']}")
        await self._check_webfinger(actor)
        self.verified_owners[key_id] = actor["id"]
        return actor["id"], key["publicKeyPem"]

    async def _check_webfinger(self, actor: dict) -> None:
        # Mastodon uses the host alone; on loopback the port is part of the account's domain.
        username, domain = actor["preferredUsername"], _host(actor["id"])
        subject = await self._webfinger_subject(f"{username}@{domain}", actor["id"])
        # A subject naming another acct is a redirect: that one must answer for itself and
        # loop back to the same actor too.
        if (subject.lower() != f"{username}@{domain}".lower()
                and (await self._webfinger_subject(subject, actor["id"])).lower() != subject.lower()):
            raise CheckFailed(f"too many WebFinger redirects for {actor['id']}")

    async def _webfinger_subject(self, acct: str, actor_id: str) -> str:
        url = f"http://{acct.split('@')[-1]}/.well-known/webfinger?" + urlencode(
            {"resource": f"acct:{acct}"})
        jrd = await self.fetch(url, accept="application/jrd+json, application/json")
        subject = str(jrd.get("subject") or "").removeprefix("acct:")
        if not subject:
            raise CheckFailed(f"WebFinger for {acct} has no subject")
        # Links are indexed by rel, so when several are `self` the last one counts.
        links = {link.get("rel"): link for link in _as_list(jrd.get("links")) if isinstance(link, dict)}
        self_link = links.get("self", {})
        if self_link.get("href") != actor_id:
            raise CheckFailed(f"WebFinger for {acct} does not loop back to {actor_id}")
        return subject

    # -- checking activities -------------------------------------------------------------------

    @staticmethod
    def _check_activity(activity: dict, signer: str) -> None:
        if AS not in _as_list(activity.get("@context")):
            raise CheckFailed("activity lacks the ActivityStreams @context")
        if not activity.get("id") or not activity.get("type"):
            raise CheckFailed("activity lacks id or type")
        if _id(activity.get("actor")) != signer:
            raise CheckFailed(f"activity actor {activity.get('actor')!r} is not the signer {signer}")
        obj = activity.get("object")
        if activity["type"] in ("Create", "Update", "Delete") and isinstance(obj, dict):
            if _host(obj.get("id") or "") != _host(signer):
                raise CheckFailed(f"object {obj.get('id')!r} is not on the actor's host")
            if obj.get("type") == "Note" and _id(obj.get("attributedTo")) != signer:
                raise CheckFailed("Note is attributed to someone else than the actor")
            if activity["type"] == "Update" and obj.get("type") == "Note" and not obj.get("updated"):
                raise CheckFailed("Update of a Note without `updated`")

    def _fail(self, what: str, reason: str) -> web.Response:
        self.failures.append(Failure(what, reason))
        return web.Response(status=401, text=reason)

    # -- HTTP in -------------------------------------------------------------------------------

    async def _inbox(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        what = f"POST {request.path}"
        if not _is_activitypub_type(headers.get("content-type")):
            return self._fail(what, f"Content-Type {headers.get('content-type')!r}")
        try:
            activity = orjson.loads(body)
        except orjson.JSONDecodeError:
            return self._fail(what, "body is not JSON")
        try:
            signer = await self._verify(request, body)
            self._check_activity(activity, signer)
        except CheckFailed as exc:
            self.received.append(Received(request.path, headers, activity, False, str(exc)))
            return self._fail(f"{what} {activity.get('type')}", str(exc))
        self.received.append(Received(request.path, headers, activity, True))
        return web.Response(status=202)

    async def _signed_get(self, request: web.Request, document: dict | None) -> web.Response:
        if document is None:
            return web.Response(status=404)
        accept = request.headers.get("Accept", "")
        if not any(_is_activitypub_type(kind) for kind in accept.split(",")):
            # Mastodon answers such a request with its HTML page, which no server can use.
            return self._fail(f"GET {request.path}", f"Accept {accept!r}")
        try:
            await self._verify(request, None)
        except CheckFailed as exc:
            return self._fail(f"GET {request.path}", str(exc))
        self.fetched.append(document["id"])
        return web.Response(body=orjson.dumps(document),
                            content_type="application/activity+json", charset="utf-8")

    async def _actor(self, request: web.Request) -> web.Response:
        actor = self.actors.get(request.match_info["name"])
        return await self._signed_get(request, actor.document if actor else None)

    async def _object(self, request: web.Request) -> web.Response:
        return await self._signed_get(request, self.objects.get(f"{self.base}{request.path}"))

    async def start(self) -> MastodonPeer:
        app = web.Application()
        app.router.add_get("/users/{name}", self._actor)
        app.router.add_post("/users/{name}/inbox", self._inbox)
        app.router.add_post("/inbox", self._inbox)
        app.router.add_get("/.well-known/webfinger", self._webfinger)
        app.router.add_get("/users/{name}/statuses/{id}", self._object)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self.http = aiohttp.ClientSession()
        return self

    # -- what a Mastodon user does -------------------------------------------------------------

    def _status(self, actor: PeerActor, text: str, in_reply_to: dict | None) -> dict:
        uri = f"{actor.uri}/statuses/{uuid.uuid4().int % 10**18}"
        note = {"id": uri, "type": "Note", "summary": None, "inReplyTo": None,
                "published": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "url": uri.replace("/users/", "/@").replace("/statuses/", "/"),
                "attributedTo": actor.uri, "to": [PUBLIC], "cc": [actor.document["followers"]],
                "sensitive": False, "content": f"<p>{text}</p>", "contentMap": {"en": f"<p>{text}</p>"},
                "attachment": [], "tag": []}
        if in_reply_to is not None:
            author = _id(in_reply_to["attributedTo"])
            note["inReplyTo"] = in_reply_to["id"]
            note["cc"].append(author)
            handle = f"@{author.rstrip('/').rsplit('/', 1)[-1]}@{_host(author)}"
            note["tag"] = [{"type": "Mention", "href": author, "name": handle}]
            note["content"] = note["contentMap"]["en"] = (
                f'<p><span class="h-card"><a href="{author}" class="u-url mention">{handle}</a>'
                f"</span> {text}</p>")
        self.objects[uri] = {"@context": NOTE_CONTEXT, **note}
        return note

    def follow(self, actor: PeerActor, target: str) -> dict:
        return {"@context": AS, "id": f"{actor.uri}#follows/{uuid.uuid4().hex}", "type": "Follow",
                "actor": actor.uri, "object": target}

    def create_note(self, actor: PeerActor, text: str, in_reply_to: dict | None = None) -> dict:
        note = self._status(actor, text, in_reply_to)
        return {"@context": NOTE_CONTEXT, "id": note["id"] + "/activity", "type": "Create",
                "actor": actor.uri, "published": note["published"], "to": note["to"],
                "cc": note["cc"], "object": note}

    def like(self, actor: PeerActor, object_uri: str) -> dict:
        return {"@context": AS, "id": f"{actor.uri}#likes/{uuid.uuid4().int % 10**9}",
                "type": "Like", "actor": actor.uri, "object": object_uri}

    def announce(self, actor: PeerActor, note: dict) -> dict:
        uri = f"{actor.uri}/statuses/{uuid.uuid4().int % 10**18}"
        return {"@context": AS, "id": uri + "/activity", "type": "Announce", "actor": actor.uri,
                "published": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "to": [PUBLIC],
                "cc": [_id(note["attributedTo"]), actor.document["followers"]],
                "object": note["id"]}

    def update_note(self, actor: PeerActor, note: dict, text: str) -> dict:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        prefix = note["content"].rsplit("</span> ", 1)[0] + "</span> " if note.get("inReplyTo") \
            else "<p>"
        note.update(content=f"{prefix}{text}</p>", updated=now)
        note["contentMap"] = {"en": note["content"]}
        self.objects[note["id"]] = {"@context": NOTE_CONTEXT, **note}
        return {"@context": NOTE_CONTEXT, "id": f"{note['id']}#updates/{uuid.uuid4().int % 10**9}",
                "type": "Update", "actor": actor.uri, "published": now, "to": note["to"],
                "cc": note["cc"], "object": note}

    def delete_post(self, actor: PeerActor, note: dict) -> dict:
        self.objects.pop(note["id"], None)
        return {"@context": AS, "id": note["id"] + "#delete", "type": "Delete", "actor": actor.uri,
                "to": [PUBLIC], "object": {"id": note["id"], "type": "Tombstone",
                                           "atomUri": note["id"]}}

"""The only outbound network code: signed GET and POST, WebFinger, and the SSRF guard.

Every request goes through one aiohttp ClientSession whose resolver drops loopback, private and
link-local addresses (unless FEDSPH_ALLOW_PRIVATE_NETWORKS is on), so a hostile actor document
cannot make us reach services on our own network, not even through a redirect or DNS tricks.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin, urlsplit

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver

from fedsph import __version__
from fedsph.config import outgoing_tls_context
from fedsph.core.safe_links import origin
from fedsph.errors import BlockedAddress, FetchError
from fedsph.federation.activitystreams import AP_CONTENT_TYPE
from fedsph.federation.httpsig import sign_request

USER_AGENT = f"fedsph/{__version__}"
ACCEPT_AP = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
MAX_REDIRECTS = 3
MAX_FETCH_BYTES = 2 * 1024 * 1024
# What a delivery keeps of an inbox's answer, and how long it waits for it once the status is in.
ANSWER_BYTES = 2048
ANSWER_READ_SECONDS = 10


def is_forbidden_address(address: str) -> bool:
    """True for addresses a public server must never be made to contact."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


class GuardedResolver(AbstractResolver):
    """Resolves names like aiohttp does, then removes addresses we must not contact."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET):
        results = [r for r in await self._inner.resolve(host, port, family)
                   if not is_forbidden_address(r["host"])]
        if not results:
            raise OSError(f"{host} resolves only to private or loopback addresses")
        return results

    async def close(self) -> None:
        await self._inner.close()


def check_url(url: str, allow_private: bool) -> None:
    """Refuse non-HTTP URLs and, unless allowed, literal private addresses and localhost."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port, like a bad IPv6 literal, raises only when read
    except ValueError:  # typed in a form or sent by another server: a fetch that cannot be made
        raise FetchError(f"not a valid URL: {url[:200]!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"not an http(s) URL: {url!r}")
    if allow_private:
        return
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        raise BlockedAddress(f"refusing to contact {host}")
    try:
        if is_forbidden_address(host):
            raise BlockedAddress(f"refusing to contact private address {host}")
    except ValueError:
        pass  # a name, not an address: the resolver checks what it resolves to


def _redirect_target(url: str, location: str) -> str:
    """Where a redirect points; another server's unparseable Location is its failure, not ours."""
    try:
        return urljoin(url, location)
    except ValueError:
        raise FetchError(f"GET {url}: redirected to an invalid URL") from None


def make_client_session(allow_private: bool, timeout: float, limit: int = 100,
                        ca_bundle: str = "") -> aiohttp.ClientSession:
    """The one HTTP client of a process. `ca_bundle` (FEDSPH_CA_BUNDLE) adds certificate
    authorities to the system's; certificates are always verified."""
    resolver = None if allow_private else GuardedResolver()
    tls = outgoing_tls_context(ca_bundle)
    connector = aiohttp.TCPConnector(limit=limit, resolver=resolver, ttl_dns_cache=300,
                                     **({"ssl": tls} if tls is not None else {}))
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 10)),
        headers={"User-Agent": USER_AGENT},
        json_serialize=lambda obj: orjson.dumps(obj).decode(),
    )


async def read_at_most(content: aiohttp.StreamReader, limit: int) -> bytes:
    """The whole body, or its first limit + 1 bytes (one more than allowed says it is too
    long). StreamReader.read(n) returns only what has arrived so far: over TLS through a proxy
    a document often comes in several pieces (tests/test_deploy_caddy.py caught a cut one)."""
    body = bytearray()
    while len(body) <= limit:
        chunk = await content.read(limit + 1 - len(body))
        if not chunk:  # the end of the body
            break
        body += chunk
    return bytes(body)


async def _answer_text(resp: aiohttp.ClientResponse) -> str:
    """The start of an inbox's answer, for the delivery's log. The status decides the delivery:
    once it has arrived, a body cut short or trickled (a 202 whose Content-Length promised more)
    must not turn an accepted delivery into a failure that is retried, i.e. sent twice, nor hold
    the worker until the session's total timeout. What arrived is kept, marked as cut."""
    body = bytearray()
    try:
        async with asyncio.timeout(ANSWER_READ_SECONDS):
            while len(body) < ANSWER_BYTES:
                chunk = await resp.content.read(ANSWER_BYTES - len(body))
                if not chunk:
                    break
                body += chunk
    except (aiohttp.ClientPayloadError, TimeoutError) as exc:
        return body.decode("utf-8", "replace") + f" [answer cut: {exc.__class__.__name__}]"
    return body.decode("utf-8", "replace")


@dataclass(frozen=True)
class Signer:
    key_id: str
    private_pem: str


@dataclass(frozen=True)
class PostResult:
    status: int
    retry_after: str | None
    text: str


class Remote:
    """Outbound HTTP for one node: every GET and POST is signed."""

    def __init__(self, session: aiohttp.ClientSession, instance_signer: Signer, allow_private: bool):
        self.session = session
        self.instance_signer = instance_signer
        self.allow_private = allow_private
        # Our instance actor's key lives under our base URL, so its origin is this node's.
        self.own_origin = origin(instance_signer.key_id)

    def is_own(self, url: str | None) -> bool:
        """True for a URL on this node's origin: what is ours is never taken from the network."""
        return self.own_origin is not None and origin(url) == self.own_origin

    async def fetch_json(self, url: str, signer: Signer | None = None, accept: str = ACCEPT_AP) -> dict:
        """Signed GET of a JSON document, following a few redirects, each one checked."""
        return (await self.fetch_document(url, signer, accept))[0]

    async def fetch_document(self, url: str, signer: Signer | None = None,
                             accept: str = ACCEPT_AP) -> tuple[dict, str]:
        """(document, final URL): a signed GET that follows a few redirects, each one checked.

        The final URL is where the bytes really came from: an id is only believed when it is
        that URL (fedsph.federation.actors binds actors and keys to it).
        """
        signer = signer or self.instance_signer
        for _ in range(MAX_REDIRECTS + 1):
            check_url(url, self.allow_private)
            if self.is_own(url):
                raise BlockedAddress(f"{url} is on this node: its documents are never fetched")
            headers = sign_request("GET", url, signer.key_id, signer.private_pem)
            headers["Accept"] = accept
            try:
                async with self.session.get(url, headers=headers, allow_redirects=False) as resp:
                    if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                        url = _redirect_target(url, resp.headers["Location"])
                        continue
                    if resp.status == 410:
                        raise FetchError(f"GET {url}: gone", 410)
                    if resp.status >= 400:
                        raise FetchError(f"GET {url}: HTTP {resp.status}", resp.status)
                    body = await read_at_most(resp.content, MAX_FETCH_BYTES)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise FetchError(f"GET {url}: {exc.__class__.__name__}: {exc}") from None
            if len(body) > MAX_FETCH_BYTES:
                raise FetchError(f"GET {url}: document larger than {MAX_FETCH_BYTES} bytes")
            try:
                document = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise FetchError(f"GET {url}: not JSON") from None
            if not isinstance(document, dict):
                raise FetchError(f"GET {url}: not a JSON object")
            return document, url
        raise FetchError(f"GET {url}: too many redirects")

    async def post_signed(self, url: str, body: bytes, signer: Signer) -> PostResult:
        """POST pre-serialised bytes, signed now (a fresh Date on every attempt)."""
        check_url(url, self.allow_private)
        headers = sign_request("POST", url, signer.key_id, signer.private_pem, body=body,
                               content_type=AP_CONTENT_TYPE)
        headers["Accept"] = ACCEPT_AP
        try:
            async with self.session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                text = await _answer_text(resp)
                return PostResult(resp.status, resp.headers.get("Retry-After"), text)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise FetchError(f"POST {url}: {exc.__class__.__name__}: {exc}") from None

    async def webfinger(self, handle: str) -> str:
        """Resolve user@host to an actor URI (the `self` link of type activity+json)."""
        user, _, host = handle.lstrip("@").partition("@")
        if not user or not host:
            raise FetchError(f"not a handle of the form user@host: {handle!r}")
        query = urlencode({"resource": f"acct:{user}@{host}"})
        schemes = ["https", "http"] if self.allow_private else ["https"]
        last_error: FetchError | None = None
        for scheme in schemes:
            # Plain http is only tried where private networks are allowed (tests, local demos).
            try:
                document = await self.fetch_json(
                    f"{scheme}://{host}/.well-known/webfinger?{query}",
                    accept="application/jrd+json, application/json")
            except FetchError as exc:
                last_error = exc
                if exc.status is not None:
                    break
                continue
            for link in document.get("links") or []:
                if (isinstance(link, dict) and link.get("rel") == "self"
                        and isinstance(link.get("href"), str)
                        and (link.get("type") or "").split(";")[0].strip() in (
                            "application/activity+json", "application/ld+json")):
                    return link["href"]
            raise FetchError(f"WebFinger for {handle} has no ActivityPub self link")
        raise last_error or FetchError(f"WebFinger for {handle} failed")

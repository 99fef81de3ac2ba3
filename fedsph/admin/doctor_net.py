"""The checks of `fedsph doctor` that go to the network, as other servers would.

The public URL is asked from outside: a real request to FEDSPH_BASE_URL, through whatever
proxy is in front, trusting FEDSPH_CA_BUNDLE's authorities as outgoing requests do, so a proxy
that rewrites the Host or a certificate nobody trusts shows here before a peer meets it. Every
request has a short timeout; an unanswered one is a verdict, never a hang.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlsplit

import aiohttp
import orjson

from fedsph.admin.doctor_checks import OK, PROBLEM, SKIP, WARNING, Line, Target
from fedsph.config import Settings, outgoing_tls_context, proxy_networks
from fedsph.errors import BlockedAddress
from fedsph.federation.remote import FetchError, check_url, make_client_session, read_at_most
from fedsph.web.metrics import loopback_without_proxies

TIMEOUT_SECONDS = 5.0
MAX_BODY = 1024 * 1024
CERT_WARNING_DAYS = 14
# Mastodon accepts signatures dated up to an hour off (FEDERATION.md), but some servers a few
# minutes only: warn well before that.
CLOCK_WARNING_SECONDS = 60
CLOCK_PROBLEM_SECONDS = 300
PROXY_FIX = ("is the proxy forwarding to fedsph with the original Host header "
             "(README, \"Deploy\"), and is FEDSPH_BASE_URL the address people use?")


def client(settings: Settings, allow_private: bool = True) -> aiohttp.ClientSession:
    # Private addresses allowed by default: the node's own URL may well be on this machine or
    # its LAN, and --peer is the operator's choice. A peer read from the database is another
    # server's word: it gets FEDSPH_ALLOW_PRIVATE_NETWORKS, as the worker does.
    return make_client_session(allow_private, TIMEOUT_SECONDS, limit=4,
                               ca_bundle=settings.ca_bundle)


async def read_body(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The whole body, or None past `limit` bytes (remote.read_at_most reads to the end: a
    chunked answer arrives in pieces)."""
    body = await read_at_most(response.content, limit)
    return None if len(body) > limit else body


async def _get_json(http: aiohttp.ClientSession, url: str, accept: str) -> tuple[int, dict | None]:
    async with http.get(url, headers={"Accept": accept}, allow_redirects=False) as response:
        body = await read_body(response, MAX_BODY)
        try:
            document = orjson.loads(body) if body is not None else None
        except orjson.JSONDecodeError:
            document = None
        return response.status, document if isinstance(document, dict) else None


async def check_public_url(http: aiohttp.ClientSession, settings: Settings,
                           target: Target | None) -> list[Line]:
    if target is None:
        return [Line(SKIP, "public URL", "needs the database (an actor to look up)")]
    handle = f"{target.username}@{settings.domain}"
    url = f"{settings.base_url}/.well-known/webfinger?resource={quote('acct:' + handle)}"
    try:
        status, jrd = await _get_json(http, url, "application/jrd+json")
        if status != 200 or jrd is None:
            return [Line(PROBLEM, "WebFinger", f"{url} answered {status}"
                         + ("" if jrd is not None else " without JSON"), PROXY_FIX)]
        links = jrd.get("links")
        selves = [link.get("href") for link in (links if isinstance(links, list) else [])
                  if isinstance(link, dict) and link.get("rel") == "self"]
        if jrd.get("subject") != f"acct:{handle}" or target.uri not in selves:
            return [Line(PROBLEM, "WebFinger", f"acct:{handle} gave subject "
                         f"{str(jrd.get('subject'))[:100]!r} and actor {str(selves)[:200]}, "
                         f"not {target.uri}", PROXY_FIX)]
        lines = [Line(OK, "WebFinger", f"{settings.base_url} answers for @{handle}")]
        status, actor = await _get_json(http, target.uri, "application/activity+json")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return [Line(PROBLEM, "public URL", f"{settings.base_url} did not answer: "
                     f"{_reason(exc)}", "is the node running, and the proxy in front of it? "
                     "Does the name resolve to this machine?")]
    expected = {"id": target.uri, "inbox": target.inbox}
    got = {key: (actor or {}).get(key) for key in expected}
    key = (actor or {}).get("publicKey")
    key_id = key.get("id") if isinstance(key, dict) else None
    if status != 200 or got != expected or key_id != target.key_id:
        lines.append(Line(PROBLEM, "actor document", f"{target.uri} answered {status} with "
                          f"id {str(got['id'])[:200]!r}, inbox {str(got['inbox'])[:200]!r}, key "
                          f"{str(key_id)[:200]!r}", PROXY_FIX))
    else:
        lines.append(Line(OK, "actor document", f"{target.uri} has the right id, inbox and key"))
    return lines


async def check_certificate(settings: Settings) -> Line:
    parts = urlsplit(settings.base_url)
    if parts.scheme != "https":
        return Line(SKIP, "TLS certificate", "FEDSPH_BASE_URL is not https")
    context = outgoing_tls_context(settings.ca_bundle) or ssl.create_default_context()
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            _reader, writer = await asyncio.open_connection(
                parts.hostname, parts.port or 443, ssl=context, server_hostname=parts.hostname)
            certificate = writer.get_extra_info("peercert") or {}
            writer.close()
            await writer.wait_closed()
    except (OSError, TimeoutError) as exc:  # ssl.SSLError (expired, untrusted) is an OSError
        return Line(PROBLEM, "TLS certificate", f"{parts.netloc}: {_reason(exc)}",
                    "renew the certificate (Caddy does by itself: is it running?), or set "
                    "FEDSPH_CA_BUNDLE for a private authority")
    expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(certificate["notAfter"]), UTC)
    days = (expires - datetime.now(UTC)).days
    detail = f"{parts.hostname}: valid until {expires:%Y-%m-%d} ({days} days)"
    if days < CERT_WARNING_DAYS:
        return Line(WARNING, "TLS certificate", detail, "renew it now: other servers will "
                    "refuse the node once it expires")
    return Line(OK, "TLS certificate", detail)


async def check_metrics_hidden(http: aiohttp.ClientSession, settings: Settings) -> Line:
    """/metrics asked as a stranger would, through the proxy: it must be the 404 of any unknown
    path. A proxy on this machine that is not in FEDSPH_TRUSTED_PROXIES makes every visitor
    127.0.0.1, which FEDSPH_METRICS_ALLOW=127.0.0.1 would let in."""
    if not settings.metrics_enabled:
        return Line(SKIP, "metrics hidden", "/metrics is off")
    url = f"{settings.base_url}/metrics"
    try:
        async with http.get(url, allow_redirects=False) as response:
            status = response.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return Line(SKIP, "metrics hidden", f"{url}: {_reason(exc)}")
    ours = await _local_address(url) if status != 404 else None
    allowed = ours is not None and _allowed(settings, ours)
    if allowed and loopback_without_proxies(settings):
        # Not downgraded: with no trusted proxy, a proxy on this machine would let everyone in
        # as this same loopback address, and fedsph cannot tell that from a local Prometheus.
        return Line(PROBLEM, "metrics hidden", f"{url} answered {status} to a request without "
                    f"the token from {ours}, which FEDSPH_METRICS_ALLOW lets in, and "
                    "FEDSPH_TRUSTED_PROXIES is empty: behind a proxy on this machine every "
                    "visitor comes from there", "list the proxy in FEDSPH_TRUSTED_PROXIES, or "
                    "take loopback out of FEDSPH_METRICS_ALLOW and use FEDSPH_METRICS_TOKEN")
    if allowed:
        # Asked from this machine's own address, which the allow list lets in: the answer says
        # nothing about strangers. check_metrics_access judges the list itself.
        return Line(WARNING, "metrics hidden", f"{url} answered {status}, but asked from this "
                    f"machine's address {ours}, which FEDSPH_METRICS_ALLOW lets in: a stranger's "
                    "answer cannot be checked from here", "ask /metrics from another machine: "
                    "it must answer 404")
    if status != 404:
        return Line(PROBLEM, "metrics hidden", f"{url} answered {status} to a request "
                    "without the token", "behind a proxy, list it in FEDSPH_TRUSTED_PROXIES or "
                    "take loopback out of FEDSPH_METRICS_ALLOW and use FEDSPH_METRICS_TOKEN")
    return Line(OK, "metrics hidden", f"{url} is 404 without the token")


async def _local_address(url: str) -> str | None:
    """The address of this machine a request to `url` leaves from: the kernel's choice of
    source for the URL's host (a UDP socket "connected" there sends nothing). Not the request's
    own socket end: aiohttp hands a short answer's connection back to its pool before the
    `async with` block starts (response.connection is None there)."""
    parts = urlsplit(url)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
            type=socket.SOCK_DGRAM)
        family, _type, _proto, _name, address = found[0]
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(address)
            return str(probe.getsockname()[0])
    except (OSError, ValueError, IndexError):
        return None


def _allowed(settings: Settings, address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net
               for net in proxy_networks(settings.metrics_allow))


def database_peer(settings: Settings, peer: str | None) -> tuple[str | None, Line | None]:
    """The peer read from the database, or a line saying why it is not asked."""
    if peer is None:
        return None, None
    try:
        check_url(peer, settings.allow_private_networks)
    except BlockedAddress as exc:  # the setting is the reason only here
        return None, Line(SKIP, "clock", f"{exc} (FEDSPH_ALLOW_PRIVATE_NETWORKS is off)",
                          "pass --peer https://a-server.example")
    except FetchError as exc:  # a malformed URL in the database: no setting would help
        return None, Line(SKIP, "clock", f"the last server delivered to: {exc}",
                          "pass --peer https://a-server.example")
    return peer, None


async def check_clock(http: aiohttp.ClientSession, peer: str | None) -> Line:
    if not peer:
        return Line(SKIP, "clock", "no peer known yet", "pass --peer https://a-server.example")
    try:
        before = time.time()
        async with http.head(peer, allow_redirects=False) as response:
            date = response.headers.get("Date")
        after = time.time()
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        return Line(WARNING, "clock", f"could not ask {peer}: {_reason(exc)}",
                    "pass --peer with a server that answers")
    try:
        moment = parsedate_to_datetime(date or "")
        # HTTP dates are GMT; one without a zone ("-0000", or none) is taken as UTC too, not
        # as this machine's local time.
        theirs = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    except (TypeError, ValueError):
        return Line(WARNING, "clock", f"{peer} sent no usable Date header",
                    "pass --peer with another server")
    # Date has whole seconds: compare with the middle of the exchange.
    skew = theirs - (before + after) / 2
    detail = f"{abs(skew):.0f} s {'behind' if skew > 0 else 'ahead of'} {peer}"
    if abs(skew) <= CLOCK_WARNING_SECONDS:
        return Line(OK, "clock", detail)
    fix = ("signed requests are refused when the clocks differ by minutes: turn on time "
           "synchronisation (timedatectl set-ntp true)")
    return Line(PROBLEM if abs(skew) > CLOCK_PROBLEM_SECONDS else WARNING, "clock", detail, fix)


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}{': ' + text if text else ''}"

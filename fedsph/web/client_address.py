"""Who is really asking: the client address for the login limiter and the access log.

Behind a reverse proxy every connection comes from the proxy, so the client is named in
`X-Forwarded-For`. That header is just text anyone can send: it is believed only when the direct
peer is one of FEDSPH_TRUSTED_PROXIES, and then only up to the right-most address that is not a
trusted proxy itself (each proxy appends the address it saw; everything left of that was written
by the client and may be forged).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

from fedsph.config import IPNetwork, proxy_networks
from fedsph.web.keys import SETTINGS

UNKNOWN = "unknown"


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _is_trusted(address: str | None, trusted: Sequence[IPNetwork]) -> bool:
    ip = _ip(address or "")
    return ip is not None and any(ip in network for network in trusted)


def forwarded_client(peer: str | None, forwarded_for: Sequence[str],
                     trusted: Sequence[IPNetwork]) -> str:
    """The client address, given the direct peer and the X-Forwarded-For header values."""
    if not _is_trusted(peer, trusted):
        return peer or UNKNOWN
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    client = peer
    for hop in reversed(hops):
        if _ip(hop) is None:
            break  # not an address: what lies left of it cannot be trusted either
        client = hop
        if not _is_trusted(hop, trusted):
            break
    return str(_ip(client)) if _ip(client) else (client or UNKNOWN)


def address_of(request: web.BaseRequest, trusted: Sequence[IPNetwork]) -> str:
    """The client address of any request aiohttp hands on, given the trusted proxies."""
    if not trusted:  # no proxy is believed: X-Forwarded-For is never read (forwarded_client)
        return request.remote or UNKNOWN
    headers = request.headers
    # aiohttp's stand-in request for a message it could not parse has a plain dict of headers.
    forwarded = (headers.getall("X-Forwarded-For", []) if hasattr(headers, "getall")
                 else [headers.get("X-Forwarded-For", "")])
    return forwarded_client(request.remote, forwarded, trusted)


def client_address(request: web.Request) -> str:
    """The address of the client of a routed request (see the module docstring)."""
    return address_of(request, proxy_networks(request.app[SETTINGS].trusted_proxies))

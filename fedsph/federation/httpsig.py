"""HTTP Signatures, draft-cavage-http-signatures-12, as the fediverse uses them.

Written by hand: the PyPI libraries for the cavage draft are unmaintained or tied to `requests`,
and the rules that matter here (which headers Mastodon requires, Digest name case, query string
handling) are fediverse conventions rather than parts of the draft. Pure functions: no I/O.
Mastodon's rules: app/lib/signed_request.rb and app/controllers/concerns/signature_verification.rb.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import urlsplit

from fedsph.core.numbers import MAX_UNIX_TIME, parse_number
from fedsph.errors import Unauthorized
from fedsph.federation.crypto import rsa_sign, rsa_verify

# Mastodon accepts a Date up to an hour ahead; we accept up to 12 h old so that slow queues on
# either side do not lose activities, which is the upper bound FEDERATION.md allows.
MAX_FUTURE = timedelta(hours=1)
MAX_PAST = timedelta(hours=12)

_PARAM = re.compile(r'\s*([a-zA-Z]+)\s*=\s*"([^"]*)"\s*,?')


@dataclass(frozen=True)
class SignatureParams:
    key_id: str
    algorithm: str
    headers: tuple[str, ...]
    signature: bytes
    created: int | None = None
    expires: int | None = None


def http_date(now: datetime | None = None) -> str:
    return format_datetime(now or datetime.now(UTC), usegmt=True)


def sha256_digest(body: bytes) -> str:
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


def request_target(method: str, url: str) -> str:
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return f"{method.lower()} {path}"


def sign_request(
    method: str,
    url: str,
    key_id: str,
    private_pem: str,
    body: bytes | None = None,
    content_type: str = "application/activity+json",
    now: datetime | None = None,
) -> dict[str, str]:
    """Headers for a signed request: Host, Date, (Digest, Content-Type), Signature."""
    headers = {"Host": urlsplit(url).netloc, "Date": http_date(now)}
    names = ["(request-target)", "host", "date"]
    if body is not None:
        headers["Digest"] = sha256_digest(body)
        headers["Content-Type"] = content_type
        names += ["digest", "content-type"]
    lookup = {k.lower(): v for k, v in headers.items()}
    lookup["(request-target)"] = request_target(method, url)
    signing_string = "\n".join(f"{name}: {lookup[name]}" for name in names)
    signature = base64.b64encode(rsa_sign(private_pem, signing_string.encode())).decode()
    headers["Signature"] = (
        f'keyId="{key_id}",algorithm="rsa-sha256",'
        f'headers="{" ".join(names)}",signature="{signature}"'
    )
    return headers


def parse_signature_header(value: str) -> SignatureParams:
    """Parse a `Signature` header (or an `Authorization: Signature …` value)."""
    if value[:10].lower() == "signature ":
        value = value[10:]
    params = {k.lower(): v for k, v in _PARAM.findall(value)}
    if "keyid" not in params or "signature" not in params:
        raise Unauthorized("signature header lacks keyId or signature")
    try:
        signature = base64.b64decode(params["signature"], validate=True)
    except ValueError:
        raise Unauthorized("signature is not base64") from None
    created = _timestamp(params, "created")
    expires = _timestamp(params, "expires")
    return SignatureParams(
        key_id=params["keyid"],
        algorithm=params.get("algorithm", "hs2019").lower(),
        headers=tuple(params.get("headers", "date").lower().split()),
        signature=signature,
        created=created,
        expires=expires,
    )


def _timestamp(params: dict[str, str], name: str) -> int | None:
    """`created`/`expires`: Unix seconds a datetime can hold (a huge one would crash the check)."""
    if name not in params:
        return None
    seconds = parse_number(params[name], maximum=MAX_UNIX_TIME)
    if seconds is None:
        raise Unauthorized(f"signature {name} is not a possible time")
    return seconds


def signing_string(
    params: SignatureParams, method: str, target_path: str, headers: Mapping[str, str]
) -> str:
    """Rebuild the string the sender signed, in the order its `headers=` parameter lists."""
    lines = []
    for name in params.headers:
        if name == "(request-target)":
            value = f"{method.lower()} {target_path}"
        elif name == "(created)":
            value = str(params.created)
        elif name == "(expires)":
            value = str(params.expires)
        else:
            value = headers.get(name)
            if value is None:
                raise Unauthorized(f"signed header {name!r} is missing")
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


def check_digest(digest_header: str | None, body: bytes) -> None:
    """The Digest header must match the body. Algorithm names are case-insensitive (bovine)."""
    if not digest_header:
        raise Unauthorized("a request with a body must carry a signed Digest")
    known = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
    checked = False
    for part in digest_header.split(","):
        name, _, value = part.strip().partition("=")
        algorithm = known.get(name.lower())
        if algorithm is None:
            continue
        if base64.b64encode(algorithm(body).digest()).decode() != value.strip():
            raise Unauthorized("Digest does not match the body")
        checked = True
    if not checked:
        raise Unauthorized("Digest uses no algorithm we know (SHA-256 or SHA-512)")


def signature_time(seconds: int, what: str) -> datetime:
    """A signature's `created` or `expires` (Unix seconds) as a time; Unauthorized when no
    datetime can hold it (a hostile 99999999999999 must be a refusal, not a crash)."""
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        raise Unauthorized(f"signature {what} is not a possible time") from None


def check_freshness(params: SignatureParams, headers: Mapping[str, str], now: datetime) -> None:
    """The signature must cover a Date or (created) inside our window."""
    if "date" in params.headers:
        try:
            sent = _http_date(headers["date"])
        except (TypeError, ValueError, OverflowError, KeyError):
            raise Unauthorized("Date header is not an HTTP date") from None
    elif "(created)" in params.headers and params.created is not None:
        sent = signature_time(params.created, "created")
    else:
        raise Unauthorized("the signature covers neither Date nor (created)")
    if sent > now + MAX_FUTURE:
        raise Unauthorized("Date is too far in the future")
    if sent < now - MAX_PAST:
        raise Unauthorized("Date is too old")
    if params.expires is not None and signature_time(params.expires, "expires") < now:
        raise Unauthorized("signature has expired")


def _http_date(text: str) -> datetime:
    # A burst of requests shares a few Date values (one a second): each is parsed once. A real
    # Date has 29 characters; longer texts (junk after a date still parses) are parsed every time,
    # so strangers cannot fill the cache with long ones.
    return _cached_http_date(text) if len(text) <= 64 else _parse_http_date(text)


def _parse_http_date(text: str) -> datetime:
    sent = parsedate_to_datetime(text)
    return sent if sent.tzinfo is not None else sent.replace(tzinfo=UTC)


_cached_http_date = functools.lru_cache(maxsize=256)(_parse_http_date)


def check_coverage(params: SignatureParams, body: bytes | None) -> None:
    """The signature must cover what Mastodon signs: `(request-target)` (method and path),
    `host`, `date` (or `(created)`), and `digest` when there is a body. A signature that leaves
    them out could be replayed against another path, server or body."""
    covered = set(params.headers)
    missing = [name for name in ("(request-target)", "host") if name not in covered]
    if not covered & {"date", "(created)"}:
        missing.append("date")
    if body is not None and "digest" not in covered:
        missing.append("digest")
    if missing:
        raise Unauthorized(f"the signature does not cover {', '.join(missing)}")


def check_request(params: SignatureParams, headers: Mapping[str, str], body: bytes | None,
                  now: datetime | None = None) -> None:
    """Everything about a signed request that needs no key: algorithm, coverage, Date window,
    Digest. Run before any key is fetched, so that a bad request costs no outbound request."""
    if params.algorithm not in ("rsa-sha256", "hs2019"):
        raise Unauthorized(f"unsupported signature algorithm {params.algorithm!r}")
    check_coverage(params, body)
    check_freshness(params, headers, now or datetime.now(UTC))
    if body is not None:
        check_digest(headers.get("digest"), body)


def verify_request(
    params: SignatureParams,
    public_pem: str,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes | None,
    now: datetime | None = None,
    checked: bool = False,
) -> None:
    """Raise Unauthorized unless the request is signed by `public_pem` and fresh.

    `headers` must have lower-case names. Some servers sign the path without the query string,
    so both forms of (request-target) are tried. `checked`: the caller has run check_request on
    this very request already (the inbox does, before it looks for the key), so the Date is not
    parsed and the body not hashed a second time.
    """
    if not checked:
        check_request(params, headers, body, now)
    targets = [f"{path}?{query}", path] if query else [path]
    for target in targets:
        text = signing_string(params, method, target, headers)
        if rsa_verify(public_pem, params.signature, text.encode()):
            return
    raise Unauthorized("signature does not verify")

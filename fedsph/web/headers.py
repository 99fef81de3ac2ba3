"""Security headers on every response: what a browser may load, run, frame or send from our pages.

Pages need no JavaScript, so scripts, plugins and frames are refused outright. Styles are the
`<style>` blocks and `style` attributes of our own templates, hence 'unsafe-inline' for styles only:
member and remote HTML never keeps a style (fedsph.core.sanitize), and no script can run either way.
`form-action` is our own origin, plus the one place a form of ours may be redirected to: the app
an OAuth consent page sends its answer to (Chromium applies form-action to redirects too).
"""

from __future__ import annotations

import re

from aiohttp import web

from fedsph.core.safe_links import origin

POLICY = {
    "default-src": "'none'",
    "img-src": "'self' https: data:",
    "style-src": "'self' 'unsafe-inline'",
    "form-action": "'self'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
}
ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
# Where a form on this response may also go (set by allow_form_target).
FORM_TARGETS = web.ResponseKey("form_targets", list)
# A CSP source must not carry ";" "," or spaces, which would start another directive.
_HOST = re.compile(r"^(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")


def form_source(uri: str) -> str | None:
    """The CSP source that lets a form be redirected to uri: its origin, or its own URI scheme."""
    parts = origin(uri)
    if parts is not None:
        scheme, host, port = parts
        return f"{scheme}://{host}:{port}" if _HOST.match(host) else None
    scheme = uri.partition(":")[0].lower() if ":" in uri else ""
    if scheme in ("http", "https", "javascript", "data", "vbscript", "blob", "file", "filesystem"):
        return None
    return f"{scheme}:" if _SCHEME.match(scheme) else None


def allow_form_target(response: web.StreamResponse, uri: str) -> None:
    """Let the forms of this page end at uri (after our redirect), if it can be named safely."""
    source = form_source(uri)
    if source:
        response[FORM_TARGETS] = [*response.get(FORM_TARGETS, []), source]


def content_security_policy(form_targets: list[str] = ()) -> str:
    if not form_targets:
        return DEFAULT_CSP
    return _policy_text({**POLICY, "form-action": " ".join([POLICY["form-action"], *form_targets])})


def _policy_text(policy: dict[str, str]) -> str:
    return "; ".join(f"{name} {value}" for name, value in policy.items())


# The policy of nearly every response, built once rather than per request.
DEFAULT_CSP = _policy_text(POLICY)
_ALWAYS_ITEMS = tuple(ALWAYS.items())


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Runs for every response just before its headers go out, errors and files included."""
    headers = response.headers
    for name, value in _ALWAYS_ITEMS:
        if name not in headers:
            headers[name] = value
    targets = response.get(FORM_TARGETS)
    headers["Content-Security-Policy"] = content_security_policy(targets) if targets else DEFAULT_CSP


def setup(app: web.Application) -> None:
    app.on_response_prepare.append(_add_headers)

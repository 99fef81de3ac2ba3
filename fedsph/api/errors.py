"""Mastodon's error shape for the client API: `{"error": "…"}` with the status Mastodon uses.

A middleware scoped to /api/, /oauth/token, /oauth/revoke and the OAuth metadata turns every
failure there into that JSON (never an HTML page, since apps parse it), and adds CORS headers so
browser apps (Elk, Phanpy) may call these endpoints from another origin.

Only an ApiError, an HTTPProblem or a UserError (Mastodon's 422 "Validation failed: …") tells the
app what went wrong; a lock conflict (PostgreSQL ended the
write for another's) is a 503 with Retry-After; anything else is a bug, logged with its traceback
and answered with a 500.
"""

from __future__ import annotations

import logging

import orjson
from aiohttp import web

from fedsph.core.db_errors import lock_conflict
from fedsph.errors import HTTPProblem, UserError
from fedsph.web.access_log import logged_target

log = logging.getLogger("fedsph.api")

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Idempotency-Key",
    "Access-Control-Expose-Headers": "Link, X-RateLimit-Reset, X-RateLimit-Limit, "
                                     "X-RateLimit-Remaining, X-Request-Id",
    "Access-Control-Max-Age": "86400",
}
OAUTH_MACHINE_PATHS = ("/oauth/token", "/oauth/revoke", "/.well-known/oauth-authorization-server")


class ApiError(Exception):
    """An answer an app expects: `error` is the message (or an OAuth error code)."""

    def __init__(self, status: int, error: str, description: str | None = None):
        super().__init__(error)
        self.status, self.error, self.description = status, error, description

    def body(self) -> dict:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


def unauthorized() -> ApiError:
    return ApiError(401, "The access token is invalid")


def not_found() -> ApiError:
    return ApiError(404, "Record not found")


def is_api_path(path: str) -> bool:
    return path.startswith("/api/") or path in OAUTH_MACHINE_PATHS


def api_json(document: dict | list, status: int = 200, headers: dict | None = None
             ) -> web.Response:
    return web.Response(body=orjson.dumps(document), status=status,
                        headers={**(headers or {}), "Content-Type": "application/json"})


@web.middleware
async def api_middleware(request: web.Request, handler):
    if not is_api_path(request.path):
        return await handler(request)
    if request.method == "OPTIONS":  # CORS preflight: answered before any route or auth
        response = web.Response(status=204)
    else:
        response = await _json_errors(request, handler)
    response.headers.update(CORS_HEADERS)
    return response


async def _json_errors(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        headers = {"WWW-Authenticate": 'Bearer realm="Doorkeeper", error="invalid_token"'} \
            if error.status == 401 else None
        return api_json(error.body(), error.status, headers)
    except HTTPProblem as problem:
        return api_json({"error": problem.message}, problem.status, problem.headers)
    except UserError as exc:  # a domain rule refused the input and no handler said it better
        return api_json({"error": f"Validation failed: {exc}"}, 422)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = {404: "Record not found", 405: "Method not allowed"}.get(exc.status, exc.reason)
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None  # RFC 9110
        return api_json({"error": message}, exc.status, allow)
    except Exception as exc:
        if lock_conflict(exc):  # PostgreSQL ended this write for another's: nothing stayed
            log.warning("lock conflict on %s %s: answered 503", request.method,
                        logged_target(request))
            return api_json({"error": "Service unavailable, try again"}, 503,
                            {"Retry-After": "1"})
        # the target minus secrets: a reset or invitation link must not reach the log
        log.exception("unhandled error on %s %s", request.method, logged_target(request))
        return api_json({"error": "Internal server error"}, 500)

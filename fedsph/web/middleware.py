"""One place that turns exceptions into HTTP answers: JSON for machines, a page for people.

Only an HTTPProblem or a UserError becomes a message for the visitor; anything else (a
ValueError included) is a bug: logged with its traceback, answered with a plain 500.

`servers_apart`, the outermost middleware, sends a POST to an inbox through `errors` alone.
"""

from __future__ import annotations

import logging

from aiohttp import web

from fedsph.core.db_errors import lock_conflict
from fedsph.core.urls import INBOX_ROUTES
from fedsph.errors import HTTPProblem, UserError
from fedsph.i18n import LOCK_CONFLICT_REASON, language_middleware
from fedsph.web.access_log import logged_target
from fedsph.web.render import error_message, html_response, json_response, wants_html

log = logging.getLogger("fedsph.web")


def problem_response(request: web.Request, status: int, message: str, headers=None) -> web.Response:
    if wants_html(request):
        response = html_response(request, "error.html", status=status, status_code=status,
                                 message=message)
    else:
        response = json_response({"error": message}, status=status)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


@web.middleware
async def errors(request: web.Request, handler):
    try:
        return await handler(request)
    except HTTPProblem as problem:
        return problem_response(request, problem.status, problem.message, problem.headers)
    except UserError as exc:  # a domain rule refused what was sent, and no page caught it
        return problem_response(request, 400, error_message(request, exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem_response(request, exc.status, exc.reason, {
            k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")})
    except Exception as exc:
        if lock_conflict(exc):  # PostgreSQL ended this write for another's: nothing stayed
            log.warning("lock conflict on %s %s: answered 503", request.method,
                        logged_target(request))
            return problem_response(request, 503, LOCK_CONFLICT_REASON,
                                    {"Retry-After": "1"})
        # the target minus secrets: a reset or invitation link must not reach the log
        log.exception("unhandled error on %s %s", request.method, logged_target(request))
        return problem_response(request, 500, "internal error")



@web.middleware
async def servers_apart(request: web.Request, handler):
    """A POST to an inbox goes to its handler through `errors` alone; every other request
    through the whole chain, `language_middleware` first.

    The inbox is a node's busiest route, and the middlewares made for people and apps have
    nothing to do there: no page in the visitor's language (an error is rendered all the same,
    from the Accept-Language header), no login session or CSRF token (servers authenticate
    each request with an HTTP signature; the inboxes are exempt from CSRF), no client API.
    Decided by the route that matched, never the path's text, as `csrf_exempt` does. Written
    as one middleware around `language_middleware`, not another in front of it, so the other
    requests pay one call, not one more layer of aiohttp's chain.
    """
    if request.method == "POST":
        resource = request.match_info.route.resource
        if resource is not None and resource.canonical in INBOX_ROUTES:
            return await errors(request, request.match_info.handler)
    return await language_middleware(request, handler)

"""The Mastodon client API, so members can use Mastodon apps (Tusky, Elk, Phanpy…) on this node.

Modules: errors (JSON errors and CORS), params (query/form/JSON), tokens (scopes and Bearer
auth), apps and oauth (registration and OAuth 2), instance, accounts, follows,
search, pagination (Link headers), entities (pure builders), statuses and media
(posting from apps) with status_entities (their builders) and status_history (a status's
source and versions), timelines (home, public, hashtag,
preferences) and notifications (with read markers).

May import `fedsph.web` (keys, rendering, the session middleware) and everything below it; never
`app` or the CLI. `fedsph/app.py` adds these routes and the API middleware.
"""

from __future__ import annotations

from aiohttp import web

from fedsph.api import account_statuses, accounts, apps, follows, instance, oauth, search, statuses
from fedsph.api import conversations as api_conversations
from fedsph.api import media as api_media
from fedsph.api import notifications as api_notifications
from fedsph.api import reactions as api_reactions
from fedsph.api import reblogs as api_reblogs
from fedsph.api import status_history as api_status_history
from fedsph.api import streaming as api_streaming
from fedsph.api import timelines as api_timelines
from fedsph.api.entities import MISSING_IMAGE


def add_routes(app: web.Application) -> None:
    """The API's routes only: its middleware (api_middleware) and its Idempotency-Key cache
    (statuses.setup) are added by fedsph/app.py, where the order of all middlewares is seen."""

    def api(method: str, path: str, handler) -> None:
        # Mastodon tolerates a trailing slash on API paths; some apps send one.
        app.router.add_route(method, path + "{trailing_slash:/?}", handler)

    api("POST", "/api/v1/apps", apps.create_app)
    api("GET", "/api/v1/apps/verify_credentials", apps.verify_app)
    api("GET", "/api/v1/instance", instance.instance_v1)
    api("GET", "/api/v2/instance", instance.instance_v2)
    api("GET", "/api/v1/instance/peers", instance.peers)
    api("GET", "/api/v1/custom_emojis", instance.custom_emojis)
    api("GET", "/api/v1/accounts/verify_credentials", accounts.verify_credentials)
    api("GET", "/api/v1/accounts/lookup", accounts.lookup)
    api("GET", "/api/v1/accounts/relationships", accounts.relationships)
    api("GET", r"/api/v1/accounts/{id:\d+}", accounts.get_account)
    api("PATCH", "/api/v1/accounts/update_credentials", accounts.update_credentials)
    api("GET", r"/api/v1/accounts/{id:\d+}/statuses", account_statuses.account_statuses)
    api("GET", r"/api/v1/accounts/{id:\d+}/followers", follows.followers)
    api("GET", r"/api/v1/accounts/{id:\d+}/following", follows.following)
    api("POST", r"/api/v1/accounts/{id:\d+}/follow", follows.follow)
    api("POST", r"/api/v1/accounts/{id:\d+}/unfollow", follows.unfollow)
    api("GET", "/api/v1/follow_requests", follows.follow_requests)
    api("POST", r"/api/v1/follow_requests/{id:\d+}/authorize", follows.authorize_request)
    api("POST", r"/api/v1/follow_requests/{id:\d+}/reject", follows.reject_request)
    api("GET", "/api/v2/search", search.search_v2)
    api("POST", "/api/v1/statuses", statuses.create_status)
    api("GET", r"/api/v1/statuses/{id:\d+}", api_reblogs.get_status)  # a post's or a boost's
    api("PUT", r"/api/v1/statuses/{id:\d+}", statuses.edit_status)
    api("DELETE", r"/api/v1/statuses/{id:\d+}", api_reblogs.delete_status)
    api("GET", r"/api/v1/statuses/{id:\d+}/context", statuses.context)
    for action in ("favourite", "unfavourite", "reblog", "unreblog"):
        api("POST", rf"/api/v1/statuses/{{id:\d+}}/{action}", getattr(api_reactions, action))
    api("GET", r"/api/v1/statuses/{id:\d+}/favourited_by", api_reactions.favourited_by)
    api("GET", r"/api/v1/statuses/{id:\d+}/reblogged_by", api_reactions.reblogged_by)
    # Issue 13: a status's source and edit history.
    api("GET", r"/api/v1/statuses/{id:\d+}/source", api_status_history.status_source)
    api("GET", r"/api/v1/statuses/{id:\d+}/history", api_status_history.status_history)
    api("GET", "/api/v1/timelines/home", api_timelines.home)
    api("GET", "/api/v1/timelines/public", api_timelines.public)
    api("GET", "/api/v1/timelines/tag/{hashtag:[^/]+}", api_timelines.tag)
    api("GET", "/api/v1/preferences", api_timelines.preferences)
    api("GET", "/api/v1/notifications", api_notifications.list_notifications)
    api("POST", "/api/v1/notifications/clear", api_notifications.clear)
    api("GET", r"/api/v1/notifications/{id:\d+}", api_notifications.get_notification)
    api("POST", r"/api/v1/notifications/{id:\d+}/dismiss", api_notifications.dismiss)
    api("GET", "/api/v1/markers", api_notifications.get_markers)
    api("POST", "/api/v1/markers", api_notifications.set_markers)
    api("GET", "/api/v1/conversations", api_conversations.list_conversations)
    api("DELETE", r"/api/v1/conversations/{id:\d+}", api_conversations.remove)
    api("POST", r"/api/v1/conversations/{id:\d+}/read", api_conversations.mark_read)
    api("POST", "/api/v1/media", api_media.upload)
    api("POST", "/api/v2/media", api_media.upload)
    api("GET", r"/api/v1/media/{id:\d+}", api_media.get_media)
    api("PUT", r"/api/v1/media/{id:\d+}", api_media.update_media)
    app.router.add_get("/oauth/authorize", oauth.authorize_form)
    app.router.add_post("/oauth/authorize", oauth.authorize)
    app.router.add_post("/oauth/token", oauth.token)
    app.router.add_post("/oauth/revoke", oauth.revoke)
    app.router.add_get("/.well-known/oauth-authorization-server", oauth.metadata)
    app.router.add_get(MISSING_IMAGE, accounts.missing_image)
    # The streaming API (issue 13): WebSocket and server-sent events, and its health check.
    api_streaming.add_routes(app)

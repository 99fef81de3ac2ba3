"""Every URI fedsph mints. Routes in web/ are built from the same patterns, so they cannot drift."""

from __future__ import annotations

import uuid
from urllib.parse import quote

# Route patterns (aiohttp syntax); the functions below fill them in.
INSTANCE_ACTOR = "/actor"
SHARED_INBOX = "/inbox"
ACTOR = "/actors/{username}"
ACTOR_INBOX = "/actors/{username}/inbox"
INSTANCE_INBOX = INSTANCE_ACTOR + "/inbox"
ACTOR_OUTBOX = "/actors/{username}/outbox"
ACTOR_FOLLOWERS = "/actors/{username}/followers"
ACTOR_FOLLOWING = "/actors/{username}/following"
OBJECT = "/objects/{object_id}"

# The routes only servers post to, each request signed: kept in one place for the router, the
# CSRF exemption (web/auth_middleware.py) and the short middleware path (web/middleware.py).
INBOX_ROUTES = frozenset({SHARED_INBOX, INSTANCE_INBOX, ACTOR_INBOX})
ACTIVITY = "/activities/{activity_id}"

# Usernames that stand for paths or for the node itself and so cannot be projects or users.
RESERVED_USERNAMES = frozenset({"instance", "actor", "inbox", "nodeinfo", "well-known"})


class URLs:
    """Mints absolute URIs under one base URL."""

    def __init__(self, base_url: str):
        self.base = base_url.rstrip("/")

    def instance_actor(self) -> str:
        return self.base + INSTANCE_ACTOR

    def shared_inbox(self) -> str:
        return self.base + SHARED_INBOX

    def actor(self, username: str) -> str:
        return self.base + ACTOR.format(username=quote(username))

    def key_id(self, actor_uri: str) -> str:
        return actor_uri + "#main-key"

    def inbox(self, username: str) -> str:
        return self.base + ACTOR_INBOX.format(username=quote(username))

    def outbox(self, username: str) -> str:
        return self.base + ACTOR_OUTBOX.format(username=quote(username))

    def followers(self, username: str) -> str:
        return self.base + ACTOR_FOLLOWERS.format(username=quote(username))

    def following(self, username: str) -> str:
        return self.base + ACTOR_FOLLOWING.format(username=quote(username))

    def object(self, object_id: str) -> str:
        return self.base + OBJECT.format(object_id=object_id)

    def activity(self, activity_id: str) -> str:
        return self.base + ACTIVITY.format(activity_id=activity_id)

    def new_object(self) -> str:
        return self.object(uuid.uuid4().hex)

    def new_activity(self) -> str:
        return self.activity(uuid.uuid4().hex)

    def is_local(self, uri: str | None) -> bool:
        return bool(uri) and (uri == self.base or uri.startswith(self.base + "/"))

"""URLs kept from other servers under the older, looser check: what is not an http(s) URL by the
one rule (fedsph/core/safe_links.py) goes. An actor's or a post's web page falls back to its id (as
new rows do); other URL columns are emptied; attachments, tags and profile links lose the bad
URL (an attachment without one cannot be shown and is dropped).

Revision ID: 0008_remote_urls
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from fedsph.core.safe_links import http_url

revision = "0008_remote_urls"
down_revision = "0007"
branch_labels = None
depends_on = None

ACTOR_URLS = ("icon_url", "header_url", "shared_inbox", "outbox", "followers_url",
              "following_url", "moved_to")
ACTORS = sa.table("actors", sa.column("id", sa.Integer), sa.column("uri", sa.String),
                  sa.column("local", sa.Boolean), sa.column("url", sa.String),
                  *(sa.column(name, sa.String) for name in ACTOR_URLS),
                  sa.column("also_known_as", sa.JSON), sa.column("profile", sa.JSON))
OBJECTS = sa.table("objects", sa.column("id", sa.Integer), sa.column("uri", sa.String),
                   sa.column("local", sa.Boolean),
                   sa.column("url", sa.String), sa.column("tags", sa.JSON),
                   sa.column("attachments", sa.JSON))
EVENTS = sa.table("events", sa.column("object_id", sa.Integer),
                  sa.column("online_url", sa.String))


def _stored(changes: dict) -> dict:
    """None as SQL NULL (a JSON column would otherwise store the JSON value null)."""
    return {k: sa.null() if v is None else v for k, v in changes.items()}


def _without_bad_url(item: dict, key: str) -> dict:
    return item if item.get(key) is None or http_url(item[key]) else {
        k: v for k, v in item.items() if k != key}


def _attachments(items):
    if not isinstance(items, list):
        return items
    kept = [_without_bad_url(item, "license") for item in items
            if isinstance(item, dict) and http_url(item.get("url"))]
    return kept or None


def _tags(items):
    if not isinstance(items, list):
        return items
    return [_without_bad_url(item, "href") if isinstance(item, dict) else item for item in items]


def _profile(profile):
    if not isinstance(profile, dict):
        return profile
    fixed = dict(profile)
    if isinstance(profile.get("links"), list):
        fixed["links"] = [link for link in profile["links"]
                          if isinstance(link, dict) and http_url(link.get("url"))]
    if isinstance(profile.get("partners"), list):
        fixed["partners"] = [_without_bad_url(p, "url") if isinstance(p, dict) else p
                             for p in profile["partners"]]
    return fixed


def _actor_changes(row) -> dict:
    changes = {name: None for name in ACTOR_URLS
               if getattr(row, name) is not None and not http_url(getattr(row, name))}
    if row.url is not None and not http_url(row.url):
        changes["url"] = row.uri
    if isinstance(row.also_known_as, list):
        aliases = [alias for alias in row.also_known_as if http_url(alias)] or None
        if aliases != row.also_known_as:
            changes["also_known_as"] = aliases
    profile = _profile(row.profile)
    if profile != row.profile:
        changes["profile"] = profile
    return changes


def _fix_actors(connection) -> None:
    for row in connection.execute(sa.select(ACTORS).where(ACTORS.c.local.is_(False))).all():
        changes = _actor_changes(row)
        if changes:
            connection.execute(sa.update(ACTORS).where(ACTORS.c.id == row.id)
                               .values(**_stored(changes)))


def _fix_objects(connection) -> None:
    for row in connection.execute(sa.select(OBJECTS).where(OBJECTS.c.local.is_(False))).all():
        changes = {"attachments": _attachments(row.attachments), "tags": _tags(row.tags)}
        if row.url is not None and not http_url(row.url):
            changes["url"] = row.uri
        changes = {k: v for k, v in changes.items() if v != getattr(row, k)}
        if changes:
            connection.execute(sa.update(OBJECTS).where(OBJECTS.c.id == row.id)
                               .values(**_stored(changes)))


def upgrade() -> None:
    connection = op.get_bind()
    _fix_actors(connection)
    _fix_objects(connection)
    for row in connection.execute(sa.select(EVENTS).where(
            EVENTS.c.online_url.is_not(None))).all():
        if not http_url(row.online_url):
            connection.execute(sa.update(EVENTS).where(EVENTS.c.object_id == row.object_id)
                               .values(online_url=None))


def downgrade() -> None:
    """Nothing to undo: the values kept are valid under the old rules too."""

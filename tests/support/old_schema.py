"""Representative rows written into a database at an OLD schema revision, for the upgrade test
(tests/test_upgrade.py).

Today's models cannot write an old schema, so the rows are plain dicts keyed by table and column:
a superset of what any revision had. `write_rows` reflects the schema as it is at that revision
and inserts each row with only the columns that exist there, filling NOT NULL columns the
superset does not know (an old column since dropped or renamed) with a value of their type.
What was written is returned, so the test can check exactly those values after the upgrade.

Some rows hold what a data migration rewrites (a block with a port, a non-http URL, a remote
post addressed to nobody public); MIGRATED says what each becomes, when that migration runs.
The format cannot say that a value moved to another table or changed meaning between
revisions: such a column would be filled with a stand-in and nothing checked on it, so a
stand-in for a column the rows name under another table is an error (write its value).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from sqlalchemy import JSON, Boolean, DateTime, Integer, LargeBinary, MetaData, insert, text
from sqlalchemy.ext.asyncio import create_async_engine

from fedsph.models.base import utcnow

TOKEN = "old-client-token-written-before-the-upgrade"
SESSION = "old-browser-session-written-before-the-upgrade"
MEDIA_KEY = "k3yOfAnOldPhoto_0001"
MEDIA_FILE = f"{MEDIA_KEY}-320.webp"
NOTE_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
REMOTE = "https://remote.example"
HUB = "https://hub.example/actors/hub"
ROSA = f"{REMOTE}/users/rosa"
ROSA_POST = f"{ROSA}/statuses/1"
# (the migration that rewrites it, table, row id, column, the value after it): only checked when
# the node started at a revision before that migration (after it, such values stay as written).
MIGRATED = [
    ("0006_authz", "blocks", 1, "domain", "evil.example"),  # one normalised form, no port
    ("0006_authz", "oauth_apps", 1, "website", None),  # not http(s): removed
    ("0007", "objects", 12, "visibility", "direct"),  # addressed to nobody public
    ("0008_remote_urls", "actors", 3, "url", ROSA),  # not http(s): the id instead
    ("0008_remote_urls", "actors", 3, "icon_url", None),
    ("0008_remote_urls", "objects", 12, "url", ROSA_POST),
]


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def representative_rows(base: str, domain: str, public_pem: str, private_pem: str) -> dict:
    """table -> rows, in foreign-key order: a project with a member, a post with a photo, an
    event, follows both ways, a hub membership, a client app and token, a login session, a
    remote actor, a queued delivery and a queued inbox item."""
    now = utcnow().replace(microsecond=0)
    later = now + timedelta(days=365)  # the queues' rows stay queued while the node runs
    coop, note = f"{base}/actors/coop", f"{base}/objects/{NOTE_ID}"
    event = f"{base}/objects/event{NOTE_ID[5:]}"
    rosa = ROSA
    direct_doc = {"@context": "https://www.w3.org/ns/activitystreams", "id": ROSA_POST,
                  "type": "Note", "attributedTo": rosa, "content": "<p>Solo para Ana</p>",
                  "to": [f"{base}/actors/ana"], "cc": [],
                  "published": (now - timedelta(days=1)).isoformat() + "Z"}
    photo = {"type": "Image", "mediaType": "image/webp", "url": f"{base}/media/{MEDIA_FILE}",
             "name": "El techo nuevo", "width": 320, "height": 200}
    note_doc = {"@context": "https://www.w3.org/ns/activitystreams", "id": note, "type": "Note",
                "attributedTo": coop, "content": "<p>Techamos hoy</p>", "attachment": [photo],
                "to": ["https://www.w3.org/ns/activitystreams#Public"], "cc": [f"{coop}/followers"],
                "published": now.isoformat() + "Z", "url": note}
    event_doc = {"@context": "https://www.w3.org/ns/activitystreams", "id": event, "type": "Event",
                 "attributedTo": coop, "name": "Asamblea de vecinos", "content": "<p>Todos</p>",
                 "startTime": (now + timedelta(days=7)).isoformat() + "Z",
                 "to": ["https://www.w3.org/ns/activitystreams#Public"], "published": now.isoformat() + "Z"}

    def create(obj: dict, number: int) -> bytes:
        return json.dumps({"@context": "https://www.w3.org/ns/activitystreams",
                           "id": f"{base}/activities/create{number}", "type": "Create",
                           "actor": coop, "object": {k: v for k, v in obj.items() if k != "@context"},
                           "to": obj["to"], "published": obj["published"]}).encode()

    def local(number: int, username: str, kind: str, name: str) -> dict:
        uri = f"{base}/actors/{username}"
        return {"id": number, "uri": uri, "local": True, "type": kind, "username": username,
                "domain": domain, "name": name, "summary": f"<p>{name}</p>", "url": uri,
                "inbox": uri + "/inbox", "shared_inbox": base + "/inbox", "outbox": uri + "/outbox",
                "followers_url": uri + "/followers", "following_url": uri + "/following",
                "key_id": uri + "#main-key", "public_key_pem": public_pem,
                "private_key_pem": private_pem, "manually_approves": False, "created_at": now}

    return {
        "actors": [
            local(1, "coop", "Group", "Cooperativa Ñandé"),
            local(2, "ana", "Person", "Ana"),
            {"id": 3, "uri": rosa, "local": False, "type": "Person", "username": "rosa",
             "domain": "remote.example", "name": "Rosa", "inbox": rosa + "/inbox",
             "url": "javascript:alert(1)", "icon_url": "ftp://remote.example/rosa.png",
             "followers_url": rosa + "/followers",
             "shared_inbox": REMOTE + "/inbox", "key_id": rosa + "#main-key",
             "public_key_pem": public_pem, "fetched_at": now, "created_at": now},
            {"id": 4, "uri": HUB, "local": False, "type": "Group", "username": "hub",
             "domain": "hub.example", "name": "Red de cooperativas", "inbox": HUB + "/inbox",
             "key_id": HUB + "#main-key", "public_key_pem": public_pem, "created_at": now},
        ],
        "blocks": [{"id": 1, "domain": "evil.example:8443", "created_at": now}],
        "users": [{"id": 1, "username": "ana", "password_hash": "scrypt$not-checked-here",
                   "is_admin": True, "actor_id": 2, "email": "ana@coop.example",
                   "created_at": now}],
        "memberships": [{"id": 1, "user_id": 1, "project_id": 1, "role": "admin"}],
        "follows": [
            {"id": 1, "follower_id": 3, "followed_id": 1, "state": "accepted",
             "activity_uri": rosa + "/follows/1", "relay": False, "created_at": now},
            {"id": 2, "follower_id": 1, "followed_id": 3, "state": "accepted",
             "activity_uri": f"{base}/activities/follow1", "relay": False, "created_at": now},
        ],
        "objects": [
            {"id": 10, "uri": note, "type": "Note", "actor_id": 1, "local": True,
             "content": "<p>Techamos hoy</p>", "language": "es", "url": note,
             "visibility": "public", "document": note_doc, "published": now,
             "attachments": [photo], "hidden": False, "approved": True},
            {"id": 11, "uri": event, "type": "Event", "actor_id": 1, "local": True,
             "content": "<p>Todos</p>", "name": "Asamblea de vecinos", "visibility": "public",
             "document": event_doc, "published": now, "hidden": False, "approved": True},
            {"id": 12, "uri": ROSA_POST, "type": "Note", "actor_id": 3, "local": False,
             "content": "<p>Solo para Ana</p>", "url": "javascript:alert(1)",
             "visibility": "followers", "document": direct_doc,
             "published": now - timedelta(days=1), "hidden": False, "approved": True},
        ],
        "activities": [
            {"id": 20, "uri": f"{base}/activities/create1", "type": "Create", "actor_id": 1,
             "object_uri": note, "public": True, "body": create(note_doc, 1), "created_at": now},
            {"id": 21, "uri": f"{base}/activities/create2", "type": "Create", "actor_id": 1,
             "object_uri": event, "public": True, "body": create(event_doc, 2), "created_at": now},
        ],
        "media": [{"id": 1, "key": MEDIA_KEY, "owner_id": 1, "object_id": 10,
                   "content_type": "image/webp", "width": 320, "height": 200,
                   "renditions": {"320": {"file": MEDIA_FILE, "width": 320, "height": 200,
                                          "bytes": 0}},
                   "alt": "El techo nuevo", "position": 0, "created_at": now}],
        "events": [{"object_id": 11, "kind": "assembly", "starts_at": now + timedelta(days=7),
                    "timezone": "America/Montevideo", "join_mode": "free", "languages": ["es"]}],
        "event_participants": [{"id": 1, "event_id": 11, "actor_id": 3, "state": "accepted",
                                "activity_uri": rosa + "/joins/1", "created_at": now}],
        "hub_memberships": [{"id": 1, "hub_id": 4, "project_id": 1, "state": "approved",
                             "activity_uri": f"{base}/activities/join1", "created_at": now,
                             "approved_at": now}],
        "reactions": [{"id": 1, "type": "Like", "actor_id": 3, "object_uri": note,
                       "activity_uri": rosa + "/likes/1", "created_at": now},
                      # a boost: 0015 gives boosts status ids of their own
                      {"id": 2, "type": "Announce", "actor_id": 3, "object_uri": note,
                       "activity_uri": rosa + "/announces/2", "created_at": now,
                       "status_id": 100}],
        "oauth_apps": [{"id": 1, "client_id": "old-client-id", "client_secret_hash": _hash("s"),
                        "name": "Tusky", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
                        "website": "javascript:alert(1)",
                        "scopes": "read write", "created_at": now}],
        "oauth_tokens": [{"id": 1, "token_hash": _hash(TOKEN), "app_id": 1, "user_id": 1,
                          "actor_id": 1, "scopes": "read write", "created_at": now}],
        "login_sessions": [{"id": 1, "token_hash": _hash(SESSION), "user_id": 1,
                            "csrf_token": "c" * 32, "created_at": now, "expires_at": later}],
        "deliveries": [{"id": 1, "activity_id": 20, "inbox": REMOTE + "/inbox",
                        "host": "remote.example", "status": "pending", "attempts": 1,
                        "next_attempt_at": later, "last_error": "timed out", "created_at": now}],
        "inbox_items": [{"id": 1, "activity_uri": rosa + "/announces/1", "type": "Announce",
                         "actor_uri": rosa, "status": "pending", "attempts": 0,
                         "body": json.dumps({"id": rosa + "/announces/1", "type": "Announce",
                                             "actor": rosa, "object": note}).encode(),
                         "next_attempt_at": later, "created_at": now}],
    }


def _filler(column):
    """A value for a NOT NULL column the superset has no value for."""
    kind = column.type
    if isinstance(kind, Boolean):
        return False
    if isinstance(kind, Integer):
        return 0
    if isinstance(kind, DateTime):
        return utcnow()
    if isinstance(kind, JSON):
        return {}
    if isinstance(kind, LargeBinary):
        return b""
    return "x"


async def write_rows(database_url: str, rows: dict) -> dict:
    """Insert `rows` into the database as its schema is now; returns what was written, table ->
    rows with only the columns that table has (fillers left out: nothing is checked on them)."""
    engine = create_async_engine(database_url)
    written: dict = {}
    try:
        async with engine.begin() as conn:
            metadata = MetaData()
            await conn.run_sync(metadata.reflect)
            for name, table_rows in rows.items():
                table = metadata.tables.get(name)
                if table is None:
                    continue  # not there yet at this revision
                kept = [{k: v for k, v in row.items() if k in table.c} for row in table_rows]
                _no_stand_in_for_a_known_column(name, table, kept, rows)
                full = [{**{c.name: _filler(c) for c in table.c if _needs_filler(c, row)}, **row}
                        for row in kept]
                for row in full:  # one by one: the rows do not all name the same columns
                    await conn.execute(insert(table), row)
                written[name] = kept
            await _as_the_node_would(conn, metadata)
    finally:
        await engine.dispose()
    return written


def _no_stand_in_for_a_known_column(name: str, table, kept: list[dict], rows: dict) -> None:
    elsewhere = {column for other, other_rows in rows.items() if other != name
                 for row in other_rows for column in row}
    for row in kept:
        for column in table.c:
            if _needs_filler(column, row) and column.name in elsewhere:
                raise AssertionError(f"{name}.{column.name} needs a value: the rows name "
                                     f"{column.name} only under other tables")


def _needs_filler(column, row: dict) -> bool:
    return (column.name not in row and not column.nullable and column.server_default is None
            and not column.primary_key)


async def _as_the_node_would(conn, metadata: MetaData) -> None:
    """What the node keeps beside rows it writes: PostgreSQL's id sequences past the ids given,
    and (from 0015) the last status id taken past every post's and boost's."""
    tables = metadata.tables
    highest = "SELECT max(id) AS n FROM objects"
    if "status_id" in tables["reactions"].c:
        highest += " UNION ALL SELECT max(status_id) AS n FROM reactions"
    if conn.dialect.name == "postgresql":
        for table in metadata.sorted_tables:
            if "id" in table.c and isinstance(table.c.id.type, Integer) and table.c.id.primary_key:
                source = highest if table.name == "objects" else f"SELECT max(id) AS n FROM {table.name}"
                await conn.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"(SELECT coalesce(max(n), 0) + 1 FROM ({source}) AS taken), false) "
                    f"WHERE pg_get_serial_sequence('{table.name}', 'id') IS NOT NULL"))
    if "status_counter" in tables:
        await conn.execute(text(f"UPDATE status_counter SET n = (SELECT max(n) FROM ({highest} "
                                "UNION ALL SELECT n FROM status_counter) AS taken)"))


def same(written, stored) -> bool:
    """A value read back equals the one written, whatever the engine made of its type."""
    if isinstance(written, datetime) and isinstance(stored, str):
        stored = datetime.fromisoformat(stored)
    if isinstance(stored, memoryview):
        stored = bytes(stored)
    return written == stored

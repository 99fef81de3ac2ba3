"""The attributes Mastodon documents for each API entity (docs.joinmastodon.org/entities/), and a
validator that lists every way a JSON answer departs from them.

Each entity is a dict of attribute name -> Spec. A Spec names a JSON kind (see KINDS), an entity
(by name), an array of a Spec, or an inline hash of attributes; `nullable` allows null and
`optional` allows the attribute to be absent. Attributes added after Mastodon 4.2 are optional.
Attributes an answer has beyond the table are allowed: Mastodon adds some in every release.

Ids are checked as numeric strings (Mastodon only promises strings; fedsph's are numbers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime


@dataclass(frozen=True)
class Spec:
    kind: str                      # a KINDS key, "entity", "array" or "hash"
    of: object = None              # entity name, element Spec, or dict of attribute Specs
    nullable: bool = False
    optional: bool = False
    choices: tuple[str, ...] = ()  # for enumerated strings


def _datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)  # takes a Z since Python 3.11
        return "T" in value
    except ValueError:
        return False


def _date_or_datetime(value: str) -> bool:
    try:
        date.fromisoformat(value)
        return True
    except ValueError:
        return _datetime(value)


KINDS = {
    "string": lambda v: isinstance(v, str),
    "id": lambda v: isinstance(v, str) and v.isdigit(),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "url": lambda v: isinstance(v, str) and re.match(r"^(https?|wss?)://[^\s/]", v) is not None,
    "datetime": lambda v: isinstance(v, str) and _datetime(v),
    "date": lambda v: isinstance(v, str) and _date_or_datetime(v),
    "any": lambda v: True,
}

STR, ID, INT, NUM = Spec("string"), Spec("id"), Spec("integer"), Spec("number")
BOOL, URL, DATETIME = Spec("boolean"), Spec("url"), Spec("datetime")
ANY_HASH = Spec("hash")


def nullable(spec: Spec) -> Spec:
    return replace(spec, nullable=True)


def optional(spec: Spec) -> Spec:
    return replace(spec, optional=True)


def entity(name: str) -> Spec:
    return Spec("entity", name)


def array(spec: Spec) -> Spec:
    return Spec("array", spec)


def hash_of(**attributes: Spec) -> Spec:
    return Spec("hash", attributes)


def one_of(*choices: str) -> Spec:
    return Spec("string", choices=choices)


VISIBILITIES = ("public", "unlisted", "private", "direct")

FIELD = {"name": STR, "value": STR, "verified_at": nullable(DATETIME)}

CUSTOM_EMOJI = {"shortcode": STR, "url": URL, "static_url": URL, "visible_in_picker": BOOL,
                "category": optional(nullable(STR))}

ACCOUNT = {
    "id": ID, "username": STR, "acct": STR, "url": URL, "display_name": STR, "note": STR,
    "avatar": URL, "avatar_static": URL, "header": URL, "header_static": URL,
    "locked": BOOL, "fields": array(entity("Field")), "emojis": array(entity("CustomEmoji")),
    "bot": BOOL, "group": BOOL, "discoverable": nullable(BOOL),
    "noindex": optional(nullable(BOOL)), "moved": optional(nullable(entity("Account"))),
    "suspended": optional(BOOL), "limited": optional(BOOL),
    "created_at": DATETIME, "last_status_at": nullable(Spec("date")),
    "statuses_count": INT, "followers_count": INT, "following_count": INT,
    # Newer than the attribute list above, but sent by Mastodon 4.2.
    "uri": optional(URL), "indexable": optional(BOOL), "hide_collections": optional(nullable(BOOL)),
    "memorial": optional(BOOL), "roles": optional(array(ANY_HASH)),
}

CREDENTIAL_ACCOUNT = {
    **ACCOUNT,
    "source": hash_of(note=STR, fields=array(entity("Field")), privacy=one_of(*VISIBILITIES),
                      sensitive=BOOL, language=STR, follow_requests_count=INT),
    "role": optional(ANY_HASH),
}

MENTION = {"id": ID, "username": STR, "url": URL, "acct": STR}

STATUS_TAG = {"name": STR, "url": URL}

MEDIA_ATTACHMENT = {
    "id": ID, "type": one_of("unknown", "image", "gifv", "video", "audio"), "url": URL,
    "preview_url": nullable(URL), "remote_url": nullable(URL), "meta": ANY_HASH,
    "description": nullable(STR), "blurhash": nullable(STR),
}

STATUS = {
    "id": ID, "uri": STR, "created_at": DATETIME, "account": entity("Account"), "content": STR,
    "visibility": one_of(*VISIBILITIES), "sensitive": BOOL, "spoiler_text": STR,
    "media_attachments": array(entity("MediaAttachment")),
    "application": optional(hash_of(name=STR, website=nullable(STR))),
    "mentions": array(entity("Mention")), "tags": array(entity("StatusTag")),
    "emojis": array(entity("CustomEmoji")),
    "reblogs_count": INT, "favourites_count": INT, "replies_count": INT,
    "url": nullable(URL), "in_reply_to_id": nullable(ID), "in_reply_to_account_id": nullable(ID),
    "reblog": nullable(entity("Status")), "poll": nullable(ANY_HASH), "card": nullable(ANY_HASH),
    "language": nullable(STR), "text": optional(nullable(STR)), "edited_at": nullable(DATETIME),
    "quote": optional(nullable(ANY_HASH)),
    "favourited": optional(BOOL), "reblogged": optional(BOOL), "muted": optional(BOOL),
    "bookmarked": optional(BOOL), "pinned": optional(BOOL), "filtered": optional(array(ANY_HASH)),
}

NOTIFICATION = {
    "id": ID,
    "type": one_of("mention", "status", "reblog", "follow", "follow_request", "favourite", "poll",
                   "update", "admin.sign_up", "admin.report", "severed_relationships",
                   "moderation_warning", "quote", "quoted_update"),
    "group_key": optional(STR), "created_at": DATETIME, "account": entity("Account"),
    "status": optional(entity("Status")), "report": optional(ANY_HASH),
    "event": optional(ANY_HASH), "moderation_warning": optional(ANY_HASH),
}

RELATIONSHIP = {
    "id": ID, "following": BOOL, "showing_reblogs": BOOL, "notifying": BOOL,
    # Documented as an array; Mastodon's serializer sends null when no language filter is set.
    "languages": nullable(array(STR)),
    "followed_by": BOOL, "blocking": BOOL, "blocked_by": BOOL, "muting": BOOL,
    "muting_notifications": BOOL, "requested": BOOL, "requested_by": optional(BOOL),
    "domain_blocking": BOOL, "endorsed": BOOL, "note": STR,
}

RULE = {"id": ID, "text": STR, "hint": optional(STR)}

_STATUS_LIMITS = hash_of(max_characters=INT, max_media_attachments=INT,
                         characters_reserved_per_url=INT)
_MEDIA_LIMITS = hash_of(supported_mime_types=array(STR), image_size_limit=INT,
                        image_matrix_limit=INT, video_size_limit=INT,
                        video_frame_rate_limit=INT, video_matrix_limit=INT)
_POLL_LIMITS = hash_of(max_options=INT, max_characters_per_option=INT,
                       min_expiration=INT, max_expiration=INT)

INSTANCE = {
    "domain": STR, "title": STR, "version": STR, "source_url": URL, "description": STR,
    "usage": hash_of(users=hash_of(active_month=INT)),
    "thumbnail": hash_of(url=URL, blurhash=optional(STR),
                         versions=optional(hash_of(**{"@1x": optional(URL),
                                                      "@2x": optional(URL)}))),
    "icon": optional(array(ANY_HASH)),
    "languages": array(STR),
    "configuration": hash_of(
        urls=hash_of(streaming=URL), vapid=optional(hash_of(public_key=STR)),
        accounts=hash_of(max_featured_tags=INT, max_pinned_statuses=optional(INT)),
        statuses=_STATUS_LIMITS, media_attachments=_MEDIA_LIMITS, polls=_POLL_LIMITS,
        translation=hash_of(enabled=BOOL)),
    "registrations": hash_of(enabled=BOOL, approval_required=BOOL, message=nullable(STR),
                             url=optional(nullable(URL))),
    "api_versions": optional(hash_of(mastodon=INT)),
    "contact": hash_of(email=STR, account=nullable(entity("Account"))),
    "rules": array(entity("Rule")),
}

V1_INSTANCE = {
    "uri": STR, "title": STR, "short_description": STR, "description": STR, "email": STR,
    "version": STR, "urls": hash_of(streaming_api=URL),
    "stats": hash_of(user_count=INT, status_count=INT, domain_count=INT),
    "thumbnail": nullable(URL), "languages": array(STR), "registrations": BOOL,
    "approval_required": BOOL, "invites_enabled": BOOL,
    "configuration": hash_of(accounts=hash_of(max_featured_tags=INT), statuses=_STATUS_LIMITS,
                             media_attachments=_MEDIA_LIMITS, polls=_POLL_LIMITS),
    "contact_account": nullable(entity("Account")), "rules": array(entity("Rule")),
}

APPLICATION = {
    "name": STR, "website": optional(nullable(STR)),
    "client_id": optional(STR), "client_secret": optional(STR), "vapid_key": optional(STR),
    # Mastodon 4.3 additions.
    "id": optional(ID), "scopes": optional(array(STR)), "redirect_uri": optional(STR),
    "redirect_uris": optional(array(STR)), "client_secret_expires_at": optional(INT),
}

# What POST /api/v1/apps answers: the Application with its credentials.
CREDENTIAL_APPLICATION = {**APPLICATION, "client_id": STR, "client_secret": STR}

TOKEN = {"access_token": STR, "token_type": STR, "scope": STR, "created_at": INT}

CONTEXT = {"ancestors": array(entity("Status")), "descendants": array(entity("Status"))}

TAG = {
    "name": STR, "url": URL,
    "history": array(hash_of(day=Spec("id"), uses=Spec("id"), accounts=Spec("id"))),
    "following": optional(BOOL), "id": optional(ID),
}

MARKER = {"last_read_id": ID, "version": INT, "updated_at": DATETIME}

SEARCH = {"accounts": array(entity("Account")), "statuses": array(entity("Status")),
          "hashtags": array(entity("Tag"))}

PREFERENCES = {
    "posting:default:visibility": one_of(*VISIBILITIES),
    "posting:default:sensitive": BOOL,
    "posting:default:language": nullable(STR),
    "reading:expand:media": one_of("default", "show_all", "hide_all"),
    "reading:expand:spoilers": BOOL,
}

ERROR = {"error": STR, "error_description": optional(STR)}

# Issue 13: direct-message conversations (docs.joinmastodon.org/entities/Conversation/).
CONVERSATION = {"id": ID, "unread": BOOL, "accounts": array(entity("Account")),
                "last_status": nullable(entity("Status"))}
# The streaming API (issue 13): a WebSocket message; its payload is a Status or Notification
# as JSON text, or a status id (docs.joinmastodon.org/methods/streaming/#events).
STREAMING_EVENT = {"stream": array(STR), "payload": STR,
                   "event": one_of("update", "status.update", "delete", "notification")}
STREAMING_ERROR = {"error": STR, "status": INT}

ENTITIES: dict[str, dict[str, Spec]] = {
    "Field": FIELD, "CustomEmoji": CUSTOM_EMOJI, "Account": ACCOUNT,
    "CredentialAccount": CREDENTIAL_ACCOUNT, "Mention": MENTION, "StatusTag": STATUS_TAG,
    "MediaAttachment": MEDIA_ATTACHMENT, "Status": STATUS, "Notification": NOTIFICATION,
    "Relationship": RELATIONSHIP, "Rule": RULE, "Instance": INSTANCE, "V1Instance": V1_INSTANCE,
    "Application": APPLICATION, "CredentialApplication": CREDENTIAL_APPLICATION,
    "Token": TOKEN, "Context": CONTEXT, "Tag": TAG, "Marker": MARKER, "Search": SEARCH,
    "Preferences": PREFERENCES, "Error": ERROR,
    "Conversation": CONVERSATION,
    "StreamingEvent": STREAMING_EVENT, "StreamingError": STREAMING_ERROR,
}

# Issue 13: a status's source and its versions (docs.joinmastodon.org/entities/StatusSource/,
# /entities/StatusEdit/).
STATUS_SOURCE = {"id": ID, "text": STR, "spoiler_text": STR}
STATUS_EDIT = {
    "content": STR, "spoiler_text": STR, "sensitive": BOOL, "created_at": DATETIME,
    "account": entity("Account"), "poll": optional(nullable(ANY_HASH)),
    "media_attachments": array(entity("MediaAttachment")), "emojis": array(entity("CustomEmoji")),
}
ENTITIES.update({"StatusSource": STATUS_SOURCE, "StatusEdit": STATUS_EDIT})


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check(value, spec: Spec, path: str, problems: list[str]) -> None:
    if value is None:
        if not spec.nullable:
            problems.append(f"{path}: unexpected null")
        return
    if spec.kind == "entity":
        _check_attributes(value, ENTITIES[spec.of], path, problems)
    elif spec.kind == "array":
        if not isinstance(value, list):
            problems.append(f"{path}: expected an array, got {_short(value)}")
            return
        for index, item in enumerate(value):
            _check(item, spec.of, f"{path}[{index}]", problems)
    elif spec.kind == "hash":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a hash, got {_short(value)}")
        elif spec.of is not None:
            _check_attributes(value, spec.of, path, problems)
    elif not KINDS[spec.kind](value):
        problems.append(f"{path}: expected {spec.kind}, got {_short(value)}")
    elif spec.choices and value not in spec.choices:
        problems.append(f"{path}: {_short(value)} is not one of {', '.join(spec.choices)}")


def _check_attributes(value, attributes: dict[str, Spec], path: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append(f"{path}: expected a hash, got {_short(value)}")
        return
    for name, spec in attributes.items():
        if name not in value:
            if not spec.optional:
                problems.append(f"{path}.{name}: missing")
            continue
        _check(value[name], spec, f"{path}.{name}", problems)


def mismatches(value, name: str, path: str | None = None) -> list[str]:
    """Every departure of `value` from the entity `name`, each as `Path.to.attribute: what`."""
    problems: list[str] = []
    _check(value, entity(name), path or name, problems)
    return problems


def mismatches_of_list(values, name: str, path: str | None = None) -> list[str]:
    """The same for an array of the entity (a timeline, a list of relationships...)."""
    problems: list[str] = []
    _check(values, array(entity(name)), path or f"{name}s", problems)
    return problems

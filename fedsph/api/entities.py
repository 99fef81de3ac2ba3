"""Pure builders of Mastodon entities (docs.joinmastodon.org/entities/) from fedsph rows."""

from __future__ import annotations

import html
import re
from datetime import datetime

from fedsph.core.safe_links import http_url
from fedsph.core.sanitize import clean_html
from fedsph.models import Actor
from fedsph.projects.profile import primary_language
from fedsph.projects.profile_wire import profile_attachments

MISSING_IMAGE = "/avatars/original/missing.png"  # served by fedsph/api/accounts.py


def iso(moment: datetime | None) -> str | None:
    """Mastodon's timestamps: UTC with milliseconds and a Z."""
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def acct(actor: Actor) -> str:
    """`username` for local accounts, `username@domain` for remote ones."""
    return actor.username if actor.local else f"{actor.username}@{actor.domain}"


def plain_text(html_text: str | None) -> str:
    """Text of an HTML summary, paragraphs and line breaks kept as newlines."""
    text = re.sub(r"<br\s*/?>", "\n", html_text or "", flags=re.IGNORECASE)
    text = re.sub(r"</p>\s*<p[^>]*>", "\n\n", text, flags=re.IGNORECASE)
    return html.unescape(re.sub(r"<[^>]+>", "", text)).strip()


def stored_html(value: str | None) -> str:
    """Stored HTML as apps get it: sanitised again on the way out, as pages do (the `sanitized`
    filter), so rows stored by older versions cannot reach an app as live markup."""
    return clean_html(value if isinstance(value, str) else None)


def profile_url(actor: Actor) -> str:
    """The actor's web page when it is an http(s) URL, else its id (older rows kept any URL)."""
    return http_url(actor.url) or actor.uri


def account_fields(actor: Actor, lang: str) -> list[dict]:
    """A project's profile facts (local), or a remote actor's PropertyValue attachments."""
    if actor.local:
        pairs = [(f["name"], f["value"]) for f in profile_attachments(actor.profile or {}, lang)]
    else:
        attachments = (actor.document or {}).get("attachment") or []
        pairs = [(str(a.get("name", "")), str(a.get("value", "")))
                 for a in (attachments if isinstance(attachments, list) else [])
                 if isinstance(a, dict) and a.get("type") == "PropertyValue"]
    return [{"name": name, "value": stored_html(value), "verified_at": None}
            for name, value in pairs]


def account(actor: Actor, base_url: str, counts: dict[str, int], lang: str = "en") -> dict:
    """The Account entity. counts: statuses, followers, following."""
    avatar = actor.icon_url or base_url + MISSING_IMAGE
    header = actor.header_url or base_url + MISSING_IMAGE
    created = actor.created_at.replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "id": str(actor.id),
        "username": actor.username,
        "acct": acct(actor),
        "url": profile_url(actor),
        "uri": actor.uri,
        "display_name": actor.name or "",
        "note": stored_html(actor.summary),
        "avatar": avatar, "avatar_static": avatar,
        "header": header, "header_static": header,
        "locked": bool(actor.manually_approves),
        "fields": account_fields(actor, lang),
        "emojis": [],
        "bot": False,
        "group": actor.type == "Group",
        "discoverable": True,
        "indexable": True,
        "noindex": False,
        "moved": None,
        "suspended": False,
        "limited": False,
        "created_at": iso(created),
        # A date, not a time, as Mastodon gives it (AccountSerializer: last_status_at.to_date).
        "last_status_at": actor.last_status_at.date().isoformat() if actor.last_status_at else None,
        "statuses_count": counts.get("statuses", 0),
        "followers_count": counts.get("followers", 0),
        "following_count": counts.get("following", 0),
        "roles": [],
    }


def credential_account(actor: Actor, base_url: str, counts: dict[str, int],
                       follow_requests: int) -> dict:
    """verify_credentials: the Account plus `source` (what the profile editor starts from)."""
    lang = primary_language(actor.profile)
    entity = account(actor, base_url, counts, lang)
    entity["source"] = {
        "privacy": "public", "sensitive": False, "language": lang,
        "note": plain_text(actor.summary),
        "fields": [{"name": f["name"], "value": plain_text(f["value"]), "verified_at": None}
                   for f in entity["fields"]],
        "follow_requests_count": follow_requests,
    }
    return entity


def relationship(target: Actor, following: str | None, followed_by: str | None) -> dict:
    """Relationship entity; following/followed_by are a Follow state (accepted, pending) or None."""
    return {
        "id": str(target.id),
        "following": following == "accepted",
        "showing_reblogs": following == "accepted",
        "notifying": False,
        "languages": None,
        "followed_by": followed_by == "accepted",
        "blocking": False, "blocked_by": False, "muting": False, "muting_notifications": False,
        "requested": following == "pending",
        "requested_by": followed_by == "pending",
        "domain_blocking": False, "endorsed": False, "note": "",
    }

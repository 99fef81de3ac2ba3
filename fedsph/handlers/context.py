"""What every activity handler receives, and how it says an activity was not for us."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.config import Settings
from fedsph.remote import Remote
from fedsph.urls import URLs


class Ignored(Exception):
    """The activity is valid enough but has nothing for this node: recorded, not retried."""


@dataclass
class HandlerContext:
    db: AsyncSession
    remote: Remote
    urls: URLs
    settings: Settings
    # The activity's bytes as received (the inbox item's body): a hub forwards them unchanged to
    # its relay subscribers, so the author's integrity proof still verifies (fedsph/hub/reshare.py).
    body: bytes | None = None


def same_origin(uri: str | None, actor_uri: str) -> bool:
    """Mastodon's origin check: an actor may only create or change objects on its own host."""
    return bool(uri) and urlsplit(uri).netloc == urlsplit(actor_uri).netloc

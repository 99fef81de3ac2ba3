"""SQLAlchemy models, one module per area. Import from here."""

from fedsph.models.actors import Actor, Block, Follow, Membership, User
from fedsph.models.base import Base, utcnow
from fedsph.models.content import Activity, Object, Reaction
from fedsph.models.queue import Delivery, HostState, InboxItem

__all__ = [
    "Activity",
    "Actor",
    "Base",
    "Block",
    "Delivery",
    "Follow",
    "HostState",
    "InboxItem",
    "Membership",
    "Object",
    "Reaction",
    "User",
    "utcnow",
]

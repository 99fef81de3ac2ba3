"""SQLAlchemy models, one module per area. Import from here."""

from fedsph.models.base import Base, utcnow
from fedsph.models.actors import Actor, Block, Follow, Membership, User
from fedsph.models.content import Activity, Object, Reaction
from fedsph.models.queue import Delivery, HostState, InboxItem

__all__ = [
    "Base", "utcnow", "Actor", "Block", "Follow", "Membership", "User",
    "Activity", "Object", "Reaction", "Delivery", "HostState", "InboxItem",
]

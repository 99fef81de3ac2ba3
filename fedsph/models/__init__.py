"""SQLAlchemy models, one module per area. Import from here.

The lowest layer beside `db` and `i18n`: imports nothing of fedsph but its own modules.
"""

# Registers the shared id space of posts and boosts (its listeners) with every import of models.
from fedsph.models import status_ids  # noqa: F401
from fedsph.models.actors import Actor, Block, Follow, Membership, User
from fedsph.models.api import Marker, OAuthApp, OAuthCode, OAuthToken
from fedsph.models.auth import Invite, LoginSession
from fedsph.models.base import Base, utcnow
from fedsph.models.content import Activity, Object, ObjectAudience, Reaction, StatusEdit
from fedsph.models.conversations import Conversation
from fedsph.models.directory import DirectoryEntry, DirectoryFacet, DirectoryState

# E-mail (issue 14): the mail queue, one-time links, notices.
from fedsph.models.mail import MailNotice, MailToken, OutgoingMail
from fedsph.models.media import Media
from fedsph.models.network import Event, EventParticipant, Hub, HubMembership, SolidarityLink
from fedsph.models.queue import Delivery, HostState, InboxItem
from fedsph.models.social import Notification, Report
from fedsph.models.status_ids import StatusCounter

# The streaming API's event rows (issue 13).
from fedsph.models.streams import StreamEvent

__all__ = [
    "Activity",
    "Actor",
    "Base",
    "Block",
    "Conversation",
    "Delivery",
    "DirectoryEntry",
    "DirectoryFacet",
    "DirectoryState",
    "Event",
    "EventParticipant",
    "Follow",
    "HostState",
    "Hub",
    "HubMembership",
    "InboxItem",
    "Invite",
    "LoginSession",
    "MailNotice",
    "MailToken",
    "Marker",
    "Media",
    "Membership",
    "Notification",
    "OAuthApp",
    "OAuthCode",
    "OAuthToken",
    "Object",
    "ObjectAudience",
    "OutgoingMail",
    "Reaction",
    "Report",
    "SolidarityLink",
    "StatusCounter",
    "StatusEdit",
    "StreamEvent",
    "User",
    "utcnow",
]

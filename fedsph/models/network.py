"""The network view (issue 5): hubs and their member projects, events, solidarity links."""

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fedsph.models.base import Base, utcnow


class Hub(Base):
    """This node's hub (a node in hub mode has exactly one): its Group actor and its rules."""

    __tablename__ = "hubs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), unique=True)
    region: Mapped[str | None] = mapped_column(String(32))  # vocab.REGIONS slug
    # Which join requests are approved without a coordinator, e.g. {"all": true} or
    # {"regions": ["europe"], "countries": ["UY"]}; empty: every request waits.
    auto_approve: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class HubMembership(Base):
    """A project in a hub, kept on both nodes (the hub's and the project's).

    state: requested (the project asked, waiting for the hub), invited (the hub asked, waiting
    for the project), approved (both agreed). Leaving deletes the row.
    """

    __tablename__ = "hub_memberships"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hub_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"),
                                            index=True)
    state: Mapped[str] = mapped_column(String(16))
    activity_uri: Mapped[str | None] = mapped_column(String(2048))  # the Join or Invite
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (UniqueConstraint("hub_id", "project_id", name="uq_hub_memberships_pair"),)


class Event(Base):
    """What an Event object (objects.type == "Event") has beyond a post: when, where, who."""

    __tablename__ = "events"

    object_id: Mapped[int] = mapped_column(ForeignKey("objects.id", ondelete="CASCADE"),
                                           primary_key=True)
    kind: Mapped[str | None] = mapped_column(String(32))  # vocab.EVENT_KINDS slug
    starts_at: Mapped[datetime] = mapped_column(DateTime, index=True)  # UTC
    ends_at: Mapped[datetime | None] = mapped_column(DateTime)  # UTC
    timezone: Mapped[str | None] = mapped_column(String(64))  # IANA name, e.g. America/Montevideo
    online_url: Mapped[str | None] = mapped_column(String(2048))
    join_mode: Mapped[str] = mapped_column(String(16), default="free")  # free, restricted, invite
    languages: Mapped[list | None] = mapped_column(JSON)  # BCP-47 tags spoken
    interpretation: Mapped[list | None] = mapped_column(JSON)  # BCP-47 tags interpreted into
    organizers: Mapped[list | None] = mapped_column(JSON)  # actor ids (URIs)
    related_projects: Mapped[list | None] = mapped_column(JSON)  # actor ids (URIs)
    # Our events: the Note that announced it to Mastodon users (deleted when it is cancelled).
    note_id: Mapped[int | None] = mapped_column(ForeignKey("objects.id", ondelete="SET NULL"))


class EventParticipant(Base):
    """Someone who joined an event (Join), until they Leave."""

    __tablename__ = "event_participants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("objects.id", ondelete="CASCADE"),
                                          index=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    activity_uri: Mapped[str] = mapped_column(String(2048), unique=True)  # the Join
    state: Mapped[str] = mapped_column(String(16), default="accepted")  # accepted, pending
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("event_id", "actor_id", name="uq_event_participants_pair"),)


class SolidarityLink(Base):
    """A typed link between two projects, proposed by one (Offer) and answered by the other.

    Kept on both nodes. state: proposed, accepted, rejected, withdrawn.
    """

    __tablename__ = "solidarity_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # vocab.LINK_KINDS slug
    proposer_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"),
                                             index=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"),
                                            index=True)
    state: Mapped[str] = mapped_column(String(16), default="proposed")
    offer_uri: Mapped[str] = mapped_column(String(2048), unique=True)
    answer_uri: Mapped[str | None] = mapped_column(String(2048))  # the Accept or Reject
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)

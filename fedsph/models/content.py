"""Objects (posts, local and remote), our own activities, and likes/boosts."""

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from fedsph.models.base import Base, utcnow


class Object(Base):
    """A Note (or other object) we published or received. Deleted ones stay as tombstones."""

    __tablename__ = "objects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), index=True)
    local: Mapped[bool] = mapped_column(Boolean, default=False)
    content: Mapped[str | None] = mapped_column(Text)  # sanitised HTML
    content_map: Mapped[dict | None] = mapped_column(JSON)  # language -> sanitised HTML
    language: Mapped[str | None] = mapped_column(String(16))
    summary: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(2048))
    in_reply_to: Mapped[str | None] = mapped_column(String(2048), index=True)
    visibility: Mapped[str] = mapped_column(String(16), default="public")
    document: Mapped[dict | None] = mapped_column(JSON)  # the object as last published/received
    published: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated: Mapped[datetime | None] = mapped_column(DateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Project updates (see fedsph/updates.py): title, kind, tags, place and images.
    name: Mapped[str | None] = mapped_column(Text)
    name_map: Mapped[dict | None] = mapped_column(JSON)
    kind: Mapped[str | None] = mapped_column(String(32))
    stage_change: Mapped[str | None] = mapped_column(String(32))
    tags: Mapped[list | None] = mapped_column(JSON)  # [{"type": "Hashtag"|"theme", "name": ...}]
    place: Mapped[dict | None] = mapped_column(JSON)
    attachments: Mapped[list | None] = mapped_column(JSON)  # as sent: Document/Image dicts
    pinned_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Comments: members may hide one; a project that holds replies shows them once approved.
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    approved: Mapped[bool] = mapped_column(Boolean, default=True)
    # The primary language's text as its author typed it (local posts since issue 13; older ones
    # have none and their text is recovered from `content`): what GET /statuses/:id/source gives.
    source: Mapped[str | None] = mapped_column(Text)


class StatusEdit(Base):
    """An earlier version of an edited post, kept when it was replaced (Mastodon's StatusEdit).

    The current version is the Object itself, so a post never edited has no rows here.
    """

    __tablename__ = "status_edits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    object_id: Mapped[int] = mapped_column(ForeignKey("objects.id", ondelete="CASCADE"),
                                           index=True)
    content: Mapped[str | None] = mapped_column(Text)  # sanitised HTML, as the post had it
    summary: Mapped[str | None] = mapped_column(Text)
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    attachments: Mapped[list | None] = mapped_column(JSON)  # AS2 Document/Image dicts
    # When this version was published (the post's `published`, or the edit that made it).
    created_at: Mapped[datetime] = mapped_column(DateTime)


class ObjectAudience(Base):
    """An actor a direct post addresses (to, cc or Mention): who may see it (fedsph/federation/visibility.py)."""

    __tablename__ = "object_audience"
    __table_args__ = (UniqueConstraint("object_id", "actor_uri", name="uq_object_audience_pair"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    object_id: Mapped[int] = mapped_column(ForeignKey("objects.id", ondelete="CASCADE"),
                                           index=True)
    actor_uri: Mapped[str] = mapped_column(String(2048), index=True)
    # Reached only through its own inbox, named nowhere in the post (Mastodon's silent
    # mention): it may read the post, but the others in it are not told of it.
    silent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Activity(Base):
    """An activity we sent. `body` is serialised once; those exact bytes are signed and sent."""

    __tablename__ = "activities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), index=True)
    object_uri: Mapped[str | None] = mapped_column(String(2048), index=True)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class Reaction(Base):
    """A Like or Announce of an object, by any actor."""

    __tablename__ = "reactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(16))  # Like, Announce
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    object_uri: Mapped[str] = mapped_column(String(2048), index=True)
    activity_uri: Mapped[str] = mapped_column(String(2048), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # An Announce's status id in the client API (its reblog wrapper), from the objects' id
    # space: fedsph.models.status_ids. NULL for a Like.
    status_id: Mapped[int | None] = mapped_column(Integer, index=True, unique=True)
    # A boost addressed to the booster's followers only (Misskey's followers-only renote):
    # its wrapper shows only to them and the booster (fedsph.api.reblogs).
    followers_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    # Home's boosts: those of the accounts one follows, newest first (fedsph.api.timelines).
    __table_args__ = (Index("ix_reactions_actor_status", "actor_id", "status_id"),)




"""Direct-message conversations of local accounts, as Mastodon's client API lists them."""

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from fedsph.models.base import Base


class Conversation(Base):
    """One local account's direct messages with one set of other actors (fedsph/projects/conversations.py).

    `participants` are the other actors' URIs, sorted; `participants_key` is their digest, so
    that the pair (account, participants) is unique without an index on a long text.
    `last_status_id` orders the list and pages it, as Mastodon's does.
    """

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    participants_key: Mapped[str] = mapped_column(String(64))
    participants: Mapped[list] = mapped_column(JSON)
    last_status_id: Mapped[int | None] = mapped_column(
        ForeignKey("objects.id", ondelete="SET NULL"))
    unread: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (
        UniqueConstraint("actor_id", "participants_key", name="uq_conversations_participants"),
        Index("ix_conversations_actor_last", "actor_id", "last_status_id"),
        # A deleted post finds the rows it was the newest of (and ON DELETE SET NULL does).
        Index("ix_conversations_last_status", "last_status_id"),
    )

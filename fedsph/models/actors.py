"""Actors (local and remote), the people who log in, follows and blocks."""

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fedsph.models.base import Base, utcnow


class Actor(Base):
    """An ActivityPub actor. Local ones have a private key; remote ones are a cache."""

    __tablename__ = "actors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)
    local: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    type: Mapped[str] = mapped_column(String(32))  # Group, Person, Application, Service
    username: Mapped[str] = mapped_column(String(255))
    domain: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(2048))
    inbox: Mapped[str | None] = mapped_column(String(2048))
    shared_inbox: Mapped[str | None] = mapped_column(String(2048))
    outbox: Mapped[str | None] = mapped_column(String(2048))
    followers_url: Mapped[str | None] = mapped_column(String(2048))
    following_url: Mapped[str | None] = mapped_column(String(2048))
    key_id: Mapped[str | None] = mapped_column(String(2048), index=True)
    public_key_pem: Mapped[str | None] = mapped_column(Text)
    private_key_pem: Mapped[str | None] = mapped_column(Text)
    # Local actors: the Ed25519 key that signs integrity proofs (FEP-8b32), PKCS#8 PEM.
    proof_key_pem: Mapped[str | None] = mapped_column(Text)
    manually_approves: Mapped[bool] = mapped_column(Boolean, default=False)
    document: Mapped[dict | None] = mapped_column(JSON)  # remote actors: the document as fetched
    # Project profile (see fedsph/projects/profile.py for the fields); translations of name and summary.
    profile: Mapped[dict | None] = mapped_column(JSON)
    name_map: Mapped[dict | None] = mapped_column(JSON)
    summary_map: Mapped[dict | None] = mapped_column(JSON)
    icon_url: Mapped[str | None] = mapped_column(String(2048))
    header_url: Mapped[str | None] = mapped_column(String(2048))
    # Replies to this project's updates wait for a member's approval before they are shown.
    hold_replies: Mapped[bool] = mapped_column(Boolean, default=False)
    # Account moves (Mastodon's Move): where this account went, and the aliases it declares.
    moved_to: Mapped[str | None] = mapped_column(String(2048))
    also_known_as: Mapped[list | None] = mapped_column(JSON)
    fetched_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # When its newest post we hold was published: the Account entity's last_status_at without a
    # query per account in lists (set where a post is stored: fedsph.federation.remote_objects.saw_post).
    last_status_at: Mapped[datetime | None] = mapped_column(DateTime)
    # A deleted local actor (fedsph/projects/deletion.py): the row stays as a tombstone, so its
    # handle is never given again and its key still signs the Delete sent for it; everything
    # else it held is gone. Lookups by name or URI (federation/actors.py) skip it.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (UniqueConstraint("username", "domain", name="uq_actors_username_domain"),)

    @property
    def handle(self) -> str:
        return f"{self.username}@{self.domain}"

    @property
    def delivery_inbox(self) -> str | None:
        return self.shared_inbox or self.inbox


class User(Base):
    """Someone who logs in to this node. Acts as their own Person actor or as a project."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(255), unique=True)
    # Optional; another way to log in (fedsph.accounts.normalize_email: lower case, unique).
    # Nobody has proved they receive mail there: never send a password reset to it before it
    # has been confirmed.
    email: Mapped[str | None] = mapped_column(String(254), unique=True, index=True)
    password_hash: Mapped[str | None] = mapped_column(Text)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Set by `fedsph user disable` or the admin page: the user may not log in, and their
    # sessions and tokens stop working (fedsph.accounts.may_log_in, asked on every request).
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)
    # --- E-mail (issue 14, fedsph/mail) ---
    # The address the member proved they read (or an admin set): `email` counts as confirmed
    # only while it equals this, so any change of `email`, by any path, needs a new proof.
    email_confirmed: Mapped[str | None] = mapped_column(String(254))
    # The interface language they last logged in with (or joined in): their mails' language.
    language: Mapped[str | None] = mapped_column(String(16))


class Membership(Base):
    """A user is a member of a project and may publish as it."""

    __tablename__ = "memberships"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(32), default="member")

    __table_args__ = (UniqueConstraint("user_id", "project_id", name="uq_memberships_user_project"),)


class Follow(Base):
    """follower follows followed; state is pending until the followed side accepts."""

    __tablename__ = "follows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    follower_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), index=True)
    followed_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending, accepted
    activity_uri: Mapped[str | None] = mapped_column(String(2048))
    # A relay subscription (FEP-ae0c): a server that follows our hub to receive the members'
    # public activities as they are, rather than as the hub's Announces.
    relay: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("follower_id", "followed_id", name="uq_follows_follower_followed"),
    )


class Block(Base):
    """A node-wide block of one remote actor (actor_uri) or of a whole domain."""

    __tablename__ = "blocks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain: Mapped[str | None] = mapped_column(String(255), unique=True)
    actor_uri: Mapped[str | None] = mapped_column(String(2048), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

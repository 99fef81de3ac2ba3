"""Mastodon client API (apps, tokens, codes), notifications, reports, account moves

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("actors") as batch:
        batch.add_column(sa.Column("moved_to", sa.String(length=2048), nullable=True))
        batch.add_column(sa.Column("also_known_as", sa.JSON(), nullable=True))
    op.create_table(
        "oauth_apps",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("client_id", sa.String(length=64), nullable=False, unique=True),
        sa.Column("client_secret_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("website", sa.String(length=2048), nullable=True),
        sa.Column("redirect_uris", sa.Text(), nullable=False),
        sa.Column("scopes", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "oauth_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("app_id", sa.Integer(), sa.ForeignKey("oauth_apps.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=True, index=True),
        sa.Column("actor_id", sa.Integer(), sa.ForeignKey("actors.id", ondelete="CASCADE"),
                  nullable=True),
        sa.Column("scopes", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "oauth_codes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("app_id", sa.Integer(), sa.ForeignKey("oauth_apps.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("actor_id", sa.Integer(), sa.ForeignKey("actors.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("scopes", sa.String(length=255), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=True),
        sa.Column("code_challenge_method", sa.String(length=16), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("recipient_id", sa.Integer(), sa.ForeignKey("actors.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("from_actor_id", sa.Integer(), sa.ForeignKey("actors.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("object_uri", sa.String(length=2048), nullable=True),
        sa.Column("activity_uri", sa.String(length=2048), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False, index=True),
        sa.Column("dismissed_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("activity_uri", "recipient_id",
                            name="uq_notifications_activity_recipient"),
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("activity_uri", sa.String(length=2048), nullable=False, unique=True),
        sa.Column("reporter_id", sa.Integer(), sa.ForeignKey("actors.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("target_id", sa.Integer(), sa.ForeignKey("actors.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("object_uris", sa.JSON(), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
    )


def downgrade() -> None:
    for table in ("reports", "notifications", "oauth_codes", "oauth_tokens", "oauth_apps"):
        op.drop_table(table)
    with op.batch_alter_table("actors") as batch:
        batch.drop_column("also_known_as")
        batch.drop_column("moved_to")

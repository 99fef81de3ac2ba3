"""project profiles, rich updates, media, login sessions and invites

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("actors") as batch:
        batch.add_column(sa.Column("profile", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("name_map", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("summary_map", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("icon_url", sa.String(length=2048), nullable=True))
        batch.add_column(sa.Column("header_url", sa.String(length=2048), nullable=True))
        batch.add_column(sa.Column("hold_replies", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("objects") as batch:
        batch.add_column(sa.Column("name", sa.Text(), nullable=True))
        batch.add_column(sa.Column("name_map", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("kind", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("stage_change", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("place", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("attachments", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("pinned_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("hidden", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("approved", sa.Boolean(), nullable=False,
                                   server_default=sa.true()))
    op.create_table(
        "media",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(length=64), nullable=False, unique=True),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("actors.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("object_id", sa.Integer(), sa.ForeignKey("objects.id", ondelete="SET NULL"),
                  nullable=True, index=True),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("blurhash", sa.String(length=128), nullable=True),
        sa.Column("renditions", sa.JSON(), nullable=False),
        sa.Column("alt", sa.Text(), nullable=True),
        sa.Column("license", sa.String(length=32), nullable=True),
        sa.Column("author", sa.Text(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "login_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "invites",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("actors.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("used_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"),
                  nullable=True),
    )


def downgrade() -> None:
    op.drop_table("invites")
    op.drop_table("login_sessions")
    op.drop_table("media")
    with op.batch_alter_table("objects") as batch:
        for column in ("approved", "hidden", "pinned_at", "attachments", "place", "tags",
                       "stage_change", "kind", "name_map", "name"):
            batch.drop_column(column)
    with op.batch_alter_table("actors") as batch:
        for column in ("hold_replies", "header_url", "icon_url", "summary_map", "name_map",
                       "profile"):
            batch.drop_column(column)

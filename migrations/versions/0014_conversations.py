"""Direct messages: which personal inbox an activity arrived at, and conversations.

`inbox_items.delivered_to` is the local actor whose own inbox received the activity (NULL for
the shared inbox): as on Mastodon, a post delivered to a personal inbox addresses that account
even when it does not name it; such an addressee is `object_audience.silent` (the others in the
post are not told of it). `conversations` lists each local account's direct messages by
the set of other actors in them (GET /api/v1/conversations).

Revision ID: 0014_conversations
Revises: 0013_directory_facet_statistics
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_conversations"
down_revision = "0013_directory_facet_statistics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbox_items") as batch:
        batch.add_column(sa.Column("delivered_to", sa.String(length=2048), nullable=True))
    with op.batch_alter_table("object_audience") as batch:
        batch.add_column(sa.Column("silent", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("actor_id", sa.Integer(), sa.ForeignKey("actors.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("participants_key", sa.String(length=64), nullable=False),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column("last_status_id", sa.Integer(),
                  sa.ForeignKey("objects.id", ondelete="SET NULL"), nullable=True),
        sa.Column("unread", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.UniqueConstraint("actor_id", "participants_key", name="uq_conversations_participants"),
    )
    op.create_index("ix_conversations_actor_last", "conversations",
                    ["actor_id", "last_status_id"])
    op.create_index("ix_conversations_last_status", "conversations", ["last_status_id"])


def downgrade() -> None:
    op.drop_index("ix_conversations_last_status", table_name="conversations")
    op.drop_index("ix_conversations_actor_last", table_name="conversations")
    op.drop_table("conversations")
    with op.batch_alter_table("inbox_items") as batch:
        batch.drop_column("delivered_to")
    with op.batch_alter_table("object_audience") as batch:
        batch.drop_column("silent")

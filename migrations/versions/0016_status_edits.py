"""Edit history, post sources and accounts' last post date (issue 13, items 5 and 9).

`status_edits` keeps the earlier versions of edited posts (GET /api/v1/statuses/:id/history);
`objects.source` the text a local post was typed as (GET /api/v1/statuses/:id/source; older
posts have none and their text is recovered from their HTML); `actors.last_status_at` the date
of an account's newest post (the Account entity's `last_status_at`), filled here from the posts
already held.

Revision ID: 0016_status_edits
Revises: 0015_boost_status_ids
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_status_edits"
down_revision = "0015_boost_status_ids"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "status_edits",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("object_id", sa.Integer(),
                  sa.ForeignKey("objects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("sensitive", sa.Boolean(), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_status_edits_object_id", "status_edits", ["object_id"])
    with op.batch_alter_table("objects") as batch:
        batch.add_column(sa.Column("source", sa.Text(), nullable=True))
    with op.batch_alter_table("actors") as batch:
        batch.add_column(sa.Column("last_status_at", sa.DateTime(), nullable=True))
    # One grouped pass over the posts held (objects.actor_id is indexed), not one per account.
    op.execute("UPDATE actors SET last_status_at = (SELECT max(o.published) FROM objects o "
               "WHERE o.actor_id = actors.id AND o.deleted_at IS NULL AND o.type <> 'Event')")


def downgrade() -> None:
    with op.batch_alter_table("actors") as batch:
        batch.drop_column("last_status_at")
    with op.batch_alter_table("objects") as batch:
        batch.drop_column("source")
    op.drop_index("ix_status_edits_object_id", table_name="status_edits")
    op.drop_table("status_edits")

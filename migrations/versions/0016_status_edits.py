"""Edit history, post sources and accounts' last post date (issue 13, items 5 and 9).

`status_edits` keeps the earlier versions of edited posts (GET /api/v1/statuses/:id/history);
`objects.source` the text a local post was typed as (GET /api/v1/statuses/:id/source; older
posts have none and their text is recovered from their HTML); `actors.last_status_at` the date
of an account's newest post (the Account entity's `last_status_at`), filled here from the posts
already held; `notifications.object_uri` gets an index.

Revision ID: 0016_status_edits
Revises: 0015_boost_status_ids
"""

from datetime import UTC, datetime

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
    # One grouped pass over the posts held (objects.actor_id is indexed), not one per account,
    # and only over accounts with a post (PostgreSQL would rewrite every other row to NULL). A
    # date in the future (another server's clock or claim) counts as now, as Actor.saw_post has
    # it: last_status_at only ever moves forward, so a date of 2999 would stay for good.
    posts = ("FROM objects o WHERE o.actor_id = actors.id AND o.deleted_at IS NULL "
             "AND o.type <> 'Event'")
    op.get_bind().execute(sa.text(
        f"UPDATE actors SET last_status_at = (SELECT CASE WHEN max(o.published) > :now THEN :now "
        f"ELSE max(o.published) END {posts}) WHERE EXISTS (SELECT 1 {posts})").bindparams(
        sa.bindparam("now", datetime.now(UTC).replace(tzinfo=None), type_=sa.DateTime())))
    # A deleted post's notifications are deleted by its URI (fedsph.projects.tombstone).
    op.create_index("ix_notifications_object_uri", "notifications", ["object_uri"])


def downgrade() -> None:
    op.drop_index("ix_notifications_object_uri", table_name="notifications")
    with op.batch_alter_table("actors") as batch:
        batch.drop_column("last_status_at")
    with op.batch_alter_table("objects") as batch:
        batch.drop_column("source")
    op.drop_index("ix_status_edits_object_id", table_name="status_edits")
    op.drop_table("status_edits")

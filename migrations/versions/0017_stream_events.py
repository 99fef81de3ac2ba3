"""The streaming API's events (issue 13): one row per post, edit, delete, boost or notification.

Written just before the commit of the change it reports (one multi-row INSERT per commit that
stored a post, boost or notification; none otherwise), so a rolled-back change streams nothing.
No trigger and no NOTIFY: pg_notify takes a cluster-wide lock at every commit, listened to or
not. Processes with open streams poll the table by primary key instead, only while a stream is
open (fedsph/api/stream_hub.py); with no stream open nothing reads it.

Revision ID: 0017_stream_events
Revises: 0016_status_edits
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_stream_events"
down_revision = "0016_status_edits"
branch_labels = None
depends_on = None



def upgrade() -> None:
    # AUTOINCREMENT on SQLite: ids never go back to 1 when the prune empties the table, so an
    # open stream that remembers the last id it read keeps seeing new rows.
    op.create_table(
        "stream_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("visibility", sa.String(16), nullable=True),
        sa.Column("local", sa.Boolean(), nullable=True),
        sa.Column("shown", sa.Boolean(), nullable=True),
        sa.Column("tags", sa.String(1024), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("stream_events")

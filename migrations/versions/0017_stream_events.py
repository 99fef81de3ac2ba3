"""The streaming API's events (issue 13): one row per post, edit, delete, boost or notification.

Written in the transaction of the change it reports, so a rolled-back change streams nothing.
On PostgreSQL a statement trigger sends NOTIFY fedsph_stream_events, which PostgreSQL delivers
at commit to the serve processes that hold streams (fedsph/api/stream_hub.py): the writer pays
for no extra statement. SQLite has no NOTIFY: processes with open streams poll the table.

Revision ID: 0017_stream_events
Revises: 0016_status_edits
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_stream_events"
down_revision = "0016_status_edits"
branch_labels = None
depends_on = None

CHANNEL = "fedsph_stream_events"


def upgrade() -> None:
    op.create_table(
        "stream_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"""
        CREATE FUNCTION fedsph_stream_events_notify() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', '');
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql""")
    op.execute("""
        CREATE TRIGGER stream_events_notify AFTER INSERT ON stream_events
        FOR EACH STATEMENT EXECUTE FUNCTION fedsph_stream_events_notify()""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS stream_events_notify ON stream_events")
        op.execute("DROP FUNCTION IF EXISTS fedsph_stream_events_notify()")
    op.drop_table("stream_events")

"""Inbox items record whether the actor signed the request itself (not a relay for it).

An actor's Update of itself is read as its new document when the actor's own server sent it:
that is as fresh as a fetch (fedsph/federation/actors.py). Whether it did is known only at the inbox, where
the signature is checked, so the worker reads it from the item. Rows received before this were
not marked, and fall back to the proof's time.

Revision ID: 0009_inbox_signer
Revises: 0008_remote_urls
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_inbox_signer"
down_revision = "0008_remote_urls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbox_items") as batch:
        batch.add_column(sa.Column("signed_by_actor", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("inbox_items") as batch:
        batch.drop_column("signed_by_actor")

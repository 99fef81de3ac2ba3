"""An index for the worker's in-order claim of inbox items (fedsph/federation/queue.py).

A claim skips an item while an earlier pending item of the same sender is being processed or
waits for a retry; this index finds those earlier items without reading the sender's whole
history.

Revision ID: 0012_inbox_order_index
Revises: 0011_hub_directory
"""

from alembic import op

revision = "0012_inbox_order_index"
down_revision = "0011_hub_directory"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_inbox_items_order", "inbox_items", ["actor_uri", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_inbox_items_order", table_name="inbox_items")

"""An optional e-mail address for each account, unique: members may log in with it (issue 13,
item 6). Existing accounts have none until one is set (`fedsph user email`).

Revision ID: 0018_user_email
Revises: 0017_stream_events
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_user_email"
down_revision = "0017_stream_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("email", sa.String(254), nullable=True))
    op.create_index("ix_users_email", "users", ["email"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_users_email", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email")

"""Account management (issue 14, item 2): a user can be disabled (`users.disabled_at`), the last
login is recorded (`users.last_login_at`), and a deleted local actor keeps its row as a tombstone
(`actors.deleted_at`): its handle stays reserved, and its key signs the `Delete` sent for it.

Downgrading drops these columns, and with them what they meant: every disabled user may log in
again, and every deleted actor's tombstone row becomes a live (empty) project or member again,
its name free to look up and its URL answering 200. Downgrade only a node that never disabled
nor deleted anyone, or disable and delete them again after upgrading back.

Revision ID: 0019_account_management
Revises: 0018_user_email
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_account_management"
down_revision = "0018_user_email"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("disabled_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("last_login_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("actors") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("actors") as batch:
        batch.drop_column("deleted_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("last_login_at")
        batch.drop_column("disabled_at")

"""E-mail (issue 14, item 3): the outgoing-mail queue, one-time links (password reset, address
confirmation), notices sent per member and topic, and two columns of users: the confirmed
address and the language mails are written in. Addresses set before this were set by an admin
(`fedsph user create --email`, `fedsph user email`) or typed into the invitation form: none is
confirmed here, so nothing is sent to an address nobody proved they read.

Revision ID: 0020_mail
Revises: 0019_account_management
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_mail"
down_revision = "0019_account_management"
branch_labels = None
depends_on = None


def _queue_columns() -> list[sa.Column]:
    return [
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime, nullable=False),
        sa.Column("locked_until", sa.DateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
    ]


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email_confirmed", sa.String(254), nullable=True))
        batch.add_column(sa.Column("language", sa.String(16), nullable=True))
    op.create_table(
        "outgoing_mails",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE")),
        sa.Column("to_address", sa.String(254), nullable=False),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("actors.id", ondelete="CASCADE")),
        sa.Column("sent_by", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("language", sa.String(16)),
        sa.Column("topic", sa.String(16)),
        sa.Column("invite_id", sa.Integer, sa.ForeignKey("invites.id", ondelete="SET NULL")),
        *_queue_columns(),
    )
    op.create_index("ix_outgoing_mails_due", "outgoing_mails", ["status", "next_attempt_at"])
    # One waiting notice per member and topic, even with two workers queueing at once.
    op.create_index("ux_outgoing_mails_notice", "outgoing_mails", ["user_id", "topic"],
                    unique=True,
                    sqlite_where=sa.text("status = 'pending' AND kind = 'notice'"),
                    postgresql_where=sa.text("status = 'pending' AND kind = 'notice'"))
    # One waiting reset and one waiting confirmation per member, whichever process queues.
    op.create_index("ux_outgoing_mails_link", "outgoing_mails", ["user_id", "kind"],
                    unique=True,
                    sqlite_where=sa.text("status = 'pending' AND kind IN ('reset', 'confirm')"),
                    postgresql_where=sa.text("status = 'pending' AND kind IN ('reset', 'confirm')"))
    op.create_table(
        "mail_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("email", sa.String(254)),
        sa.Column("password_mark", sa.String(64)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("used_at", sa.DateTime),
    )
    op.create_index("ix_mail_tokens_user_id", "mail_tokens", ["user_id"])
    # Only the rows that wait, for the look notices take every minute.
    op.create_index("ix_objects_held", "objects", ["id"],
                    sqlite_where=sa.text("approved = 0"),
                    postgresql_where=sa.text("approved = false"))
    op.create_index("ix_follows_pending", "follows", ["followed_id"],
                    sqlite_where=sa.text("state = 'pending'"),
                    postgresql_where=sa.text("state = 'pending'"))
    op.create_table(
        "mail_notices",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("topic", sa.String(16), primary_key=True),
        sa.Column("last_mailed_at", sa.DateTime),
        sa.Column("seen_up_to", sa.Integer, nullable=False),
        sa.Column("unsubscribed_at", sa.DateTime),
    )


def downgrade() -> None:
    op.drop_table("mail_notices")
    op.drop_index("ix_follows_pending", table_name="follows")
    op.drop_index("ix_objects_held", table_name="objects")
    op.drop_index("ix_mail_tokens_user_id", table_name="mail_tokens")
    op.drop_table("mail_tokens")
    op.drop_index("ux_outgoing_mails_link", table_name="outgoing_mails")
    op.drop_index("ux_outgoing_mails_notice", table_name="outgoing_mails")
    op.drop_index("ix_outgoing_mails_due", table_name="outgoing_mails")
    op.drop_table("outgoing_mails")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("language")
        batch.drop_column("email_confirmed")

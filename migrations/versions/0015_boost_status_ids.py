"""Boosts get status ids of their own, from the objects' id space (issue 13, item 4).

`reactions.status_id` is the client API id of an Announce's reblog wrapper
(fedsph/models/status_ids.py explains the shared counter, and `status_counter`, the last id
taken on SQLite). Existing boosts are numbered here after every existing post, in the order they
were made: their true place among older posts has no free number, so the first home timeline
read after the upgrade shows them above the posts they came after, once. They are numbered in
one statement (row_number), not one round trip per boost.

`followers_only` marks a boost not addressed to the public (read before as public).
(actor_id, status_id) serves home's boosts: those of the accounts one follows, newest first.

Revision ID: 0015_boost_status_ids
Revises: 0014_conversations
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_boost_status_ids"
down_revision = "0014_conversations"
branch_labels = None
depends_on = None

BOOSTS = "SELECT count(*) FROM reactions WHERE type = 'Announce'"
# `base` is the first number to give; boosts in the order they were made.
NUMBER = ("UPDATE reactions SET status_id = :base + numbered.n - 1 FROM ("
          "SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM reactions "
          "WHERE type = 'Announce') AS numbered WHERE reactions.id = numbered.id")
SEQUENCE = "pg_get_serial_sequence('objects', 'id')"


def upgrade() -> None:
    op.create_table(
        "status_counter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_counter")))
    with op.batch_alter_table("reactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("followers_only", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.create_index(batch_op.f("ix_reactions_status_id"), ["status_id"], unique=True)
        batch_op.create_index("ix_reactions_actor_status", ["actor_id", "status_id"])
    bind = op.get_bind()
    boosts = bind.execute(sa.text(BOOSTS)).scalar()
    if boosts and bind.dialect.name == "postgresql":
        base = bind.execute(sa.text(f"SELECT nextval({SEQUENCE})")).scalar()
        bind.execute(sa.text(NUMBER), {"base": base})
        bind.execute(sa.text(f"SELECT setval({SEQUENCE}, :last)"), {"last": base + boosts - 1})
    elif boosts:
        base = bind.execute(sa.text("SELECT coalesce(max(id), 0) + 1 FROM objects")).scalar()
        bind.execute(sa.text(NUMBER), {"base": base})
    # The last status id taken (used on SQLite only; PostgreSQL's sequence is its own record).
    op.execute("INSERT INTO status_counter (id, n) SELECT 1, coalesce(max(n), 0) FROM ("
               "SELECT max(id) AS n FROM objects UNION ALL "
               "SELECT max(status_id) AS n FROM reactions) AS highest")


def downgrade() -> None:
    with op.batch_alter_table("reactions", schema=None) as batch_op:
        batch_op.drop_index("ix_reactions_actor_status")
        batch_op.drop_index(batch_op.f("ix_reactions_status_id"))
        batch_op.drop_column("followers_only")
        batch_op.drop_column("status_id")
    op.drop_table("status_counter")

"""Boosts get status ids of their own, from the objects' id space (issue 13, item 4).

`reactions.status_id` is the client API id of an Announce's reblog wrapper
(fedsph/models/status_ids.py explains the shared counter). Existing boosts are numbered here
after every existing post, in the order they were made: their true place among older posts has
no free number, so the first home timeline read after the upgrade shows them above the posts
they came after, once.

Revision ID: 0015_boost_status_ids
Revises: 0014_conversations
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_boost_status_ids"
down_revision = "0014_conversations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_reactions_status_id"), ["status_id"], unique=True)
    bind = op.get_bind()
    boosts = bind.execute(sa.text(
        "SELECT id FROM reactions WHERE type = 'Announce' ORDER BY created_at, id")).scalars().all()
    if bind.dialect.name == "postgresql":
        take = sa.text("SELECT nextval(pg_get_serial_sequence('objects', 'id'))")
        numbers = [bind.execute(take).scalar() for _ in boosts]
    else:
        start = bind.execute(sa.text("SELECT coalesce(max(id), 0) FROM objects")).scalar()
        numbers = [start + i + 1 for i in range(len(boosts))]
    for reaction_id, number in zip(boosts, numbers, strict=True):
        bind.execute(sa.text("UPDATE reactions SET status_id = :n WHERE id = :id"),
                     {"n": number, "id": reaction_id})


def downgrade() -> None:
    with op.batch_alter_table("reactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reactions_status_id"))
        batch_op.drop_column("status_id")

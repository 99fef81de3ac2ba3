"""The network view: hubs and memberships, events and participants, solidarity links,
Ed25519 proof keys for local actors, relay subscriptions.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _actor_fk(name: str, index: bool = False) -> sa.Column:
    return sa.Column(name, sa.Integer(), sa.ForeignKey("actors.id", ondelete="CASCADE"),
                     nullable=False, index=index)


def upgrade() -> None:
    with op.batch_alter_table("actors") as batch:
        batch.add_column(sa.Column("proof_key_pem", sa.Text(), nullable=True))
    with op.batch_alter_table("follows") as batch:
        batch.add_column(sa.Column("relay", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))

    op.create_table(
        "hubs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("actor_id", sa.Integer(), sa.ForeignKey("actors.id", ondelete="CASCADE"),
                  nullable=False, unique=True),
        sa.Column("region", sa.String(length=32), nullable=True),
        sa.Column("auto_approve", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "hub_memberships",
        sa.Column("id", sa.Integer(), primary_key=True),
        _actor_fk("hub_id", index=True),
        _actor_fk("project_id", index=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("activity_uri", sa.String(length=2048), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("approved_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("hub_id", "project_id", name="uq_hub_memberships_pair"),
    )
    op.create_table(
        "events",
        sa.Column("object_id", sa.Integer(), sa.ForeignKey("objects.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("kind", sa.String(length=32), nullable=True),
        sa.Column("starts_at", sa.DateTime(), nullable=False, index=True),
        sa.Column("ends_at", sa.DateTime(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("online_url", sa.String(length=2048), nullable=True),
        sa.Column("join_mode", sa.String(length=16), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=True),
        sa.Column("interpretation", sa.JSON(), nullable=True),
        sa.Column("organizers", sa.JSON(), nullable=True),
        sa.Column("related_projects", sa.JSON(), nullable=True),
        sa.Column("note_id", sa.Integer(), sa.ForeignKey("objects.id", ondelete="SET NULL"),
                  nullable=True),
    )
    op.create_table(
        "event_participants",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("objects.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        _actor_fk("actor_id"),
        sa.Column("activity_uri", sa.String(length=2048), nullable=False, unique=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("event_id", "actor_id", name="uq_event_participants_pair"),
    )
    op.create_table(
        "solidarity_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        _actor_fk("proposer_id", index=True),
        _actor_fk("partner_id", index=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("offer_uri", sa.String(length=2048), nullable=False, unique=True),
        sa.Column("answer_uri", sa.String(length=2048), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
    )


def downgrade() -> None:
    for table in ("solidarity_links", "event_participants", "events", "hub_memberships", "hubs"):
        op.drop_table(table)
    with op.batch_alter_table("follows") as batch:
        batch.drop_column("relay")
    with op.batch_alter_table("actors") as batch:
        batch.drop_column("proof_key_pem")

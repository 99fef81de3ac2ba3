"""Every local actor gets its integrity proof key (FEP-8b32) here, once.

Actors made before proofs existed had none, and got one lazily: when their actor document was
served (a database write during a GET) or when they first published. Now a key is made only
when the actor is created (fedsph/federation/actors.py), so serving a document and sending an
activity only ever read it; the actors of older databases get theirs from this migration.

Revision ID: 0010_proof_keys
Revises: 0009_inbox_signer
"""

import sqlalchemy as sa
from alembic import op

from fedsph.federation.proofs import generate_proof_key

revision = "0010_proof_keys"
down_revision = "0009_inbox_signer"
branch_labels = None
depends_on = None

actors = sa.table("actors", sa.column("id", sa.Integer), sa.column("local", sa.Boolean),
                  sa.column("proof_key_pem", sa.Text))


def upgrade() -> None:
    conn = op.get_bind()
    keyless = conn.execute(sa.select(actors.c.id).where(
        actors.c.local.is_(True), actors.c.proof_key_pem.is_(None))).scalars().all()
    for actor_id in keyless:  # one key each: a key is never shared between actors
        conn.execute(actors.update().where(actors.c.id == actor_id)
                     .values(proof_key_pem=generate_proof_key()))


def downgrade() -> None:
    # The keys stay: once published in an actor document, other servers hold them, and proofs
    # already sent must keep verifying.
    pass

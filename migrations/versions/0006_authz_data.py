"""Data written under older, looser rules: domain blocks in the one normalised form (no port,
no trailing dot, IDNA), and OAuth app websites that are not http(s) removed.

Revision ID: 0006_authz
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from fedsph.core.safe_links import http_url
from fedsph.federation.blocks import parse_domain

revision = "0006_authz"
down_revision = "0005"
branch_labels = None
depends_on = None

BLOCKS = sa.table("blocks", sa.column("id", sa.Integer), sa.column("domain", sa.String))
APPS = sa.table("oauth_apps", sa.column("id", sa.Integer), sa.column("website", sa.String))


def _normalised(domain: str) -> str:
    try:
        return parse_domain(domain)
    except ValueError:
        return domain  # kept as it was: an admin can still see and lift it


def _normalise_blocks(connection) -> None:
    rows = connection.execute(sa.select(BLOCKS.c.id, BLOCKS.c.domain)
                              .where(BLOCKS.c.domain.is_not(None)).order_by(BLOCKS.c.id)).all()
    kept: dict[str, int] = {}
    for row in rows:
        domain = _normalised(row.domain)
        if domain in kept:  # `evil.example:8443` beside `evil.example`: one block is enough
            connection.execute(sa.delete(BLOCKS).where(BLOCKS.c.id == row.id))
        else:
            kept[domain] = row.id
    # The unique domain column allows the renames only once the duplicates are gone.
    originals = {row.id: row.domain for row in rows}
    for domain, block_id in kept.items():
        if domain != originals[block_id]:
            connection.execute(sa.update(BLOCKS).where(BLOCKS.c.id == block_id)
                               .values(domain=domain))


def upgrade() -> None:
    connection = op.get_bind()
    _normalise_blocks(connection)
    for row in connection.execute(sa.select(APPS.c.id, APPS.c.website)
                                  .where(APPS.c.website.is_not(None))).all():
        if http_url(row.website) is None:
            connection.execute(sa.update(APPS).where(APPS.c.id == row.id).values(website=None))


def downgrade() -> None:
    """Nothing to undo: the normalised values are valid under the old rules too."""

"""Statistics on the directory's facets that PostgreSQL's planner needs (issue 12, item 3).

A facet row is (facet, value): "living" is only ever a value of "stage". Without statistics on
both columns together the planner multiplies their selectivities and expects ten times fewer
rows than a filter matches (275 instead of 2,502 for stage=living at 10,000 members), so it
nests index lookups where a hash join of the two filters is twice as fast. SQLite has no such
statistics and needs none (its plans for the directory come from the indexes alone): there this
revision does nothing.

Revision ID: 0013_directory_facet_statistics
Revises: 0012_inbox_order_index
"""

from alembic import op

revision = "0013_directory_facet_statistics"
down_revision = "0012_inbox_order_index"
branch_labels = None
depends_on = None

STATISTICS = "st_hub_directory_facets_value"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"CREATE STATISTICS {STATISTICS} (dependencies, mcv) "
               "ON facet, value FROM hub_directory_facets")
    # Read now, not at the next autovacuum: the directory's first pages need them.
    op.execute("ANALYZE hub_directory_facets")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP STATISTICS IF EXISTS {STATISTICS}")

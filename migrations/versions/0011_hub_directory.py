"""The hub directory as a query: an index of the listed member projects, their filter values,
search text (SQLite: an FTS5 trigram table; PostgreSQL: a pg_trgm GIN index), and a
generation counter for caches.

The tables are created empty: filling them takes the application's code (the folding and
exports of fedsph.hub), which a migration must not import (a later revision's columns would
break this one). `fedsph serve` fills the index at start-up when a hub's approved members lack
rows (fedsph.hub.directory_index.rebuild_if_needed); from then on a flush hook keeps it.

Revision ID: 0011_hub_directory
Revises: 0010_proof_keys
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_hub_directory"
down_revision = "0010_proof_keys"
# fedsph/hub/directory_index.py FTS_TABLE names the same table (a migration runs no application
# code, so the name is spelled in both: change both together).
FTS_TABLE = "hub_directory_fts"
branch_labels = None
depends_on = None


def _keys() -> list:
    return [sa.Column("hub_id", sa.Integer, sa.ForeignKey(
                "actors.id", ondelete="CASCADE", name="fk_hub_directory_hub"), nullable=False),
            sa.Column("actor_id", sa.Integer, sa.ForeignKey(
                "actors.id", ondelete="CASCADE", name="fk_hub_directory_actor"),
                nullable=False)]


def upgrade() -> None:
    conn = op.get_bind()
    postgres = conn.dialect.name == "postgresql"
    # Sorting must follow code points on both engines, as Python's sort of folded names did.
    sort_type = sa.Text(collation="C") if postgres else sa.Text()
    op.create_table(
        "hub_directory", *_keys(),
        sa.Column("sort_name", sort_type, nullable=False),
        sa.Column("uri", sa.String(2048), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("local", sa.Boolean, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("name_map", sa.JSON),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("country", sa.String(64)),
        sa.Column("region", sa.String(64)),
        sa.Column("stage", sa.String(64)),
        sa.Column("lists", sa.JSON),
        sa.Column("homes_completed", sa.Integer, nullable=False),
        sa.Column("homes_planned", sa.Integer, nullable=False),
        sa.Column("homes_completed_raw", sa.Integer),
        sa.Column("homes_planned_raw", sa.Integer),
        sa.Column("latitude", sa.Float),
        sa.Column("longitude", sa.Float),
        sa.Column("precision", sa.String(32)),
        sa.Column("search_text", sa.Text, nullable=False),
        sa.Column("feature", sa.Text),
        sa.Column("csv_row", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("hub_id", "actor_id", name="pk_hub_directory"))
    op.create_index("ix_hub_directory_order", "hub_directory", ["hub_id", "sort_name", "uri"])
    op.create_index("ix_hub_directory_actor", "hub_directory", ["actor_id"])
    op.create_table(
        "hub_directory_facets", *_keys(),
        sa.Column("facet", sa.String(16), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("hub_id", "actor_id", "facet", "value",
                                name="pk_hub_directory_facets"))
    op.create_index("ix_hub_directory_facets_value", "hub_directory_facets",
                    ["hub_id", "facet", "value", "actor_id"])
    op.create_index("ix_hub_directory_facets_actor", "hub_directory_facets", ["actor_id"])
    op.create_table(
        "hub_directory_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hub_directory_state"))
    op.execute("INSERT INTO hub_directory_state (id, generation) VALUES (1, 0)")
    if postgres:
        # pg_trgm is a trusted extension: the database's owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_hub_directory_search ON hub_directory "
                   "USING gin (search_text gin_trgm_ops)")
    else:
        # Text already folded in Python (directory.fold); trigrams give substring matches.
        op.execute(f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(text, tokenize='trigram')")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    op.drop_table("hub_directory_state")
    op.drop_table("hub_directory_facets")
    op.drop_table("hub_directory")

"""Direct messages are their own visibility: who a direct post addresses, and old rows fixed.

Received posts addressed neither to as:Public nor to their author's followers collection were
stored as `followers`; they were direct messages. Their stored AS2 document tells, so they are
reclassified here with the rule of fedsph/federation/visibility.py (restated: a migration must not change
when the code does) and their addressees are recorded.

Revision ID: 0007
Revises: 0006_authz
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006_authz"
branch_labels = None
depends_on = None

PUBLIC = {"https://www.w3.org/ns/activitystreams#Public", "as:Public", "Public"}


def _ids(value) -> list[str]:
    items = value if isinstance(value, list) else [value]
    ids = [i.get("id") if isinstance(i, dict) else i for i in items]
    return [i for i in ids if isinstance(i, str) and i.startswith(("http://", "https://"))]


def _addressees(document: dict, followers_url: str | None) -> list[str] | None:
    """The addressed actors when `document` is a direct post, else None."""
    to, cc = _ids(document.get("to")), _ids(document.get("cc"))
    if set(to + cc) & PUBLIC or (followers_url and followers_url in to + cc):
        return None
    tags = document.get("tag") if isinstance(document.get("tag"), list) else [document.get("tag")]
    mentions = _ids([t.get("href") for t in tags if isinstance(t, dict)
                     and t.get("type") == "Mention"])
    return list(dict.fromkeys(u for u in to + cc + mentions if u != followers_url))[:100]


def upgrade() -> None:
    op.create_table(
        "object_audience",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("object_id", sa.Integer(), sa.ForeignKey("objects.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("actor_uri", sa.String(length=2048), nullable=False, index=True),
        sa.UniqueConstraint("object_id", "actor_uri", name="uq_object_audience_pair"),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.text(
        "SELECT objects.id, objects.document, actors.followers_url FROM objects "
        "JOIN actors ON actors.id = objects.actor_id "
        "WHERE objects.visibility = 'followers' AND objects.local = :false "
        "AND objects.document IS NOT NULL"), {"false": False}).all()
    for object_id, document, followers_url in rows:
        document = json.loads(document) if isinstance(document, str) else document
        addressed = _addressees(document, followers_url) if isinstance(document, dict) else None
        if addressed is None:
            continue
        connection.execute(sa.text("UPDATE objects SET visibility = 'direct' WHERE id = :id"),
                           {"id": object_id})
        for uri in addressed:
            connection.execute(sa.text(
                "INSERT INTO object_audience (object_id, actor_uri) VALUES (:id, :uri)"),
                {"id": object_id, "uri": uri})


def downgrade() -> None:
    # Rows stay `direct`: the older code does not know it (its home timeline shows them to the
    # author's followers again, the leak this revision fixed).
    op.drop_table("object_audience")

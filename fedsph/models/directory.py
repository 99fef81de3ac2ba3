"""The hub directory's index: one row per listed member project, its filter values, and a
generation counter that tells every process when what the directory shows has changed.

Derived data: fedsph/hub/directory_index.py writes it from the actors and memberships in the same
transaction that changes them, and can rebuild it from scratch (the 0011 migration does).
The search text also lives in an SQLite FTS5 table (`hub_directory_fts`, rowid = actor id),
which the migration creates with raw SQL: it has no model.
"""

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fedsph.models.base import Base


class DirectoryEntry(Base):
    """A member project as the directory lists, filters, sorts, maps and exports it."""

    __tablename__ = "hub_directory"

    hub_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"),
                                        primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"),
                                          primary_key=True)
    sort_name: Mapped[str] = mapped_column(Text)  # folded name; binary ("C") order
    uri: Mapped[str] = mapped_column(String(2048))
    host: Mapped[str] = mapped_column(String(255))  # of the URI: for domain blocks
    local: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(Text)  # name or username
    name_map: Mapped[dict | None] = mapped_column(JSON)
    url: Mapped[str] = mapped_column(String(2048))  # url or uri
    country: Mapped[str | None] = mapped_column(String(64))  # only when a string
    region: Mapped[str | None] = mapped_column(String(64))  # as exported
    stage: Mapped[str | None] = mapped_column(String(64))  # only when a string
    lists: Mapped[dict | None] = mapped_column(JSON)  # approach, tenure, themes, languages
    homes_completed: Mapped[int] = mapped_column(Integer, default=0)  # counted (> 0) ints
    homes_planned: Mapped[int] = mapped_column(Integer, default=0)
    homes_completed_raw: Mapped[int | None] = mapped_column(Integer)  # as exported
    homes_planned_raw: Mapped[int | None] = mapped_column(Integer)
    latitude: Mapped[float | None] = mapped_column(Float)  # public_point: already rounded
    longitude: Mapped[float | None] = mapped_column(Float)
    precision: Mapped[str | None] = mapped_column(String(32))
    search_text: Mapped[str] = mapped_column(Text)  # directory.searchable_text
    # The project's GeoJSON Feature (None without coordinates) and CSV line, written with the
    # row: an export of 10,000 projects is then a concatenation read from the database.
    feature: Mapped[str | None] = mapped_column(Text)
    csv_row: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_hub_directory_order", "hub_id", "sort_name", "uri"),
                      Index("ix_hub_directory_actor", "actor_id"))


class DirectoryFacet(Base):
    """One filter value of a listed project: (facet, value) such as ("country", "UY").

    Languages are stored twice: "language" as the base tag the filter form offers ("es"), and
    "language_tag" as published, lower-cased ("es-uy"), which the filter matches.
    """

    __tablename__ = "hub_directory_facets"

    hub_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"),
                                        primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"),
                                          primary_key=True)
    facet: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)

    __table_args__ = (Index("ix_hub_directory_facets_value", "hub_id", "facet", "value",
                            "actor_id"),
                      Index("ix_hub_directory_facets_actor", "actor_id"))


class DirectoryState(Base):
    """One row: bumped by every change of the index (and of blocks), read by each request, so
    per-process caches of the directory know when to drop what they hold."""

    __tablename__ = "hub_directory_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)

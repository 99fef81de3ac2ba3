"""Which database errors mean "the database is away or busy, try again later" rather than a bug.

SQLite says OperationalError (locked, busy); asyncpg raises OSError while PostgreSQL is down, and
SQLAlchemy maps some of PostgreSQL's passing refusals to a plain DBAPIError: a deadlock or
serialization failure (class 40), a lost connection (08), a server shutting down or starting up
(57), a lock not available (55P03). Those are read from the error's SQLSTATE.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

PASSING_CLASSES = ("40", "08", "57")
LOCK_NOT_AVAILABLE = "55P03"
DEADLOCK = "40P01"


def sqlstate(exc: BaseException) -> str:
    """The PostgreSQL SQLSTATE a DBAPIError carries ('' if none: SQLite, or not from the
    server)."""
    if not isinstance(exc, DBAPIError):
        return ""
    return str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")


def database_away(exc: BaseException) -> bool:
    """True for an error worth waiting out: nothing is lost, the rows stay for a later try."""
    if isinstance(exc, (OperationalError, InterfaceError, OSError)):
        return True
    state = sqlstate(exc)
    return state.startswith(PASSING_CLASSES) or state == LOCK_NOT_AVAILABLE

"""Which database errors mean "the database is away or busy, try again later" rather than a bug.

An explicit list of PostgreSQL SQLSTATEs, not whole classes: class 57 also holds 57014 (a
statement timeout or cancel: this statement, not the database, is the trouble; the mail sender
counts it as a try) and 57P04 (a dropped database: not coming back). Without a SQLSTATE:
asyncpg raises OSError while PostgreSQL is down; SQLAlchemy marks an error that lost the
connection (connection_invalidated); SQLite says "database is locked/busy". Any other
OperationalError or InterfaceError (a schema error, a query with too many parameters) is a bug
of the statement, and waiting would only repeat it.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

AWAY_STATES = frozenset({
    "40001",  # serialization failure
    "40P01",  # deadlock victim
    "08000", "08001", "08003", "08004", "08006",  # connection failures
    "57P01", "57P02", "57P03",  # admin/crash shutdown, cannot connect now (starting up)
    "55P03",  # lock not available
    "53300", "53200",  # too many connections, out of memory
    "53100",  # disk full: nothing is lost by waiting; an admin frees space, the rows go on
    "25006",  # read-only transaction: a standby during a failover, soon a primary again
})
LOCK_NOT_AVAILABLE = "55P03"
# A transaction PostgreSQL ended to let another go on: a deadlock's victim (an actor's deletion
# against a writer: projects/deletion.py) or a serialization failure. Nothing of it stayed; the
# same work done again normally succeeds.
DEADLOCK, SERIALIZATION_FAILURE = "40P01", "40001"
LOCK_CONFLICTS = frozenset({DEADLOCK, SERIALIZATION_FAILURE})
STATEMENT_TIMEOUT = "57014"  # also a cancel: not "away", but worth another try later
SQLITE_BUSY_WORDS = ("database is locked", "database is busy", "database table is locked")


def sqlstate(exc: BaseException) -> str:
    """The PostgreSQL SQLSTATE a DBAPIError carries ('' if none: SQLite, or not from the
    server)."""
    if not isinstance(exc, DBAPIError):
        return ""
    return str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")


def lock_conflict(exc: BaseException) -> bool:
    """Whether `exc` is the database ending this transaction in favour of another: worth
    running again (deletions, the worker) or answering 503 (web and API), not a bug."""
    return sqlstate(exc) in LOCK_CONFLICTS


def database_away(exc: BaseException) -> bool:
    """True for an error worth waiting out: nothing is lost, the rows stay for a later try."""
    if isinstance(exc, OSError):  # asyncpg while PostgreSQL is down or unreachable
        return True
    if not isinstance(exc, DBAPIError):
        return False
    state = sqlstate(exc)
    if state:
        return state in AWAY_STATES
    if exc.connection_invalidated:  # SQLAlchemy saw the connection go
        return True
    if isinstance(exc.orig, OSError):
        return True
    if isinstance(exc, InterfaceError) and "connection" in str(exc.orig).lower() and (
            "closed" in str(exc.orig).lower()):  # asyncpg's lost connection, not yet marked
        return True
    return (isinstance(exc, OperationalError)
            and any(word in str(exc.orig).lower() for word in SQLITE_BUSY_WORDS))

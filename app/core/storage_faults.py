"""Which database errors are storage faults: the database cannot store or read right now
(a read-only, full or failing disk, a read-only transaction or standby, a lost
connection, an operator's shutdown), as opposed to a bug in a query.

A storage fault says nothing about the request, so the API answers it with a 503 and
`Retry-After` rather than a 500; and the connection that met one is dropped, because it
may keep the fault after the database has recovered (PostgreSQL reads
`default_transaction_read_only` when a session starts; SQLite opens a file it cannot
write read-only, for the connection's lifetime).
"""

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# Primary result codes (the low byte of an extended code such as SQLITE_IOERR_WRITE).
SQLITE_BUSY = 5  # the write lock was not had within the busy timeout
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14
SQLITE_FAULTS = frozenset(
    {SQLITE_BUSY, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN}
)

# 25006 read_only_sql_transaction (a read-only database, a standby), 42501
# insufficient_privilege (INSERT revoked from the role); the classes 08 connection
# exception, 53 insufficient resources (disk full, out of memory, too many
# connections), 57P operator intervention (admin shutdown, crash shutdown, cannot
# connect now), 58 system error (I/O error).
SQLSTATES = frozenset({"25006", "42501"})
SQLSTATE_PREFIXES = ("08", "53", "57P", "58")


def driver_fault(error: BaseException | None) -> str | None:
    """The driver's name for the storage fault `error` is (`SQLITE_IOERR_WRITE`,
    `SQLSTATE 25006`), or None when it is some other error."""
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in SQLITE_FAULTS:
        return str(getattr(error, "sqlite_errorname", f"SQLite error {code}"))
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and (
        sqlstate in SQLSTATES or sqlstate.startswith(SQLSTATE_PREFIXES)
    ):
        return f"SQLSTATE {sqlstate}"
    return None


def storage_fault(exc: BaseException) -> str | None:
    """What stopped the database, for an exception SQLAlchemy raised; None for a bug."""
    if isinstance(exc, PoolTimeout):
        return "no connection free"
    if not isinstance(exc, DBAPIError):
        return None
    fault = driver_fault(exc.orig)
    if fault is None and exc.connection_invalidated:
        return "connection lost"
    return fault


def keeps_connection_broken(error: BaseException) -> bool:
    """A fault after which the connection is better replaced: every one but a lock
    that was busy, which says nothing about the connection."""
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF == SQLITE_BUSY:
        return False
    return driver_fault(error) is not None

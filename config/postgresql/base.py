"""Django's PostgreSQL backend (settings ENGINE ``config.postgresql``), its pool's health check made cheap.

With DATABASE_POOL and CONN_HEALTH_CHECKS Django has psycopg_pool check every connection a request borrows by a
round trip (an empty query): ~0.5 ms of a 2-core machine's API request at load 2, and one process wake-up of
PostgreSQL per request. Here a borrowed connection is checked by that round trip only when its socket has
something to read: an idle connection receives nothing unless the server closed it (a restart, a crash, an
administrator's pg_terminate_backend: PostgreSQL sends its FATAL message and closes the socket), or sent a
notice between queries. Such a connection gets psycopg_pool's own check; when it fails the pool drops it and
hands out another one or a new one, so a PostgreSQL restart still fails no request. A connection that is already
closed or broken is refused at once. Everything else is Django's backend.
"""

import select

import psycopg
from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool


def check_connection(conn):
    """psycopg_pool's check of a pooled connection, by a round trip only if the idle socket is readable (the
    server closed it, or sent something while idle); raises as psycopg_pool's check does when it is unusable."""
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")  # psycopg_pool drops it and takes another
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN | select.POLLPRI)
    if poller.poll(0):
        ConnectionPool.check_connection(conn)


class DatabaseWrapper(base.DatabaseWrapper):
    """Django's PostgreSQL connection; with CONN_HEALTH_CHECKS its pool checks by check_connection above."""

    @property
    def pool(self):
        pool = super().pool
        if pool is not None and pool._check is ConnectionPool.check_connection:  # Django's choice, made once
            pool._check = check_connection
        return pool

"""Database work from async code: on the event loop's shared thread pool, the connection given back after."""

from asgiref.sync import sync_to_async
from django.db import close_old_connections


def db_in_thread(function):
    """Await a sync (database) function on the loop's small shared thread pool rather than on a thread of its
    own per request: a held stream must not hold a database connection. The thread's connection goes back
    to the pool (settings DATABASE_POOL) when the function returns, so idle pool threads hold none."""

    def call():
        close_old_connections()
        try:
            return function()
        finally:
            close_old_connections()

    return sync_to_async(call, thread_sensitive=False)()

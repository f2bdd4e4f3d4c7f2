"""One Redis connection pool per process for Django's cache.

Django keeps a cache object per async context, and its Redis backend makes a connection pool per cache
object: under the ASGI server every request would open (and leak) a new Redis connection. The cache's
``pool_class`` below hands every cache object the same pool for the same URL and options.
"""

import threading

from redis import ConnectionPool

_pools = {}
_lock = threading.Lock()


class SharedConnectionPool(ConnectionPool):
    """``from_url`` returns the process's pool for that URL (redis-py resets a pool after a fork itself)."""

    @classmethod
    def from_url(cls, url, **kwargs):
        key = (url, tuple(sorted((name, repr(value)) for name, value in kwargs.items())))
        with _lock:
            pool = _pools.get(key)
            if pool is None:
                pool = _pools[key] = ConnectionPool.from_url(url, **kwargs)
        return pool

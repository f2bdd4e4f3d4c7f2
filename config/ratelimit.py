"""The one rate limiter of the tool: a sliding window per key in Redis, in one round trip.

The API's throttle (config.api.TokenRateThrottle, requests per token) and the chat's question limit
(tutor.chat.conversations.check_rate_limit, questions per person, from the page and the API alike) both count
here. The window slides (a request counts for exactly `window` seconds after it was made, as DRF's own throttles
count), so a limit holds across a minute's boundary too; refused requests do not count. One Lua script per check:
drop what left the window, count, add this one if under the limit; DRF's cache-based throttle took two round
trips (GET, then SET of the request history) and was not atomic between processes. begin() is hit() in two
halves, so the API's request can wait for Redis and for its token's query at once.
"""

import threading
import time
import uuid

import redis
from django.conf import settings

PREFIX = "tutor:rate:"
CLIENT_NAME = "tutor-ratelimit"  # how the limiter's connections show in Redis's CLIENT LIST

_SCRIPT = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, math.ceil(window * 1000))
  return {1, count + 1, '0'}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
if oldest[2] == nil then  -- a limit of 0: nothing is ever counted, and waiting does not help
  return {0, count, tostring(window)}
end
return {0, count, tostring(tonumber(oldest[2]) + window - now)}
"""

_client = None
_script = None
_lock = threading.Lock()


def _check():
    """This process's Redis client and the registered script (created on first use)."""
    global _client, _script
    with _lock:
        if _script is None:
            _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=3,
                                           client_name=CLIENT_NAME)
            _script = _client.register_script(_SCRIPT)
        return _script


def begin(key, limit, window, *, now=None):
    """hit(), in two halves: the check is sent to Redis now, and the function returned reads Redis's answer, (allowed,
    seconds to wait) as hit() returns them. A request does its other round trip in between (the API token's query),
    so the two waits overlap instead of adding up. Call the function once: it hands the connection back. Where
    Redis cannot be reached, or has lost the script (a restart), the answer comes from hit() and its retries."""
    now = time.time() if now is None else now
    script = _check()
    pool = _client.connection_pool
    try:
        connection = pool.get_connection()
    except redis.RedisError:
        return lambda: hit(key, limit, window, now=now)
    try:
        connection.send_command("EVALSHA", script.sha, 1, PREFIX + key, now, window, limit, uuid.uuid4().hex)
    except redis.RedisError:  # redis-py has closed the connection
        pool.release(connection)
        return lambda: hit(key, limit, window, now=now)

    def answer():
        try:
            reply = connection.read_response()
        except (redis.exceptions.NoScriptError, redis.ConnectionError, redis.TimeoutError):
            reply = None
        finally:
            pool.release(connection)
        if reply is None:  # (a reply lost on the way may have counted this request twice)
            return hit(key, limit, window, now=now)
        allowed, _count, wait = reply
        return bool(allowed), max(0.0, float(wait))

    return answer


def hit(key, limit, window, *, now=None):
    """Count one request under `key` if fewer than `limit` were counted in the last `window` seconds (now: the
    moment, time.time() unless given). Returns (allowed, seconds until one more would be allowed: 0 when allowed)."""
    now = time.time() if now is None else now
    allowed, _count, wait = _check()(keys=[PREFIX + key], args=[now, window, limit, uuid.uuid4().hex])
    return bool(allowed), max(0.0, float(wait))

"""Inference capacity: how many requests each model server works on at once, shared by every worker process.

A model server has a few slots (llama-cpp-python's server: one; vLLM: as many as its batch holds). Requests
beyond them wait here, in a queue kept in Redis, instead of piling up on the server (where llama-cpp-python's
default interrupts the running answer, and a long server queue shows the person nothing). Chat waits ahead of
batch work (question generation), and batch work may hold at most ``INFERENCE_BATCH_SLOTS`` of the slots, so
a generation run never takes the slot a student's question needs. A waiting request learns how many requests
are ahead of it (the chat page says so). A holder that dies is released when its lease runs out; a waiter
that stops asking leaves the queue after ``STALE_WAITER_MS``.
"""

import hashlib
import logging
import time
import uuid
from contextlib import contextmanager

import redis
from django.conf import settings

log = logging.getLogger(__name__)

CHAT, BATCH = "chat", "batch"
STALE_WAITER_MS = 15_000
POLL_FIRST, POLL_OTHERS = 0.05, 0.25  # seconds between asks: next in line, further back
HEARTBEAT_SECONDS = 10  # on_wait is called at least this often while waiting, so streams never look silent

# KEYS: holders, batch holders, waiting, last seen. ARGV: now ms, id, slots, batch slots, kind, lease ms, order.
# Returns {1, 0} when the slot is taken, else {0, requests ahead of this one}.
_ACQUIRE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
for _, member in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  local seen = tonumber(redis.call('HGET', KEYS[4], member) or '0')
  if seen < now - tonumber(ARGV[8]) and member ~= ARGV[2] then
    redis.call('ZREM', KEYS[3], member)
    redis.call('HDEL', KEYS[4], member)
  end
end
if not redis.call('ZSCORE', KEYS[3], ARGV[2]) then
  redis.call('ZADD', KEYS[3], ARGV[7], ARGV[2])
end
redis.call('HSET', KEYS[4], ARGV[2], now)
local held = redis.call('ZCARD', KEYS[1])
local rank = redis.call('ZRANK', KEYS[3], ARGV[2])
local free = tonumber(ARGV[3]) - held
local batch_full = ARGV[5] == 'batch' and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4])
if rank < free and not batch_full then
  redis.call('ZREM', KEYS[3], ARGV[2])
  redis.call('HDEL', KEYS[4], ARGV[2])
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[6]), ARGV[2])
  if ARGV[5] == 'batch' then
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[6]), ARGV[2])
  end
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], 86400000) end
  return {1, 0}
end
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], 86400000) end
return {0, math.max(1, held + rank - tonumber(ARGV[3]) + 1)}
"""


class QueueTimeout(Exception):
    """No slot of the model server became free within the allowed waiting time."""


_client = None
_script = None


def _redis():
    global _client, _script
    if _client is None:
        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=3)
        _script = _client.register_script(_ACQUIRE)
    return _client


def _keys(endpoint_url):
    tag = hashlib.sha256(endpoint_url.rstrip("/").encode()).hexdigest()[:16]
    prefix = f"inference:slots:{tag}"
    return [f"{prefix}:holders", f"{prefix}:batch", f"{prefix}:waiting", f"{prefix}:seen"]


EMBEDDED_SERVER = "http://127.0.0.1:8089/v1"  # deploy/stack.py's llama.cpp server: one request at a time
DEFAULT_SLOTS = 16


def slots_for(endpoint_url):
    """(slots, batch slots) of a model server: settings.INFERENCE_SLOTS and INFERENCE_BATCH_SLOTS, by default 1
    for the embedded llama.cpp server and DEFAULT_SLOTS for any other."""
    slots = settings.INFERENCE_SLOTS or (1 if endpoint_url.rstrip("/") == EMBEDDED_SERVER else DEFAULT_SLOTS)
    batch = settings.INFERENCE_BATCH_SLOTS or max(1, slots - 1)
    return slots, max(1, min(batch, slots))


@contextmanager
def slot(endpoint_url, kind=CHAT, *, lease_seconds, on_wait=None, max_wait=None):
    """Hold one of the server's slots for the block; waits its turn (chat first), calling on_wait(ahead)
    when the number of requests ahead changes and every HEARTBEAT_SECONDS, and on_wait(0) once its turn came.
    QueueTimeout after max_wait seconds (settings.INFERENCE_QUEUE_SECONDS). Yields a function that extends
    the lease (long streams).

    If Redis cannot be reached the request goes ahead without a slot (logged): the model server is then the
    only queue, which is how it behaved before.
    """
    keys = _keys(endpoint_url)
    slots, batch_slots = slots_for(endpoint_url)
    request_id = uuid.uuid4().hex
    order = (0 if kind == CHAT else 1e15) + time.time() * 1000
    max_wait = settings.INFERENCE_QUEUE_SECONDS if max_wait is None else max_wait
    lease_ms = int(lease_seconds * 1000)
    deadline = time.monotonic() + max_wait
    last_ahead, last_report = None, 0.0
    held = False
    try:
        while True:
            try:
                client = _redis()
                taken, ahead = _script(keys=keys, args=[int(time.time() * 1000), request_id, slots, batch_slots,
                                                        kind, lease_ms, f"{order:.0f}", STALE_WAITER_MS],
                                       client=client)
            except redis.RedisError as exc:
                log.warning("inference slots: Redis unavailable (%s); sending the request without a slot", exc)
                yield lambda: None
                return
            if taken:
                held = True
                if on_wait is not None and last_ahead is not None:
                    on_wait(0)  # the wait is over: the model takes the request now
                break
            now = time.monotonic()
            if now > deadline:
                log.warning("inference slots: %s waited %.0f s for %s (%d ahead); gave up", kind, max_wait,
                            endpoint_url, ahead)
                raise QueueTimeout(ahead)
            if on_wait is not None and (ahead != last_ahead or now - last_report >= HEARTBEAT_SECONDS):
                on_wait(ahead)
                last_ahead, last_report = ahead, now
            time.sleep(POLL_FIRST if ahead <= 1 else POLL_OTHERS)

        def extend():
            try:
                _redis().zadd(keys[0], {request_id: int(time.time() * 1000) + lease_ms}, xx=True)
                if kind == BATCH:
                    _redis().zadd(keys[1], {request_id: int(time.time() * 1000) + lease_ms}, xx=True)
            except redis.RedisError:
                log.warning("inference slots: could not extend a lease", exc_info=True)

        yield extend
    finally:
        try:
            client = _redis()
            pipe = client.pipeline(transaction=False)
            if held:
                pipe.zrem(keys[0], request_id)
                pipe.zrem(keys[1], request_id)
            pipe.zrem(keys[2], request_id)
            pipe.hdel(keys[3], request_id)
            pipe.execute()
        except redis.RedisError:
            log.warning("inference slots: could not release a slot (its lease will end it)", exc_info=True)


def queue_length(endpoint_url):
    """(requests holding a slot, requests waiting) at a model server now (for status pages and metrics)."""
    holders, _batch, waiting, _seen = _keys(endpoint_url)
    now = int(time.time() * 1000)
    client = _redis()
    pipe = client.pipeline(transaction=False)
    pipe.zcount(holders, now, "+inf")
    pipe.zcard(waiting)
    held, queued = pipe.execute()
    return held, queued

"""Inference capacity: how many requests each model server works on at once, shared by every worker process.

A model server has a few slots (llama-cpp-python's server: one; vLLM: as many as its batch holds). Requests
beyond them wait here, in a queue kept in Redis, instead of piling up on the server (where llama-cpp-python's
default interrupts the running answer, and a long server queue shows the person nothing). Chat waits ahead of
batch work (question generation), and batch work may hold at most ``INFERENCE_BATCH_SLOTS`` of the slots, so
a generation run never takes the slot a student's question needs. A waiting request learns how many requests
are ahead of it (the chat page says so).

A held slot has a short lease (HOLD_LEASE_MS) that a thread of the holding process renews while the request
runs, however long the answer takes: a holder that dies (kill -9, a lost host) frees its slot within the lease,
a live one never loses it. A waiter that stops asking leaves the queue after ``STALE_WAITER_MS``.
"""

import hashlib
import logging
import os
import threading
import time
import uuid
from contextlib import contextmanager

import redis
from django.conf import settings

log = logging.getLogger(__name__)

CHAT, BATCH = "chat", "batch"
STALE_WAITER_MS = 15_000
HOLD_LEASE_MS = 30_000  # a held slot is freed this long after its holder's process stopped renewing it
POLL_FIRST, POLL_OTHERS = 0.05, 0.25  # seconds between asks: next in line, further back
HEARTBEAT_SECONDS = 10  # on_wait is called at least this often while waiting, so streams never look silent

# KEYS: holders, batch holders, waiting, last heard (a sorted set by time), the server's slot counts set at run
# time (set_slots). ARGV: now ms, id, slots, batch slots, kind, lease ms, order, stale ms.
# Returns {1, 0} when the slot is taken, else {0, requests ahead of this one}.
# Waiters that stopped asking are found by time in the sorted set (not by reading every waiter at each ask:
# hundreds of waiters asking four times a second made that quadratic).
_ACQUIRE = """
local now = tonumber(ARGV[1])
local set = redis.call('HMGET', KEYS[5], 'slots', 'batch')
if set[1] then ARGV[3] = set[1] end
if set[2] then ARGV[4] = set[2] end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local stale = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[8]))
for _, member in ipairs(stale) do
  if member ~= ARGV[2] then
    redis.call('ZREM', KEYS[3], member)
    redis.call('ZREM', KEYS[4], member)
  end
end
if not redis.call('ZSCORE', KEYS[3], ARGV[2]) then
  redis.call('ZADD', KEYS[3], ARGV[7], ARGV[2])
end
redis.call('ZADD', KEYS[4], now, ARGV[2])
local held = redis.call('ZCARD', KEYS[1])
local rank = redis.call('ZRANK', KEYS[3], ARGV[2])
local free = tonumber(ARGV[3]) - held
local batch_full = ARGV[5] == 'batch' and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4])
if rank < free and not batch_full then
  redis.call('ZREM', KEYS[3], ARGV[2])
  redis.call('ZREM', KEYS[4], ARGV[2])
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
    return [f"{prefix}:holders", f"{prefix}:batch", f"{prefix}:waiting", f"{prefix}:heard", f"{prefix}:limit"]


def set_slots(endpoint_url, slots=None, batch=None):
    """Set a model server's slots (and batch slots) for every process at once, at run time, over the settings
    (`manage.py inference_slots`); slots=None forgets them (the settings apply again)."""
    key = _keys(endpoint_url)[4]
    if slots is None:
        _redis().delete(key)
        return
    _redis().hset(key, mapping={"slots": max(1, int(slots)), "batch": max(1, min(int(batch or slots - 1 or 1),
                                                                                      int(slots)))})


def current_slots(endpoint_url):
    """(slots, batch slots) a model server has now: set at run time, else by the settings."""
    slots, batch = _redis().hmget(_keys(endpoint_url)[4], "slots", "batch")
    default = slots_for(endpoint_url)
    return (int(slots) if slots else default[0], int(batch) if batch else default[1])


EMBEDDED_SERVER = "http://127.0.0.1:8089/v1"  # deploy/stack.py's llama.cpp server: one request at a time
DEFAULT_SLOTS = 16


def slots_for(endpoint_url):
    """(slots, batch slots) of a model server: settings.INFERENCE_SLOTS and INFERENCE_BATCH_SLOTS, by default 1
    for the embedded llama.cpp server and DEFAULT_SLOTS for any other."""
    slots = settings.INFERENCE_SLOTS or (1 if endpoint_url.rstrip("/") == EMBEDDED_SERVER else DEFAULT_SLOTS)
    batch = settings.INFERENCE_BATCH_SLOTS or max(1, slots - 1)
    return slots, max(1, min(batch, slots))


@contextmanager
def slot(endpoint_url, kind=CHAT, *, on_wait=None, max_wait=None):
    """Hold one of the server's slots for the block; waits its turn (chat first), calling on_wait(ahead)
    when the number of requests ahead changes and every HEARTBEAT_SECONDS, and on_wait(0) once its turn came.
    QueueTimeout after max_wait seconds (settings.INFERENCE_QUEUE_SECONDS). While the block runs, this
    process renews the slot's lease (HOLD_LEASE_MS); if the process dies, the slot is free when it runs out.

    If Redis cannot be reached the request goes ahead without a slot (logged): the model server is then the
    only queue, which is how it behaved before.
    """
    keys = _keys(endpoint_url)
    slots, batch_slots = slots_for(endpoint_url)
    request_id = uuid.uuid4().hex
    order = (0 if kind == CHAT else 1e15) + time.time() * 1000
    max_wait = settings.INFERENCE_QUEUE_SECONDS if max_wait is None else max_wait
    deadline = time.monotonic() + max_wait
    last_ahead, last_report = None, 0.0
    held = False
    try:
        while True:
            try:
                client = _redis()
                taken, ahead = _script(keys=keys, args=[int(time.time() * 1000), request_id, slots, batch_slots,
                                                        kind, HOLD_LEASE_MS, f"{order:.0f}", STALE_WAITER_MS],
                                       client=client)
            except redis.RedisError as exc:
                log.warning("inference slots: Redis unavailable (%s); sending the request without a slot", exc)
                yield
                return
            if taken:
                held = True
                _leases.hold(request_id, keys, kind)
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
        yield
    finally:
        if held:
            _leases.release(request_id)
        try:
            client = _redis()
            pipe = client.pipeline(transaction=False)
            if held:
                pipe.zrem(keys[0], request_id)
                pipe.zrem(keys[1], request_id)
            pipe.zrem(keys[2], request_id)
            pipe.zrem(keys[3], request_id)
            pipe.execute()
        except redis.RedisError:
            log.warning("inference slots: could not release a slot (its lease will end it)", exc_info=True)


class _Leases:
    """The slots this process holds, and the thread that renews their leases every third of HOLD_LEASE_MS
    (one Redis round trip for all of them)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.held = {}  # request id -> (keys, kind)
        self.thread = None
        self.pid = None

    def hold(self, request_id, keys, kind):
        """Renew this slot's lease from now on."""
        with self.lock:
            if self.pid != os.getpid():  # a forked child: its parent's thread is not running here
                self.held, self.thread, self.pid = {}, None, os.getpid()
            self.held[request_id] = (keys, kind)
            if self.thread is None:
                self.thread = threading.Thread(target=self._renew_forever, name="inference-slot-leases",
                                               daemon=True)
                self.thread.start()

    def release(self, request_id):
        """Stop renewing this slot's lease."""
        with self.lock:
            self.held.pop(request_id, None)

    def renew(self):
        """Push the lease of every slot held by this process HOLD_LEASE_MS into the future."""
        with self.lock:
            held = dict(self.held)
        if not held:
            return
        until = int(time.time() * 1000) + HOLD_LEASE_MS
        pipe = _redis().pipeline(transaction=False)
        for request_id, (keys, kind) in held.items():
            pipe.zadd(keys[0], {request_id: until}, xx=True)
            if kind == BATCH:
                pipe.zadd(keys[1], {request_id: until}, xx=True)
        pipe.execute()

    def _renew_forever(self):
        while True:
            time.sleep(HOLD_LEASE_MS / 3000)
            try:
                self.renew()
            except redis.RedisError:
                log.warning("inference slots: could not renew the leases of held slots", exc_info=True)


_leases = _Leases()


def queue_length(endpoint_url):
    """(requests holding a slot, requests waiting) at a model server now (for status pages and metrics)."""
    holders, _batch, waiting, _heard, _limit = _keys(endpoint_url)
    now = int(time.time() * 1000)
    client = _redis()
    pipe = client.pipeline(transaction=False)
    pipe.zcount(holders, now, "+inf")
    pipe.zcard(waiting)
    held, queued = pipe.execute()
    return held, queued

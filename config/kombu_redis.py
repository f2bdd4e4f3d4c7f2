"""Celery's Redis broker (kombu) as the tool reads and writes it, in one place.

Where kombu has a public API, it is used: a queue's length (all priority lists) is what ``queue_declare`` answers
as ``message_count``. Where it has none, this module holds the workaround for the versions in WRITTEN_FOR: the
name and layout of the ``unacked_index`` sorted set (delivery tag -> time taken) that kombu's restore sweep reads,
which the workers' visibility heartbeat (config.workers) re-stamps, and Celery's worker state of the requests a
worker holds. tests/test_config_kombu_redis.py fails on any other version and checks each assumption against the
installed source (docs/upgrade.md, "Libraries' internals").
"""

import time

WRITTEN_FOR = {"kombu": "5.7.0", "celery": "5.7.0"}


def queue_lengths(app, queues):
    """{queue: messages waiting in it, every priority} through kombu's channel API (queue_declare's count)."""
    with app.pool.acquire(block=True) as connection:
        channel = connection.default_channel
        return {queue: channel.queue_declare(queue=queue).message_count for queue in queues}


def unacked_index_key(app):
    """The Redis key of kombu's index of messages taken but not acknowledged (broker transport options)."""
    from kombu.transport.redis import Channel

    options = app.conf.broker_transport_options or {}
    return options.get("global_keyprefix", "") + options.get("unacked_index_key", Channel.unacked_index_key)


def unacked_count(client, index_key):
    """How many messages workers have taken and not acknowledged."""
    return client.zcard(index_key)


def restamp(client, tags, index_key, now=None):
    """Stamp these messages as taken now, in kombu's index (score: the time taken), only those still there (an
    acknowledged one stays gone); returns how many were stamped. kombu's restore sweep hands a message back to
    its queue once its stamp is older than the visibility timeout."""
    if not tags:
        return 0
    now = time.time() if now is None else now
    return client.zadd(index_key, dict.fromkeys(tags, now), xx=True, ch=True) or 0


def held_delivery_tags():
    """Delivery tags of the messages this worker holds now: running, reserved, waiting for their countdown
    (Celery's worker state)."""
    from celery.worker import state

    for _attempt in range(3):  # the sets change while the consumer works; a copy is retried
        try:
            requests = [*state.active_requests, *state.reserved_requests, *state.scheduled_requests]
            break
        except RuntimeError:
            continue
    else:
        return []
    tags = []
    for request in requests:
        tag = getattr(getattr(request, "message", None), "delivery_tag", None)
        if tag:
            tags.append(tag)
    return list(dict.fromkeys(tags))

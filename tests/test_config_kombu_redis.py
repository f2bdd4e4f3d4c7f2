"""Celery's Redis broker as the tool reads and writes it (config/kombu_redis.py): written for one kombu and Celery
version, each assumption checked against the installed source, and each function against the real Redis."""

import inspect
import time
import uuid
from importlib.metadata import version

import pytest
import redis
from django.conf import settings

from config import kombu_redis


def test_kombu_and_celery_are_the_versions_the_adapter_was_written_for():
    for package, written_for in kombu_redis.WRITTEN_FOR.items():
        assert version(package) == written_for, (
            f"{package} changed: check config/kombu_redis.py against its new source (the unacked index, the "
            "worker state), then set WRITTEN_FOR")


def test_the_unacked_index_is_where_and_what_the_adapter_assumes():
    from celery.worker import state
    from kombu.transport.redis import Channel, QoS

    assert Channel.unacked_index_key == "unacked_index"
    append, restore = inspect.getsource(QoS.append), inspect.getsource(QoS.restore_visible)
    assert "pipe.zadd(self.unacked_index_key, *zadd_args)" in append and "time()" in append  # tag -> time taken
    assert "ceil = time() - self.visibility_timeout" in restore and "byscore=True" in restore  # older: restored
    assert {"active_requests", "reserved_requests", "scheduled_requests"} <= set(vars(state))


@pytest.fixture
def queue():
    """A queue of its own on the test Redis, emptied afterwards."""
    from config.celery import app

    name = f"adapter-{uuid.uuid4().hex[:8]}"
    yield name
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(name)


def test_queue_lengths_count_every_priority(queue):
    from config.celery import app

    for priority in (0, 0, 3, 9):
        app.send_task("nothing.at.all", queue=queue, priority=priority)
    assert kombu_redis.queue_lengths(app, [queue]) == {queue: 4}


def test_restamping_moves_a_held_message_and_never_brings_back_an_acknowledged_one(queue):
    from config.celery import app

    client = redis.Redis.from_url(settings.REDIS_URL)
    index = kombu_redis.unacked_index_key(app)
    with app.connection_for_write() as connection:
        simple = connection.SimpleQueue(queue)
        simple.put({"n": 1})
        message = simple.get(timeout=5)
        taken = client.zscore(index, message.delivery_tag)
        assert taken == pytest.approx(time.time(), abs=60)
        assert kombu_redis.restamp(client, [message.delivery_tag], index, now=taken + 500) == 1
        assert client.zscore(index, message.delivery_tag) == taken + 500
        assert kombu_redis.unacked_count(client, index) >= 1
        message.ack()
        assert kombu_redis.restamp(client, [message.delivery_tag], index) == 0
        assert client.zscore(index, message.delivery_tag) is None
        simple.close()

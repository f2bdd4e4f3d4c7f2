"""The web side of the answer stream: one Redis pub/sub connection shared by every open stream."""

import asyncio

import redis
from django.conf import settings

from tutor.chat.relay import Relay


def test_one_connection_fans_out_to_every_stream_of_a_channel():
    publisher = redis.Redis.from_url(settings.REDIS_URL)

    async def scenario():
        hub = Relay()
        first = await hub.subscribe("tutor:test:1")
        second = await hub.subscribe("tutor:test:1")
        other = await hub.subscribe("tutor:test:2")
        await asyncio.to_thread(publisher.publish, "tutor:test:1", b"a")
        got = [await asyncio.wait_for(q.get(), 5) for q in (first, second)]
        await hub.unsubscribe("tutor:test:1", first)
        await asyncio.to_thread(publisher.publish, "tutor:test:1", b"b")
        later = await asyncio.wait_for(second.get(), 5)
        await hub.unsubscribe("tutor:test:1", second)
        await hub.unsubscribe("tutor:test:2", other)
        await asyncio.sleep(0.2)
        state = (first.empty(), other.empty(), hub.queues, await hub.client.pubsub_numsub("tutor:test:1"))
        hub.reader.cancel()
        await hub.client.aclose()
        return got, later, state

    got, later, (first_empty, other_empty, queues, numsub) = asyncio.run(scenario())
    assert got == [b"a", b"a"] and later == b"b"
    assert first_empty and other_empty and queues == {}
    assert numsub == [(b"tutor:test:1", 0)]

"""The web process's side of the answer stream: ONE Redis pub/sub connection fanned out to every open stream.

Each browser stream waits on its own asyncio queue; a single reader task per event loop reads the shared
pub/sub connection and puts each message into the queues of its channel. So a web process holds hundreds
of streams with one Redis connection and no thread per chat.
"""

import asyncio
import logging
import weakref

import redis.asyncio as aredis
from django.conf import settings

log = logging.getLogger(__name__)
SUBSCRIBE_TIMEOUT = 10


class Relay:
    """Subscriptions of this event loop's streams over one pub/sub connection."""

    def __init__(self):
        pool = aredis.BlockingConnectionPool.from_url(settings.REDIS_URL, max_connections=50, timeout=20)
        self.client = aredis.Redis(connection_pool=pool)
        self.pubsub = self.client.pubsub()
        self.queues = {}
        self.confirmed = {}
        self.lock = asyncio.Lock()
        self.reader = None

    async def subscribe(self, channel):
        """A queue receiving every message published on channel from now on (after Redis confirmed it)."""
        queue = asyncio.Queue()
        async with self.lock:
            waiting = self.queues.setdefault(channel, set())
            waiting.add(queue)
            if len(waiting) == 1:
                self.confirmed[channel] = asyncio.Event()
                await self.pubsub.subscribe(channel)
            confirmed = self.confirmed[channel]
            if self.reader is None or self.reader.done():
                self.reader = asyncio.get_running_loop().create_task(self._read())
        await asyncio.wait_for(confirmed.wait(), SUBSCRIBE_TIMEOUT)
        return queue

    async def unsubscribe(self, channel, queue):
        """Stop delivering channel's messages to queue (and leave the channel when nobody listens)."""
        async with self.lock:
            waiting = self.queues.get(channel, set())
            waiting.discard(queue)
            if not waiting:
                self.queues.pop(channel, None)
                self.confirmed.pop(channel, None)
                try:
                    await self.pubsub.unsubscribe(channel)
                except Exception:
                    log.warning("could not unsubscribe from %s", channel, exc_info=True)

    async def _read(self):
        while True:
            try:
                if not self.pubsub.subscribed:
                    await asyncio.sleep(0.05)
                    continue
                message = await self.pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("chat relay lost its Redis connection; reconnecting", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            if message is None:
                continue
            channel = message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
            if message["type"] == "subscribe":
                event = self.confirmed.get(channel)
                if event:
                    event.set()
            elif message["type"] == "message":
                for queue in list(self.queues.get(channel, ())):
                    queue.put_nowait(message["data"])

    async def mget(self, *keys):
        """A plain Redis MGET over the shared pool."""
        return await self.client.mget(keys)


_relays = weakref.WeakKeyDictionary()


def relay():
    """The Relay of the running event loop (one per web process under uvicorn)."""
    loop = asyncio.get_running_loop()
    found = _relays.get(loop)
    if found is None:
        found = _relays[loop] = Relay()
    return found

"""The answer stream's protocol, both ends: the chat worker appends an answer's pieces to a Redis buffer and
publishes them on the answer's channel (Publisher); the web process relays them to the browser as server-sent
events (answer_events), over its one pub/sub connection (tutor.chat.relay).

Channel messages are JSON: ``{"t": "delta", "text", "end"}`` (a piece and the buffer's length after it; at most
every RENDER_SECONDS also "html": the text so far rendered as the final message will be, tutor.payloads.answer_html),
``{"t": "queue", "ahead"}`` (waiting for a slot of the model server; 0 when its turn came),
``{"t": "quotes", "quotes"}`` (the tool's quotes from the course texts, before any piece of text; also kept under
quotes_key), ``{"t": "reset"}`` (the answer's text starts over) and ``{"t": "end", "status", "message"}`` (the final
payload of tutor.chat.payloads, without URLs; also kept under final_key for a stream opened after the end). The
browser gets ``snapshot`` (the text so far, with its "html"), ``quotes`` (with the reader's passage URLs),
``queue``, ``delta`` (with "html" where the worker rendered it) and ``final`` (with the reader's passage URLs)
events: the page shows the stream as the same sanitized Markdown as the finished answer, never its raw syntax.
"""

import asyncio
import json
import logging
import time

import redis
from django.conf import settings
from django.http import StreamingHttpResponse
from django.utils import timezone, translation

from config import metrics
from config.threads import db_in_thread
from tutor.chat.models import Message
from tutor.chat.payloads import answer_html, error_text, message_payload, payload, quote_urls, with_urls
from tutor.chat.relay import relay

log = logging.getLogger(__name__)

BUFFER_SECONDS = 3600
KEEPALIVE_SECONDS = 15
RENDER_SECONDS = 0.2  # the stream's rendered HTML at most this often (Markdown costs CPU; pieces come faster)


def channel(message_id):
    """The Redis pub/sub channel an answer's pieces are published on."""
    return f"tutor:chat:{message_id}"


def buffer_key(message_id):
    """The Redis key holding the answer text streamed so far (for reconnecting browsers)."""
    return f"tutor:chat:{message_id}:text"


def final_key(message_id):
    """The Redis key holding a finished answer's payload (see message_payload) for BUFFER_SECONDS."""
    return f"tutor:chat:{message_id}:final"


def quotes_key(message_id):
    """The Redis key holding the quotes an answer opens with (for a stream opened after they were published)."""
    return f"tutor:chat:{message_id}:quotes"


_redis = None


def redis_client():
    """This process's Redis client for publishing (created on first use, after any fork)."""
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10)
    return _redis


# --- The chat worker's end ---------------------------------------------------------------------------

class Publisher:
    """Appends answer pieces to the Redis buffer and publishes them with their end offset."""

    def __init__(self, message_id):
        self.message_id = message_id
        self.client = redis_client()
        self.length = 0
        self.text = []
        self.rendered_at = None

    def reset(self):
        """Start the answer over: empty the buffer and tell listening streams."""
        self.text, self.length, self.rendered_at = [], 0, None
        self.client.delete(buffer_key(self.message_id), final_key(self.message_id))
        self._publish({"t": "reset"})

    def piece(self, text):
        """Append one piece of the answer and publish it with its end offset."""
        self.text.append(text)
        self.length += len(text)
        pipe = self.client.pipeline(transaction=False)
        if len(self.text) == 1:  # the first piece replaces whatever an interrupted earlier run left
            pipe.set(buffer_key(self.message_id), text.encode(), ex=BUFFER_SECONDS)
        else:  # APPEND keeps the key's expiry
            pipe.append(buffer_key(self.message_id), text.encode())
        event = {"t": "delta", "text": text, "end": self.length}
        now = time.monotonic()
        if self.rendered_at is None or now - self.rendered_at >= RENDER_SECONDS:
            event["html"] = answer_html("".join(self.text), streaming=True)
            self.rendered_at = now
        pipe.publish(channel(self.message_id), json.dumps(event))
        pipe.execute()

    def quotes(self, quotes):
        """Publish the tool's quotes (Quote.as_dict each), which open the answer, and keep them for late streams."""
        pipe = self.client.pipeline(transaction=False)
        pipe.set(quotes_key(self.message_id), json.dumps(quotes), ex=BUFFER_SECONDS)
        pipe.publish(channel(self.message_id), json.dumps({"t": "quotes", "quotes": quotes}))
        pipe.execute()

    def queued(self, ahead):
        """Tell the reader that the answer waits for the model: how many requests are ahead (0: its turn came)."""
        self._publish({"t": "queue", "ahead": ahead})

    def finish(self, status, message=None, citations=()):
        """Publish the end of the answer; with the finished message, also its final payload (the web relays it
        without reading the database) and keep that beside the buffer for a stream opened after the end."""
        event = {"t": "end", "status": status}
        if message is not None:
            event["message"] = payload(message, list(citations))
        try:
            pipe = self.client.pipeline(transaction=False)
            if message is not None:
                pipe.set(final_key(self.message_id), json.dumps(event["message"]), ex=BUFFER_SECONDS)
            pipe.publish(channel(self.message_id), json.dumps(event))
            pipe.execute()
        except redis.RedisError:
            log.exception("could not publish to %s", channel(self.message_id))

    def _publish(self, event):
        try:
            self.client.publish(channel(self.message_id), json.dumps(event))
        except redis.RedisError:
            log.exception("could not publish to %s", channel(self.message_id))


def fail_if_unfinished(message_id, code="timeout"):
    """Mark an answer that never finished as failed (the web side gave up waiting); returns whether it did."""
    changed = Message.objects.filter(pk=message_id, status__in=[Message.PENDING, Message.STREAMING]).update(
        status=Message.FAILED, error=code, finished_at=timezone.now())
    return bool(changed)


# --- The web process's end -----------------------------------------------------------------------------

def sse(event, data):
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def _final_payload(message_id):
    found = Message.objects.select_related("conversation").get(pk=message_id)
    return message_payload(found)


def _for_reader(final, course_id, language):
    """A final payload the chat worker published, with the reader's passage URLs and error text in their language."""
    if final.get("error_code"):
        with translation.override(language):
            final["error"] = error_text(final["error_code"])
    return with_urls(final, course_id)


async def answer_events(message_id, course_id, *, fresh=False):
    """The SSE events of one answer: a snapshot of what exists, then each new piece, then the final message.

    The chat worker publishes the final message with the end of the answer (and keeps it in Redis for a stream
    opened after that), so a live answer is relayed without reading the database; fresh=True (the answer was
    queued by this very request) skips the database also for its state.
    """
    hub = relay()
    name = channel(message_id)
    language = translation.get_language()
    queue = await hub.subscribe(name)
    metrics.gauge_add("tutor_sse_streams_open", 1)
    try:
        buffered, final, quoted = await hub.mget(buffer_key(message_id), final_key(message_id),
                                                 quotes_key(message_id))
        if final:
            for event in _ended(_for_reader(json.loads(final), course_id, language)):
                yield event
            return
        if not fresh:
            status = await db_in_thread(
                lambda: Message.objects.filter(pk=message_id).values_list("status", flat=True)[0])
            if status in (Message.DONE, Message.FAILED):
                for event in _ended(await db_in_thread(lambda: _final_payload(message_id))):
                    yield event
                return
        buffered = (buffered or b"").decode()
        sent = len(buffered)
        if quoted:
            yield sse("quotes", {"quotes": quote_urls(json.loads(quoted), course_id)})
        yield sse("snapshot", {"text": buffered, "html": answer_html(buffered, streaming=True)})
        loop = asyncio.get_running_loop()
        last_activity = loop.time()
        while True:
            try:
                raw = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                if loop.time() - last_activity > settings.CHAT_STREAM_TIMEOUT:
                    await db_in_thread(lambda: fail_if_unfinished(message_id))
                    yield sse("final", await db_in_thread(lambda: _final_payload(message_id)))
                    return
                yield ": keepalive\n\n"
                continue
            last_activity = loop.time()
            data = json.loads(raw)
            if data["t"] == "delta":
                end, text = data["end"], data["text"]
                if end <= sent:
                    continue
                piece = text[len(text) - (end - sent):]
                sent = end
                yield sse("delta", {"text": piece, **({"html": data["html"]} if "html" in data else {})})
            elif data["t"] == "quotes":
                yield sse("quotes", {"quotes": quote_urls(data["quotes"], course_id)})
            elif data["t"] == "queue":  # waiting for the model: how many requests are ahead
                yield sse("queue", {"ahead": data["ahead"]})
            elif data["t"] == "reset":
                sent = 0
                yield sse("snapshot", {"text": "", "html": ""})
            elif data["t"] == "end":
                if "message" in data:
                    yield sse("final", _for_reader(data["message"], course_id, language))
                else:  # ended without its payload (a crashed answer): read it
                    yield sse("final", await db_in_thread(lambda: _final_payload(message_id)))
                return
    finally:
        metrics.gauge_add("tutor_sse_streams_open", -1)
        await hub.unsubscribe(name, queue)


def _ended(payload):
    """The events of an answer that had ended before its stream was opened: its quotes first, as a live stream
    sends them (an answer of quotes alone ends within a second, often before the client subscribes), then the
    final message."""
    if payload.get("quotes"):
        yield sse("quotes", {"quotes": payload["quotes"]})
    yield sse("final", payload)


async def accepted_events(accepted, course_id):
    """The events of a question just taken (``accepted``: the question as shown, the answer's id and stream URL,
    the conversation): an "accepted" event, then the answer's events as answer_events gives them."""
    yield sse("accepted", accepted)
    async for event in answer_events(accepted["answer_id"], course_id, fresh=True):
        yield event


def event_stream(events):
    """A streaming response of server-sent events, unbuffered by proxies."""
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response

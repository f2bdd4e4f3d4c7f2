"""The one client for the local inference server: OpenAI-compatible chat completions or Ollama's native API.

Streaming (SSE for OpenAI-compatible servers, NDJSON for Ollama), JSON-schema constrained output in each
server's own form, timeouts, bounded retries with backoff, failover over several endpoints, and token
counts to fit the model's context window (an estimate; the server's own tokenizer near the limit). Sync and
async variants share the request building and parsing. No other module talks to the LLM server, and it only
ever talks to the configured URLs.
"""

import asyncio
import json
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlparse

import httpx
from django.conf import settings
from django.utils.translation import gettext as _

log = logging.getLogger(__name__)

OPENAI, OLLAMA = "openai", "ollama"
JSON_SCHEMA, JSON_OBJECT_SCHEMA, OLLAMA_FORMAT = "json_schema", "json_object_schema", "ollama_format"
CHARS_PER_TOKEN = 3.5
BACKOFF_SECONDS = 0.5


_shared_sync = None
_shared_async = weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def _sync_http():
    """This process's pooled HTTP client (creating one costs ~20 ms, mostly its TLS context)."""
    global _shared_sync
    with _shared_lock:
        if _shared_sync is None:
            _shared_sync = httpx.Client(limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
        return _shared_sync


def _async_http():
    """A pooled async HTTP client for the running event loop."""
    loop = asyncio.get_running_loop()
    client = _shared_async.get(loop)
    if client is None or client.is_closed:
        client = _shared_async[loop] = httpx.AsyncClient(limits=httpx.Limits(max_connections=200))
    return client


class InferenceError(Exception):
    """Something went wrong talking to the inference server; ``reason`` is meant for a person."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class InferenceUnavailable(InferenceError):
    """No configured endpoint answered in time (down, refusing, overloaded or too slow)."""


class InferenceBadResponse(InferenceError):
    """The server answered, but not with what was asked for (bad JSON, unknown model, rejected request)."""


def count_tokens(text):
    """An approximate token count (about 3.5 characters a token for German and English text)."""
    return int(len(text or "") / CHARS_PER_TOKEN) + 1


def count_message_tokens(messages):
    """Approximate tokens of a chat message list, including a few per message for the chat template."""
    return sum(count_tokens(m["content"]) + 4 for m in messages)


TOKENIZE_TIMEOUT = 3.0
TOKENIZE_RECHECK_SECONDS = 600
_tokenize_routes = {}  # server root URL -> (route that counted, or None for none; when that was found out)


def _server_root(url):
    """The server's root URL: OpenAI-compatible base URLs end in /v1, the tokenizer routes sit beside it."""
    root = url.rstrip("/")
    return root[:-3] if root.endswith("/v1") else root


def _count_from(route, body):
    """The token count in a tokenize route's answer."""
    if isinstance(body.get("count"), int):  # vLLM /tokenize, llama-cpp-python /extras/tokenize/count
        return body["count"]
    if isinstance(body.get("tokens"), list):  # llama.cpp's llama-server /tokenize
        return len(body["tokens"])
    raise ValueError(f"no count in the answer of {route}")


def truncate_to_tokens(text, tokens):
    """The text cut to about `tokens` tokens (at a word boundary where possible)."""
    limit = int(tokens * CHARS_PER_TOKEN)
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit * 0.8 else cut) + " …"


@dataclass
class Endpoint:
    """One inference server: base URL, API flavour, model name, key and JSON-schema mode."""

    url: str
    api: str = OPENAI
    model: str = "smollm2"
    api_key: str = ""
    json_mode: str = JSON_OBJECT_SCHEMA

    def chat_url(self):
        """Where chat requests go."""
        base = self.url.rstrip("/")
        return base + ("/chat/completions" if self.api == OPENAI else "/api/chat")

    def headers(self):
        """Request headers (bearer token only when configured)."""
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers


def build_payload(endpoint, messages, *, stream, temperature=0.2, max_tokens=512, json_schema=None):
    """The request body for this endpoint's API, with the JSON schema in the server's own form."""
    if endpoint.api == OLLAMA:
        payload = {"model": endpoint.model, "messages": messages, "stream": stream,
                   "options": {"temperature": temperature, "num_predict": max_tokens}}
        if json_schema is not None:
            payload["format"] = json_schema
        return payload
    payload = {"model": endpoint.model, "messages": messages, "stream": stream,
               "temperature": temperature, "max_tokens": max_tokens}
    if json_schema is not None:
        if endpoint.json_mode == JSON_SCHEMA:
            payload["response_format"] = {"type": "json_schema",
                                          "json_schema": {"name": "answer", "strict": True, "schema": json_schema}}
        elif endpoint.json_mode == OLLAMA_FORMAT:
            payload["format"] = json_schema
        else:
            payload["response_format"] = {"type": "json_object", "schema": json_schema}
    return payload


def parse_sse_line(line):
    """The text delta in one line of an OpenAI-compatible SSE stream ('' for none); None at [DONE]."""
    line = line.strip()
    if not line.startswith("data:"):
        return ""
    data = line[5:].strip()
    if data == "[DONE]":
        return None
    try:
        event = json.loads(data)
    except json.JSONDecodeError:
        raise InferenceBadResponse(_("The language model sent an unreadable answer.")) from None
    if "error" in event:
        raise InferenceBadResponse(_("The language model reported an error: %(error)s")
                                   % {"error": str(event["error"])[:200]})
    choices = event.get("choices") or [{}]
    return (choices[0].get("delta") or {}).get("content") or ""


def parse_ndjson_line(line):
    """The text delta in one line of an Ollama NDJSON stream ('' for none); None when done."""
    line = line.strip()
    if not line:
        return ""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        raise InferenceBadResponse(_("The language model sent an unreadable answer.")) from None
    if "error" in event:
        raise InferenceBadResponse(_("The language model reported an error: %(error)s")
                                   % {"error": str(event["error"])[:200]})
    text = (event.get("message") or {}).get("content") or ""
    if event.get("done"):
        return text or None
    return text


def parse_completion(endpoint, body):
    """The full answer text of a non-streaming response."""
    try:
        if endpoint.api == OLLAMA:
            return body["message"]["content"]
        return body["choices"][0]["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        raise InferenceBadResponse(_("The language model sent an answer in an unexpected form.")) from None


@dataclass
class InferenceClient:
    """Talks to the configured endpoints in order (failover), each with bounded retries and backoff."""

    endpoints: list = field(default_factory=list)
    timeout: float = 60.0
    retries: int = 2
    context_tokens: int = 8192

    @classmethod
    def from_settings(cls, *, url=None, model=None, timeout=None):
        """A client for settings.INFERENCE_* (a course may override the URL, the model and the timeout)."""
        urls = [u.strip() for u in url.split(",") if u.strip()] if url else settings.INFERENCE_URLS
        for candidate in urls:
            if urlparse(candidate).hostname not in set(settings.INFERENCE_ALLOWED_HOSTS) | {
                    urlparse(u).hostname for u in settings.INFERENCE_URLS}:
                log.warning("inference URL %s is not on INFERENCE_ALLOWED_HOSTS; refused", candidate)
                raise InferenceBadResponse(_("This course's inference server is not one the institution allows."))
        endpoints = [Endpoint(url=u, api=settings.INFERENCE_API, model=model or settings.INFERENCE_MODEL,
                              api_key=settings.INFERENCE_API_KEY, json_mode=settings.INFERENCE_JSON_MODE)
                     for u in urls]
        return cls(endpoints=endpoints, timeout=float(timeout or settings.INFERENCE_TIMEOUT),
                   retries=settings.INFERENCE_RETRIES, context_tokens=settings.INFERENCE_CONTEXT_TOKENS)

    # --- shared pieces ---------------------------------------------------------------------------

    def _timeout(self):
        return httpx.Timeout(self.timeout, connect=min(5.0, self.timeout))

    def _attempts(self):
        """(endpoint, attempt number) in the order they are tried."""
        for endpoint in self.endpoints:
            for attempt in range(self.retries + 1):
                yield endpoint, attempt

    def _check_status(self, endpoint, response):
        if response.status_code >= 500 or response.status_code == 429:
            raise _Retryable(f"{endpoint.url}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise InferenceBadResponse(_("The language model server rejected the request (HTTP %(status)s).")
                                       % {"status": response.status_code})

    def _unavailable(self, errors):
        log.warning("inference unavailable: %s", "; ".join(errors))
        return InferenceUnavailable(_("The language model server is not reachable or did not answer in time."))

    def fit(self, messages, max_tokens, exact=True):
        """Raise InferenceBadResponse if the messages and the answer cannot fit the context window (counted
        by the server's tokenizer when the estimate says they do not, unless exact=False: async callers)."""
        needed = count_message_tokens(messages) + max_tokens
        if needed > self.context_tokens:
            counted = self.count_message_tokens_exactly(messages) if exact else None
            if counted is None or counted + max_tokens > self.context_tokens:
                raise InferenceBadResponse(_("The question is too long for the language model."))

    def count_message_tokens_exactly(self, messages):
        """Tokens of a chat message list by the model's own tokenizer on the first endpoint (a few per message
        added for the chat template), or None when the server offers no tokenizer route (Ollama) or does
        not answer: then the estimate is all there is.

        Tried in turn, and the one that answers remembered per server: /tokenize (vLLM; llama.cpp's
        llama-server) and /extras/tokenize/count (llama-cpp-python's server).
        """
        endpoint = self.endpoints[0] if self.endpoints else None
        if endpoint is None or endpoint.api != OPENAI:
            return None
        root = _server_root(endpoint.url)
        known, checked = _tokenize_routes.get(root, (False, 0.0))
        if known is None and time.monotonic() - checked < TOKENIZE_RECHECK_SECONDS:
            return None
        text = "\n".join(m["content"] for m in messages)
        routes = [known] if known else ["/tokenize", "/extras/tokenize/count"]
        for route in routes:
            body = {"model": endpoint.model, "prompt": text, "content": text, "input": text}
            try:
                response = _sync_http().post(root + route, json=body, headers=endpoint.headers(),
                                             timeout=TOKENIZE_TIMEOUT)
                if response.status_code != 200:
                    continue
                count = _count_from(route, response.json())
            except (httpx.HTTPError, ValueError) as exc:
                log.info("token count at %s%s failed: %s", root, route, exc)
                continue
            _tokenize_routes[root] = (route, time.monotonic())
            return count + 4 * len(messages)
        log.info("%s has no tokenizer route; token counts stay estimates", root)
        _tokenize_routes[root] = (None, time.monotonic())
        return None

    # --- sync ------------------------------------------------------------------------------------

    def stream_chat(self, messages, *, temperature=0.2, max_tokens=512, json_schema=None) -> Iterator[str]:
        """Yield the answer's text pieces as they arrive; fails over only before the first piece."""
        self.fit(messages, max_tokens)
        errors = []
        for endpoint, attempt in self._attempts():
            if attempt:
                time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
            started = False
            payload = build_payload(endpoint, messages, stream=True, temperature=temperature,
                                    max_tokens=max_tokens, json_schema=json_schema)
            parse = parse_sse_line if endpoint.api == OPENAI else parse_ndjson_line
            try:
                with _sync_http().stream("POST", endpoint.chat_url(), json=payload, headers=endpoint.headers(),
                                         timeout=self._timeout()) as response:
                    self._check_status(endpoint, response)
                    for line in response.iter_lines():
                        piece = parse(line)
                        if piece is None:
                            return
                        if piece:
                            started = True
                            yield piece
                return
            except (httpx.TransportError, _Retryable) as exc:
                if started:
                    log.warning("inference stream broke off at %s: %s", endpoint.url, exc)
                    raise InferenceUnavailable(_("The language model server stopped answering.")) from exc
                errors.append(f"{endpoint.url}: {exc.__class__.__name__}: {exc}")
        raise self._unavailable(errors)

    def chat(self, messages, *, temperature=0.2, max_tokens=512, json_schema=None):
        """The whole answer text (JSON text when a schema is given), with retries and failover."""
        self.fit(messages, max_tokens)
        errors = []
        for endpoint, attempt in self._attempts():
            if attempt:
                time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
            payload = build_payload(endpoint, messages, stream=False, temperature=temperature,
                                    max_tokens=max_tokens, json_schema=json_schema)
            try:
                response = _sync_http().post(endpoint.chat_url(), json=payload, headers=endpoint.headers(),
                                             timeout=self._timeout())
                self._check_status(endpoint, response)
                return parse_completion(endpoint, _json(response))
            except (httpx.TransportError, _Retryable) as exc:
                errors.append(f"{endpoint.url}: {exc.__class__.__name__}: {exc}")
        raise self._unavailable(errors)

    def chat_json(self, messages, schema, **kwargs):
        """The answer parsed as JSON, constrained by the schema in the server's own form."""
        text = self.chat(messages, json_schema=schema, **kwargs)
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise InferenceBadResponse(_("The language model did not answer with valid JSON.")) from None

    # --- async -----------------------------------------------------------------------------------

    async def astream_chat(self, messages, *, temperature=0.2, max_tokens=512,
                           json_schema=None) -> AsyncIterator[str]:
        """Async variant of stream_chat."""
        self.fit(messages, max_tokens, exact=False)
        errors = []
        for endpoint, attempt in self._attempts():
            if attempt:
                await asyncio.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
            started = False
            payload = build_payload(endpoint, messages, stream=True, temperature=temperature,
                                    max_tokens=max_tokens, json_schema=json_schema)
            parse = parse_sse_line if endpoint.api == OPENAI else parse_ndjson_line
            try:
                async with _async_http().stream("POST", endpoint.chat_url(), json=payload,
                                                headers=endpoint.headers(), timeout=self._timeout()) as response:
                    self._check_status(endpoint, response)
                    async for line in response.aiter_lines():
                        piece = parse(line)
                        if piece is None:
                            return
                        if piece:
                            started = True
                            yield piece
                return
            except (httpx.TransportError, _Retryable) as exc:
                if started:
                    raise InferenceUnavailable(_("The language model server stopped answering.")) from exc
                errors.append(f"{endpoint.url}: {exc.__class__.__name__}: {exc}")
        raise self._unavailable(errors)

    async def achat(self, messages, *, temperature=0.2, max_tokens=512, json_schema=None):
        """Async variant of chat."""
        self.fit(messages, max_tokens, exact=False)
        errors = []
        for endpoint, attempt in self._attempts():
            if attempt:
                await asyncio.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
            payload = build_payload(endpoint, messages, stream=False, temperature=temperature,
                                    max_tokens=max_tokens, json_schema=json_schema)
            try:
                response = await _async_http().post(endpoint.chat_url(), json=payload, headers=endpoint.headers(),
                                                    timeout=self._timeout())
                self._check_status(endpoint, response)
                return parse_completion(endpoint, _json(response))
            except (httpx.TransportError, _Retryable) as exc:
                errors.append(f"{endpoint.url}: {exc.__class__.__name__}: {exc}")
        raise self._unavailable(errors)


class _Retryable(Exception):
    """A server-side failure worth retrying (5xx, 429)."""


def _json(response):
    try:
        return response.json()
    except ValueError:
        raise InferenceBadResponse(_("The language model sent an unreadable answer.")) from None

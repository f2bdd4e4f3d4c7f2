"""The one client for the local inference server: OpenAI-compatible chat completions or Ollama's native API.

Streaming (SSE for OpenAI-compatible servers, NDJSON for Ollama), JSON-schema constrained output in each
server's own form, timeouts, bounded retries with backoff, failover over several endpoints, a fair share of
each server's slots (tutor.inference.capacity: chat first, batch work fills what is free), and token counts to fit the
model's context window (an estimate; the server's own tokenizer near the limit).

An answer is complete only when the server says why it ended (its finish reason): "stop", or "length" when
the token limit cut it (callers decide what a cut answer is worth). A stream that simply stops (the server
was interrupted or the connection dropped) is a failure, retried while nothing was passed on yet. No other
module talks to the LLM server, and it only ever talks to the configured URLs.
"""

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlparse

import httpx
from django.conf import settings
from django.utils.translation import gettext as _

from config import metrics
from tutor.inference import capacity

log = logging.getLogger(__name__)

OPENAI, OLLAMA = "openai", "ollama"
JSON_SCHEMA, JSON_OBJECT_SCHEMA, OLLAMA_FORMAT = "json_schema", "json_object_schema", "ollama_format"
CHAT, BATCH = capacity.CHAT, capacity.BATCH
STOP, LENGTH = "stop", "length"
CHARS_PER_TOKEN = 3.5
BACKOFF_SECONDS = 0.5


_shared_sync = None
_shared_lock = threading.Lock()


def _sync_http():
    """This process's pooled HTTP client (creating one costs ~20 ms, mostly its TLS context)."""
    global _shared_sync
    with _shared_lock:
        if _shared_sync is None:
            _shared_sync = httpx.Client(limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
        return _shared_sync


class InferenceError(Exception):
    """Something went wrong talking to the inference server; ``reason`` is meant for a person."""

    code = "unavailable"

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class InferenceUnavailable(InferenceError):
    """No configured endpoint answered in time (down, refusing, overloaded or too slow)."""


class NoModelConfigured(InferenceUnavailable):
    """The installation has no inference server (INFERENCE_URL=none)."""

    code = "no_model"


class InferenceBusy(InferenceUnavailable):
    """Every slot of the model server stayed taken for longer than INFERENCE_QUEUE_SECONDS."""

    code = "busy"


class InferenceInterrupted(InferenceUnavailable):
    """The answer's stream ended without the server saying it was complete (interrupted or dropped)."""

    code = "interrupted"


class InferenceBadResponse(InferenceError):
    """The server answered, but not with what was asked for (bad JSON, unknown model, rejected request)."""

    code = "bad_response"


class ContextExceeded(InferenceBadResponse):
    """The prompt and the answer do not fit the model's context window: the server refused the request (HTTP 400
    ``context_length_exceeded`` or its own words for it), or the prompt was counted too long before sending.
    ``prompt_tokens`` and ``context`` are the server's numbers where it gave them."""

    code = "context_exceeded"

    def __init__(self, reason, prompt_tokens=None, context=None):
        super().__init__(reason)
        self.prompt_tokens, self.context = prompt_tokens, context


class InferenceTruncated(InferenceBadResponse):
    """The token limit ended a JSON answer before any usable part of it was complete."""

    code = "truncated"


def count_tokens(text):
    """An approximate token count (about 3.5 characters a token for German and English text)."""
    return int(len(text or "") / CHARS_PER_TOKEN) + 1


def count_message_tokens(messages):
    """Approximate tokens of a chat message list, including a few per message for the chat template."""
    return sum(count_tokens(m["content"]) + 4 for m in messages)


TOKENIZE_TIMEOUT = 3.0
TOKENIZE_RECHECK_SECONDS = 600
_tokenize_routes = {}  # server root URL -> (route that counted, or None for none; when that was found out)
_counted = {}  # (server root, model, hash of the text) -> tokens by the model's own tokenizer (the latest few)
_COUNTED_KEPT = 512
_tokens_per_char = {}  # (server root, model) -> tokens per character, learnt from the model's own counts
TEMPLATE_TOKENS = 4  # the chat template's tokens per message
SHRINK_ON_REFUSAL = 0.7  # a refused prompt's next size, when the server names no numbers


def learn_ratio(root, model, chars, tokens):
    """Remember how many tokens a character costs with this model (from its tokenizer or its usage report), so
    the estimate for servers without a tokenizer route (Ollama) follows the model's own counts."""
    if chars >= 200 and tokens > 0:
        _tokens_per_char[(root, model)] = tokens / chars


def estimate_tokens(messages, root=None, model=None):
    """Tokens of a message list: by the ratio learnt for this model where there is one, else the estimate."""
    ratio = _tokens_per_char.get((root, model))
    if ratio is None:
        return count_message_tokens(messages)
    return sum(int(len(m["content"]) * ratio) + 1 + TEMPLATE_TOKENS for m in messages)


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


# How each server says that a prompt is longer than the context window (HTTP 400): the OpenAI form (vLLM and
# llama-cpp-python: "code": "context_length_exceeded", "This model's maximum context length is N tokens. However, you
# requested M tokens (P in the messages, C in the completion)"), llama-cpp-python's own ValueError ("Requested tokens
# (P) exceed context window of N"), llama.cpp's llama-server ("exceed_context_size_error", "n_prompt_tokens", "n_ctx").
_CONTEXT_SIGNS = re.compile(r"context_length_exceeded|maximum context length|exceed(?:s|ed)? (?:the )?(?:available )?"
                            r"context (?:window|size)|exceed_context_size|context window of", re.IGNORECASE)
_CONTEXT_NUMBERS = {
    "context": [r"maximum context length is (\d+)", r"context window of (\d+)", r'"n_ctx"\s*:\s*(\d+)'],
    "prompt": [r"\((\d+) in the messages", r"Requested tokens \((\d+)\)", r'"n_prompt_tokens"\s*:\s*(\d+)'],
}


def context_exceeded(body_text):
    """A ContextExceeded when a refusal's body (HTTP 400) says the prompt is longer than the context window, with
    the server's numbers where it gives them; else None."""
    if not body_text or not _CONTEXT_SIGNS.search(body_text):
        return None
    numbers = {}
    for name, patterns in _CONTEXT_NUMBERS.items():
        for pattern in patterns:
            found = re.search(pattern, body_text)
            if found:
                numbers[name] = int(found.group(1))
                break
    return ContextExceeded(_("The course text and the task are longer than the language model can read at once."),
                           prompt_tokens=numbers.get("prompt"), context=numbers.get("context"))


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


DONE = object()  # the end marker of an OpenAI-compatible stream


def _event(line):
    """The JSON event of one stream line (None for keep-alives and blank lines)."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        raise InferenceBadResponse(_("The language model sent an unreadable answer.")) from None
    if isinstance(event, dict) and "error" in event:
        raise InferenceBadResponse(_("The language model reported an error: %(error)s")
                                   % {"error": str(event["error"])[:200]})
    return event if isinstance(event, dict) else {}


def parse_sse_line(line):
    """One line of an OpenAI-compatible SSE stream: (text delta, finish reason or None); DONE at [DONE];
    ("", None) for lines that carry nothing."""
    line = line.strip()
    if not line.startswith("data:"):
        return "", None
    data = line[5:].strip()
    if data == "[DONE]":
        return DONE
    choice = (_event(data).get("choices") or [{}])[0]
    return (choice.get("delta") or {}).get("content") or "", choice.get("finish_reason")


def parse_ndjson_line(line):
    """One line of an Ollama NDJSON stream: (text delta, finish reason or None; "stop" when done without one)."""
    line = line.strip()
    if not line:
        return "", None
    event = _event(line)
    text = (event.get("message") or {}).get("content") or ""
    return text, (event.get("done_reason") or STOP) if event.get("done") else None


def parse_completion(endpoint, body):
    """(text, finish reason) of a non-streaming response ("stop" where the server names no reason)."""
    try:
        if endpoint.api == OLLAMA:
            return body["message"]["content"], body.get("done_reason") or STOP
        choice = body["choices"][0]
        return choice["message"]["content"] or "", choice.get("finish_reason") or STOP
    except (KeyError, IndexError, TypeError):
        raise InferenceBadResponse(_("The language model sent an answer in an unexpected form.")) from None


_CLOSERS = {"{": "}", "[": "]"}


def read_json(text, cut_off=False):
    """(data, salvaged) from a model's JSON answer. Control characters inside strings are accepted (llama.cpp's
    schema grammar lets a raw line break into a string). An answer the token limit cut off keeps its complete
    part: the longest prefix that ends a value, with the brackets still open closed (salvaged=True).
    Raises ValueError when there is nothing to keep."""
    text = (text or "").strip()
    try:  # the first JSON value (a small model may add text after it)
        return json.JSONDecoder(strict=False).raw_decode(text)[0], False
    except json.JSONDecodeError:
        if not cut_off:
            raise ValueError("not valid JSON") from None
    stack, cuts, in_string, escaped = [], [], False, False
    for position, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in _CLOSERS:
            stack.append(_CLOSERS[char])
        elif char in "}]" and stack:
            stack.pop()
            cuts.append((position + 1, "".join(reversed(stack))))
    for position, closing in reversed(cuts):
        head = re.sub(r",\s*$", "", text[:position])
        try:
            return json.loads(head + closing, strict=False), True
        except json.JSONDecodeError:
            continue
    raise ValueError("nothing complete before the token limit")


class AnswerStream:
    """The pieces of one streamed answer, in order; once iterated, ``finish_reason`` says how it ended
    ("stop", or "length" when the token limit cut it)."""

    def __init__(self, client, messages, **options):
        self.client, self.messages, self.options = client, messages, options
        self.finish_reason = None
        self.started_at = None  # when the request went to the model (after waiting for a slot)

    def __iter__(self) -> Iterator[str]:
        return self.client._stream(self)

    @property
    def cut_off(self):
        """Whether the token limit ended the answer."""
        return self.finish_reason == LENGTH


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
        """(endpoint, attempt number) in the order they are tried: each endpoint retries+1 times, the retries after
        an exponential backoff (BACKOFF_SECONDS, doubled each time), then the next endpoint (failover) at once.
        The one retry policy of both requests (complete and the stream); docs/libraries.md says why not tenacity."""
        if not self.endpoints:
            raise NoModelConfigured(_("No language model is configured for this tutor yet."))
        for endpoint in self.endpoints:
            for attempt in range(self.retries + 1):
                if attempt:
                    time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
                yield endpoint, attempt

    def _check_status(self, endpoint, response):
        if response.status_code >= 500 or response.status_code == 429:
            raise _Retryable(f"{endpoint.url}: HTTP {response.status_code}")
        if response.status_code >= 400:
            try:
                body = response.read().decode("utf-8", "replace")[:2000]
            except httpx.HTTPError:
                body = ""
            log.warning("inference request refused by %s (HTTP %s): %s", endpoint.url, response.status_code,
                        body[:500])
            exceeded = context_exceeded(body) if response.status_code in (400, 413) else None
            if exceeded is not None:
                raise exceeded
            raise InferenceBadResponse(_("The language model server rejected the request (HTTP %(status)s).")
                                       % {"status": response.status_code})

    def _unavailable(self, errors):
        log.warning("inference unavailable: %s", "; ".join(errors))
        return InferenceUnavailable(_("The language model server is not reachable or did not answer in time."))

    def _slot(self, endpoint, kind, on_wait):
        """A slot of the endpoint's server (tutor.inference.capacity; capacity.QueueTimeout after the allowed wait)."""
        return capacity.slot(endpoint.url, kind, on_wait=on_wait)

    def fit(self, messages, max_tokens, exact=True):
        """Raise InferenceBadResponse if the messages and the answer cannot fit the context window (counted
        by the server's tokenizer when the estimate says they do not, unless exact=False)."""
        needed = count_message_tokens(messages) + max_tokens
        if needed > self.context_tokens:
            counted = self.count_message_tokens_exactly(messages) if exact else None
            if counted is None or counted + max_tokens > self.context_tokens:
                raise ContextExceeded(_("The question is too long for the language model."),
                                      prompt_tokens=counted, context=self.context_tokens)

    def count_message_tokens_exactly(self, messages):
        """Tokens of a chat message list by the model's own tokenizer on the first endpoint (a few per message
        added for the chat template), or None when the server offers no tokenizer route (Ollama) or does
        not answer: then the estimate is all there is.

        Tried in turn, and the one that answers remembered per server: /tokenize (vLLM; llama.cpp's
        llama-server) and /extras/tokenize/count (llama-cpp-python's server). A route that only timed out
        (a busy server) is not given up on.
        """
        endpoint = self.endpoints[0] if self.endpoints else None
        if endpoint is None or endpoint.api != OPENAI:
            return None
        root = _server_root(endpoint.url)
        text = "\n".join(m["content"] for m in messages)
        key = (root, endpoint.model, hash(text))
        if key in _counted:
            return _counted[key] + 4 * len(messages)
        known, checked = _tokenize_routes.get(root, (False, 0.0))
        if known is None and time.monotonic() - checked < TOKENIZE_RECHECK_SECONDS:
            return None
        routes = [known] if known else ["/tokenize", "/extras/tokenize/count"]
        busy = False
        for route in routes:
            body = {"model": endpoint.model, "prompt": text, "content": text, "input": text}
            try:
                response = _sync_http().post(root + route, json=body, headers=endpoint.headers(),
                                             timeout=TOKENIZE_TIMEOUT)
                if response.status_code != 200:
                    continue
                count = _count_from(route, response.json())
            except httpx.TimeoutException as exc:
                log.info("token count at %s%s timed out: %s", root, route, exc)
                busy = True
                continue
            except (httpx.HTTPError, ValueError) as exc:
                log.info("token count at %s%s failed: %s", root, route, exc)
                continue
            _tokenize_routes[root] = (route, time.monotonic())
            if len(_counted) >= _COUNTED_KEPT:
                _counted.clear()
            _counted[key] = count
            learn_ratio(root, endpoint.model, len(text), count)
            return count + 4 * len(messages)
        if not busy:
            log.info("%s has no tokenizer route; token counts stay estimates", root)
            _tokenize_routes[root] = (None, time.monotonic())
        return None

    def prompt_tokens(self, messages):
        """(tokens of the messages, whether the model's own tokenizer counted them): counted by the server where
        it offers a tokenizer route (cached per model and text), else estimated (by the ratio the model's usage
        reports taught, where there is one)."""
        exact = self.count_message_tokens_exactly(messages)
        if exact is not None:
            return exact, True
        endpoint = self.endpoints[0] if self.endpoints else None
        root = _server_root(endpoint.url) if endpoint else None
        return estimate_tokens(messages, root, endpoint.model if endpoint else None), False

    def fitted(self, build, *, max_tokens, prompt_tokens=None):
        """(messages, their tokens, budget) of a prompt built to size: build(budget) gives the messages for about
        `budget` tokens of prompt; the prompt is counted (prompt_tokens) and built smaller until it fits the context
        window less the answer's max_tokens, and at most `prompt_tokens` when that is given (what the model can read
        in the time it has)."""
        limit = self.context_tokens - max_tokens - 16
        if prompt_tokens:
            limit = min(limit, prompt_tokens)
        budget = limit
        messages = build(budget)
        counted, _exact = self.prompt_tokens(messages)
        for _try in range(3):
            if counted <= limit or budget < 64:
                break
            budget = int(budget * limit / counted * 0.95)
            smaller = build(budget)
            if smaller == messages:
                break
            messages = smaller
            counted, _exact = self.prompt_tokens(messages)
        return messages, counted, budget

    def chat_json_fitted(self, build, schema, *, max_tokens, prompt_tokens=None, **kwargs):
        """(data, cut_off) like chat_json for a prompt built to size (see fitted). When the server still refuses it
        as longer than its context window (HTTP 400), the prompt is built smaller by the server's own numbers and
        sent ONCE more; an identical request is never sent again, and a second refusal is a ContextExceeded with a
        reason for the person."""
        messages, counted, budget = self.fitted(build, max_tokens=max_tokens, prompt_tokens=prompt_tokens)
        try:
            return self.chat_json(messages, schema, max_tokens=max_tokens, **kwargs)
        except ContextExceeded as exc:
            if exc.prompt_tokens and exc.context:  # less by what the server counted over, and a margin
                over = exc.prompt_tokens + max_tokens - exc.context
                smaller_budget = int(min(budget * 0.95, budget - 1.1 * over - 32))
            else:
                smaller_budget = int(budget * SHRINK_ON_REFUSAL)
            smaller_budget = max(smaller_budget, 32)
            smaller = build(smaller_budget)
            log.warning("prompt of %d tokens (counted %d) refused as too long (server: %s in the messages, context %s);"
                        " once more with %d tokens of budget", budget, counted, exc.prompt_tokens, exc.context,
                        smaller_budget)
            if smaller == messages:
                raise
            endpoint = self.endpoints[0] if self.endpoints else None
            if endpoint is not None and exc.prompt_tokens:
                learn_ratio(_server_root(endpoint.url), endpoint.model,
                            sum(len(m["content"]) for m in messages), exc.prompt_tokens)
            return self.chat_json(smaller, schema, max_tokens=max_tokens, **kwargs)

    # --- requests ---------------------------------------------------------------------------------

    def stream_chat(self, messages, *, temperature=0.2, max_tokens=512, json_schema=None, kind=CHAT,
                    on_wait=None) -> AnswerStream:
        """The answer's text pieces as they arrive (an AnswerStream). Waits for a slot of the server first
        (on_wait(ahead) while it waits); fails over and retries only while no piece was passed on."""
        self.fit(messages, max_tokens)
        return AnswerStream(self, messages, temperature=temperature, max_tokens=max_tokens,
                            json_schema=json_schema, kind=kind, on_wait=on_wait)

    def _stream(self, stream):
        options = dict(stream.options)
        kind, on_wait = options.pop("kind"), options.pop("on_wait")
        errors, passed_on = [], False
        for endpoint, attempt in self._attempts():
            payload = build_payload(endpoint, stream.messages, stream=True, **options)
            parse = parse_sse_line if endpoint.api == OPENAI else parse_ndjson_line
            finish, record = None, _Record(endpoint, kind)
            try:
                with self._slot(endpoint, kind, on_wait):
                    stream.started_at = record.sent()
                    with _sync_http().stream("POST", endpoint.chat_url(), json=payload,
                                             headers=endpoint.headers(), timeout=self._timeout()) as response:
                        self._check_status(endpoint, response)
                        for line in response.iter_lines():
                            parsed = parse(line)
                            if parsed is DONE:
                                break
                            piece, reason = parsed
                            if piece:
                                passed_on = True
                                record.piece()
                                yield piece
                            if reason:
                                finish = reason
                if finish is None:
                    raise _Interrupted(f"{endpoint.url}: the stream ended without a finish reason")
                stream.finish_reason = finish
                record.done("ok")
                return
            except capacity.QueueTimeout as exc:
                record.done("busy")
                raise InferenceBusy(_("Many questions are waiting for the language model right now.")) from exc
            except (httpx.TransportError, _Retryable, _Interrupted) as exc:
                record.done("interrupted" if passed_on else "unavailable")
                if passed_on:
                    log.warning("inference stream broke off at %s after part of the answer: %s", endpoint.url, exc)
                    raise InferenceInterrupted(_("The language model server stopped in the middle of the answer."))\
                        from exc
                log.warning("inference stream at %s failed before its first piece (attempt %d): %s",
                            endpoint.url, attempt + 1, exc)
                errors.append(f"{endpoint.url}: {exc.__class__.__name__}: {exc}")
            except InferenceError as exc:
                record.done(exc.code)
                raise
            except GeneratorExit:  # the reader stopped early (e.g. an answer past CHAT_ANSWER_SECONDS)
                record.done("ok")
                raise
        raise self._unavailable(errors)

    def complete(self, messages, *, temperature=0.2, max_tokens=512, json_schema=None, kind=BATCH,
                 on_wait=None):
        """The whole answer as (text, finish reason), with retries and failover; waits for a slot first."""
        self.fit(messages, max_tokens)
        errors = []
        for endpoint, _attempt in self._attempts():
            payload = build_payload(endpoint, messages, stream=False, temperature=temperature,
                                    max_tokens=max_tokens, json_schema=json_schema)
            record = _Record(endpoint, kind)
            try:
                with self._slot(endpoint, kind, on_wait):
                    record.sent()
                    response = _sync_http().post(endpoint.chat_url(), json=payload, headers=endpoint.headers(),
                                                 timeout=self._timeout())
                self._check_status(endpoint, response)
                body = _json(response)
                text, finish = parse_completion(endpoint, body)
                record.whole(text, body)
                _learn_usage(endpoint, messages, body)
                return text, finish
            except capacity.QueueTimeout as exc:
                record.done("busy")
                raise InferenceBusy(_("Many requests are waiting for the language model right now.")) from exc
            except (httpx.TransportError, _Retryable) as exc:
                record.done("unavailable")
                errors.append(f"{endpoint.url}: {exc.__class__.__name__}: {exc}")
            except InferenceError as exc:
                record.done(exc.code)
                raise
        raise self._unavailable(errors)

    def chat(self, messages, **kwargs):
        """The whole answer text (see complete; the finish reason is dropped)."""
        return self.complete(messages, **kwargs)[0]

    def chat_json(self, messages, schema, **kwargs):
        """(data, cut_off): the answer parsed as JSON, constrained by the schema in the server's own form.

        When the token limit cut the answer, its complete part is kept (cut_off=True); InferenceTruncated when
        nothing was complete, InferenceBadResponse when a whole answer is not JSON."""
        text, finish = self.complete(messages, json_schema=schema, **kwargs)
        cut_off = finish == LENGTH
        try:
            data, salvaged = read_json(text, cut_off=cut_off)
        except ValueError:
            if cut_off:
                log.warning("JSON answer cut off at the token limit with nothing complete (%d characters)",
                            len(text))
                raise InferenceTruncated(_("The language model's answer reached its length limit before any "
                                           "part of it was complete.")) from None
            log.warning("JSON answer is not valid JSON: %r", text[:300])
            raise InferenceBadResponse(_("The language model did not answer with valid JSON.")) from None
        if cut_off:
            log.info("JSON answer cut off at the token limit; kept its complete part (salvaged=%s)", salvaged)
        return data, cut_off


class _Record:
    """The metrics of one request to one endpoint (config.metrics): the wait for a slot, the time to the first
    piece, tokens and generating time, and the result ("ok" or the error code)."""

    def __init__(self, endpoint, kind):
        self.labels = {"endpoint": metrics.endpoint_label(endpoint.url), "kind": kind}
        self.asked = time.monotonic()
        self.started = self.first = None
        self.pieces = 0
        self.ended = False

    def sent(self):
        """The slot was given and the request goes out now; returns that moment (time.monotonic)."""
        self.started = time.monotonic()
        metrics.observe("tutor_inference_queue_wait_seconds", self.started - self.asked, **self.labels)
        return self.started

    def piece(self):
        """One streamed piece (about a token) arrived."""
        if self.first is None:
            self.first = time.monotonic()
            metrics.observe("tutor_inference_time_to_first_token_seconds", self.first - self.started, **self.labels)
        self.pieces += 1

    def whole(self, text, body):
        """A whole answer arrived at once: its tokens as the server counted them (else estimated)."""
        usage = body.get("usage") if isinstance(body, dict) else None
        tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
        self.first, self.pieces = self.started, tokens if isinstance(tokens, int) else count_tokens(text)
        self.done("ok")

    def done(self, result):
        """The request ended with this result (recorded once)."""
        if self.ended:
            return
        self.ended = True
        now = time.monotonic()
        if self.started is not None:
            metrics.observe("tutor_inference_request_duration_seconds", now - self.started, **self.labels)
        if self.pieces and self.first is not None:
            metrics.inc("tutor_inference_tokens_total", self.pieces, **self.labels)
            metrics.inc("tutor_inference_generation_seconds_total", now - self.first, **self.labels)
        metrics.inc("tutor_inference_requests_total", result=result, **self.labels)


class _Retryable(Exception):
    """A server-side failure worth retrying (5xx, 429)."""


class _Interrupted(Exception):
    """A stream that ended without a finish reason (worth retrying while nothing was passed on)."""


def _learn_usage(endpoint, messages, body):
    """Learn the model's tokens per character from the prompt tokens its server reports (OpenAI usage, Ollama's
    prompt_eval_count)."""
    if not isinstance(body, dict):
        return
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    tokens = usage.get("prompt_tokens", body.get("prompt_eval_count"))
    if isinstance(tokens, int):
        learn_ratio(_server_root(endpoint.url), endpoint.model, sum(len(m["content"]) for m in messages),
                    tokens - TEMPLATE_TOKENS * len(messages))


def _json(response):
    try:
        return response.json()
    except ValueError:
        raise InferenceBadResponse(_("The language model sent an unreadable answer.")) from None

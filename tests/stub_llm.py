"""A real HTTP inference server on loopback that speaks the OpenAI chat API and Ollama's /api/chat.

It streams a fixed reply word by word (deterministic) and ends it with a finish reason ("stop", or "length"
when the request's max_tokens cut it: a token is a word piece here), can wait before the first token or
between tokens, can fail with HTTP 500 or by closing the connection, can stop a stream in the middle as
llama-cpp-python does when it interrupts a request ('interrupt': [DONE] with no finish reason; 'drop': the
connection closes), and records every request body so tests can
check what the tutor sent. It counts tokens at /tokenize (as vLLM) or /extras/tokenize/count (as llama-cpp-python's
server) and can refuse prompts over a context window with HTTP 400 ``context_length_exceeded`` (every time, or only
the next N times; ``hidden_tokens`` are what a request costs beyond the counted text, as a chat template does).
With ``slots=K`` it generates at most K answers at once and queues the others in arrival order, as a vLLM server
whose batch is full (``served`` says, for each answer, how many were generated with it and whether it waited).
Use it as a context manager or through the ``stub_llm`` fixture.

    with StubLLM(reply="Hallo Welt [1]") as stub:
        client = InferenceClient(endpoints=[Endpoint(url=stub.url)])
"""

import collections
import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def split_tokens(text):
    """The reply cut into word pieces (each with its leading space), as a model would stream it."""
    pieces, current = [], ""
    for char in text:
        if char == " " and current:
            pieces.append(current)
            current = ""
        current += char
    if current:
        pieces.append(current)
    return pieces


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    @property
    def stub(self):
        return self.server.stub

    def _send_json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        if self.path.endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": self.stub.model, "object": "model"}]})
        elif self.path.endswith("/api/tags"):
            self._send_json(200, {"models": [{"name": self.stub.model}]})
        else:
            self._send_json(404, {"error": "not found"})

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        stub = self.stub
        if "tokenize" in self.path:  # counts at its tokenize_route (vLLM's, or llama-cpp-python's)
            with stub.lock:
                stub.tokenize_requests.append({"path": self.path, **body})
            if not stub.tokenizer or self.path != stub.tokenize_route:
                self._send_json(404, {"detail": "Not Found"})
            elif self.path == "/extras/tokenize/count":  # llama-cpp-python: {"input": …} -> {"count": n}
                self._send_json(200, {"count": stub.count_tokens(body["input"])})
            else:
                count = stub.count_tokens(body["prompt"])
                self._send_json(200, {"count": count, "tokens": list(range(count)), "max_model_len": stub.context})
            return
        with stub.lock:
            stub.requests.append({"path": self.path, "body": body})
        if stub.context:
            needed = sum(stub.count_tokens(m["content"]) + 4 for m in body.get("messages", [])) + stub.hidden_tokens
            completion = body.get("max_tokens", 0)
            with stub.lock:
                refuse = needed + completion > stub.context and (stub.context_refusals is None
                                                                 or stub.context_refusals > 0)
                if refuse and stub.context_refusals is not None:
                    stub.context_refusals -= 1
            if refuse:  # as llama-cpp-python and vLLM refuse a prompt over the window (OpenAI's error form)
                self._send_json(400, {"error": {
                    "message": f"This model's maximum context length is {stub.context} tokens. However, you "
                               f"requested {needed + completion} tokens ({needed} in the messages, {completion} in "
                               f"the completion). Please reduce the length of the messages or completion.",
                    "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}})
                return
        fail = stub.fail
        with stub.lock:
            if stub.fail_requests is not None:  # fail only the next N requests
                fail = fail if stub.fail_requests > 0 else None
                stub.fail_requests -= 1
        if fail == "close":
            self.close_connection = True
            self.connection.close()
            return
        if fail == "500":
            self._send_json(500, {"error": "stub failure"})
            return
        with stub.serving(body):
            self._answer(body, fail)

    def _answer(self, body, fail):
        """Generate the reply (inside one of the stub's slots when it has a limited number)."""
        stub = self.stub
        if stub.first_token_delay:
            time.sleep(stub.first_token_delay)
        reply = stub.reply_for(body)
        ollama = self.path.endswith("/api/chat")
        limit = (body.get("options") or {}).get("num_predict") if ollama else body.get("max_tokens")
        pieces = split_tokens(reply)
        finish = "stop"
        if limit and len(pieces) > limit:
            pieces, finish = pieces[:limit], "length"
        if not body.get("stream"):
            if stub.complete_seconds:  # the whole answer is generated before it is sent
                time.sleep(stub.complete_seconds)
            text = "".join(pieces)
            if ollama:
                self._send_json(200, {"model": stub.model, "message": {"role": "assistant", "content": text},
                                      "done": True, "done_reason": finish})
            else:
                self._send_json(200, {"id": "stub", "object": "chat.completion", "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}]})
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson" if ollama else "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for i, piece in enumerate(pieces):
                if i and stub.token_delay:
                    time.sleep(stub.token_delay)
                if fail in ("interrupt", "drop") and i == len(pieces) // 2 or fail == "interrupt_early" and i == 0:
                    if fail == "drop":
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    self._chunk(b"data: [DONE]\n\n")  # as llama-cpp-python ends an interrupted stream
                    self._chunk(b"")
                    return
                if ollama:
                    line = json.dumps({"message": {"role": "assistant", "content": piece}, "done": False}) + "\n"
                else:
                    event = {"id": "stub", "object": "chat.completion.chunk",
                             "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                    line = f"data: {json.dumps(event)}\n\n"
                self._chunk(line.encode())
            if ollama:
                self._chunk((json.dumps({"done": True, "done_reason": finish}) + "\n").encode())
            else:
                event = {"id": "stub", "object": "chat.completion.chunk",
                         "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
                self._chunk(f"data: {json.dumps(event)}\n\ndata: [DONE]\n\n".encode())
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _chunk(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # listen backlog: many chats connect at once


class StubLLM:
    """The stub server: set ``reply``, ``token_delay``, ``first_token_delay`` and ``fail`` ('500', 'close',
    'interrupt', 'interrupt_early' (before the first piece), 'drop'); ``fail_requests`` = N fails only the next
    N requests."""

    def __init__(self, reply="Das steht im Kurstext [1].", *, token_delay=0.0, first_token_delay=0.0,
                 model="smollm2", port=0, slots=None, complete_seconds=0.0):
        self.reply = reply
        self.token_delay = token_delay
        self.first_token_delay = first_token_delay
        self.complete_seconds = complete_seconds  # extra time a non-streamed answer takes
        self.slots = slots  # answers generated at once (None: any number); the rest wait in arrival order
        self.active = self.max_active = 0
        self.served = []  # (the request's last message, answers being generated with it, whether it waited here)
        self._turns = collections.deque()
        self._turn = threading.Condition()
        self.fail = None
        self.fail_requests = None  # None: every request fails while fail is set; N: only the next N
        self.model = model
        self.tokenizer = True  # answer token counts (False: a server without a tokenizer route, as Ollama)
        self.tokenize_route = "/tokenize"  # vLLM's; "/extras/tokenize/count" as llama-cpp-python's server
        self.context = None  # refuse chat requests over this many tokens (by count_tokens) with HTTP 400
        self.hidden_tokens = 0  # tokens a request costs beyond what the tokenize route counts (a chat template)
        self.context_refusals = None  # None: refuse every request over the window; N: only the next N
        self.tokenize_requests = []
        self.requests = []
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", port), _Handler)
        self.server.stub = self
        self.server.handle_error = lambda request, address: None  # clients that hang up early are normal
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @contextlib.contextmanager
    def serving(self, body):
        """One of the stub's slots for the block: with ``slots`` set, at most that many answers are generated at
        once and the others wait in arrival order, as a vLLM server's batch does (its knee), or llama.cpp's
        server with --parallel K."""
        ticket = object()
        label = ((body.get("messages") or [{}])[-1].get("content") or "")[:200]
        with self._turn:
            self._turns.append(ticket)
            waited = False
            while self.slots and (self.active >= self.slots or self._turns[0] is not ticket):
                waited = True
                self._turn.wait()
            self._turns.remove(ticket)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.served.append((label, self.active, waited))
            self._turn.notify_all()
        try:
            yield
        finally:
            with self._turn:
                self.active -= 1
                self._turn.notify_all()

    @property
    def port(self):
        """The loopback port it listens on."""
        return self.server.server_address[1]

    @property
    def url(self):
        """Base URL of its OpenAI-compatible API."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def base(self):
        """Base URL for Ollama's native API."""
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def count_tokens(text):
        """The stub's tokenizer: a token every 2 characters, denser than the tutor's estimate (3.5)."""
        return len(text) // 2 + 1

    def reply_for(self, body):
        """The reply to one request (a callable ``reply`` gets the request body)."""
        return self.reply(body) if callable(self.reply) else self.reply

    def reset(self, reply="Das steht im Kurstext [1]."):
        """Back to a plain, healthy stub with no recorded requests."""
        self.reply, self.token_delay, self.first_token_delay, self.fail = reply, 0.0, 0.0, None
        self.fail_requests = None
        self.complete_seconds, self.slots, self.max_active = 0.0, None, self.active
        self.served = []
        self.tokenizer, self.context, self.tokenize_route = True, None, "/tokenize"
        self.hidden_tokens, self.context_refusals = 0, None
        with self.lock:
            self.requests.clear()
            self.tokenize_requests.clear()

    def start(self):
        """Start serving on a background thread."""
        self.thread.start()
        return self

    def stop(self):
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Run the stub inference server in the foreground.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tokens-per-second", type=float, default=0.0)
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--slots", type=int, default=0, help="answers generated at once (0: any number)")
    parser.add_argument("--first-token-ms", type=float, default=0.0)
    args = parser.parse_args()
    stub = StubLLM(reply=" ".join(["wort"] * args.tokens), port=args.port, slots=args.slots or None,
                   first_token_delay=args.first_token_ms / 1000,
                   token_delay=1 / args.tokens_per_second if args.tokens_per_second else 0.0).start()
    print(stub.url, flush=True)
    try:
        stub.thread.join()
    except KeyboardInterrupt:
        stub.stop()

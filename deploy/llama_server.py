"""Run llama-cpp-python's OpenAI-compatible server the way the embedded stack needs it (same arguments as the server).

- Requests are queued, never interrupted: the server's default ``interrupt_requests=True`` ends the answer
  being streamed whenever any other request arrives (a second student's question, even ``GET /v1/models``),
  so it is forced off here. The tutor's own queue (tutor.inference.capacity) keeps requests in order before they get here.
- ``GET /health`` and ``POST /extras/tokenize/count`` answer without waiting for the model: in the server both
  take the lock a running answer holds, so a readiness check or a token count would wait (or time out) behind
  every answer. Counting tokens only reads the model's vocabulary, which generation does not change.
- llama.cpp's "extra buffer types" (runtime weight repacking, AMX) crash the process on this machine's CPUs with
  a segmentation fault on the first prompt longer than one token; ``use_extra_bufts = False`` avoids that at
  little cost for a 135M model (set LLAMA_EXTRA_BUFTS=1 to keep it on where it works).

Usage: ``python -m deploy.llama_server --model … --port …``.
"""

import os

import llama_cpp
import llama_cpp.llama

_default_params = llama_cpp.llama_model_default_params


def _safe_params():
    params = _default_params()
    params.use_extra_bufts = os.environ.get("LLAMA_EXTRA_BUFTS") == "1"
    return params


llama_cpp.llama.llama_cpp.llama_model_default_params = _safe_params


def create_app(**kwargs):
    """llama-cpp-python's app with interruptions off and the lock-free health and token-count routes first."""
    from fastapi.routing import APIRoute
    from llama_cpp.server import app as server_app
    from llama_cpp.server.types import TokenizeInputCountResponse, TokenizeInputRequest

    settings = kwargs.get("server_settings")
    if settings is not None:
        settings.interrupt_requests = False
    app = server_app.create_app(**kwargs)

    async def health():
        """The server process answers (even while the model is busy with an answer)."""
        return {"status": "ok"}

    def count_tokens(body: TokenizeInputRequest) -> TokenizeInputCountResponse:
        """Tokens of a text by the model's tokenizer, without waiting for a running answer."""
        tokens = server_app._llama_proxy(body.model).tokenize(body.input.encode("utf-8"), special=True)
        return TokenizeInputCountResponse(count=len(tokens))

    routes = [APIRoute("/health", health, methods=["GET"]),
              APIRoute("/extras/tokenize/count", count_tokens, methods=["POST"])]
    app.router.routes[:0] = routes
    return app


if __name__ == "__main__":
    import llama_cpp.server.__main__ as server_main

    server_main.create_app = create_app
    server_main.main()

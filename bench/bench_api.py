"""Benchmark of the API: search p95 against retrieval itself, and the ask's time to its "accepted" event.

    .venv/bin/python bench/bench_api.py --keep DIR [--total 1000000] [--courses 500] [--target 20000]
                                        [--queries 200] [--asks 40] [--clients 50] [--rounds 4]

1. search: the target course of bench_retrieval.py's database (20k chunks among 1M in 500 courses; built there, or
   here when missing: 15-20 minutes on 2 cores; --keep DIR reuses it) searched (a) in this process by
   courses.retrieval.retrieve, the figure of the retrieval benchmark plus the query's embedding, and (b) through the
   API, GET /api/v1/courses/{id}/search/?q=…&k=5 with a course token, over HTTP on loopback to one uvicorn process
   (timed through a keep-alive http.client connection; /health/live also through httpx, the client's own cost)
   (authentication, course grant, rate limit, serializer, problem handling, HTTP). Both embed the query with the same
   embedder: a loopback /embeddings server of this script (the course's vectors are synthetic), which answers in
   well under a millisecond, so the difference is the API's own cost. Same queries, caches warmed first.
2. ask: POST /api/v1/courses/{id}/ask/ with Accept: text/event-stream, the time to the "accepted" event (the
   question stored with its pending answer, the answer queued), at 1 client (--asks in a row) and at --clients
   clients at once (--rounds bursts); the chat page's ask (/c/{id}/ask/, the session in its header) beside it. No chat worker
   runs (the answer is not what is measured); the queued answers are dropped at the end.
"""

import argparse
import asyncio
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_retrieval import QA, build, percentiles, record, reuse  # noqa: E402
from common import cpu_flags  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from deploy.stack import PYTHON, Stack, free_port, start_postgres, start_redis, wait_for_port  # noqa: E402

EMBEDDER = "server:bench"


class EmbeddingServer:
    """An OpenAI-compatible /embeddings endpoint on loopback: a query's vector lies near one of the target course's
    topics (chosen by the text's CRC), as in bench_retrieval.py's own queries."""

    def __init__(self, topics):
        self.topics = topics
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                data = [{"index": i, "embedding": server.vector(text).tolist()} for i, text in enumerate(body["input"])]
                payload = json.dumps({"data": data}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def vector(self, text):
        seed = zlib.crc32(text.encode())
        rng = np.random.default_rng(seed)
        vector = self.topics[seed % len(self.topics)] + 0.6 * rng.normal(size=self.topics.shape[1])
        return vector / np.linalg.norm(vector)


class Http:
    """A keep-alive HTTP/1.1 client of the standard library (http.client) for the search's timings: it costs a
    fraction of httpx's Python per request (~0.3 against ~1 ms of a busy 2-core machine), so the figure is the
    server's round trip as a client on the same machine sees it rather than httpx's own work."""

    def __init__(self, base, headers):
        parts = urlsplit(base)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.headers = headers

    def get(self, path):
        """The reply to GET path (with its query): status, headers and body read whole."""
        self.connection.request("GET", path, headers=self.headers)
        response = self.connection.getresponse()
        return Reply(response.status, response.headers, response.read())

    def close(self):
        self.connection.close()


class Reply:
    """What Http.get returns: the status, the headers (case-insensitive) and the body."""

    def __init__(self, status_code, headers, content):
        self.status_code, self.headers, self.content = status_code, headers, content

    def raise_for_status(self):
        if self.status_code >= 400:
            raise RuntimeError(f"HTTP {self.status_code}: {self.content[:300]!r}")
        return self

    def json(self):
        return json.loads(self.content)


def summary(name, samples):
    p50, p95 = percentiles(samples)
    print(f"{name:58s} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  (n={len(samples)})", flush=True)
    return p50, p95


def bench_search(args, base, course, secret, questions):
    import httpx

    from courses.retrieval import retrieve

    queries = [questions[i % len(questions)] + ("" if i < len(questions) else f" ({i})") for i in range(args.queries)]
    search = f"/api/v1/courses/{course.pk}/search/?"
    direct, api, inside, own, django_part, floor, floor_httpx = [], [], [], [], [], [], []
    client = Http(base, {"Authorization": f"Bearer {secret}"})
    with httpx.Client(base_url=base, timeout=30) as other:
        for query in queries[: min(40, len(queries))]:  # warm both paths' caches (and the web process)
            retrieve(course.pk, query, k=5)
            client.get(search + urlencode({"q": query, "k": 5})).raise_for_status()
            other.get("/health/live").raise_for_status()
        for query in queries:  # interleaved: both see the same machine load
            path = search + urlencode({"q": query, "k": 5})
            started = time.perf_counter()
            found = retrieve(course.pk, query, k=5)
            direct.append(time.perf_counter() - started)
            started = time.perf_counter()
            response = client.get(path)
            api.append(time.perf_counter() - started)
            response.raise_for_status()
            took = server_timing(response, "retrieve")  # retrieve() inside the web process, for this very request
            inside.append(took)
            own.append(api[-1] - took)
            django_part.append(server_timing(response, "app") - took)
            started = time.perf_counter()
            client.get("/health/live").raise_for_status()  # the floor: HTTP, uvicorn and Django without DRF
            floor.append(time.perf_counter() - started)
            started = time.perf_counter()
            other.get("/health/live").raise_for_status()  # the same through httpx: what the client itself costs
            floor_httpx.append(time.perf_counter() - started)
            assert [hit["chunk_id"] for hit in response.json()["results"]] == [p.chunk_id for p in found]
    client.close()
    _, direct95 = summary("search: retrieve() in this process (embedding + SQL)", direct)
    _, api95 = summary("search: GET /api/v1/…/search/ over HTTP (one uvicorn process)", api)
    summary("search: retrieve() inside the web process (Server-Timing)", inside)
    summary("search: the API's own cost (request minus its retrieve())", own)
    summary("search:   of it inside Django (middleware, DRF, view)", django_part)
    summary("floor: GET /health/live over HTTP (no DRF, no database)", floor)
    summary("floor: the same through httpx (the client's own cost beside)", floor_httpx)
    print(f"{'search: p95 through the API minus p95 of retrieve()':58s} {api95 - direct95:+.1f} ms", flush=True)


def server_timing(response, name):
    """Seconds of the named metric of a response's Server-Timing header (``name;dur=<ms>``)."""
    for metric in response.headers.get("Server-Timing", "").split(","):
        label, _sep, params = metric.strip().partition(";")
        if label == name:
            return float(params.split("dur=", 1)[1].split(";")[0]) / 1000
    raise ValueError(f"no {name} in the response's Server-Timing header")


async def accepted_after(http, url, headers, data):
    """Seconds from sending a question to its "accepted" event; the stream is closed then."""
    from tests.support import read_events

    started, took = time.perf_counter(), []

    def on_event(name, _data):
        if name == "accepted":
            took.append(time.perf_counter() - started)
            return True
        return False

    async with http.stream("POST", url, headers={**headers, "Accept": "text/event-stream"}, **data) as response:
        await read_events(response, on_event)
    return took[0]


async def bench_ask(args, base, course_id, secret, page_headers):
    import httpx

    ways = {"API": (f"{base}/api/v1/courses/{course_id}/ask/", {"Authorization": f"Bearer {secret}"}),
            "page": (f"{base}/c/{course_id}/ask/", page_headers)}  # the page's session and CSRF token

    def ask(http, name, i):
        url, headers = ways[name]
        text = f"Frage {i}: Welche Prozessnummer hat der Init-Prozess?"
        return accepted_after(http, url, headers, {"json": {"text": text}} if name == "API" else {"data": {"text": text}})

    limits = httpx.Limits(max_connections=args.clients + 10, max_keepalive_connections=args.clients + 10)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        for i in range(5):  # warm up
            for name in ways:
                await ask(http, name, i)
        one, many = {name: [] for name in ways}, {name: [] for name in ways}
        for i in range(args.asks):  # the API's and the page's asks take turns: both see the same machine load
            for name in ways:
                one[name].append(await ask(http, name, i))
        for round_ in range(args.rounds):
            for name in ways:
                many[name] += await asyncio.gather(*(ask(http, name, 1000 * round_ + i) for i in range(args.clients)))
        for name in ways:
            summary(f"ask ({name}): to 'accepted', 1 client", one[name])
            summary(f"ask ({name}): to 'accepted', {args.clients} clients at once", many[name])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=1_000_000)
    parser.add_argument("--courses", type=int, default=500)
    parser.add_argument("--target", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--asks", type=int, default=40, help="questions in a row at one client")
    parser.add_argument("--clients", type=int, default=50, help="clients asking at once")
    parser.add_argument("--rounds", type=int, default=4, help="bursts of --clients questions")
    parser.add_argument("--only", default="search,ask")
    parser.add_argument("--keep", metavar="DIR", required=True,
                        help="PostgreSQL data of bench_retrieval.py --keep DIR (built there or here, and kept)")
    args = parser.parse_args()
    stack = Stack()
    pg_port, redis_port, web_port = free_port(), free_port(), free_port()
    scratch = Path(args.keep).resolve()
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING", "HF_HUB_OFFLINE": "1",
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{pg_port}/bench",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "TUTOR_DATA_DIR": str(scratch / "data"),
        "API_RATE_LIMIT": "1000000/minute", "CHAT_RATE_LIMIT": "1000000", "PYTHONUNBUFFERED": "1",
    })
    try:
        start_postgres(stack, scratch / "pgdata", pg_port, "bench")
        start_redis(stack, scratch / "redis", redis_port)
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        reused = reuse(args)
        if reused:
            course, index_id, topics, _rng = reused
        else:
            rng = np.random.default_rng(1)
            course, index_id, topics = build(args, rng)
            record(args, course, index_id, topics, rng)
        from courses.vector_index import ensure_course_hnsw

        ensure_course_hnsw(index_id, args.dim, args.target)
        embeddings = EmbeddingServer(topics)
        os.environ["EMBEDDING_URL"] = embeddings.url
        from django.conf import settings

        settings.EMBEDDING_URL = embeddings.url
        from courses.models import ApiToken, EmbeddingIndex, Membership
        from tests.support import make_member, session_headers

        EmbeddingIndex.objects.filter(pk=index_id).update(model=EMBEDDER)  # "bench" in bench_retrieval.py: no embedder
        lecturer, lecturer_session = make_member(course, Membership.INSTRUCTOR)
        _token, secret = ApiToken.issue(lecturer, name="bench", scope=ApiToken.READ, course=course)
        page_headers = session_headers(lecturer_session)
        web = stack.spawn("web", [PYTHON, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
                                  "--port", str(web_port), "--no-access-log", "--log-level", "warning", "--backlog",
                                  "4096"], env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for_port("127.0.0.1", web_port, "web server", web)
        base = f"http://127.0.0.1:{web_port}"
        model, flags = cpu_flags()
        print(f"machine: {os.cpu_count()} cores, {model}; flags: {flags}; load average {os.getloadavg()[0]:.1f}; "
              f"one uvicorn process; course {course.pk}: "
              f"{args.target} chunks among {args.total} in {args.courses} courses", flush=True)
        only = set(args.only.split(","))
        questions = [json.loads(line)["q"] for line in QA.read_text(encoding="utf-8").splitlines() if line.strip()]
        if "search" in only:
            bench_search(args, base, course, secret, questions)
        if "ask" in only:
            asyncio.run(bench_ask(args, base, course.pk, secret, page_headers))
        from config.celery import app

        with app.connection_for_write() as connection:  # no worker answered: drop the queued answers
            connection.default_channel.queue_purge("chat")
        from tutor.chat.models import Conversation

        Conversation.objects.filter(course=course).delete()
        lecturer.delete()  # with its membership and token
        EmbeddingIndex.objects.filter(pk=index_id).update(model="bench")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()

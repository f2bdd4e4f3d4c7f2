"""Load test: launches, chats, practice and uploads against the whole stack on loopback, bounded in time and count.

Starts throwaway PostgreSQL+pgvector and Redis, the stub inference server of tests/stub_llm.py (K slots, a first
token after --first-token-ms), one web process (uvicorn), a chat worker (threads), an ingest worker and a generate
worker, as the run command does. The demo course of the built-in test platform holds one indexed text and a
released question set. Then --users virtual people (one in ten a lecturer) act at once, each one action after
another, for --seconds or until --max-actions actions were started, whichever comes first:

- launch: the built-in test platform's real LTI 1.3 flow (platform start → tool's OIDC login → platform's
  authorization → signed id_token posted to the tool's launch → the course page);
- chat (students): a question asked as the chat page asks (POST accepting text/event-stream), until its final
  message; time to the first piece and to the end;
- practice (students): the released set's page, then its answers submitted;
- upload (lecturers): the documents page, then a small new Markdown text uploaded (its ingestion is queued).

It prints p50/p95 per action, errors with their first reasons, and the load average. Only loopback is contacted
(the script refuses any other address); every request has a timeout, and the run ends by itself.

Usage: .venv/bin/python bench/load_test.py [--users 20] [--seconds 60] [--max-actions 2000]
"""

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urljoin, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import metric_means, pct, start_chat_side, throwaway_services  # noqa: E402
from deploy.stack import PYTHON  # noqa: E402

REQUEST_TIMEOUT = 120


class Person:
    """One virtual person: their own cookies (a browser, signed in by the launch), role, session key and course."""

    def __init__(self, base, hint, http):
        self.base, self.hint, self.http = base, hint, http
        self.token = self.course = None

    async def launch(self):
        """The test platform's LTI launch, following redirects and the auto-posted id_token as a browser does."""
        from tests.support import page_forms

        response = await self.http.get(f"{self.base}/lti/test-platform/start", params={"user": self.hint})
        for _ in range(6):
            if response.status_code in (301, 302, 303):
                response = await self.http.get(urljoin(str(response.url), response.headers["Location"]))
                continue
            forms = page_forms(response.text) if response.status_code == 200 else []
            autopost = next((f for f in forms if f["attrs"].get("id") == "lti-autopost"), None)
            if autopost is None:
                break
            response = await self.http.post(autopost["action"], data=autopost["fields"])
        path = urlparse(str(response.url)).path
        if response.status_code != 200 or not path.startswith("/c/"):
            raise RuntimeError(f"launch ended at {response.status_code} {path}")
        self.course = int(path.split("/")[2])
        self.token = self.http.cookies.get("sessionid")  # the session the launch opened (ask_as_the_page sends it)

    async def chat(self, number):
        """A question until its final message: (seconds to the first piece, seconds to the end)."""
        from tests.support import ask_as_the_page

        started, seen = time.perf_counter(), {}

        def on_event(event, data):
            if event in ("snapshot", "delta") and data.get("text") and "first" not in seen:
                seen["first"] = time.perf_counter() - started
            if event == "final":
                seen["final"] = data
            return False

        await ask_as_the_page(self.http, self.base, self.course, self.token,
                              f"Welche Prozessnummer hat der Init-Prozess? ({self.hint} {number})", on_event)
        final = seen.get("final") or {}
        if final.get("status") != "done":
            raise RuntimeError(f"answer {final.get('status')}: {final.get('error_code') or final.get('error')}")
        ended = time.perf_counter() - started
        return seen.get("first", ended), ended

    async def practice(self, set_id, question_ids):
        """The set's page, then answers submitted; the result page must follow."""
        from tests.support import page_forms

        url = f"{self.base}/c/{self.course}/practice/{set_id}/"
        page = await self.http.get(url)
        page.raise_for_status()
        form = next(f for f in page_forms(page.text) if f["attrs"].get("id") == "practice")
        answers = {f"q-{qid}": str(random.randrange(3)) for qid in question_ids}
        result = await self.http.post(urljoin(url, form["action"] or url), data={**form["fields"], **answers})
        if result.status_code != 200 or "/attempt/" not in str(result.url):
            raise RuntimeError(f"practice submit ended at {result.status_code} {result.url}")

    async def upload(self, number):
        """The documents page, then a small new text uploaded."""
        from tests.support import page_forms

        url = f"{self.base}/courses/{self.course}/documents/"
        page = await self.http.get(url)
        page.raise_for_status()
        form = next(f for f in page_forms(page.text) if f["attrs"].get("enctype") == "multipart/form-data")
        text = f"# Notiz {self.hint} {number}\n\nDer Init-Prozess hat die PID 1. Notiz {random.random()}.\n"
        result = await self.http.post(urljoin(url, form["action"] or url), data=form["fields"],
                                      files={"file": (f"notiz-{number}.md", text.encode(), "text/markdown")})
        if result.status_code != 200 or "documents" not in str(result.url):
            raise RuntimeError(f"upload ended at {result.status_code} {result.url}")


async def run_load(base, *, users, seconds, max_actions, set_id, question_ids, seed=1, chat_only=False):
    """Drive the actions for at most `seconds` and `max_actions` (with seconds=0, just max_actions); returns
    ({action: [seconds]}, {action: [errors]}, actions started)."""
    import httpx

    if urlparse(base).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing to load {base}: loopback only")
    random.seed(seed)
    times, errors = defaultdict(list), defaultdict(list)
    state = {"started": 0}
    stop_at = time.monotonic() + (seconds or 3600)

    async def timed(name, call):
        started = time.perf_counter()
        try:
            result = await call
        except Exception as exc:  # noqa: BLE001  (every failure is counted and shown)
            errors[name].append(f"{type(exc).__name__}: {exc}"[:200])
            return None
        if isinstance(result, tuple):  # a chat: first piece and end
            times["chat (first piece)"].append(result[0])
            times["chat (whole answer)"].append(result[1])
        else:
            times[name].append(time.perf_counter() - started)
        return True

    async def person(index):
        lecturer = index % 10 == 0 and not chat_only
        hint = "lecturer" if lecturer else ("student-1", "student-2")[index % 2]
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT, follow_redirects=True) as http:
            someone = Person(base, hint, http)
            number = 0
            while time.monotonic() < stop_at and state["started"] < max_actions:
                state["started"] += 1
                number += 1
                if someone.token is None or random.random() < 0.1:
                    await timed("launch", someone.launch())
                elif lecturer:
                    await timed("upload", someone.upload(number))
                elif chat_only or random.random() < 0.75:
                    await timed("chat", someone.chat(number))
                else:
                    await timed("practice", someone.practice(set_id, question_ids))

    await asyncio.gather(*(person(i) for i in range(users)))
    return times, errors, state["started"]


def report(times, errors, started, elapsed):
    """The numbers, one line per action."""
    print(f"{started} actions in {elapsed:.0f} s; load average {os.getloadavg()[0]:.1f}", flush=True)
    for name in sorted(set(times) | set(errors)):
        values = times.get(name, [])
        p50 = f"{statistics.median(values) * 1000:7.0f} ms" if values else "      -"
        p95 = f"{pct(values, 95) * 1000:7.0f} ms" if values else "      -"
        print(f"  {name:22s} n={len(values):5d}  p50 {p50}  p95 {p95}  errors {len(errors.get(name, []))}",
              flush=True)
        for reason in sorted(set(errors.get(name, [])))[:3]:
            print(f"      {reason}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20, help="virtual people acting at once (one in ten a lecturer)")
    parser.add_argument("--seconds", type=float, default=60, help="no new action after this many seconds")
    parser.add_argument("--max-actions", type=int, default=2000, help="no new action after this many")
    parser.add_argument("--slots", type=int, default=8, help="answers the stub model server generates at once")
    parser.add_argument("--first-token-ms", type=float, default=300)
    parser.add_argument("--keep-logs", default="", help="copy the services' and workers' log to this file")
    args = parser.parse_args()

    port_holder = {}
    with throwaway_services(args.keep_logs, LOG_LEVEL="WARNING", CHAT_RATE_LIMIT="1000000",
                            INFERENCE_SLOTS=str(args.slots)) as (
            stack, env, _scratch, logs):
        from deploy.stack import free_port

        port_holder["web"] = free_port()
        base = f"http://127.0.0.1:{port_holder['web']}"
        env["PUBLIC_URL"] = os.environ["PUBLIC_URL"] = base
        # the virtual people are top-level httpx clients, which send no Secure cookie over http: plain cookies
        env["SESSION_COOKIE_PARTITIONED"] = os.environ["SESSION_COOKIE_PARTITIONED"] = "0"
        from django.conf import settings

        settings.PUBLIC_URL = base
        from courses.demo import DEMO_TITLE
        from courses.models import Course, Document
        from lti import demo
        from tests.stub_llm import StubLLM
        from tests.support import INIT_TEXT, make_course, make_released_set, point_tutor_at

        stub = StubLLM(reply=" ".join(["wort"] * 30) + " [1]", slots=args.slots, token_delay=0.02,
                       first_token_delay=args.first_token_ms / 1000).start()
        course = make_course(("systemstart.md", INIT_TEXT), title=DEMO_TITLE)
        demo.ensure_test_platform()  # maps the test platform's course to it
        Document.objects.filter(course=course).exclude(status=Document.READY).delete()  # the shipped demo books
        assert Course.objects.filter(title=DEMO_TITLE).count() == 1
        point_tutor_at(course, stub.url)
        released = make_released_set(course)
        question_ids = list(released.questions.values_list("pk", flat=True))
        from config.celery import app

        with app.connection_for_write() as connection:  # the demo books' queued ingestion
            connection.default_channel.queue_purge("ingest")
        start_chat_side(stack, env, logs, threads=32, port=port_holder["web"])
        for queue in ("ingest", "generate"):
            stack.spawn(f"{queue}-worker", [PYTHON, "-m", "celery", "-A", "config", "worker", "-Q", queue, "-n",
                                            f"load-{queue}@%h", "--concurrency", "1", "--loglevel", "WARNING",
                                            "--without-gossip", "--without-mingle"], env=env, stdout=logs,
                        stderr=subprocess.STDOUT)
        print(f"{args.users} people for at most {args.seconds:.0f} s / {args.max_actions} actions against {base} "
              f"(stub model: {args.slots} slots, first token after {args.first_token_ms:.0f} ms)", flush=True)
        asyncio.run(run_load(base, users=1, seconds=0, max_actions=2, set_id=released.pk,  # warm-up: launch, chat
                             question_ids=question_ids, chat_only=True))
        started = time.monotonic()
        times, errors, count = asyncio.run(run_load(base, users=args.users, seconds=args.seconds,
                                                    max_actions=args.max_actions, set_id=released.pk,
                                                    question_ids=question_ids))
        report(times, errors, count, time.monotonic() - started)
        print("where the time went (means from /metrics):", flush=True)
        wanted = {"tutor_http_request_duration_seconds": ("method", "view"), "tutor_retrieval_duration_seconds": ("phase",),
                  "tutor_inference_queue_wait_seconds": ("kind",), "tutor_inference_time_to_first_token_seconds":
                  ("kind",), "tutor_celery_task_duration_seconds": ("task",)}
        for (name, labels), (n, mean) in sorted(metric_means().items()):
            shown = dict(labels)
            if name in wanted and n and (name != "tutor_http_request_duration_seconds" or n >= 10):
                label = " ".join(f"{k}={shown[k]}" for k in wanted[name] if k in shown)
                print(f"  {name.removeprefix('tutor_'):42s} {label:34s} n={n:5.0f}  mean {mean * 1000:7.1f} ms",
                      flush=True)
        stub.stop()


if __name__ == "__main__":
    main()

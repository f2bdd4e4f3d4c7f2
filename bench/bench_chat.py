"""Chat benchmarks: added time to first token, streams one web process holds, chat latency beside queued work.

Starts throwaway PostgreSQL+pgvector and Redis (like the test command), the stub inference server of
tests/stub_llm.py on loopback, one chat worker and ONE uvicorn web process, then measures:

1. ttft: time to first token through the tutor (POST question → first streamed piece of the answer, which
   streams in that POST's response as on the chat page; including retrieval, queueing, the worker and the
   Redis relay) vs calling the same stub directly,
   at 1 and --chats concurrent chats. The stub waits --first-token-ms before its first token. "concurrency=N"
   fires N questions at the same instant (a burst); "steady" holds N chats open, each asking its next question
   when its answer has ended, for --steady-seconds.
2. hold: --hold concurrent SSE streams held by the one web process while --hold-tokens pieces are published
   to each at 20 pieces/s (the pieces are published to Redis as the chat worker would, by this script:
   one 2-core machine cannot also run that many model streams); reports errors and the web process's memory.
3. queue: chat answer time p50/p95 idle vs. with --queued tasks waiting on the "generate" queue (served by
   its own worker, as deployed), using --generate-task.

Usage: .venv/bin/python bench/bench_chat.py [--chats 50] [--samples 20] [--hold 500] [--queued 200]
       [--only ttft,hold,queue]
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import pct, start_chat_side, throwaway_services  # noqa: E402
from deploy.stack import PYTHON  # noqa: E402

POST_TIMES = []


def ms(seconds):
    return f"{seconds * 1000:.1f} ms"


def rss_mb(pid):
    """Resident memory of a process in MiB."""
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


# --- measurements -----------------------------------------------------------------------------------

async def direct_ttft(http, stub_url):
    """Seconds to the first content piece when calling the inference server directly."""
    started = time.perf_counter()
    payload = {"model": "smollm2", "stream": True, "messages": [{"role": "user", "content": "Was ist PID 1?"}]}
    async with http.stream("POST", stub_url + "/chat/completions", json=payload) as response:
        async for line in response.aiter_lines():
            if line.startswith("data:") and '"content"' in line:
                return time.perf_counter() - started
    raise RuntimeError("no token from the stub")


async def direct_stream(http, stub_url):
    """(seconds to the first content piece, seconds to the end) of one whole answer streamed directly."""
    started, first = time.perf_counter(), None
    payload = {"model": "smollm2", "stream": True, "messages": [{"role": "user", "content": "Was ist PID 1?"}]}
    async with http.stream("POST", stub_url + "/chat/completions", json=payload) as response:
        async for line in response.aiter_lines():
            if first is None and line.startswith("data:") and '"content"' in line:
                first = time.perf_counter() - started
    return first, time.perf_counter() - started


async def tutor_chat(http, web, course_id, token, text, until="first"):
    """Ask through the tutor as the chat page does (the answer streams in the response to the question's POST);
    seconds to the first streamed piece (until='first'), to the final answer (until='final') or both
    (until='both')."""
    from tests.support import ask_as_the_page

    started = time.perf_counter()
    seen = {"first": None, "final": None}

    def on_event(event, data):
        if event == "accepted":
            POST_TIMES.append(time.perf_counter() - started)
        if event in ("snapshot", "delta") and data.get("text") and seen["first"] is None:
            seen["first"] = time.perf_counter() - started
            return until == "first"
        if event == "final":
            if seen["first"] is None:  # finished before the stream was opened: the whole answer came at once
                seen["first"] = time.perf_counter() - started
            if data["status"] != "done":
                raise RuntimeError(f"answer {data['id']} {data['status']}: {data['error']}")
            seen["final"] = time.perf_counter() - started
        return False

    await ask_as_the_page(http, web, course_id, token, text, on_event)
    if seen["first"] is None:
        raise RuntimeError("stream ended without a piece")
    if until == "both":
        return seen["first"], seen["final"]
    return seen["first"] if until == "first" else seen["final"]


def cpu_seconds(pid):
    """User+system CPU seconds a process has used so far."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def run_ttft(args, web, stub, course_id, tokens, pids):
    import httpx

    limits = httpx.Limits(max_connections=args.chats * 3 + 10, max_keepalive_connections=args.chats * 3 + 10)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        await tutor_chat(http, web, course_id, tokens[0], "Welche Prozessnummer hat der Init-Prozess?",
                         until="final")  # warm up, and let its answer end before idle CPU is measured
        for concurrency in (1, args.chats):
            direct, tutor = [], []
            POST_TIMES.clear()
            rounds = max(1, args.samples // concurrency) if concurrency > 1 else args.samples

            async def one(i, direct=direct, tutor=tutor):
                direct.append(await direct_ttft(http, stub.url))
                tutor.append(await tutor_chat(http, web, course_id, tokens[i % len(tokens)],
                                              f"Welche Prozessnummer hat der Init-Prozess? ({i})"))

            idle_start = {name: cpu_seconds(pid) for name, pid in pids.items()}
            await asyncio.sleep(3)  # what the processes burn doing nothing (heartbeats, polling), to subtract
            idle_rate = {name: (cpu_seconds(pid) - idle_start[name]) / 3 for name, pid in pids.items()}
            cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            window_started = time.perf_counter()
            for r in range(rounds):
                await asyncio.gather(*(one(r * concurrency + i) for i in range(concurrency)))
                await asyncio.sleep(1.5)  # let the previous round's answers finish streaming
            # CPU spent per chat by our processes (the whole answer: question, retrieval, 20 pieces relayed):
            # load-independent, unlike the wall times; on C cores, N concurrent chats need about N x this / C.
            window = time.perf_counter() - window_started
            cpu = {name: max(0.0, cpu_seconds(pid) - cpu_before[name] - idle_rate[name] * window) / len(tutor)
                   for name, pid in pids.items()}
            d50, t50 = statistics.median(direct), statistics.median(tutor)
            print(f"ttft  concurrency={concurrency:3d} n={len(tutor):4d}  direct p50 {ms(d50)} p95 {ms(pct(direct, 95))}"
                  f"  | tutor p50 {ms(t50)} p95 {ms(pct(tutor, 95))}  | added p50 {ms(t50 - d50)}  ratio {t50 / d50:.2f}x"
                  f"  (of which until the question was accepted p50 {ms(statistics.median(POST_TIMES))})", flush=True)
            print("      CPU per chat: " + ", ".join(f"{name} {ms(value)}" for name, value in cpu.items())
                  + f", together {ms(sum(cpu.values()))}", flush=True)
        if args.steady_seconds:
            await run_steady(args, http, web, stub, course_id, tokens)


async def run_steady(args, http, web, stub, course_id, tokens):
    """--chats chats held open for --steady-seconds, each asking its next question as soon as its answer has
    streamed to the end (a class of students chatting at once), vs as many direct streams doing the same."""
    async def loop(ask, results):
        stop = time.perf_counter() + args.steady_seconds
        while time.perf_counter() < stop:
            results.append(await ask())

    direct, tutor = [], []
    await asyncio.gather(*(loop(lambda: direct_stream(http, stub.url), direct) for _ in range(args.chats)))
    counter = iter(range(10**9))
    await asyncio.gather(*(
        loop(lambda i=i: tutor_chat(http, web, course_id, tokens[i % len(tokens)],
                                    f"Welche Prozessnummer hat der Init-Prozess? ({next(counter)})", until="both"),
             tutor)
        for i in range(args.chats)))
    d50, t50 = statistics.median(f for f, _ in direct), statistics.median(f for f, _ in tutor)
    print(f"ttft  steady {args.chats} chats, each asking again when its answer ends, {args.steady_seconds:.0f} s: "
          f"direct p50 {ms(d50)} p95 {ms(pct([f for f, _ in direct], 95))} (n={len(direct)})  | tutor p50 {ms(t50)} "
          f"p95 {ms(pct([f for f, _ in tutor], 95))} (n={len(tutor)})  | added p50 {ms(t50 - d50)}  "
          f"ratio {t50 / d50:.2f}x", flush=True)


async def run_hold(args, web, web_pid, course_id, token, message_ids):
    import httpx
    import redis.asyncio as aredis
    from asgiref.sync import sync_to_async

    from tutor.chat import stream

    before = rss_mb(web_pid)
    connected = asyncio.Event()
    state = {"connected": 0, "pieces": 0, "finals": 0, "errors": 0}
    error_samples = []

    async def client(http, message_id):
        url = f"{web}/c/{course_id}/m/{message_id}/stream/"
        try:
            async with http.stream("GET", url, headers={"X-Tutor-Session": token}) as sse:
                if sse.status_code != 200:
                    raise RuntimeError(f"HTTP {sse.status_code}")
                event = None
                async for line in sse.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        if event == "snapshot":
                            state["connected"] += 1
                            if state["connected"] == len(message_ids):
                                connected.set()
                        elif event == "delta":
                            state["pieces"] += 1
                        elif event == "final":
                            state["finals"] += 1
                            return
        except Exception as exc:
            state["errors"] += 1
            error_samples.append(repr(exc)[:200])
            if state["connected"] + state["errors"] >= len(message_ids):
                connected.set()

    limits = httpx.Limits(max_connections=len(message_ids) + 10, max_keepalive_connections=0)
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=httpx.Timeout(120, connect=60), limits=limits) as http:
        tasks = [asyncio.create_task(client(http, mid)) for mid in message_ids]
        try:
            await asyncio.wait_for(connected.wait(), timeout=120)
        except TimeoutError:
            pass
        connect_s = time.perf_counter() - started
        held = rss_mb(web_pid)
        redis = aredis.Redis.from_url(os.environ["REDIS_URL"])
        publish_started = time.perf_counter()
        for n in range(1, args.hold_tokens + 1):
            tick = time.perf_counter()
            pipe = redis.pipeline(transaction=False)
            for mid in message_ids:
                pipe.append(stream.buffer_key(mid), b" wort")
                pipe.publish(stream.channel(mid), json.dumps({"t": "delta", "text": " wort", "end": 5 * n}))
            await pipe.execute()
            await asyncio.sleep(max(0.0, 0.05 - (time.perf_counter() - tick)))
        stream_s = time.perf_counter() - publish_started
        peak = rss_mb(web_pid)
        await sync_to_async(mark_done)(message_ids, " wort" * args.hold_tokens)
        pipe = redis.pipeline(transaction=False)
        for mid in message_ids:
            pipe.publish(stream.channel(mid), json.dumps({"t": "end", "status": "done"}))
        await pipe.execute()
        await asyncio.wait(tasks, timeout=120)
        await redis.aclose()
    expected = len(message_ids) * args.hold_tokens
    print(f"hold  streams={len(message_ids)} connected={state['connected']} in {connect_s:.1f} s; "
          f"{args.hold_tokens} pieces each at 20/s took {stream_s:.1f} s; pieces received {state['pieces']}/{expected}; "
          f"finals {state['finals']}; errors {state['errors']}", flush=True)
    print(f"hold  web process memory: {before:.0f} MiB idle, {held:.0f} MiB holding, {peak:.0f} MiB streaming "
          f"({(peak - before) * 1024 / max(1, len(message_ids)):.0f} KiB per stream)", flush=True)
    if error_samples:
        print("hold  first errors:", error_samples[:3], flush=True)


async def run_queue(args, web, course_id, tokens, enqueue):
    import httpx

    async with httpx.AsyncClient(timeout=120) as http:
        async def sample(label):
            times = []
            for i in range(args.samples):
                times.append(await tutor_chat(http, web, course_id, tokens[i % len(tokens)],
                                              f"Wie installiert man Pakete mit apt? ({label} {i})", until="final"))
            return times

        idle = await sample("idle")
        await asyncio.to_thread(enqueue)
        busy = await sample("busy")
    i95, b95 = pct(idle, 95), pct(busy, 95)
    print(f"queue idle  p50 {ms(statistics.median(idle))} p95 {ms(i95)}", flush=True)
    print(f"queue {args.queued} generate tasks queued: p50 {ms(statistics.median(busy))} p95 {ms(b95)} "
          f"({(b95 / i95 - 1) * 100:+.1f}% vs idle)", flush=True)


def mark_done(message_ids, text):
    """Finish the held answers in the database, as the worker would."""
    from tutor.chat.models import Message

    Message.objects.filter(pk__in=message_ids).update(status=Message.DONE, text=text)


# --- set-up -----------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=50, help="concurrent chats for the ttft measurement")
    parser.add_argument("--samples", type=int, default=20, help="samples per measurement")
    parser.add_argument("--steady-seconds", type=float, default=20,
                        help="ttft: also hold --chats chats asking one question after another this long (0: skip)")
    parser.add_argument("--first-token-ms", type=float, default=300, help="the stub's wait before its first token")
    parser.add_argument("--tokens", type=int, default=20, help="pieces per stub answer")
    parser.add_argument("--hold", type=int, default=500, help="concurrent streams held by the web process")
    parser.add_argument("--hold-tokens", type=int, default=40, help="pieces published to each held stream")
    parser.add_argument("--queued", type=int, default=200, help="tasks queued on the generate queue")
    parser.add_argument("--generate-task", default="config.ping_database", help="task sent to the generate queue")
    parser.add_argument("--worker-concurrency", type=int, default=50, help="threads of the chat worker")
    parser.add_argument("--embedding-model", default="static",
                        help="EMBEDDING_MODEL of the course (static: the test default; e5-small: the product's default, "
                             "whose query embedding costs ~15 ms of CPU per question on 2 cores)")
    parser.add_argument("--only", default="ttft,hold,queue")
    parser.add_argument("--keep-logs", default="", help="copy the worker and web logs to this file")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    only = set(args.only.split(","))

    with throwaway_services(args.keep_logs, LOG_LEVEL=args.log_level,
                            EMBEDDING_MODEL=args.embedding_model) as (stack, env, scratch, logs):
        from tests.stub_llm import StubLLM
        from tests.support import INIT_TEXT, make_course, make_member, point_tutor_at
        from tutor.chat.models import Conversation, Message

        stub = StubLLM(reply=" ".join(["wort"] * args.tokens), token_delay=0.05,
                       first_token_delay=args.first_token_ms / 1000).start()
        course = make_course(("systemstart.md", INIT_TEXT))
        point_tutor_at(course, stub.url)
        members = [make_member(course) for _ in range(max(args.chats, 1))]
        tokens = [token for _, token in members]

        chat_worker, web, base = start_chat_side(stack, env, logs, threads=args.worker_concurrency,
                                                 log_level=args.log_level)
        print(f"chat worker: threads x{args.worker_concurrency}; one uvicorn process; "
              f"embedding model {args.embedding_model}", flush=True)

        if "ttft" in only:
            asyncio.run(run_ttft(args, base, stub, course.pk, tokens, {"web": web.pid, "worker": chat_worker.pid}))
        if "hold" in only:
            user, token = members[0]
            conversation = Conversation.objects.create(course=course, user=user)
            held = Message.objects.bulk_create([Message(conversation=conversation, role=Message.ASSISTANT,
                                                        status=Message.STREAMING) for _ in range(args.hold)])
            asyncio.run(run_hold(args, base, web.pid, course.pk, token, [m.pk for m in held]))
        if "queue" in only:
            stack.spawn("generate-worker", [PYTHON, "-m", "celery", "-A", "config", "worker", "-Q", "generate", "-n",
                                            "bench-generate@%h", "--concurrency", "1", "--loglevel", "WARNING",
                                            "--without-gossip", "--without-mingle"], env=env, stdout=logs,
                        stderr=subprocess.STDOUT)

            from config.celery import app

            def enqueue():
                for i in range(args.queued):
                    app.send_task(args.generate_task, args=[f"bench-{i}"], queue="generate")

            asyncio.run(run_queue(args, base, course.pk, tokens, enqueue))
        stub.stop()

if __name__ == "__main__":
    main()

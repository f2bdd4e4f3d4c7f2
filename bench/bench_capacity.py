"""Chat beside question generation at one model server of K slots: time to first token idle and loaded.

Starts throwaway PostgreSQL+pgvector and Redis, a stub inference server on loopback that generates at most
--slots answers at once and queues the rest in arrival order (tests/stub_llm.py, as vLLM with a full batch), one
web process, a chat worker and a generate worker, as deployed, with INFERENCE_SLOTS=K (INFERENCE_BATCH_SLOTS:
K - 1 unless --batch-slots says). Then:

1. idle: --samples questions, one after another, asked as the chat page asks (time to the first streamed piece);
2. loaded: --items question sets queued for generation (each one model request of --generation-seconds at the
   same server, kind=batch) and, while they run, the same questions again.

It prints p50/p95 of both, the ratio loaded/idle (goal: p95 within 10 %), how many generation requests were at
the server meanwhile and how many sets finished. --batch-slots K shows the same without a slot kept for chat.

Usage: .venv/bin/python bench/bench_capacity.py [--slots 4] [--items 200] [--samples 40]
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

from bench.bench_chat import tutor_chat  # noqa: E402
from bench.common import metric_means, pct, queue_generation, start_chat_side, throwaway_services  # noqa: E402
from deploy.stack import PYTHON  # noqa: E402

QUESTIONS = [{"stem": "Welche Prozessnummer hat der Init-Prozess?", "options": ["0", "1", "42"], "answer": 1,
              "explanation": "Der Init-Prozess hat die PID 1.", "source": 1}]


def ms(seconds):
    return f"{seconds * 1000:.0f} ms"


def chat_model_times():
    """(seconds chat requests waited for a slot, seconds from request to first token at the model, requests) so
    far, summed over every chat request, from the installation's metrics (config.metrics)."""
    means = {name: (n, mean) for (name, labels), (n, mean) in metric_means().items() if ("kind", "chat") in labels}
    wait, first = means.get("tutor_inference_queue_wait_seconds", (0, 0)), means.get(
        "tutor_inference_time_to_first_token_seconds", (0, 0))
    return wait[0] * wait[1], first[0] * first[1], first[0]


async def sample(web, course_id, tokens, n, label):
    """n questions one after another (each once the answer before it has ended: one student at a time, so the
    slot kept for chat is free); seconds to the first streamed piece of each."""
    import httpx

    async with httpx.AsyncClient(timeout=300) as http:
        return [(await tutor_chat(http, web, course_id, tokens[i % len(tokens)],
                                  f"Welche Prozessnummer hat der Init-Prozess? ({label} {i})", until="both"))[0]
                for i in range(n)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=4, help="K: answers the stub server generates at once")
    parser.add_argument("--batch-slots", type=int, default=0, help="INFERENCE_BATCH_SLOTS (default K - 1)")
    parser.add_argument("--items", type=int, default=200, help="question sets queued for generation")
    parser.add_argument("--samples", type=int, default=40, help="questions asked idle and loaded")
    parser.add_argument("--first-token-ms", type=float, default=300, help="the stub's wait before its first token")
    parser.add_argument("--generation-seconds", type=float, default=2.0, help="time of one generation request")
    parser.add_argument("--generate-concurrency", type=int, default=0,
                        help="threads of the generate worker (default 2 K: enough to fill batch's share)")
    args = parser.parse_args()
    slots = args.slots
    batch = args.batch_slots or max(1, slots - 1)
    environment = {"INFERENCE_SLOTS": str(slots), "INFERENCE_BATCH_SLOTS": str(batch), "LOG_LEVEL": "WARNING"}
    with throwaway_services(**environment) as (stack, env, _scratch, logs):
        from courses.models import Section
        from tests.stub_llm import StubLLM
        from tests.support import INIT_TEXT, make_course, make_member, point_tutor_at
        from tutor.questions.models import QuestionSet

        def reply(body):  # a question set for generation requests, words for chat
            return json.dumps({"questions": QUESTIONS}) if not body.get("stream") else " ".join(["wort"] * 20)

        stub = StubLLM(reply=reply, slots=slots, first_token_delay=args.first_token_ms / 1000, token_delay=0.02,
                       complete_seconds=args.generation_seconds).start()
        course = make_course(("systemstart.md", INIT_TEXT))
        point_tutor_at(course, stub.url)
        section = Section.objects.filter(document__course=course).first()
        tokens = [make_member(course)[1] for _ in range(4)]
        _worker, _web, base = start_chat_side(stack, env, logs, threads=8, log_level="WARNING")
        stack.spawn("generate-worker", [PYTHON, "-m", "celery", "-A", "config", "worker", "-Q", "generate", "-n",
                                        "bench-generate@%h", "--pool", "threads", "--concurrency",
                                        str(args.generate_concurrency or 2 * slots), "--loglevel", "WARNING",
                                        "--without-gossip", "--without-mingle"], env=env, stdout=logs,
                    stderr=subprocess.STDOUT)
        print(f"stub server: {slots} slots, first token after {args.first_token_ms:.0f} ms, a generation request "
              f"takes {args.generation_seconds:.1f} s; INFERENCE_SLOTS={slots} INFERENCE_BATCH_SLOTS={batch}; "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        asyncio.run(sample(base, course.pk, tokens, 3, "warm-up"))
        before_idle = chat_model_times()
        idle = asyncio.run(sample(base, course.pk, tokens, args.samples, "idle"))
        after_idle = chat_model_times()


        sets = queue_generation(course, section, args.items)
        deadline = time.monotonic() + 60
        while stub.active < batch and time.monotonic() < deadline:  # the generation fills batch's share first
            time.sleep(0.1)
        served_before = len(stub.served)
        loaded = asyncio.run(sample(base, course.pk, tokens, args.samples, "loaded"))
        during = stub.served[served_before:]
        after_loaded = chat_model_times()
        finished = QuestionSet.objects.filter(pk__in=sets).exclude(
            generation__in=[QuestionSet.QUEUED, QuestionSet.RUNNING]).count()
        waited_at_server = sum(1 for _label, _active, waited in during if waited)
        print(f"idle    p50 {ms(statistics.median(idle))}  p95 {ms(pct(idle, 95))}  (n={len(idle)})", flush=True)
        print(f"loaded  p50 {ms(statistics.median(loaded))}  p95 {ms(pct(loaded, 95))}  (n={len(loaded)}; "
              f"{len(during) - len(loaded)} generation requests at the server meanwhile, "
              f"{finished} of {args.items} sets finished when the questions were done; "
              f"requests that waited at the server: {waited_at_server}; server's most at once: {stub.max_active})",
              flush=True)
        for label, (wait_a, first_a, n_a), (wait_b, first_b, n_b) in (("idle", before_idle, after_idle),
                                                                       ("loaded", after_idle, after_loaded)):
            n = max(1, n_b - n_a)
            print(f"  {label}: of which waiting for a slot {ms((wait_b - wait_a) / n)}, the model's first token "
                  f"{ms((first_b - first_a) / n)} (means, from /metrics)", flush=True)
        print(f"ratio loaded/idle: p50 {statistics.median(loaded) / statistics.median(idle):.3f}  "
              f"p95 {pct(loaded, 95) / pct(idle, 95):.3f}  (goal p95 <= 1.10); load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        stub.stop()


if __name__ == "__main__":
    main()

"""Benchmark: the time one student waits for the first visible text of an answer, through the real stack.

    .venv/bin/python bench/bench_first_text.py [--questions 30] [--answer-mode quotes] [--docs DIR]

Starts throwaway PostgreSQL+pgvector and Redis, a chat worker and one uvicorn web process (as the run command does),
indexes the demo course (deploy/demo_corpus/debian-reference-de, e5-small; passage vectors kept between runs in
var/bench/ladder-embeddings.pickle, as bench_ladder.py keeps them), and asks the questions of
tests/data/debian_reference_de_qa.jsonl one after another as one student on the chat page: the question's POST, the
worker's retrieval, evidence and quote choice, the Redis relay and the stream back. Prints the seconds from sending
the question to the first visible text (the tool's quotes, else the first piece of text, else the decline)
p50/p95/max, the answer's end, the CPU's flags and the load average. No model is started: with --answer-mode quotes
the quotes are the answer (the embedded default's tier); with both, the model's part fails at once and the quotes stay.
"""

import argparse
import asyncio
import json
import os
import time

import httpx
from common import ROOT, cpu_flags, pct, start_chat_side, throwaway_services

DEMO = ROOT / "deploy" / "demo_corpus" / "debian-reference-de"
QA = ROOT / "tests" / "data" / "debian_reference_de_qa.jsonl"


async def ask(base, course_id, token, text):
    """(seconds to the first visible text, seconds to the end, what came first) of one question."""
    from tests.support import ask_as_the_page

    started = time.perf_counter()
    seen = {"first": None, "kind": None, "end": None}

    def on_event(event, data):
        visible = (event == "quotes" and data) or (event in ("snapshot", "delta") and data.get("text"))
        if visible and seen["first"] is None:
            seen["first"], seen["kind"] = time.perf_counter() - started, event
        if event == "final":
            seen["end"] = time.perf_counter() - started
            if seen["first"] is None:
                seen["first"], seen["kind"] = seen["end"], "final"
        return False

    async with httpx.AsyncClient(timeout=120) as http:
        await ask_as_the_page(http, base, course_id, token, text, on_event)
    return seen["first"], seen["end"], seen["kind"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--answer-mode", default="quotes", choices=["quotes", "both"])
    parser.add_argument("--docs", default=str(DEMO))
    parser.add_argument("--embedding-model", default="e5-small")
    parser.add_argument("--embedding-cache", default=str(ROOT / "var" / "bench" / "ladder-embeddings.pickle"))
    args = parser.parse_args()
    questions = [json.loads(line)["q"] for line in QA.read_text().splitlines() if line.strip()][:args.questions]
    with throwaway_services(EMBEDDING_MODEL=args.embedding_model, CHAT_ANSWER_MODE="auto",
                            INFERENCE_URLS="http://127.0.0.1:9/v1") as (stack, env, _scratch, logs):
        from bench_ladder import embed_once

        from courses.evaluation import throwaway_course
        from tests.support import make_member, point_tutor_at
        from tutor.models import TutorConfig

        if args.embedding_cache:
            os.makedirs(os.path.dirname(args.embedding_cache), exist_ok=True)
            embed_once(args.embedding_cache)
        with throwaway_course(args.docs, title="bench_first_text", model=args.embedding_model, log=print) as course:
            mode = TutorConfig.QUOTES_ONLY if args.answer_mode == "quotes" else TutorConfig.BOTH
            point_tutor_at(course, "http://127.0.0.1:9/v1", answer_mode=mode)
            _user, token = make_member(course)
            _worker, _web, base = start_chat_side(stack, env, logs, threads=8)
            asyncio.run(ask(base, course.pk, token, "Was ist Debian?"))  # warm: the models load in the worker
            load = os.getloadavg()[0]
            firsts, ends, kinds = [], [], {}
            for question in questions:
                first, end, kind = asyncio.run(ask(base, course.pk, token, question))
                firsts.append(first)
                ends.append(end)
                kinds[kind] = kinds.get(kind, 0) + 1
            model, flags = cpu_flags()
            print(f"\nmachine: {os.cpu_count()} cores, {model}; flags: {flags}; load average {load:.1f} at the start, "
                  f"{os.getloadavg()[0]:.1f} at the end")
            print(f"one student, {len(questions)} questions one after another, answer mode {args.answer_mode}, "
                  f"{args.embedding_model}; first visible: {kinds}")
            print(f"first visible text: p50 {pct(firsts, 50):.2f} s  p95 {pct(firsts, 95):.2f} s  "
                  f"max {max(firsts):.2f} s")
            print(f"answer ended:       p50 {pct(ends, 50):.2f} s  p95 {pct(ends, 95):.2f} s")


if __name__ == "__main__":
    main()

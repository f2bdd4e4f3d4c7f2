"""Many students ask at the same moment through the real stack and the real embedded model (SmolLM2, llama.cpp).

Starts throwaway PostgreSQL+pgvector and Redis, the embedded llama.cpp server (deploy/llama_server.py, one
slot: it answers one request at a time), one chat worker on a threads pool and one uvicorn web process, as the
run command does; indexes chapters 1 and 3 of the Debian-Referenz into a course; then --students students each
ask a different question at the same instant, as the chat page asks (the answer streams in the POST's response).
While they wait, the model server's readiness check runs every second.

Prints, per answer and in sum: completed / failed / cut off (interrupted), how long each waited for its turn
(until the queue told it "your turn"), time to its first piece, and its whole time; the CPU's flags.

Usage: .venv/bin/python bench/bench_concurrent_chat.py [--students 20] [--embedding-model static]
"""

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import pct, start_chat_side, throwaway_services  # noqa: E402
from deploy.stack import free_port, start_llama  # noqa: E402

QUESTIONS = [
    "Wie installiert man ein Paket mit apt?", "Was ist ein Debian-Paket?", "Wie wechselt man zum Benutzer root?",
    "Was macht der Befehl sudo?", "Wie zeigt man den Inhalt einer Datei an?", "Was ist ein Dateisystem?",
    "Wie startet man das System neu?", "Was ist der Bootloader?", "Was macht systemd beim Systemstart?",
    "Wie findet man eine Datei?", "Was ist eine Shell?", "Wie ändert man Dateirechte?", "Was ist init?",
    "Wie listet man Prozesse auf?", "Was sind Umgebungsvariablen?", "Wie richtet man das Netzwerk ein?",
    "Was ist die Kernel-Befehlszeile?", "Wie liest man Systemprotokolle?", "Was ist ein Runlevel?",
    "Wie bearbeitet man eine Konfigurationsdatei?",
]


async def ask(http, web, course_id, token, text):
    """One student's question as the chat page asks it: what the page was shown, with times."""
    from tests.support import ask_as_the_page

    started = time.monotonic()
    seen = {"question": text, "ahead": [], "turn": 0.0, "first": None, "final": None, "error": ""}

    def on_event(event, data):
        if event == "queue":
            seen["ahead"].append(data["ahead"])
            if data["ahead"] == 0:
                seen["turn"] = time.monotonic() - started
        elif event in ("snapshot", "delta") and data.get("text") and seen["first"] is None:
            seen["first"] = time.monotonic() - started
        elif event == "final":
            seen["final"] = data

    try:
        await ask_as_the_page(http, web, course_id, token, text, on_event)
    except Exception as exc:  # reported per answer
        seen["error"] = f"{exc.__class__.__name__}: {exc}"
    seen["total"] = time.monotonic() - started
    return seen


async def readiness(done, url):
    """The model server's readiness check (config.health) every second until done."""
    from config.health import run_checks

    results = []
    while not done.is_set():
        results.append((await asyncio.to_thread(run_checks, ["inference"]))["inference"])
        await asyncio.sleep(1)
    return results


async def run(args, web, course_id, tokens):
    import httpx

    done = asyncio.Event()
    limits = httpx.Limits(max_connections=len(tokens) + 5)
    async with httpx.AsyncClient(timeout=httpx.Timeout(3600, connect=60), limits=limits) as http:
        health = asyncio.create_task(readiness(done, None))
        results = await asyncio.gather(*[ask(http, web, course_id, token, QUESTIONS[i % len(QUESTIONS)])
                                         for i, token in enumerate(tokens)])
        done.set()
        return results, await health


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--embedding-model", default="static", help="EMBEDDING_MODEL of the course (e5-small: "
                        "the product's default; static: fast to index, same prompts' size)")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    parser.add_argument("--keep-logs", default="", help="copy the services' log to this file")
    args = parser.parse_args()

    llama_port = free_port()
    inference = f"http://127.0.0.1:{llama_port}/v1"
    with throwaway_services(args.keep_logs, LOG_LEVEL="INFO", EMBEDDING_MODEL=args.embedding_model,
                            INFERENCE_URL=inference, INFERENCE_SLOTS="1", INFERENCE_TIMEOUT="600",
                            CHAT_STREAM_TIMEOUT="3600") as (stack, env, scratch, logs):
        start_llama(stack, llama_port, scratch / "llama.log", threads=args.threads)
        from courses.documents import add_document
        from courses.ingest import ingest_document
        from courses.models import Course
        from tests.support import make_member, point_tutor_at
        from tutor.chat.models import Message

        corpus = ROOT / "deploy" / "demo_corpus" / "debian-reference-de"
        course = Course.objects.create(title="Debian-Referenz", language="de")
        for name in ("ch01.de.html", "ch03.de.html"):
            document = add_document(course, name, (corpus / name).read_bytes(), enqueue=False)
            ingest_document(document.pk)
        point_tutor_at(course, env["INFERENCE_URL"], timeout_seconds=600)
        tokens = [make_member(course)[1] for _ in range(args.students)]

        _worker, _web, base = start_chat_side(stack, env, logs, log_level="INFO")
        print(f"{args.students} students ask at the same instant; llama.cpp SmolLM2-135M, one slot, "
              f"{args.threads} threads; embedding model {args.embedding_model}", flush=True)
        started = time.monotonic()
        results, checks = asyncio.run(run(args, base, course.pk, tokens))
        wall = time.monotonic() - started

        print(f"{'#':>3} {'status':<10} {'ahead':>5} {'turn s':>7} {'first s':>8} {'total s':>8}  question")
        for n, seen in enumerate(sorted(results, key=lambda r: r["total"]), start=1):
            final = seen["final"] or {}
            status = final.get("status") or "no final"
            if final.get("error_code"):
                status += f" ({final['error_code']})"
            print(f"{n:>3} {status:<10} {max(seen['ahead'], default=0):>5} {seen['turn']:>7.1f} "
                  f"{(seen['first'] or float('nan')):>8.1f} {seen['total']:>8.1f}  {seen['question']}"
                  + (f"  ERROR {seen['error']}" if seen["error"] else ""))
        answers = Message.objects.filter(conversation__course=course, role=Message.ASSISTANT)
        done = answers.filter(status=Message.DONE).count()
        failed = answers.filter(status=Message.FAILED).count()
        interrupted = answers.filter(error="interrupted").count()
        cut = answers.filter(status=Message.DONE, text__contains="Längengrenze").count()
        turns = [r["turn"] for r in results]
        firsts = [r["first"] for r in results if r["first"] is not None]
        totals = [r["total"] for r in results]
        print(f"answers: {done} completed, {failed} failed, {interrupted} cut off by an interruption, "
              f"{cut} ended at the length limit (said so); wall {wall:.0f} s")
        print(f"waiting for the turn: p50 {statistics.median(turns):.1f} s, p95 {pct(turns, 95):.1f} s, "
              f"max {max(turns):.1f} s")
        if firsts:
            print(f"time to first piece: p50 {statistics.median(firsts):.1f} s, p95 {pct(firsts, 95):.1f} s")
        print(f"whole answer: p50 {statistics.median(totals):.1f} s, p95 {pct(totals, 95):.1f} s")
        print(f"model readiness while busy: {sum(c['ok'] for c in checks)}/{len(checks)} ok, "
              f"slowest {max((c['ms'] for c in checks), default=0):.0f} ms")


if __name__ == "__main__":
    main()

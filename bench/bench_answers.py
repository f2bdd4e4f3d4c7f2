"""Benchmark: ``manage.py evaluate_answers`` on the demo course (deploy/demo_corpus/debian-reference-de) with the
embedded SmolLM2 (llama.cpp, as the run command starts it) or any OpenAI-compatible server.

    .venv/bin/python bench/bench_answers.py [--limit 10] [--qa tests/data/debian_reference_de_qa.jsonl]
        [--unanswerable tests/data/debian_reference_de_unanswerable_heldout.jsonl] [--embedding-model e5-small]
        [--url URL --model NAME] [--answer-mode auto|both|quotes|explanation] [--no-llm] [--show]

Starts throwaway PostgreSQL+pgvector and Redis (bench/common.py) and, without --url, the embedded llama.cpp server
(2 threads, n_ctx 4096); the command ingests the folder into a throwaway course and runs the real chat pipeline.
--no-llm (or --answer-mode quotes) starts no model: the tool's quotes are the answers. Prints its report (per set:
declined, answered, answer holds an expected string, its quotes hold it, a cited passage holds it), the time to the
first visible text and the CPU's flags; last line ``answered_correct = …; false_declines = …;
declined_unanswerable = …``.
"""

import argparse
import time

from common import ROOT, cpu_flags, throwaway_services

from deploy.stack import free_port, port_open, start_llama

DEMO = ROOT / "deploy" / "demo_corpus" / "debian-reference-de"
DATA = ROOT / "tests" / "data"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", default=str(DEMO))
    parser.add_argument("--qa", default=str(DATA / "debian_reference_de_qa.jsonl"))
    parser.add_argument("--unanswerable", default=str(DATA / "debian_reference_de_unanswerable_heldout.jsonl"))
    parser.add_argument("--limit", type=int, default=10, help="questions asked of each set")
    parser.add_argument("--embedding-model", default="e5-small", help="the product's default: e5-small")
    parser.add_argument("--url", default=None, help="an OpenAI-compatible server instead of the embedded SmolLM2")
    parser.add_argument("--model", default=None, help="its model name")
    parser.add_argument("--answer-mode", default="auto", choices=["auto", "both", "quotes", "explanation"],
                        help="how the tutor answers (default: as the installation decides for the model)")
    parser.add_argument("--no-llm", action="store_true", help="no model at all: the quotes are the answers")
    parser.add_argument("--show", action="store_true", help="print each question's outcome and quotes")
    parser.add_argument("--sources", type=int, default=None, help="passages per answer (default: the product's)")
    args = parser.parse_args()
    if args.no_llm and args.answer_mode in ("both", "explanation"):
        parser.error("--no-llm answers with quotes only")
    no_llm = args.no_llm or args.answer_mode == "quotes"

    model_name, flags = cpu_flags()
    print(f"machine: {model_name}; flags: {flags}", flush=True)
    extra = {"INFERENCE_URL": "none", "CHAT_ANSWER_MODE": "quotes"} if no_llm and not args.url else {}
    with throwaway_services(EMBEDDING_MODEL=args.embedding_model, INFERENCE_CONTEXT_TOKENS="4096", **extra) as (
            stack, _env, scratch, _logs):
        url = args.url
        if url is None and not no_llm:
            port = free_port()
            start_llama(stack, port, scratch / "llama.log", threads=2, n_ctx=4096)
            assert port_open("127.0.0.1", port)
            url = f"http://127.0.0.1:{port}/v1"
        from django.conf import settings
        from django.core.management import call_command

        settings.INFERENCE_ALLOWED_HOSTS = [*settings.INFERENCE_ALLOWED_HOSTS, "127.0.0.1"]
        started = time.monotonic()
        options = {"docs": args.docs, "qa": args.qa, "unanswerable": args.unanswerable, "limit": args.limit,
                   "url": url, "embedding_model": args.embedding_model, "show": args.show,
                   "answer_mode": "quotes" if no_llm else args.answer_mode}
        if args.model:
            options["model"] = args.model
        if args.sources:
            options["sources"] = args.sources
        call_command("evaluate_answers", **options)
        print(f"wall {time.monotonic() - started:.0f} s (ingestion included)", flush=True)


if __name__ == "__main__":
    main()

"""Benchmark and fit of the tool's quotes (tutor.chat.quotes): does the chosen sentence hold the answer?

    .venv/bin/python bench/bench_quotes.py --dump /tmp/quotes.json [--embedding-model e5-small]
    .venv/bin/python bench/bench_quotes.py --fit /tmp/quotes.json

--dump ingests the demo course (deploy/demo_corpus/debian-reference-de) into throwaway services, retrieves the
passages of every labelled question (tests/data/debian_reference_de_*.jsonl with answers) as the chat does (4
sources) and writes each candidate unit with its features (similarity, coverage, passage rank) and whether it
holds an expected string, plus the time the scoring took. --fit reads that file and, per question set, prints how
often the quotes chosen by the current weights hold the answer, then searches the weights on the tuning sets (the
files without "heldout") and prints both figures for the best, so held-out sets are reported, never fitted.
"""

import argparse
import itertools
import json
import time

from common import ROOT, cpu_flags, pct, throwaway_services

DEMO = ROOT / "deploy" / "demo_corpus" / "debian-reference-de"
SETS = ["debian_reference_de_qa.jsonl", "debian_reference_de_paraphrased.jsonl",
        "debian_reference_de_paraphrased_heldout.jsonl"]


def dump(args):
    """Ingest, retrieve, score; write the features of every unit."""
    with throwaway_services(EMBEDDING_MODEL=args.embedding_model, INFERENCE_URL="none") as (_s, _e, _scratch, _l):
        from courses.evaluation import load_questions, throwaway_course
        from tutor.chat import quotes
        from tutor.chat.answerability import assess
        from tutor.chat.relevance import relevant_passages
        from tutor.inference.prompts import search_query

        rows = []
        quotes.EMBEDDED_UNITS = 10 ** 6  # every unit's similarity, so that --fit can try any shortlist
        with throwaway_course(str(DEMO), title="bench_quotes", language="de", model=args.embedding_model) as course:
            for name in SETS:
                for question, expected in load_questions(ROOT / "tests" / "data" / name)[:args.limit]:
                    passages = relevant_passages(course.pk, search_query(question, []), 4)
                    level = assess(passages, passages[0].embedding_model if passages else None).level
                    started = time.monotonic()
                    units = quotes.score_units(course.pk, question, passages, quotes.candidates(passages))
                    seconds = time.monotonic() - started
                    from tutor.chat.checks import contains
                    rows.append({"set": name, "q": question, "any": expected, "level": level, "seconds": seconds,
                                 "in_passages": any(contains(p.text, expected) for p in passages),
                                 "units": [{"passage": u.passage, "position": u.position, "text": u.text,
                                            "similarity": u.similarity, "coverage": u.coverage,
                                            "context": u.context,
                                            "hit": contains(u.text, expected)} for u in units]})
        with open(args.dump, "w") as out:
            json.dump(rows, out, ensure_ascii=False)
        times = [r["seconds"] for r in rows]
        print(f"{len(rows)} questions; scoring the units took p50 {pct(times, 50):.3f} s, p95 {pct(times, 95):.3f} s")


def evaluate(rows, weights):
    """Share of questions whose chosen quotes hold an expected string, with the scoring and selection of
    tutor.chat.quotes under these weights (module constants by name)."""
    from tutor.chat import quotes

    saved = {k: getattr(quotes, k) for k in weights}
    for key, value in weights.items():
        setattr(quotes, key, value)
    try:
        good = 0
        for row in rows:
            units = [quotes.Unit(u["passage"], u["position"], 0, 0, u["text"], u["similarity"], u["coverage"],
                                 context=u.get("context", 0.0))
                     for u in row["units"]]
            hits = {(u["passage"], u["position"]) for u in row["units"] if u["hit"]}
            shortlist = sorted(quotes.eligible(units), key=lambda u: (-u.held, u.passage, u.position))
            shortlist = shortlist[:quotes.EMBEDDED_UNITS]
            best = max((u.similarity for u in shortlist), default=0.0)
            for unit in units:
                unit.score = quotes.unit_score(unit, best) if unit in shortlist else float("-inf")
            chosen = quotes.select(units)
            good += any((u.passage, u.position) in hits for group in chosen for u in group) or \
                _joined_hit(row, chosen)
        return good / len(rows) if rows else 0.0
    finally:
        for key, value in saved.items():
            setattr(quotes, key, value)


def _joined_hit(row, chosen):
    """An expected string that spans two neighbouring units counts when both are quoted together."""
    from tutor.chat.checks import contains

    return any(len(group) > 1 and contains(" ".join(u.text for u in group), row["any"]) for group in chosen)


def fit(args):
    """Report the current weights per set, search weights on the tuning sets, report the best."""
    rows = json.load(open(args.fit))
    current = {}
    for name in SETS:
        subset = [r for r in rows if r["set"] == name]
        reachable = sum(r["in_passages"] for r in subset) / max(1, len(subset))
        print(f"{name}: {len(subset)} questions; answer in a retrieved passage {reachable:.2f}; "
              f"in the quotes (current weights) {evaluate(subset, current):.2f}")
    tuning = [r for r in rows if "heldout" not in r["set"]]
    grid = {"COVERAGE_WEIGHT": [0.0, 0.1, 0.2, 0.3, 0.5], "RANK_WEIGHT": [0.0, 0.02, 0.05, 0.08],
            "EMBEDDED_UNITS": [6, 8, 12, 1000]}
    best = max((dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())),
               key=lambda w: evaluate(tuning, w))
    print(f"best on the tuning sets: {best}: {evaluate(tuning, best):.2f}")
    for name in SETS:
        subset = [r for r in rows if r["set"] == name]
        print(f"  {name}: {evaluate(subset, best):.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dump", help="write the units' features to this file")
    parser.add_argument("--fit", help="read them from this file and fit")
    parser.add_argument("--limit", type=int, default=None, help="questions of each set")
    parser.add_argument("--embedding-model", default="e5-small")
    args = parser.parse_args()
    model_name, flags = cpu_flags()
    print(f"machine: {model_name}; flags: {flags}", flush=True)
    if args.dump:
        dump(args)
    if args.fit:
        import os
        import sys

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        os.environ.setdefault("INFERENCE_URL", "none")
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        fit(args)


if __name__ == "__main__":
    main()

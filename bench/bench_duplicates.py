"""Near-duplicate thresholds per embedding model on labelled pairs of questions (tests/data/question_duplicate_pairs.jsonl).

For each packaged embedding model: the threshold with the fewest errors (tutor.questions.item_checks.calibrate, as in
DUPLICATE_SIMILARITY), its error rates (same-topic questions taken for duplicates, duplicates missed), and the rates at
the single threshold of before (0.92) and at the table's.

Usage: .venv/bin/python bench/bench_duplicates.py [--models e5-small,static,minilm]
"""

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PAIRS = ROOT / "tests" / "data" / "question_duplicate_pairs.jsonl"


def rates(scored, threshold):
    """(share of non-duplicates at or above threshold, share of duplicates below it)."""
    others = [s for s, same in scored if not same]
    duplicates = [s for s, same in scored if same]
    return (sum(s >= threshold for s in others) / len(others), sum(s < threshold for s in duplicates) / len(duplicates))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="e5-small,static,minilm")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    import django

    django.setup()
    from bench.common import cpu_flags
    from courses.embeddings import get_embedder
    from tutor.questions import item_checks

    pairs = [json.loads(line) for line in PAIRS.read_text().splitlines() if line.strip()]
    print(f"{len(pairs)} pairs: {sum(p['duplicate'] for p in pairs)} duplicates, "
          f"{sum(not p['duplicate'] for p in pairs)} same-topic non-duplicates; machine: {cpu_flags()}")
    print("| model | calibrated threshold | same-topic taken for duplicates | duplicates missed | at 0.92: taken / missed |")
    print("|---|---|---|---|---|")
    for name in args.models.split(","):
        scored = item_checks.pair_similarities(pairs, get_embedder(name))
        threshold, _false, _missed = item_checks.calibrate(scored)
        false, missed = rates(scored, threshold)
        old_false, old_missed = rates(scored, 0.92)
        table = item_checks.DUPLICATE_SIMILARITY.get(name)
        note = "" if table == threshold else f" (table says {table})"
        print(f"| {name} | {threshold}{note} | {false:.0%} | {missed:.0%} | {old_false:.0%} / {old_missed:.0%} |")


if __name__ == "__main__":
    main()

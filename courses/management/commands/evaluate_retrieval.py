"""Measure retrieval quality: ingest a folder into a throwaway course and score a labelled question set."""

import sys
import time

from django.core.management.base import BaseCommand

from courses.evaluation import load_questions, throwaway_course
from courses.retrieval import retrieve


def first_hit(passages, answers):
    """1-based rank of the first passage containing one of the answer strings, else None."""
    for rank, passage in enumerate(passages, 1):
        if any(answer in passage.text for answer in answers):
            return rank
    return None


def score(ranks, cutoffs=(1, 3, 5, 10)):
    """recall@k for each cutoff and the mean reciprocal rank."""
    n = len(ranks)
    recall = {k: sum(1 for r in ranks if r is not None and r <= k) / n for k in cutoffs}
    mrr = sum(1 / r for r in ranks if r is not None) / n
    return recall, mrr


class Command(BaseCommand):
    help = "Ingest every file of --docs into a fresh throwaway course and print recall@1/3/5/10 and MRR for --qa."

    def add_arguments(self, parser):
        parser.add_argument("--docs", required=True, help="folder with the course texts")
        parser.add_argument("--qa", required=True, help='JSON lines {"q": "...", "any": ["answer string", ...]}')
        parser.add_argument("--k", type=int, default=5, help="the k of the last line, recall@k (default 5)")
        parser.add_argument("--language", default=None, help="query language, e.g. de (default: the texts')")
        parser.add_argument("--model", default=None, help="embedding model (default: settings.EMBEDDING_MODEL)")
        parser.add_argument("--no-synonyms", action="store_true",
                            help="search without the German synonym list (to measure what it adds)")
        parser.add_argument("--show-misses", action="store_true", help="list the questions missed at k")

    def handle(self, *args, docs, qa, k, language, model, show_misses, no_synonyms, **options):
        questions = load_questions(qa)
        with throwaway_course(docs, title="evaluate_retrieval", language=language, model=model,
                              log=self.stderr.write) as course:
            depth = max(10, k)
            ranks, latencies = [], []
            for question, answers in questions:
                started = time.monotonic()
                passages = retrieve(course.pk, question, k=depth, language=language, synonyms=not no_synonyms)
                latencies.append(time.monotonic() - started)
                ranks.append(first_hit(passages, answers))
                if show_misses and (ranks[-1] is None or ranks[-1] > k):
                    self.stderr.write(f"miss: {question}  (first hit: {ranks[-1]})")
            cutoffs = sorted({1, 3, 5, 10, k})
            recall, mrr = score(ranks, cutoffs)
            latencies.sort()
            self.stdout.write(f"questions: {len(questions)}  documents: {course.documents_count}  "
                              f"median latency: {1000 * latencies[len(latencies) // 2]:.1f} ms")
            for cutoff in cutoffs:
                self.stdout.write(f"recall@{cutoff}: {recall[cutoff]:.3f}")
            self.stdout.write(f"MRR: {mrr:.3f}")
            self.stdout.write(f"recall@{k} = {recall[k]:.2f}")
        sys.stdout.flush()

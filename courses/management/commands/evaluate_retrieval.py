"""Measure retrieval quality: ingest a folder into a throwaway course and score a labelled question set."""

import json
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from courses.documents import EXTENSIONS, UploadError, add_document, delete_document
from courses.ingest import ingest_document
from courses.models import Course, Document
from courses.retrieval import retrieve


def load_questions(path):
    """Questions from a JSON-lines file of {"q": "...", "any": ["answer string", ...]}."""
    questions = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            questions.append((item["q"], list(item["any"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"{path}:{number}: not a {{\"q\": …, \"any\": […]}} line ({exc})") from exc
    if not questions:
        raise CommandError(f"{path} holds no questions")
    return questions


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
        parser.add_argument("--show-misses", action="store_true", help="list the questions missed at k")

    def handle(self, *args, docs, qa, k, language, model, show_misses, **options):
        folder = Path(docs)
        if not folder.is_dir():
            raise CommandError(f"--docs {docs}: not a folder")
        questions = load_questions(qa)
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)
        if not files:
            raise CommandError(f"--docs {docs}: no PDF, DOCX, HTML, Markdown or text files")
        course = Course.objects.create(title=f"evaluate_retrieval {time.strftime('%Y-%m-%d %H:%M:%S')}",
                                       language=language or "de")
        try:
            for path in files:
                started = time.monotonic()
                try:
                    document = add_document(course, path.name, path.read_bytes(), enqueue=False)
                except UploadError as exc:
                    raise CommandError(f"{path}: {exc}") from exc
                result = ingest_document(document.pk, model=model)
                document.refresh_from_db()
                if result != "ready":
                    raise CommandError(f"{path}: ingestion {result}: {document.error_message} {document.error_detail}")
                self.stderr.write(f"ingested {path.name}: {document.pages_total} pages, {document.chunks_total} "
                                  f"chunks in {time.monotonic() - started:.1f} s")
            depth = max(10, k)
            ranks, latencies = [], []
            for question, answers in questions:
                started = time.monotonic()
                passages = retrieve(course.pk, question, k=depth, language=language)
                latencies.append(time.monotonic() - started)
                ranks.append(first_hit(passages, answers))
                if show_misses and (ranks[-1] is None or ranks[-1] > k):
                    self.stderr.write(f"miss: {question}  (first hit: {ranks[-1]})")
            cutoffs = sorted({1, 3, 5, 10, k})
            recall, mrr = score(ranks, cutoffs)
            latencies.sort()
            self.stdout.write(f"questions: {len(questions)}  documents: {len(files)}  "
                              f"median latency: {1000 * latencies[len(latencies) // 2]:.1f} ms")
            for cutoff in cutoffs:
                self.stdout.write(f"recall@{cutoff}: {recall[cutoff]:.3f}")
            self.stdout.write(f"MRR: {mrr:.3f}")
            self.stdout.write(f"recall@{k} = {recall[k]:.2f}")
        finally:
            for document in Document.objects.filter(course=course):
                delete_document(document)
            course.delete()
            sys.stdout.flush()

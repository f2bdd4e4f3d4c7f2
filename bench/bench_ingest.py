"""Benchmark: ingest the 276-page German Debian-Referenz PDF end to end, split into parse/chunk/embed/insert.

    .venv/bin/python bench/bench_ingest.py [--model e5-small|static|minilm] [--pdf PATH]

Uses $DATABASE_URL when it answers, else starts a throwaway PostgreSQL+pgvector (deploy.stack) on a free port.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PDF = ROOT / "deploy" / "demo_corpus" / "debian-reference-de" / "debian-reference.de.pdf"


def setup_django():
    """Point Django at a reachable PostgreSQL (a throwaway one if needed), migrate, and return a cleanup callable."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    scratch = Path(tempfile.mkdtemp(prefix="tutor-bench-"))
    os.environ.setdefault("TUTOR_MEDIA_ROOT", str(scratch / "media"))
    stack = None
    url = os.environ.get("DATABASE_URL")
    if not url or not _reachable(url):
        from deploy.stack import Stack, free_port, start_postgres

        stack, port = Stack(), free_port()
        start_postgres(stack, scratch / "pgdata", port, "bench")
        os.environ["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{port}/bench"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)

    def cleanup():
        if stack is not None:
            stack.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    return cleanup


def _reachable(url):
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=2).close()
        return True
    except psycopg.Error:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="embedding model (default: settings.EMBEDDING_MODEL)")
    parser.add_argument("--pdf", default=str(PDF))
    args = parser.parse_args()
    cleanup = setup_django()
    try:
        run(args)
    finally:
        cleanup()


def run(args):
    from django.conf import settings

    from courses.chunking import chunk_sections
    from courses.documents import add_document
    from courses.embeddings import get_embedder
    from courses.ingest import _store, ensure_index, ingest_document
    from courses.models import Course
    from courses.parsing import parse_file

    model = args.model or settings.EMBEDDING_MODEL
    data = Path(args.pdf).read_bytes()
    course = Course.objects.create(title="bench_ingest")
    try:
        started = time.perf_counter()
        embedder = get_embedder(model)
        embedder.embed_passages(["warm-up"])  # models that load their passage engine on first use (e5-small)
        load = time.perf_counter() - started
        document = add_document(course, Path(args.pdf).name, data, enqueue=False)
        index, _ = ensure_index(course.pk, model)

        t0 = time.perf_counter()
        parsed = parse_file(document.file.path, document.kind)
        t1 = time.perf_counter()
        drafts = chunk_sections(parsed.sections, embedder.count_tokens)
        t2 = time.perf_counter()
        vectors = embedder.embed_passages([f"{parsed.sections[d.section_index].title}\n{d.text}" for d in drafts])
        t3 = time.perf_counter()
        _store(document.pk, document.sha256, index, parsed, drafts, vectors)
        t4 = time.perf_counter()
        engine = getattr(embedder, "passage_engine", "")
        print(f"model {model}{f' ({engine} engine)' if engine else ''} (dimension {embedder.dimension}), "
              f"loaded in {load:.1f} s, {os.cpu_count()} CPUs")
        print(f"{parsed.pages_total} pages, {len(drafts)} chunks")
        print(f"parse  {t1 - t0:7.2f} s")
        print(f"chunk  {t2 - t1:7.2f} s")
        print(f"embed  {t3 - t2:7.2f} s  ({len(drafts) / (t3 - t2):.1f} chunks/s)")
        print(f"insert {t4 - t3:7.2f} s")
        print(f"total  {t4 - t0:7.2f} s")
        document.indexed_sha256 = ""
        document.save(update_fields=["indexed_sha256"])
        t5 = time.perf_counter()
        result = ingest_document(document.pk, model=model)
        print(f"end to end via courses.ingest.ingest_document: {time.perf_counter() - t5:.2f} s ({result})")
    finally:
        course.delete()


if __name__ == "__main__":
    main()

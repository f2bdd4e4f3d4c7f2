"""Benchmark: hybrid retrieval latency for one course of 20k chunks among many courses (synthetic vectors).

    .venv/bin/python bench/bench_retrieval.py [--total 1000000] [--courses 500] [--target 20000] [--dim 384]
                                              [--queries 200] [--ef-search N] [--sweep] [--keep DIR]

Builds the chunks table with clustered random vectors and real German chunk texts (their tsvectors come
from the Debian-Referenz), then times the production SQL (courses.retrieval.search: semantic CTE exact or
through the partial HNSW index with hnsw.iterative_scan = relaxed_order, as semantic_path chooses, plus the
idf-weighted full-text CTE, fused by RRF) in the target course and in a small one, with each plan forced,
and each half alone (the semantic half's recall against exact search); --sweep also times HNSW at smaller
shares of the table, where semantic_path's cost constants come from.
Uses $DATABASE_URL when it answers, else a throwaway PostgreSQL (see bench_ingest.setup_django); with
--keep DIR the PostgreSQL data lives in DIR and stays after the run. Either way a database that already holds
a build of the same sizes (recorded in the table bench_retrieval_build) is reused: building 1M rows and their
HNSW index takes tens of minutes on 2 cores, a reused run starts measuring within seconds.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import PDF, ROOT, setup_django  # noqa: E402

QA = ROOT / "tests" / "data" / "debian_reference_de_qa.jsonl"


def percentiles(samples):
    """(p50, p95) in milliseconds."""
    ordered = sorted(samples)
    return 1000 * statistics.median(ordered), 1000 * ordered[int(0.95 * (len(ordered) - 1))]


BUILD_TABLE = """CREATE TABLE IF NOT EXISTS bench_retrieval_build (
    sizes text PRIMARY KEY, course_id bigint NOT NULL, index_id bigint NOT NULL, topics text NOT NULL,
    rng_state text NOT NULL)"""


def sizes_key(args):
    return f"total={args.total} courses={args.courses} target={args.target} dim={args.dim}"


def reuse(args):
    """(target course, index id, topics, rng) of an earlier build of these sizes in this database, or None."""
    from django.db import connection

    from courses.models import Course

    with connection.cursor() as cursor:
        cursor.execute(BUILD_TABLE)
        cursor.execute("SELECT course_id, index_id, topics, rng_state FROM bench_retrieval_build WHERE sizes = %s",
                       [sizes_key(args)])
        row = cursor.fetchone()
    course = row and Course.objects.filter(pk=row[0]).first()
    if course is None:
        return None
    rng = np.random.default_rng(1)
    rng.bit_generator.state = json.loads(row[3])
    return course, row[1], np.array(json.loads(row[2]), dtype=np.float32), rng


def record(args, course, index_id, topics, rng):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(BUILD_TABLE)
        cursor.execute("INSERT INTO bench_retrieval_build VALUES (%s, %s, %s, %s, %s) ON CONFLICT (sizes) DO UPDATE"
                       " SET course_id = EXCLUDED.course_id, index_id = EXCLUDED.index_id, topics = EXCLUDED.topics,"
                       " rng_state = EXCLUDED.rng_state",
                       [sizes_key(args), course.pk, index_id, json.dumps(topics.tolist()),
                        json.dumps(rng.bit_generator.state)])


def build(args, rng):
    """Create courses, one document/section/index each, and the chunks; returns (target course, index id, topics)."""
    from django.db import connection

    from courses.chunking import chunk_sections
    from courses.ingest import refresh_course_terms
    from courses.models import Course, Document, EmbeddingIndex, Section
    from courses.parsing import parse_file

    parsed = parse_file(PDF, "pdf")
    pool = [d.text for d in chunk_sections(parsed.sections, lambda t: int(len(t.split()) * 1.3))]
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_tsvector('german', t)::text FROM unnest(%s::text[]) AS t", [pool])
        pool_tsv = [row[0] for row in cursor.fetchall()]

    per_other = max(1, (args.total - args.target) // max(1, args.courses - 1))
    started = time.perf_counter()
    courses = Course.objects.bulk_create([Course(title=f"bench {i}") for i in range(args.courses)])
    indexes = EmbeddingIndex.objects.bulk_create(
        [EmbeddingIndex(course=c, model="bench", dimension=args.dim) for c in courses])
    documents = Document.objects.bulk_create([
        Document(course=c, title=f"doc {c.pk}", filename="x.pdf", sha256=f"{c.pk:064d}", kind="pdf",
                 status=Document.READY, language="de", index=ix,
                 chunks_total=args.target if i == 0 else per_other)
        for i, (c, ix) in enumerate(zip(courses, indexes, strict=True))])
    sections = Section.objects.bulk_create([Section(document=d, path="1 Bench", title="Bench", order=0)
                                            for d in documents])
    centers = rng.normal(size=(args.courses, args.dim)).astype(np.float32)
    target_topics = None
    with connection.cursor() as cursor:  # bulk load first, then build the HNSW index once (much faster)
        cursor.execute(f"DROP INDEX IF EXISTS chunk_hnsw_{args.dim}")
    columns = ("course_id, document_id, section_id, index_id, ordinal, text, page, token_count, embedding, dimension,"
               " search_vector")
    written = 0
    vector_format = "[" + ",".join(["%.4f"] * args.dim) + "]"
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY courses_chunk ({columns}) FROM STDIN") as copy:
            for i, (course, index, document, section) in enumerate(zip(courses, indexes, documents, sections, strict=True)):
                count = args.target if i == 0 else per_other
                topics = centers[i] + rng.normal(size=(20, args.dim)).astype(np.float32)
                if i == 0:
                    target_topics = topics
                vectors = topics[rng.integers(0, 20, count)] + 0.6 * rng.normal(size=(count, args.dim)).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                picks = rng.integers(0, len(pool), count)
                for ordinal in range(count):
                    vector = vector_format % tuple(vectors[ordinal].tolist())
                    p = int(picks[ordinal])
                    copy.write_row((course.pk, document.pk, section.pk, index.pk, ordinal, pool[p], 1, 100,
                                    vector, args.dim, pool_tsv[p]))
                written += count
                if i % 50 == 0:
                    print(f"  {written} chunks written ({time.perf_counter() - started:.0f} s)", flush=True)
    print(f"loaded {written} chunks over {args.courses} courses in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '4GB'")
        cursor.execute(f"CREATE INDEX chunk_hnsw_{args.dim} ON courses_chunk USING hnsw "
                       f"((embedding::vector({args.dim})) vector_cosine_ops) WHERE dimension = {args.dim}")
        cursor.execute("VACUUM ANALYZE courses_chunk")
    print(f"HNSW index built in {time.perf_counter() - started:.0f} s")
    for searched in courses[:2]:  # term counts (idf) of the two courses that are searched
        refresh_course_terms(searched.pk)
    return courses[0], indexes[0].pk, target_topics


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=1_000_000, help="chunks in all courses together")
    parser.add_argument("--courses", type=int, default=500)
    parser.add_argument("--target", type=int, default=20_000, help="chunks in the course that is searched")
    parser.add_argument("--dim", type=int, default=384, help="vector dimension (e5-small and MiniLM: 384)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef-search", type=int, help="hnsw.ef_search (default: courses.retrieval.HNSW_EF_SEARCH)")
    parser.add_argument("--sweep", action="store_true", help="also time HNSW at smaller shares of the table")
    parser.add_argument("--rerank-stub", action="store_true",
                        help="also time k=5 after reranking 20 candidates on a loopback rerank server (HTTP cost "
                             "only: a real cross-encoder adds its own scoring time on the inference server)")
    parser.add_argument("--keep", metavar="DIR", help="keep PostgreSQL's data in DIR and reuse its build next time")
    args = parser.parse_args()
    stack = None
    if args.keep and not os.environ.get("DATABASE_URL"):
        from deploy.stack import Stack, free_port, start_postgres

        stack, port = Stack(), free_port()
        start_postgres(stack, Path(args.keep).resolve() / "pgdata", port, "bench")
        os.environ["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{port}/bench"
    try:
        cleanup = setup_django()
        try:
            run(args)
        finally:
            cleanup()
    finally:
        if stack is not None:
            stack.stop()


def run(args):
    from django.db import connection

    from courses import retrieval
    from courses.language import keyword_text
    from courses.models import Course
    from courses.retrieval import (
        CANDIDATES,
        KEYWORD_POOL,
        KEYWORD_ROW_BUDGET,
        MAX_TERM_SHARE,
        execute_planned,
        hybrid_sql,
        search,
        semantic_path,
    )

    if args.ef_search:
        retrieval.HNSW_EF_SEARCH = args.ef_search
    reused = reuse(args)
    if reused:
        course, index_id, topics, rng = reused
        print(f"reusing the chunks built earlier in this database ({sizes_key(args)})")
    else:
        rng = np.random.default_rng(1)
        course, index_id, topics = build(args, rng)
        record(args, course, index_id, topics, rng)
    questions = [json.loads(line)["q"] for line in QA.read_text(encoding="utf-8").splitlines() if line.strip()]
    from courses.vector_index import COURSE_HNSW_MIN_ROWS, ensure_course_hnsw, index_name

    started = time.perf_counter()
    if ensure_course_hnsw(index_id, args.dim, args.target):  # as the ingest worker does for a large course
        print(f"target course's own partial HNSW index ready in {time.perf_counter() - started:.1f} s "
              f"(built for courses of {COURSE_HNSW_MIN_ROWS}+ chunks)")
    queries = []
    for i in range(2 * args.queries):  # even ones warm the caches, odd ones are measured (see timed)
        vector = topics[i % 20] + 0.6 * rng.normal(size=args.dim)
        queries.append((vector / np.linalg.norm(vector), questions[i % len(questions)]))

    def timed(function):
        """p50/p95 of function over the odd queries, after the even ones warmed the caches: warm caches, but
        never a query measured right after the same query ran (that would time cached pages of its own)."""
        for vector, text in queries[0::2]:
            function(vector, text)
        samples = []
        for vector, text in queries[1::2]:
            started = time.perf_counter()
            function(vector, text)
            samples.append(time.perf_counter() - started)
        return percentiles(samples)

    def own_queries(course_id):
        """Queries near a course's own chunks (20 of its vectors as topics), with the benchmark's questions."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT embedding::text FROM courses_chunk WHERE course_id = %s ORDER BY id LIMIT 20",
                           [course_id])
            picked = np.array([json.loads(row[0]) for row in cursor.fetchall()])
        made = []
        for i in range(2 * args.queries):
            vector = picked[i % len(picked)] + 0.05 * rng.normal(size=args.dim)
            made.append((vector / np.linalg.norm(vector), questions[i % len(questions)]))
        return made

    other = Course.objects.filter(pk__gt=course.pk).order_by("pk").first()
    other_index = other.embedding_indexes.get().pk
    small_rows = (args.total - args.target) // max(1, args.courses - 1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'courses_chunk'::regclass")
        total_rows = cursor.fetchone()[0]
    print(f"target course: {args.target} chunks; dimension {args.dim}; {args.queries} queries; "
          f"table {total_rows:.0f} rows; hnsw.ef_search {retrieval.HNSW_EF_SEARCH}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [index_name(index_id)])
        own_index = cursor.fetchone()[0]
    print(f"semantic plan chosen: target course {semantic_path(args.target, total_rows, course_index=own_index)}, "
          f"small course ({small_rows} chunks) {semantic_path(small_rows, total_rows)}")
    hybrid = {}
    paths = [(None, "chosen plan"), ("course", "own HNSW"), ("hnsw", "shared HNSW"), ("exact", "exact forced")]
    for path, label in paths if own_index else [paths[0], *paths[2:]]:
        hybrid[path] = timed(lambda v, t, path=path: search(course.pk, index_id, v, t, k=5, path=path))
        print(f"hybrid SQL, k=5, {label + ':':16} p50 {hybrid[path][0]:5.1f} ms  p95 {hybrid[path][1]:5.1f} ms")

    if args.rerank_stub:
        from django.conf import settings

        from courses import rerank
        from courses.retrieval import Passage
        from tests.stub_rerank import StubReranker

        stub = StubReranker()
        settings.RERANK_URL, candidates = stub.url, settings.RERANK_CANDIDATES

        def reranked(vector, text):
            rows = search(course.pk, index_id, vector, text, k=candidates)
            passages = [Passage(chunk_id=r[0], course_id=course.pk, document_id=r[1], document_title=r[2],
                                section_path=r[3], page=r[4], text=r[5], score=float(r[6])) for r in rows]
            return rerank.rerank(text, passages, 5)

        p50, p95 = timed(reranked)
        stub.stop()
        settings.RERANK_URL = ""
        print(f"hybrid SQL, k={candidates} + rerank to 5 on a loopback stub: p50 {p50:5.1f} ms  p95 {p95:5.1f} ms "
              "(plus the reranker's own scoring time on a real server)")

    # the halves alone: the production CTEs, each run on its own
    semantic_sql = {p: "WITH " + hybrid_sql(args.dim, p).split("WITH ", 1)[1].split("lexemes AS (")[0].rstrip()
                    .rstrip(",") + "\nSELECT id FROM semantic ORDER BY rank, id" for p in ("course", "hnsw", "exact")}
    keyword_sql = ("WITH lexemes AS (" + hybrid_sql(args.dim).split("lexemes AS (", 1)[1].split("\nword_forms AS (")[0]
                   .rstrip().rstrip(",") + "\nSELECT id FROM keyword")

    def half(sql, course_id, index, vector, text):
        params = {"vector": "[" + ",".join(f"{x:.6f}" for x in vector) + "]", "course": course_id,
                  "index": index, "text": keyword_text(text), "configs": ["german"], "documents": None,
                  "candidates": CANDIDATES, "max_share": MAX_TERM_SHARE, "pool": KEYWORD_POOL,
                  "row_budget": KEYWORD_ROW_BUDGET}
        with connection.cursor() as cursor:
            return [row[0] for row in execute_planned(cursor, sql, params, hnsw="index_id + 0" in sql)]

    def recall(course_id, index, sample, at, path="hnsw"):
        found = [len(set(half(semantic_sql[path], course_id, index, v, t)[:at])
                     & set(half(semantic_sql["exact"], course_id, index, v, t)[:at])) / at for v, t in sample]
        return float(np.mean(found)), float(np.min(found))

    per_row = {}

    def measure(name, course_id, index, rows, sample, own=False):
        queries[:] = sample
        for path in ("course", "hnsw", "exact") if own else ("hnsw", "exact"):
            p50, p95 = timed(lambda v, t, path=path: half(semantic_sql[path], course_id, index, v, t))
            line = f"semantic half, {name} course ({rows} chunks), {path + ':':6} p50 {p50:5.1f} ms  p95 {p95:5.1f} ms"
            if path != "exact":
                r5, r5_min = recall(course_id, index, sample[:50], 5, path)
                r10, _ = recall(course_id, index, sample[:50], 10, path)
                line += f"  recall@5 vs exact {r5:.3f} (worst query {r5_min:.1f}), recall@10 {r10:.3f}"
            else:
                per_row[name] = (p50, rows)
            print(line)

    target_queries = queries[:]
    measure("target", course.pk, index_id, args.target, target_queries, own=own_index)
    p50, p95 = timed(lambda v, t: half(keyword_sql, course.pk, index_id, v, t))
    print(f"full-text half, target course:             p50 {p50:5.1f} ms  p95 {p95:5.1f} ms")
    measure("small", other.pk, other_index, small_rows, own_queries(other.pk))
    for path, label in [(None, "chosen plan"), ("hnsw", "HNSW forced")]:
        p50, p95 = timed(lambda v, t, path=path: search(other.pk, other_index, v, t, k=5, path=path))
        print(f"hybrid SQL in the small course, {label + ':':13} p50 {p50:5.1f} ms  p95 {p95:5.1f} ms")
    queries[:] = target_queries
    (big_ms, big_rows), (small_ms, small_n) = per_row["target"], per_row["small"]
    if big_rows > small_n:
        print(f"exact semantic search costs {1000 * (big_ms - small_ms) / (big_rows - small_n):.2f} us per chunk of"
              " the course")
    if args.sweep:  # where semantic_path's constants come from
        print("sweep: the target course thinned to every m-th row (its topics kept), a smaller share of the table")
        per_row_ms = (big_ms - small_ms) / max(1, big_rows - small_n)
        for m in (1, 2, 4, 5, 10):
            thinned = {p: sql.replace("AND (%(documents)s::bigint[] IS NULL",
                                      f"AND id %% {m} = 0 AND (%(documents)s::bigint[] IS NULL", 1)
                       for p, sql in semantic_sql.items()}
            p50, p95 = timed(lambda v, t, sql=thinned["hnsw"]: half(sql, course.pk, index_id, v, t))
            found = [len(set(half(thinned["hnsw"], course.pk, index_id, v, t)[:5])
                         & set(half(thinned["exact"], course.pk, index_id, v, t)[:5])) / 5 for v, t in queries[:50]]
            rows = args.target // m
            print(f"sweep: {rows:6} rows ({rows / total_rows:.2%} of the table): HNSW p50 {p50:5.1f} ms  "
                  f"p95 {p95:5.1f} ms  recall@5 {np.mean(found):.3f}; exact: ~{rows * per_row_ms:5.1f} ms")
    print("(query embedding not included: e5-small measured 35 ms p50 per query here, static < 1 ms)")


if __name__ == "__main__":
    main()

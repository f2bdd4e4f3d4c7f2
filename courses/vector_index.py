"""A partial HNSW index per large course: the semantic half of a big course's search walks a graph of that
course's chunks only.

The shared HNSW index (migration 0003) holds every course; a course with 2% of the table makes an iterative
scan visit ~50 rows of other courses for each of its own, and its latency tail followed that (1M chunks over
500 courses, one course of 20k: hybrid p95 ~20 ms on fresh queries). A partial index ``WHERE index_id = N``
(N: the course's active embedding index, so one course and one model) holds only that course's vectors; the
planner picks it for the course's own filter, with no rows to skip: hybrid p95 ~13 ms on the same data
(bench/bench_retrieval.py). Built by the ingest worker once a course's index holds COURSE_HNSW_MIN_ROWS
chunks (20k chunks of 384 dimensions: ~6 s on 2 cores), dropped with the embedding index.
"""

import logging

from django.db import connection

log = logging.getLogger(__name__)

COURSE_HNSW_MIN_ROWS = 4000  # below this, exact distances within the course take a few ms at most


NAME_PREFIX = "chunk_hnsw_i"


def index_name(index_id):
    """The partial HNSW index of one embedding index (one course, one model)."""
    return f"{NAME_PREFIX}{int(index_id)}"


# For SQL that reads whether an embedding index `i` has a valid partial HNSW index (see courses.retrieval)
VALID_SQL = ("COALESCE((SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('" + NAME_PREFIX
             + "' || {id})), false)")


def ensure_course_hnsw(index_id, dimension, rows):
    """Build the partial HNSW index of a large course's embedding index (idempotent); returns whether it exists.

    CONCURRENTLY outside a transaction (searches and ingestion of the course go on meanwhile); an invalid
    leftover of an interrupted build is dropped and built again.
    """
    if rows < COURSE_HNSW_MIN_ROWS or not 0 < int(dimension) <= 2000:
        return False
    name, dimension, index_id = index_name(index_id), int(dimension), int(index_id)
    concurrently = "" if connection.in_atomic_block else "CONCURRENTLY"
    with connection.cursor() as cursor:
        cursor.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [name])
        found = cursor.fetchone()
        if found and found[0]:
            return True
        if found:
            log.warning("partial HNSW index %s is invalid (an interrupted build): building it again", name)
            cursor.execute(f"DROP INDEX {concurrently} IF EXISTS {name}")
        log.info("building partial HNSW index %s (%d chunks of %d dimensions)", name, rows, dimension)
        cursor.execute(f"CREATE INDEX {concurrently} IF NOT EXISTS {name} ON courses_chunk "
                       f"USING hnsw ((embedding::vector({dimension})) vector_cosine_ops) WHERE index_id = {index_id}")
    return True


def drop_course_hnsw(index_id):
    """Drop an embedding index's partial HNSW index, if it has one."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {index_name(index_id)}")

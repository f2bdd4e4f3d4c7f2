"""Hybrid retrieval over one course's chunks: vector similarity and PostgreSQL full-text search, fused.

One SQL statement (in the style of pgvector-python's examples/hybrid_search/rrf.py): a semantic CTE
ranked by ``embedding <=> query`` and a keyword CTE (every stemmed query term counts, OR semantics,
each weighted BM25-style by its idf within the course times ``ts_rank``), both restricted to the course
INSIDE the CTE, fused by reciprocal rank fusion.

Index strategy, measured with bench/bench_retrieval.py (384-d vectors, one course of 20k chunks among
others): exact distances inside the course took ~19 ms p50, the partial HNSW index with
``hnsw.iterative_scan = relaxed_order`` ~1.6 ms at recall@10 0.95 against exact, so vectors of the common
sizes are searched through HNSW; the planner still scans small courses exactly (extended statistics on
course_id/index_id keep its row estimates right). The keyword CTE was the slow half (ts_rank on every row
holding any query term, and a heap visit per row and term): it now gathers a pool of rows from the rarest
terms only (up to KEYWORD_ROW_BUDGET matching rows) and computes ts_rank for those KEYWORD_POOL rows alone.
Long query words are split into compound parts that the course's own vocabulary knows (Koehn & Knight).
"""

import re
from dataclasses import dataclass

from django.db import connection
from django.urls import reverse

from courses.embeddings import get_embedder
from courses.ingest import active_index, ts_config
from courses.models import Document

# Fusion parameters, chosen with evaluate_retrieval on tests/data/debian_reference_de_qa.jsonl (70 German
# questions, e5-small): RRF k=60 gave recall@5 0.84, k=5 0.89, k=2 0.90 (k=2 was at least as good as k=5 with
# chunks of 128, 200 and 320 tokens alike); equal weights beat keyword- or vector-heavy ones.
RRF_K = 2
SEMANTIC_WEIGHT = 1.0
KEYWORD_WEIGHT = 1.0
CANDIDATES = 40
MAX_TERM_SHARE = 0.2  # full-text terms in more than this share of the course's chunks are skipped
KEYWORD_POOL = 200  # rows ranked with ts_rank: those holding the rarest query terms
KEYWORD_ROW_BUDGET = 2000  # matching rows fetched for that pool (the rarest terms first)

HNSW_DIMENSIONS = (64, 384, 768, 1024)  # sizes with a partial HNSW index (migration 0003)
HNSW_EF_SEARCH = 40

HYBRID_SQL = """
WITH semantic AS (
    SELECT id, RANK() OVER (ORDER BY {distance}) AS rank
    FROM courses_chunk
    WHERE course_id = %(course)s::bigint AND index_id = %(index)s::bigint {dimension_filter}
      AND (%(documents)s::bigint[] IS NULL OR document_id = ANY(%(documents)s::bigint[]))
    ORDER BY {distance}
    LIMIT %(candidates)s
),
lexemes AS (
    SELECT DISTINCT lexeme
    FROM unnest(%(configs)s::regconfig[]) AS config,
         unnest(tsvector_to_array(to_tsvector(config, %(text)s))) AS lexeme
),
total AS (
    SELECT GREATEST(COALESCE(sum(chunks_total), 0), 1)::float8 AS n FROM courses_document
    WHERE course_id = %(course)s::bigint AND index_id = %(index)s::bigint
),
terms AS (
    -- idf from the course's term counts; terms in most chunks say little and cost most, so they are left out
    SELECT quote_literal(t.lexeme)::tsquery AS query, t.chunks,
           ln(1 + (GREATEST(total.n, t.chunks) - t.chunks + 0.5) / (t.chunks + 0.5)) AS idf,
           SUM(t.chunks) OVER (ORDER BY t.chunks, t.lexeme ROWS UNBOUNDED PRECEDING) AS rarer_chunks
    FROM lexemes l
    JOIN courses_courseterm t ON t.course_id = %(course)s::bigint AND t.lexeme = l.lexeme, total
    WHERE t.chunks <= %(max_share)s::float8 * total.n
),
keyword_pool AS (
    -- cheap first pass, no ts_rank: the rows holding the rarest query terms (sum of their idf); each
    -- matching row costs a heap visit, so only the rarest terms up to a budget of rows are looked up here
    SELECT m.id
    FROM (SELECT * FROM terms WHERE rarer_chunks <= %(row_budget)s OR rarer_chunks = chunks) t,
         LATERAL (SELECT c.id FROM courses_chunk c
                  WHERE c.course_id = %(course)s::bigint AND c.search_vector @@ t.query
                    AND (%(documents)s::bigint[] IS NULL OR c.document_id = ANY(%(documents)s::bigint[]))) m
    GROUP BY m.id
    ORDER BY SUM(t.idf) DESC, m.id
    LIMIT %(pool)s
),
keyword AS (
    -- BM25-style score (idf times ts_rank as the term frequency) only for that pool
    SELECT c.id, RANK() OVER (ORDER BY SUM(t.idf * ts_rank(c.search_vector, t.query)) DESC) AS rank
    FROM keyword_pool p
    JOIN courses_chunk c ON c.id = p.id
    JOIN terms t ON c.search_vector @@ t.query
    GROUP BY c.id
    ORDER BY SUM(t.idf * ts_rank(c.search_vector, t.query)) DESC
    LIMIT %(candidates)s
)
SELECT c.id, c.document_id, d.title, COALESCE(s.path, ''), c.page, c.text,
       COALESCE(%(semantic_weight)s::float8 / (%(rrf_k)s + semantic.rank), 0.0)
     + COALESCE(%(keyword_weight)s::float8 / (%(rrf_k)s + keyword.rank), 0.0) AS score
FROM semantic
FULL OUTER JOIN keyword ON semantic.id = keyword.id
JOIN courses_chunk c ON c.id = COALESCE(semantic.id, keyword.id)
JOIN courses_document d ON d.id = c.document_id
LEFT JOIN courses_section s ON s.id = c.section_id
WHERE c.course_id = %(course)s::bigint
ORDER BY score DESC, semantic.rank NULLS LAST, c.id  -- ties (equal fused scores): the semantic half decides
LIMIT %(k)s
"""


def hybrid_sql(dimension):
    """The hybrid statement for vectors of this size: through the HNSW index where one exists, else exact."""
    if dimension in HNSW_DIMENSIONS:
        distance = f"embedding::vector({dimension}) <=> %(vector)s::vector({dimension})"
        return HYBRID_SQL.format(distance=distance, dimension_filter=f"AND dimension = {dimension}")
    return HYBRID_SQL.format(distance="embedding <=> %(vector)s::vector", dimension_filter="")


@dataclass
class Passage:
    """One retrieved chunk with its place in the source; score: higher is better."""

    chunk_id: int
    course_id: int
    document_id: int
    document_title: str
    section_path: str
    page: int | None
    text: str
    score: float

    def url(self):
        """The reader view of this passage in its section."""
        return reverse("courses:passage", args=[self.course_id, self.chunk_id])


# Question words and phrasing that every question shares; PostgreSQL's stop word lists keep some of them.
QUESTION_WORDS = set("""
warum wieso weshalb wozu woran womit wodurch worauf wofür wie welche welcher welches welchen welchem was wer wen
wem wo wohin woher kann könnte kannst muss soll sollte darf gibt es ich man mein meine meinen meiner mir mich
bekomme funktioniert eigentlich bitte
why how which what who whom where when can could should must do does did is are i my me there
""".split())


def keyword_text(query):
    """The query without question words, for the full-text half of the search."""
    words = re.findall(r"[\w./~-]+", query, re.UNICODE)
    kept = [w for w in words if w.lower() not in QUESTION_WORDS]
    return " ".join(kept) or query


COMPOUND_MIN_LENGTH = 10  # query words this long may be German compounds ("Spracheinstellungen")
COMPOUND_MIN_PART = 4

PIECE_COUNTS_SQL = """
SELECT piece, max(t.chunks)
FROM unnest(%(pieces)s::text[]) AS piece, unnest(%(configs)s::regconfig[]) AS config,
     unnest(tsvector_to_array(to_tsvector(config, piece))) AS l(lexeme)
JOIN courses_courseterm t ON t.course_id = %(course)s::bigint AND t.lexeme = l.lexeme
GROUP BY piece
"""


def _compound_parts(cursor, course_id, text, configs):
    """Parts of the query's compound words, split where the course's own vocabulary says so.

    Koehn & Knight's frequency rule: a long word is split into two parts that both occur in the course's
    chunks when the geometric mean of their chunk counts beats the count of the whole word (0 if absent).
    """
    words = {w.lower() for w in re.findall(r"[^\W\d_]+", text) if len(w) >= COMPOUND_MIN_LENGTH}
    splits = {w: [(w[:i], w[i:]) for i in range(COMPOUND_MIN_PART, len(w) - COMPOUND_MIN_PART + 1)]
              for w in words}
    pieces = sorted(words | {part for pairs in splits.values() for pair in pairs for part in pair})
    if not pieces:
        return []
    cursor.execute(PIECE_COUNTS_SQL, {"pieces": pieces, "configs": configs, "course": course_id})
    counts = dict(cursor.fetchall())
    parts = []
    for word, pairs in splits.items():
        best, best_score = None, counts.get(word, 0)
        for head, tail in pairs:
            score = (counts.get(head, 0) * counts.get(tail, 0)) ** 0.5
            if score > best_score:
                best, best_score = (head, tail), score
        if best:
            parts.extend(best)
    return parts


def _languages(course_id):
    return sorted(set(Document.objects.filter(course_id=course_id).exclude(language="")
                      .values_list("language", flat=True))) or ["de"]


def search(course_id, index_id, vector, text, *, configs=("german",), k=5, document_ids=None,
           semantic_weight=None, keyword_weight=None, candidates=None):
    """Run the hybrid SQL for a pre-embedded query: [(chunk_id, document_id, title, path, page, text, score)].

    text is the query as typed: each text search configuration stems it, and every resulting term
    counts (OR semantics), weighted by its rarity in this course (BM25's idf).
    """
    params = {
        "vector": "[" + ",".join(f"{float(x):.6f}" for x in vector) + "]",
        "course": course_id, "index": index_id, "text": keyword_text(text),
        "configs": [c for c in configs if c in {"german", "english", "simple"}] or ["simple"],
        "documents": list(document_ids) if document_ids else None,
        "candidates": candidates or CANDIDATES, "k": k, "rrf_k": RRF_K, "max_share": MAX_TERM_SHARE,
        "pool": KEYWORD_POOL, "row_budget": KEYWORD_ROW_BUDGET,
        "semantic_weight": SEMANTIC_WEIGHT if semantic_weight is None else semantic_weight,
        "keyword_weight": KEYWORD_WEIGHT if keyword_weight is None else keyword_weight,
    }
    with connection.cursor() as cursor:
        # HNSW under a filter: keep scanning until enough rows of this course are found (pgvector >= 0.8)
        cursor.execute("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', false),"
                       " set_config('hnsw.ef_search', %s, false)", [str(HNSW_EF_SEARCH)])
        if COMPOUND_MIN_LENGTH:
            parts = _compound_parts(cursor, course_id, params["text"], params["configs"])
            params["text"] = " ".join([params["text"], *parts])
        cursor.execute(hybrid_sql(len(vector)), params)
        return cursor.fetchall()


def retrieve(course_id, query, k=5, *, language=None, document_ids=None):
    """The k passages of this course's indexed texts that best answer the query (never another course's)."""
    course_id = int(getattr(course_id, "pk", course_id))
    index = active_index(course_id)
    if index is None or not query.strip():
        return []
    vector = get_embedder(index.model).embed_query(query)
    languages = [language] if language else _languages(course_id)
    rows = search(course_id, index.pk, vector, query, configs=[ts_config(code) for code in languages],
                  k=k, document_ids=document_ids)
    return [Passage(chunk_id=r[0], course_id=course_id, document_id=r[1], document_title=r[2], section_path=r[3],
                    page=r[4], text=r[5], score=float(r[6])) for r in rows]


def course_documents(course_id):
    """Titles of the course's indexed texts."""
    course_id = int(getattr(course_id, "pk", course_id))
    return list(Document.objects.ready().filter(course_id=course_id).values_list("title", flat=True))

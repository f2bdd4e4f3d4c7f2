"""Hybrid retrieval over one course's chunks: vector similarity and PostgreSQL full-text search, fused.

One SQL statement (in the style of pgvector-python's examples/hybrid_search/rrf.py): a semantic CTE
ranked by ``embedding <=> query`` and a keyword CTE (every stemmed query term counts, OR semantics,
each weighted BM25-style by its idf within the course times ``ts_rank``), both restricted to the course
INSIDE the CTE, fused by reciprocal rank fusion.

Index strategy, measured with bench/bench_retrieval.py (384-d vectors, one course of 20k chunks among 1M
in 500 courses). Semantic half: exact distances inside the course cost ~1.5 us per row (~30 ms for 20k under
load), the partial HNSW index with ``hnsw.iterative_scan = relaxed_order`` a few ms at recall@5 ~0.98
against exact; but the planner, left alone, scans a big course exactly (its btree on course_id is cheaper on
paper). So semantic_path chooses by the course's size and share of the table, and the HNSW path hides the
course filter from the btree ("course_id + 0", still inside the SQL: never post-filtering) and turns off
sequential scans for that statement. The keyword CTE was the slow half (ts_rank on every row holding any
query term, and a heap visit per row and term): it gathers a pool of rows from the rarest terms only (up to
KEYWORD_ROW_BUDGET matching rows), looked up in a GIN index keyed by course and term (its cost follows the
course, not the table), and computes ts_rank for those KEYWORD_POOL rows alone, each tsvector decompressed once.
German query handling (compound words split where the course's own vocabulary says so, separable verbs joined)
is courses.language's.
"""

import math
import re
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.urls import reverse

from config import metrics
from courses import rerank
from courses.embeddings import get_embedder
from courses.language import (
    SEPARABLE_PARTICLES,
    TS_CONFIGS,
    expand_query,
    keyword_text,
    lexemes,
    separable_verbs,
    ts_config,
)
from courses.models import Document
from courses.vector_index import VALID_SQL

# Fusion parameters, chosen with evaluate_retrieval on tests/data/debian_reference_de_qa.jsonl (70 German
# questions, e5-small): RRF k=60 gave recall@5 0.84, k=5 0.89, k=2 0.90 (k=2 was at least as good as k=5 with
# chunks of 128, 200 and 320 tokens alike); equal weights beat keyword- or vector-heavy ones.
RRF_K = 2
SEMANTIC_WEIGHT = 1.0
KEYWORD_WEIGHT = 1.0
CANDIDATES = 40
MAX_TERM_SHARE = 0.2  # full-text terms in more than this share of the course's chunks are skipped
KEYWORD_POOL = 100  # rows ranked with ts_rank: those holding the rarest query terms (200 gave the same recall
# on the 70-question set and cost ~1 ms more at 1M chunks)
KEYWORD_ROW_BUDGET = 2000  # matching rows fetched for that pool (the rarest terms first)

HNSW_DIMENSIONS = (64, 384, 768, 1024)  # sizes with a partial HNSW index (migration 0003)
HNSW_EF_SEARCH = 100  # recall@5 against exact at 1M rows: 0.92 with 40, 0.98 with 100, 0.995 with 160
# Which plan the semantic half takes (semantic_path), from bench/bench_retrieval.py --sweep at 1M rows on a
# loaded 2-core machine: exact search costs ~1.7 us per row of the course; HNSW with iterative scan ~1.3 ms
# plus ~1.1 us per row it visits, about candidates / the course's share of the table (3.4 ms at 2%, 5.3 at 1%,
# 9.8 at 0.5%; a real 1,963-row course, 0.2%: 19 ms at recall@5 0.70). Unloaded both are ~2x faster and
# cross near 5,000 rows at 1M, where this model puts the switch (5,500). In units of one exact row:
HNSW_COST_BASE = 800
HNSW_COST_PER_VISITED = 0.63
HNSW_MIN_ROWS = 2000  # below this, exact search is exact and about as fast as HNSW at any table size

HYBRID_SQL = """
WITH nearest AS MATERIALIZED (
    -- HNSW's iterative scan yields rows in roughly (relaxed) distance order: ranked after the scan
    SELECT id, {distance} AS distance
    FROM courses_chunk
    WHERE {course_filter} {dimension_filter}
      AND (%(documents)s::bigint[] IS NULL OR document_id = ANY(%(documents)s::bigint[]))
    ORDER BY {distance}
    LIMIT %(candidates)s
),
semantic AS (
    SELECT id, RANK() OVER (ORDER BY distance) AS rank FROM nearest
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
           quote_literal(%(course)s::bigint::text || ' ' || t.lexeme)::tsquery AS course_query,
           ln(1 + (GREATEST(total.n, t.chunks) - t.chunks + 0.5) / (t.chunks + 0.5)) AS idf,
           SUM(t.chunks) OVER (ORDER BY t.chunks, t.lexeme ROWS UNBOUNDED PRECEDING) AS rarer_chunks
    FROM lexemes l
    JOIN courses_courseterm t ON t.course_id = %(course)s::bigint AND t.lexeme = l.lexeme, total
    WHERE t.chunks <= %(max_share)s::float8 * total.n
),
keyword_pool AS (
    -- cheap first pass, no ts_rank: the rows holding the rarest query terms (sum of their idf); each
    -- matching row costs a heap visit, so only the rarest terms up to a budget of rows are looked up here.
    -- The GIN index on courses_course_lexemes (migration 0005) holds "<course id> <lexeme>" terms, so a
    -- lookup reads this course's rows of the term only, however many other courses use the same word.
    SELECT m.id
    FROM (SELECT * FROM terms WHERE rarer_chunks <= %(row_budget)s OR rarer_chunks = chunks) t,
         LATERAL (SELECT c.id FROM courses_chunk c
                  WHERE courses_course_lexemes(c.course_id, c.search_vector) @@ t.course_query
                    AND c.course_id + 0 = %(course)s::bigint  -- implied by the key; "+ 0": no index for it
                    AND (%(documents)s::bigint[] IS NULL OR c.document_id = ANY(%(documents)s::bigint[]))) m
    GROUP BY m.id
    ORDER BY SUM(t.idf) DESC, m.id
    LIMIT %(pool)s
),
pooled AS MATERIALIZED (
    -- the pool's tsvectors, decompressed once (setweight with no lexemes returns a plain copy) rather than
    -- once per term and per use below
    SELECT c.id, setweight(c.search_vector, 'A', ARRAY[]::text[]) AS search_vector
    FROM keyword_pool p
    JOIN courses_chunk c ON c.id = p.id
),
keyword AS (
    -- BM25-style score (idf times ts_rank as the term frequency) only for that pool
    SELECT c.id, RANK() OVER (ORDER BY SUM(t.idf * ts_rank(c.search_vector, t.query)) DESC) AS rank
    FROM pooled c
    JOIN terms t ON c.search_vector @@ t.query
    GROUP BY c.id
    ORDER BY SUM(t.idf * ts_rank(c.search_vector, t.query)) DESC
    LIMIT %(candidates)s
),
word_forms AS (
    -- each question word with every form it may take in a passage (courses.language.expand_query) and its weight
    SELECT w.weight, (SELECT string_agg(DISTINCT quote_literal(l), ' | ')
                      FROM unnest(%(configs)s::regconfig[]) AS config,
                           unnest(tsvector_to_array(to_tsvector(config, w.forms))) AS l)::tsquery AS query
    FROM unnest(%(word_forms)s::text[], %(word_weights)s::float8[]) AS w(forms, weight)
)
SELECT c.id, c.document_id, d.title, COALESCE(s.path, ''), c.page, c.text,
       COALESCE(%(semantic_weight)s::float8 / (%(rrf_k)s + semantic.rank), 0.0)
     + COALESCE(%(keyword_weight)s::float8 / (%(rrf_k)s + keyword.rank), 0.0) AS score,
       -- evidence for answerability (tutor.chat.answerability): raw cosine similarity, the mean of the semantic
       -- candidates' (the course's background), and the weighted share of the question's words in the passage
       1 - (c.embedding <=> %(vector)s::vector) AS similarity,
       (SELECT 1 - avg(distance) FROM nearest) AS background,
       (SELECT COALESCE(sum(weight) FILTER (WHERE c.search_vector @@ query), 0)
               / NULLIF(sum(weight) FILTER (WHERE query IS NOT NULL), 0) FROM word_forms) AS coverage
FROM semantic
FULL OUTER JOIN keyword ON semantic.id = keyword.id
JOIN courses_chunk c ON c.id = COALESCE(semantic.id, keyword.id)
JOIN courses_document d ON d.id = c.document_id
LEFT JOIN courses_section s ON s.id = c.section_id
WHERE c.course_id = %(course)s::bigint
ORDER BY score DESC, semantic.rank NULLS LAST, c.id  -- ties (equal fused scores): the semantic half decides
LIMIT %(k)s
"""


# The course filter of the semantic half, per path. Both keep the course inside the SQL; they differ only in
# which index can serve them. "exact": the btree on (course_id, index_id) finds the course's rows and every
# distance is computed (the ORDER BY does not match the HNSW index expression, so HNSW cannot be chosen).
# "hnsw": "+ 0" hides course_id/index_id from the btree indexes, so (with sequential scans off, see
# execute_planned) the only plan left for the ORDER BY ... LIMIT is the partial HNSW index, walked with iterative
# scan, the course filter applied to each row it yields.
COURSE_FILTERS = {
    "exact": "course_id = %(course)s::bigint AND index_id = %(index)s::bigint",
    "hnsw": "course_id + 0 = %(course)s::bigint AND index_id + 0 = %(index)s::bigint",
}


def hybrid_sql(dimension, path="hnsw"):
    """The hybrid statement for vectors of this size, its semantic half exact, through the shared HNSW index
    ("hnsw") or through the course's own partial HNSW index ("course", see courses.vector_index).

    Vectors of a size without a shared HNSW index are searched exactly on the "hnsw" path.
    """
    # written as in the HNSW indexes' expression, so the planner can use them
    distance = f"embedding::vector({dimension}) <=> %(vector)s::vector({dimension})"
    if path == "course":
        # the course filter as on the exact path: it implies the partial index's predicate "index_id = N"
        return HYBRID_SQL.format(distance=distance, course_filter=COURSE_FILTERS["exact"], dimension_filter="")
    if path == "hnsw" and dimension in HNSW_DIMENSIONS:
        return HYBRID_SQL.format(distance=distance, course_filter=COURSE_FILTERS["hnsw"],
                                 dimension_filter=f"AND dimension = {dimension}")
    return HYBRID_SQL.format(distance="embedding <=> %(vector)s::vector", course_filter=COURSE_FILTERS["exact"],
                             dimension_filter="")


def semantic_path(rows, total_rows, candidates=CANDIDATES, course_index=False):
    """"course", "hnsw" or "exact" for a semantic search over `rows` chunks among `total_rows` in the table.

    A course with its own partial HNSW index (course_index; built for large courses, courses.vector_index)
    searches that.

    Exact search reads every row of the course; HNSW under the course filter reads rows of every course
    until `candidates` of this one have turned up, about candidates / share of them. Both costs, in units of
    one exact row, were measured with bench/bench_retrieval.py (see HNSW_COST_*): HNSW wins from ~5,400
    rows in a 1M-row table, ~2,700 in 200k, ~16,000 in 10M. Small courses stay exact in any case.
    """
    if course_index:
        return "course"
    if rows < HNSW_MIN_ROWS:
        return "exact"
    share = rows / max(total_rows, rows)
    return "hnsw" if HNSW_COST_BASE + HNSW_COST_PER_VISITED * candidates / share < rows else "exact"


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
    similarity: float | None = None  # cosine similarity of passage and query (the embedding model's own scale)
    background: float | None = None  # mean similarity of the query's nearest passages in the course
    coverage: float | None = None  # share of the query's words (weighted by rarity) the passage holds
    embedding_model: str = ""  # whose scale similarity is on

    def url(self):
        """The reader view of this passage in its section."""
        return reverse("courses:passage", args=[self.course_id, self.chunk_id])

    @property
    def rerank_text(self):
        """What a reranker reads: the section's title path, then the passage."""
        return f"{self.section_path}\n{self.text}" if self.section_path else self.text


def search(course_id, index_id, vector, text, *, configs=("german",), k=5, document_ids=None,
           semantic_weight=None, keyword_weight=None, candidates=None, path=None, sizes=None, synonyms=True):
    """Run the hybrid SQL for a pre-embedded query: [(chunk_id, document_id, title, path, page, text, score)].

    text is the query as typed: each text search configuration stems it, and every resulting term
    counts (OR semantics), weighted by its rarity in this course (BM25's idf). path forces the semantic
    half's plan ("course", "hnsw" or "exact"); by default semantic_path picks it from the course's size and
    index. sizes: (rows searched, rows in the table, whether the course has its own HNSW index) as
    course_setup read them along with the index, saving a round trip. synonyms: whether question words the course
    never uses are also searched by their synonyms (courses.synonyms).

    Each row also carries the evidence tutor.chat.answerability weighs: (…, similarity, background, coverage).
    """
    params = {
        "vector": "[" + ",".join(f"{float(x):.6f}" for x in vector) + "]",
        "course": course_id, "index": index_id, "text": keyword_text(text),
        "configs": [c for c in configs if c in {*TS_CONFIGS.values(), "simple"}] or ["simple"],
        "documents": list(document_ids) if document_ids else None,
        "candidates": candidates or CANDIDATES, "k": k, "rrf_k": RRF_K, "max_share": MAX_TERM_SHARE,
        "pool": KEYWORD_POOL, "row_budget": KEYWORD_ROW_BUDGET,
        "semantic_weight": SEMANTIC_WEIGHT if semantic_weight is None else semantic_weight,
        "keyword_weight": KEYWORD_WEIGHT if keyword_weight is None else keyword_weight,
    }
    with connection.cursor() as cursor:
        if sizes is None:
            setup = course_setup(course_id, document_ids, index_id=index_id)
            sizes = setup[3] if setup else (0, 0, False)
        rows, total_rows, course_index = sizes
        terms = expand_query(cursor, course_id, text, params["configs"], with_synonyms=synonyms)
        params["text"] = " ".join([params["text"], *terms.extra])
        if "german" in params["configs"]:
            params["text"] = " ".join([params["text"], *separable_verbs(text)])
        params["word_forms"] = [" ".join(forms) for _word, forms, _count in terms.words]
        params["word_weights"] = [idf(count, rows) for _word, _forms, count in terms.words]
        path = path or semantic_path(rows, total_rows, params["candidates"], course_index)
        return execute_planned(cursor, hybrid_sql(len(vector), path), params,
                               hnsw=path == "hnsw" and len(vector) in HNSW_DIMENSIONS)


def idf(count, total):
    """BM25's inverse document frequency of a term in `count` of `total` chunks (a word the course never uses
    weighs most)."""
    total = max(total, count, 1)
    return math.log(1 + (total - count + 0.5) / (count + 0.5))


def execute_planned(cursor, sql, params, *, hnsw):
    """Run a statement whose semantic half takes the HNSW path (hnsw=True) or the exact one; its rows.

    The planner's row estimate for the hidden course filter of the HNSW path is a guess (0.5%) that makes
    the HNSW scan look dearer than reading the whole table, so sequential scans are turned off for that one
    statement (SET LOCAL: to the end of its transaction); the HNSW index is then the plan.
    """
    if not hnsw:
        cursor.execute(sql, params)
        return cursor.fetchall()
    if not connection.in_atomic_block and isinstance(cursor.cursor, psycopg.ClientCursor):
        # one round trip: the two statements of one query string run as one implicit transaction
        cursor.execute("SELECT set_config('enable_seqscan', 'off', true);\n" + sql, params)
        cursor.nextset()
        return cursor.fetchall()
    nested = connection.in_atomic_block
    with transaction.atomic():
        cursor.execute("SELECT current_setting('enable_seqscan'), set_config('enable_seqscan', 'off', true)")
        previous = cursor.fetchone()[0]
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        if nested:  # an enclosing transaction goes on: give it back its setting
            cursor.execute("SELECT set_config('enable_seqscan', %s, true)", [previous])
    return rows


# What a search needs to know first, in one round trip: the course's active (or given) index and embedding
# model, its texts' languages, the size of what is searched and of the table and whether the course has its
# own HNSW index (semantic_path); and the HNSW settings of this connection: keep scanning under a filter until
# enough rows of this course are found (pgvector >= 0.8).
COURSE_SETUP_SQL = """
SELECT i.id, i.model,
       ARRAY(SELECT DISTINCT d.language FROM courses_document d
             WHERE d.course_id = i.course_id AND d.language <> '' ORDER BY 1),
       (SELECT COALESCE(sum(d.chunks_total), 0) FROM courses_document d
        WHERE d.course_id = i.course_id AND d.index_id = i.id
          AND (%(documents)s::bigint[] IS NULL OR d.id = ANY(%(documents)s::bigint[]))),
       (SELECT reltuples FROM pg_class WHERE oid = 'courses_chunk'::regclass),
       """ + VALID_SQL.format(id="i.id") + """
FROM courses_embeddingindex i,
     (SELECT set_config('hnsw.iterative_scan', 'relaxed_order', false),
             set_config('hnsw.ef_search', %(ef_search)s, false)) AS settings
WHERE i.course_id = %(course)s::bigint
  AND (i.id = %(index)s::bigint OR (%(index)s::bigint IS NULL AND i.active))
"""


def course_setup(course_id, document_ids=None, index_id=None):
    """(index id, embedding model, languages, (rows searched, rows in the table, own HNSW index or not)) of
    the course's active index (or of index_id), or None when nothing was indexed yet."""
    with connection.cursor() as cursor:
        cursor.execute(COURSE_SETUP_SQL, {"course": course_id, "index": index_id, "ef_search": str(HNSW_EF_SEARCH),
                                          "documents": list(document_ids) if document_ids else None})
        found = cursor.fetchone()
    if found is None:
        return None
    index_id, model, languages, rows, total_rows, course_index = found
    return index_id, model, list(languages) or ["de"], (rows, total_rows, course_index)


def retrieve(course_id, query, k=5, *, language=None, document_ids=None, also=(), synonyms=True):
    """The k passages of this course's indexed texts that best answer the query (never another course's).

    also: other wordings of the same question (rewritten queries, a hypothetical answer passage): each is searched
    too, and the lists are fused by reciprocal rank (a passage keeps its best evidence of any of them).
    With a rerank server configured (RERANK_URL), the best RERANK_CANDIDATES fused passages are reranked
    by it and its k best returned (see courses.rerank: a failing reranker keeps the fused order).
    """
    course_id = int(getattr(course_id, "pk", course_id))
    setup = course_setup(course_id, document_ids) if query.strip() else None
    if setup is None:
        return []
    index_id, model, languages, sizes = setup
    embedder = get_embedder(model)
    languages = [language] if language else languages
    configs = [ts_config(code) for code in languages]
    texts = [query, *(t for t in also if t and t.strip() and t != query)]
    vectors = []
    for text in texts:
        with metrics.timer("tutor_retrieval_duration_seconds", phase="embed"):
            vectors.append(embedder.embed_query(text))
    # near-duplicates are collapsed (distinct, below), so more than k are fetched; a course holding the same text
    # more than twice may need a second, deeper search to fill k
    candidates = max(k, settings.RERANK_CANDIDATES) if rerank.enabled() else 2 * k
    for depth in (candidates, 4 * candidates):
        lists = []
        for text, vector in zip(texts, vectors, strict=True):
            with metrics.timer("tutor_retrieval_duration_seconds", phase="search"):
                rows = search(course_id, index_id, vector, text, configs=configs,
                              k=max(depth, FUSED_DEPTH) if also else depth, document_ids=document_ids,
                              sizes=sizes, synonyms=synonyms)
            lists.append([Passage(chunk_id=r[0], course_id=course_id, document_id=r[1], document_title=r[2],
                                  section_path=r[3], page=r[4], text=r[5], score=float(r[6]),
                                  similarity=_float(r[7]), background=_float(r[8]), coverage=_float(r[9]),
                                  embedding_model=model)
                          for r in rows])
        passages = distinct(fuse(lists)[:depth] if len(lists) > 1 else lists[0])
        if len(passages) >= k or all(len(found) < depth for found in lists):
            break
    if not rerank.enabled():
        return passages[:k]
    with metrics.timer("tutor_retrieval_duration_seconds", phase="rerank"):
        return rerank.rerank(query, passages, k)


COMPOUND_STEM = 5  # a question word's stem at least this long, found inside a longer word of a text, counts


# German verbs whose particle stands apart in a main clause: "hinzufügen" in a question, "Fügen Sie … hinzu" in the
# text; "einrichten", "richten Sie … ein". The particles are the query's (courses.language), longest first.
_PARTICLES = sorted(SEPARABLE_PARTICLES, key=len, reverse=True)


def _separated(stems_of_word, found, lowered):
    """Whether a text holds a separable verb of the question with its particle apart: the verb's stem without the
    particle among the text's stems, and the particle as a word of its own."""
    for stem in stems_of_word:
        for particle in _PARTICLES:
            rest = stem[len(particle):]
            if stem.startswith(particle) and len(rest) >= 3 and rest in found \
                    and re.search(rf"\b{particle}\b", lowered):
                return True
    return False


def word_coverage(course_id, question, texts, *, language=None):
    """For each text (a sentence of a retrieved passage), the share of the question's words it holds, each word
    weighted by its rarity in the course (BM25's idf) and found by its stem, its compound parts or a synonym the
    course uses (courses.language.expand_query), or by its stem inside a compound of the text: the coverage
    evidence of the search, for pieces smaller than a passage."""
    course_id = int(getattr(course_id, "pk", course_id))
    texts = list(texts)
    setup = course_setup(course_id) if texts else None
    if setup is None:
        return [0.0] * len(texts)
    _index, _model, languages, sizes = setup
    configs = [ts_config(language)] if language else [ts_config(code) for code in languages]
    with connection.cursor() as cursor:
        terms = expand_query(cursor, course_id, question, configs)
        if not terms.words:
            return [0.0] * len(texts)
        stems = lexemes(cursor, [" ".join(forms) for _word, forms, _count in terms.words] + texts, configs)
    word_stems, text_stems = stems[:len(terms.words)], stems[len(terms.words):]
    weights = [idf(count, sizes[0]) for _word, _forms, count in terms.words]
    # a path the question names ("/bin/sh") is one word of it, found as written, not its pieces "bin" and "sh",
    # which a sentence naming the path never holds on their own (the full-text index keeps a path whole)
    paths = list(dict.fromkeys(p.lower() for p in _PATH.findall(question)))
    pieces = {piece for path in paths for piece in re.findall(r"\w+", path)}
    for index, (word, _forms, _count) in enumerate(terms.words):
        if word in pieces:
            weights[index] = 0.0
    path_weight = idf(1, sizes[0])
    written = [re.compile(rf"(?<![\w/.-]){re.escape(path)}(?![\w/-])") for path in paths]
    total = (sum(weights) + path_weight * len(paths)) or 1.0
    shares = []
    for text, found in zip(texts, text_stems, strict=True):
        lowered = text.lower()
        held = sum(weight for weight, stems_of_word in zip(weights, word_stems, strict=True)
                   if stems_of_word & found
                   or any(len(stem) >= COMPOUND_STEM and stem in lowered for stem in stems_of_word)
                   or _separated(stems_of_word, found, lowered))
        held += path_weight * sum(bool(pattern.search(lowered)) for pattern in written)
        shares.append(held / total)
    return shares


_PATH = re.compile(r"(?<![\w/.-])~?/[\w.+-]*\w(?:/[\w.+-]*\w)*")  # "/bin/sh", "/etc/apt/sources.list", "~/.bashrc"


# The same text uploaded twice (a script as HTML and as PDF, the demo course's chapters among them) gives pairs of
# passages that hold the same words with other boundaries: on the demo course 31 of 116 questions had such a pair in
# their top 5 (bench/bench_answerability.py --only methods counts them). The student would see the
# same source twice and the model read it twice, so only the better-ranked of a pair is kept and the next distinct
# passage takes the other's place. A pair: at least DUPLICATE_SHARE of the shorter passage's word trigrams are in
# the other (recall@5 unchanged on the 116 labelled questions at 0.8; 0.5 lost one whose boundaries differed).
DUPLICATE_SHARE = 0.8
_WORD = re.compile(r"\w+")


def _trigrams(text):
    words = [w.casefold() for w in _WORD.findall(text)]
    return {tuple(words[i:i + 3]) for i in range(len(words) - 2)}


def distinct(passages):
    """passages in their order, without those that repeat (nearly all) the text of a better-ranked one."""
    kept, seen = [], []
    for passage in passages:
        grams = _trigrams(passage.text)
        if grams and any(len(grams & other) >= DUPLICATE_SHARE * min(len(grams), len(other)) for other in seen):
            continue
        kept.append(passage)
        seen.append(grams)
    return kept


FUSED_DEPTH = 10  # passages of each wording that take part in the fusion


def fuse(lists):
    """Several ranked passage lists as one, by reciprocal rank fusion; each passage keeps the best similarity and
    coverage it had in any list (the background is the question's own, the first list's)."""
    fused, scores = {}, {}
    for ranked in lists:
        for rank, passage in enumerate(ranked, 1):
            scores[passage.chunk_id] = scores.get(passage.chunk_id, 0.0) + 1.0 / (RRF_K + rank)
            kept = fused.setdefault(passage.chunk_id, passage)
            if kept is not passage:
                kept.similarity = max(_present(kept.similarity), _present(passage.similarity))
                kept.coverage = max(_present(kept.coverage), _present(passage.coverage))
    background = next((p.background for ranked in lists for p in ranked[:1]), None)
    for passage in fused.values():
        passage.score = scores[passage.chunk_id]
        passage.background = background
    return sorted(fused.values(), key=lambda p: -p.score)


def _float(value):
    return None if value is None else float(value)


def _present(value):
    return -1.0 if value is None else value


def course_documents(course_id):
    """Titles of the course's indexed texts."""
    course_id = int(getattr(course_id, "pk", course_id))
    return list(Document.objects.ready().filter(course_id=course_id).values_list("title", flat=True))


def read_passage(course_id, chunk_id):
    """(chunk, the chunks of its section in order) of one passage of this course (never another's), or None."""
    from courses.models import Chunk

    chunk = (Chunk.objects.select_related("document", "section")
             .filter(pk=chunk_id, course_id=course_id).first())
    if chunk is None:
        return None
    neighbours = (list(Chunk.objects.filter(section_id=chunk.section_id, course_id=course_id)
                       .order_by("ordinal").only("id", "text", "page", "ordinal")) if chunk.section_id else [chunk])
    return chunk, neighbours

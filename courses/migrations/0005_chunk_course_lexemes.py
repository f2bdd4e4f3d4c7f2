# Written by hand: the full-text lookup of retrieval keyed by course and term.
#
# The GIN index on (course_id, search_vector) (btree_gin) answered "rows of course C holding term T" by
# reading T's posting list over every course: at 1M chunks in 500 courses sharing a vocabulary that was
# ~1.2 ms per term and grew with the table. Terms "<course id> <lexeme>" make a lookup read this course's
# rows of the term only (measured with bench/bench_retrieval.py, see courses/retrieval.py). A tsvector
# rather than a text[]: GIN's array containment always rechecks each heap row (recomputing the function),
# a plain tsquery lexeme does not.

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION courses_course_lexemes(course bigint, search tsvector) RETURNS tsvector
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN array_to_tsvector(ARRAY(SELECT course::text || ' ' || lexeme FROM unnest(tsvector_to_array(search)) AS lexeme))
"""


class Migration(migrations.Migration):

    dependencies = [
        ('courses', '0004_course_terms'),
    ]

    operations = [
        migrations.RunSQL(FUNCTION, "DROP FUNCTION IF EXISTS courses_course_lexemes(bigint, tsvector)"),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS chunk_course_lexemes ON courses_chunk"
            " USING gin (courses_course_lexemes(course_id, search_vector))",
            "DROP INDEX IF EXISTS chunk_course_lexemes",
        ),
        migrations.RemoveIndex(
            model_name='chunk',
            name='chunk_course_search_vector',
        ),
    ]

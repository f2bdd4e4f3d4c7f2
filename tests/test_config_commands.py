"""Operations commands of the project (config/management/commands): re-indexing after a change of the embedding
model, as docs/upgrade.md describes it."""

import time
from io import StringIO

import pytest
from django.core.management import call_command

from courses.documents import add_document
from courses.ingest import ingest_document
from courses.models import Course, Document, EmbeddingIndex
from tests.ops_support import private_ingest_worker

TEXT = b"# Systemstart\n\nDer Init-Prozess hat die Prozessnummer 1.\n\n## APT\n\nPakete installiert man mit apt.\n"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("own_ingest_queue")  # the files are where this test stored them: only its worker reads them
def test_courses_indexed_by_another_model_are_indexed_again(worker_env, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    course = Course.objects.create(title="Betriebssysteme")
    for name in ("a.md", "b.md"):
        document = add_document(course, name, TEXT + name.encode(), enqueue=False)
        assert ingest_document(document.pk, model="minilm") == "ready"  # the model of an earlier release
    current = Course.objects.create(title="Netze")
    assert ingest_document(add_document(current, "c.md", TEXT, enqueue=False).pk) == "ready"
    settings.EMBEDDING_MODEL = "static"  # the workers' model (DJANGO_ENV=test)

    out = StringIO()
    call_command("reindex_courses", "--dry-run", stdout=out)
    assert out.getvalue().splitlines() == [f"{course.pk}\tBetriebssysteme\tminilm -> static",
                                           "Would queue 1 course(s) for re-indexing with static."]
    # its own ingest worker, reading the files where this process stored them
    with private_ingest_worker(dict(worker_env, TUTOR_MEDIA_ROOT=str(settings.MEDIA_ROOT)), tmp_path / "worker.log"):
        call_command("reindex_courses", stdout=StringIO())
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if Document.objects.filter(course=course, status=Document.READY, index__model="static").count() == 2:
                break
            time.sleep(0.3)
    assert list(EmbeddingIndex.objects.filter(course=course).values_list("model", "active")) == [("static", True)]
    assert Document.objects.filter(course=course, status=Document.READY, index__model="static").count() == 2
    out = StringIO()
    call_command("reindex_courses", stdout=out)
    assert out.getvalue().strip() == "Queued 0 course(s) for re-indexing with static."

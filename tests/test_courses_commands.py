"""Management commands of the courses app: evaluate_retrieval prints recall and cleans up after itself."""

import json
import shutil
from io import StringIO
from pathlib import Path

from django.core.management import call_command

from courses.models import Chunk, Course, Document

CORPUS = Path(__file__).resolve().parent.parent / "deploy" / "demo_corpus" / "debian-reference-de"


def test_evaluate_retrieval_scores_a_question_set_in_a_throwaway_course(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EMBEDDING_MODEL = "static"
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(CORPUS / "ch03.de.html", docs)
    (docs / "README.rst").write_text("ignored: not a course text type")
    qa = tmp_path / "qa.jsonl"
    qa.write_text("\n".join(json.dumps(item, ensure_ascii=False) for item in [
        {"q": "Wie zeige ich das Journal des letzten Bootvorgangs an?", "any": ["journalctl -b"]},
        {"q": "Was ist die erste Stufe beim Booten?", "any": ["UEFI"]},
        {"q": "Eine Frage ohne Antwort im Text", "any": ["kommt im Text sicher nicht vor 12345"]},
    ]), encoding="utf-8")
    out = StringIO()
    call_command("evaluate_retrieval", "--docs", str(docs), "--qa", str(qa), "--k", "5", "--language", "de",
                 stdout=out, stderr=StringIO())
    lines = out.getvalue().strip().splitlines()
    assert lines[-1] == "recall@5 = 0.67"
    assert any(line.startswith("MRR: ") for line in lines) and any(line.startswith("recall@10: ") for line in lines)
    assert not Course.objects.exists() and not Document.objects.exists() and not Chunk.objects.exists()

"""The tutor's management commands: evaluate_questions measures question generation with the configured model."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from courses.models import Course
from tests.test_tutor_generation import BOOK, QUESTIONS, BookModel

pytestmark = pytest.mark.django_db(transaction=True)


def test_evaluate_questions_prints_each_check_and_the_usable_share(stub_llm, tmp_path, settings):
    settings.EMBEDDING_MODEL, settings.MEDIA_ROOT = "static", tmp_path / "media"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "buch.md").write_text(BOOK)
    model = BookModel()
    model.guessable = {QUESTIONS["APT"][1]["stem"]}
    stub_llm.reply = model
    out = StringIO()
    call_command("evaluate_questions", docs=str(docs), per_section=2, sections=2, inference_url=stub_llm.url,
                 method="whole_passage", stdout=out, stderr=StringIO())  # the stub writes whole-passage sets
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("asked 4 (2 sections x 2), written 4 by the model")
    assert lines[1].split() == ["form", "4/4", "passed"]
    assert lines[2].split()[:3] == ["grounded", "4/4", "passed"]
    assert lines[4].split()[:5] == ["test", "student", "3/4", "passed", "guessable"]
    assert "made 4, dropped 0; 3 pass every check" in lines and any(line.startswith("time: ") for line in lines)
    assert any(QUESTIONS["Der Init-Prozess"][0]["stem"] in line for line in lines)  # the sample
    assert lines[-1] == "usable = 0.75"
    assert sorted(model.asked) == ["APT", "Der Init-Prozess"]  # two sections spread over the text
    assert not Course.objects.exists()  # the throwaway course is gone


def test_evaluate_questions_needs_course_texts(tmp_path):
    with pytest.raises(CommandError, match="no folder with PDF"):
        call_command("evaluate_questions", docs=str(tmp_path), stdout=StringIO())

"""Measure question generation: ingest a folder into a throwaway course, write questions about some of its sections
with the configured model through the product's own pipeline (checks, bounded regeneration), and print per check how
many questions passed, a sample, the time, and last ``usable = 0.xx`` (questions passing every check / asked for).

An institution chooses its model by this number: with the tiny embedded model it is low.
"""

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Sum

from courses import sections as course_sections
from courses.documents import EXTENSIONS, UploadError, add_document
from courses.ingest import ingest_document
from courses.models import Course
from tutor.models import TutorConfig
from tutor.questions import generation, item_checks, items
from tutor.questions.models import GenerationPart, QuestionSet

CHECKS = [item_checks.GROUNDED, item_checks.DUPLICATE, item_checks.TEST_STUDENT]


def spread(sections, count):
    """`count` sections spread evenly over the text (all of them when there are not more)."""
    if count <= 0 or count >= len(sections):
        return list(sections)
    step = len(sections) / count
    return [sections[int(i * step)] for i in range(count)]


class Command(BaseCommand):
    help = ("Ingest --docs into a throwaway course, generate --per-section questions about --sections sections with "
            "the configured model, print how many passed each check, and last 'usable = 0.xx'.")

    def add_arguments(self, parser):
        parser.add_argument("--docs", required=True, help="folder with the course texts")
        parser.add_argument("--per-section", type=int, default=3, help="questions asked for per section (default 3)")
        parser.add_argument("--sections", type=int, default=10,
                            help="sections, spread over the texts (default 10; 0: every section)")
        parser.add_argument("--kinds", default=items.Question.SINGLE,
                            help="comma-separated kinds: " + ", ".join(items.KIND_ORDER))
        parser.add_argument("--language", default="de", help="language of the questions: de or en (default de)")
        parser.add_argument("--inference-url", default="", help="the model server (default: INFERENCE_URL)")
        parser.add_argument("--test-student", default=TutorConfig.CHECK_FLAG, choices=[TutorConfig.CHECK_FLAG,
                                                                                       TutorConfig.CHECK_OFF])
        parser.add_argument("--tries", type=int, default=2, help="tries of the test student (default 2)")
        parser.add_argument("--sample", type=int, default=3, help="questions printed as a sample (default 3)")
        parser.add_argument("--keep", action="store_true", help="keep the throwaway course")
        parser.add_argument("--method", default=TutorConfig.ANSWER_FIRST, choices=[
            TutorConfig.ANSWER_FIRST, TutorConfig.WHOLE_PASSAGE],
            help="how multiple-choice and short-answer questions are written (default answer_first)")
        parser.add_argument("--no-model", action="store_true",
                            help="only the kinds built from the text (gap fill), no model asked")

    def handle(self, *args, docs, per_section, sections, kinds, language, inference_url, test_student, tries,
               sample, keep, no_model=False, method=TutorConfig.ANSWER_FIRST, **options):
        if no_model:
            kinds = ",".join(items.Question.TEXT_BUILT_KINDS)
        folder = Path(docs)
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS) \
            if folder.is_dir() else []
        if not files:
            raise CommandError(f"--docs {docs}: no folder with PDF, DOCX, HTML, Markdown or text files")
        if not 1 <= per_section <= generation.MAX_PER_SECTION:
            raise CommandError(f"--per-section must be between 1 and {generation.MAX_PER_SECTION}")
        course = Course.objects.create(title=f"evaluate_questions {time.strftime('%Y-%m-%d %H:%M:%S')}",
                                       language=language)
        try:
            self._ingest(course, files)
            TutorConfig.objects.update_or_create(course=course, defaults={
                "endpoint": inference_url, "answer_language": language, "question_test_student": test_student,
                "question_test_tries": tries, "question_method": method})
            chosen = spread(list(course_sections.sections_with_text(course)), sections)
            question_set = QuestionSet.objects.create(course=course, title="evaluate_questions",
                                                      requested=per_section * len(chosen),
                                                      kinds=items.parse_kinds(kinds.split(",")))
            GenerationPart.objects.bulk_create([GenerationPart(question_set=question_set, section=s,
                                                               requested=per_section) for s in chosen])
            item_checks.course_embedder(course.pk)[1].embed_passages(["warm up"])  # its load is no question's time
            started = time.monotonic()
            for number, part in enumerate(question_set.parts.select_related("section").order_by("id"), start=1):
                generation.generate_part(part.pk)  # here and now, as the task would (never queued)
                part.refresh_from_db()
                self.stderr.write(f"[{number}/{len(chosen)}] {part.section.path[:70]}: {part.state}, made "
                                  f"{part.made}/{part.requested}, dropped {part.dropped} {part.error}")
            self._report(question_set, time.monotonic() - started, sample)
        finally:
            if not keep:
                course.delete()

    def _ingest(self, course, files):
        for path in files:
            try:
                document = add_document(course, path.name, path.read_bytes(), enqueue=False)
            except UploadError as exc:
                raise CommandError(f"{path}: {exc}") from exc
            result = ingest_document(document.pk)
            document.refresh_from_db()
            if result != "ready":
                raise CommandError(f"{path}: ingestion {result}: {document.error_message}")
            self.stderr.write(f"ingested {path.name}: {document.pages_total} pages, {document.chunks_total} passages")

    def _report(self, question_set, seconds, sample):
        parts = list(question_set.parts.all())
        stored = list(question_set.questions.order_by("position"))
        asked = sum(p.requested for p in parts)
        dropped = sum(p.dropped for p in parts)
        counts = {}
        for part in parts:
            counts = generation.merged_counts(counts, part.checks)
        form = counts.get(item_checks.FORM, {"passed": 0, "failed": {}, "not_run": 0})
        written = form["passed"] + sum(form["failed"].values())
        totals = question_set.parts.aggregate(model=Sum("model_seconds"), calls=Sum("model_calls"),
                                              all=Sum("seconds"))
        out = self.stdout
        out.write(f"asked {asked} ({len(parts)} sections x {parts[0].requested if parts else 0}), written "
                  f"{written} by the model, {totals['calls'] or 0} model calls")
        for check in [item_checks.FORM, *CHECKS]:
            found = counts.get(check, {"passed": 0, "failed": {}, "not_run": 0})
            ran = found["passed"] + sum(found["failed"].values())
            failed = sorted(found["failed"].items(), key=lambda kv: -kv[1])
            out.write(f"{check.replace('_', ' '):<14}{found['passed']:>5}/{ran:<5} passed  "
                      + ", ".join(f"{reason} {n}" for reason, n in failed)
                      + (f" (not run {found['not_run']})" if found["not_run"] else ""))
        usable = [q for q in stored if all(c["ok"] is not False for c in q.checks)]
        asked_per_kind = items.split(asked, items.parse_kinds(question_set.kinds)) if parts else {}
        for kind, wanted in asked_per_kind.items():
            good = sum(1 for q in usable if q.kind == kind)
            out.write(f"usable {kind} = {min(good, wanted) / max(wanted, 1):.2f} ({good} of {wanted} asked, "
                      f"{sum(1 for q in stored if q.kind == kind)} made)")
        made = len(stored)
        model, total = totals["model"] or 0.0, totals["all"] or 0.0
        out.write(f"model time per question: {model / max(written, 1):.1f} s per question written, "
                  f"{model / max(len(usable), 1):.1f} s per usable question ({totals['calls'] or 0} calls)")
        out.write(f"made {made}, dropped {dropped}; {len(usable)} pass every check")
        per_made = f"{seconds / 60 / made * 10:.2f} min per 10 questions made" if made else "none made"
        out.write(f"time: {seconds:.1f} s in all, {model:.1f} s waiting for the model, {max(0.0, total - model):.2f} s "
                  f"the tool's own = {max(0.0, total - model) / max(written, 1):.3f} s per question without the model; "
                  f"{seconds / 60 / max(written, 1) * 10:.2f} min per 10 questions written, {per_made}")
        for question in stored[:sample]:
            out.write(f"--- {question.get_kind_display()}: {question.stem}")
            if question.is_choice:
                out.write("    " + " | ".join(("*" if i in question.correct_set else "") + o
                                              for i, o in enumerate(question.options)))
            else:
                out.write(f"    answer: {items.answer_text(question)}")
            form = next((c for c in question.checks if c.get("check") == item_checks.FORM), {})
            stem_by = (form.get("params") or {}).get("stem_by")
            if stem_by:  # who wrote the stem (answer-first): the tool's draft or the model
                out.write(f"    stem by: {stem_by}")
            if question.explanation:
                out.write(f"    explanation: {question.explanation}")
            for name, ok, text, _stale in item_checks.described(question):
                out.write(f"    {'ok ' if ok else '-- ' if ok is None else 'NO '}{name}: {text}")
        dropped_items = [item for part in parts for item in part.dropped_items]
        for item in dropped_items[:max(0, sample - len(stored))]:
            out.write(f"--- dropped: {item['stem'][:150]!r} ({', '.join(item['reasons'])})")
        out.write(f"usable = {min(len(usable), asked) / max(asked, 1):.2f}")

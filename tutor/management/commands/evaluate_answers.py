"""Measure the tutor's answers end to end: which questions it answers correctly and which it declines.

Ingests a folder into a throwaway course and asks every question through the real chat pipeline
(tutor.chat.answering.respond: retrieval, the answerability evidence, the tool's quotes, the configured model, the
quote check), so an institution can pick its model by measurement on its own texts. Works with any OpenAI-compatible
or Ollama server, and without one (--answer-mode quotes: the tool's quotes are the answer).

An answer counts as correct when its text or its quotes contain an expected string; a false decline is an
answerable question declined; the time to the first visible text is until the quotes were out, else until the
model's first piece (the chat's order), measured per question.
"""

import math
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from courses.evaluation import load_questions, throwaway_course
from tutor.chat.checks import ask
from tutor.models import TutorConfig

ANSWER_MODES = [TutorConfig.BOTH, TutorConfig.QUOTES_ONLY, TutorConfig.EXPLANATION_ONLY]


def share(items, test):
    """The share of items for which test is true (0 for none)."""
    return sum(1 for item in items if test(item)) / len(items) if items else 0.0


def _paths(value):
    return [p.strip() for p in value.split(",") if p.strip()]


def percentile(values, p):
    """The p-th percentile of sorted values (nearest rank; 0 for none)."""
    if not values:
        return 0.0
    return values[min(len(values) - 1, max(0, math.ceil(p / 100 * len(values)) - 1))]


class Command(BaseCommand):
    help = ("Ingest --docs into a throwaway course, ask --qa (answerable) and --unanswerable questions through the "
            "chat pipeline and the configured model, print declined/answered shares and answer correctness.")

    def add_arguments(self, parser):
        parser.add_argument("--docs", required=True, help="folder with the course texts")
        parser.add_argument("--qa", required=True, help='JSON lines {"q": "...", "any": ["answer string", ...]}; '
                                                        "several files comma-separated, each reported on its own "
                                                        "(the last line: the first file)")
        parser.add_argument("--unanswerable", required=True, help='JSON lines {"q": "..."} the texts cannot answer; '
                                                                  "several files comma-separated, as --qa")
        parser.add_argument("--url", default=None, help="inference server base URL (default: INFERENCE_URL)")
        parser.add_argument("--model", default=None, help="model name (default: INFERENCE_MODEL)")
        parser.add_argument("--api", choices=["openai", "ollama"], default=None, help="default: INFERENCE_API")
        parser.add_argument("--strictness", choices=[TutorConfig.STRICT, TutorConfig.OPEN], default=TutorConfig.STRICT)
        parser.add_argument("--quote-check", choices=["auto", "on", "off"], default="auto",
                            help="auto: as the installation decides for the model (CHAT_QUOTE_CHECK)")
        parser.add_argument("--rewrite", choices=["auto", "on", "off"], default="auto",
                            help="query rewriting by the model (auto: CHAT_QUERY_REWRITE)")
        parser.add_argument("--sources", type=int, default=TutorConfig._meta.get_field("sources").default,
                            help="passages per answer (default: a new course's)")
        parser.add_argument("--limit", type=int, default=None, help="ask at most this many questions of each set")
        parser.add_argument("--language", default="de", help="language of the course texts (default de)")
        parser.add_argument("--embedding-model", default=None, help="default: EMBEDDING_MODEL")
        parser.add_argument("--answer-mode", choices=["auto", *ANSWER_MODES], default="auto",
                            help="quotes and explanation (both), quotes only (quotes: no model needed), the model's "
                                 "explanation only; auto: as the installation decides for the model "
                                 "(CHAT_ANSWER_MODE)")
        parser.add_argument("--show", action="store_true", help="print each question's outcome")

    def handle(self, *args, **options):
        limit = options["limit"]
        sets = [("answerable", path, load_questions(path)[:limit]) for path in _paths(options["qa"])]
        sets += [("unanswerable", path, [(q, []) for q, _item in load_questions(path, answers=False)][:limit])
                 for path in _paths(options["unanswerable"])]
        if options["url"]:
            settings.INFERENCE_URLS = [u.strip() for u in options["url"].split(",") if u.strip()]
        if options["model"]:
            settings.INFERENCE_MODEL = options["model"]
        if options["api"]:
            settings.INFERENCE_API = options["api"]
        mode = options["answer_mode"]
        if not settings.INFERENCE_URLS and mode in (TutorConfig.BOTH, TutorConfig.EXPLANATION_ONLY):
            raise CommandError("no inference server: give --url or set INFERENCE_URL (or --answer-mode quotes)")
        switch = {"auto": TutorConfig.DEFAULT, "on": TutorConfig.ON, "off": TutorConfig.OFF}
        with throwaway_course(options["docs"], title="evaluate_answers", language=options["language"],
                              model=options["embedding_model"], log=self.stderr.write) as course:
            config = TutorConfig.for_course(course)
            config.strictness, config.sources, config.temperature = options["strictness"], options["sources"], 0.0
            config.quote_check, config.query_rewrite = switch[options["quote_check"]], switch[options["rewrite"]]
            config.answer_mode = "" if mode == "auto" else mode
            config.save()
            model = (f"model: {config.model_name} at {', '.join(settings.INFERENCE_URLS)}"
                     if config.answers_with != TutorConfig.QUOTES_ONLY else "no model asked")
            self.stdout.write(f"{model}; answers: {config.answers_with}; strictness {config.strictness}; quote check "
                              f"{'on' if config.checks_quotes else 'off'}; query rewriting "
                              f"{'on' if config.rewrites_queries else 'off'}")
            results = {}
            for name, path, questions in sets:
                results[path] = []
                started = time.monotonic()
                for question, expected in questions:
                    result = ask(course, question, expected, config)
                    results[path].append(result)
                    if options["show"]:
                        state = "FAILED " + result.error if result.error else "declined" if result.declined else \
                            "answered" + (" (correct)" if result.correct else "")
                        self.stderr.write(f"[{name}] {state}: {question}")
                        if result.quotes:
                            self.stderr.write("    quotes: " + result.quotes.replace("\n", " ")[:400])
                self._report(name, path, results[path], time.monotonic() - started)
        first_qa, first_unanswerable = _paths(options["qa"])[0], _paths(options["unanswerable"])[0]
        correct = share(results[first_qa], lambda r: r.correct)
        declined = share(results[first_unanswerable], lambda r: r.declined)
        false_declines = share(results[first_qa], lambda r: r.declined)
        times = sorted(r.first_visible for rs in results.values() for r in rs
                       if r.first_visible is not None and not r.declined)
        self.stdout.write(f"first visible text (answered questions, {len(times)}): p50 {percentile(times, 50):.2f} s, "
                          f"p95 {percentile(times, 95):.2f} s")
        answerable = [r for path in _paths(options["qa"]) for r in results[path]]
        unanswerable = [r for path in _paths(options["unanswerable"]) for r in results[path]]
        if len(results) > 2:  # several sets: their questions pooled, beside the first files' line below
            self.stdout.write(
                f"all sets pooled: answered_correct {share(answerable, lambda r: r.correct):.2f} "
                f"({sum(r.correct for r in answerable)} of {len(answerable)}), false_declines "
                f"{share(answerable, lambda r: r.declined):.2f}, declined_unanswerable "
                f"{share(unanswerable, lambda r: r.declined):.2f} "
                f"({sum(r.declined for r in unanswerable)} of {len(unanswerable)})")
        self.stdout.write(f"answered_correct = {correct:.2f}; false_declines = {false_declines:.2f}; "
                          f"declined_unanswerable = {declined:.2f}")
        sys.stdout.flush()

    def _report(self, name, path, results, seconds):
        line = (f"{name} {Path(path).name} ({len(results)} questions, {seconds / max(1, len(results)):.1f} s each): "
                f"declined {share(results, lambda r: r.declined):.2f}  "
                f"answered {share(results, lambda r: r.answered):.2f}  "
                f"failed {share(results, lambda r: bool(r.error)):.2f}")
        if name == "answerable":
            line += f"  answered_correct {share(results, lambda r: r.correct):.2f}"
            line += (f"  answer contains an expected string {share(results, lambda r: r.in_answer):.2f}  "
                     f"its quotes contain it {share(results, lambda r: r.in_quotes):.2f}  "
                     f"a cited passage contains it {share(results, lambda r: r.in_cited):.2f}  "
                     f"a retrieved passage contains it {share(results, lambda r: r.in_sources):.2f}")
        self.stdout.write(line)

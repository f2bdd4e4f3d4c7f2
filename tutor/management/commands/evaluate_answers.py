"""Measure the tutor's answers end to end: which questions it answers correctly and which it declines.

Ingests a folder into a throwaway course and asks every question through the real chat pipeline
(tutor.chat.answering.respond: retrieval, the answerability evidence, the configured model, the quote check), so an
institution can pick its model by measurement on its own texts. Works with any OpenAI-compatible or Ollama server.
"""

import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from courses.evaluation import load_questions, throwaway_course
from tutor.chat.checks import ask
from tutor.models import TutorConfig


def share(items, test):
    """The share of items for which test is true (0 for none)."""
    return sum(1 for item in items if test(item)) / len(items) if items else 0.0


class Command(BaseCommand):
    help = ("Ingest --docs into a throwaway course, ask --qa (answerable) and --unanswerable questions through the "
            "chat pipeline and the configured model, print declined/answered shares and answer correctness.")

    def add_arguments(self, parser):
        parser.add_argument("--docs", required=True, help="folder with the course texts")
        parser.add_argument("--qa", required=True, help='JSON lines {"q": "...", "any": ["answer string", ...]}')
        parser.add_argument("--unanswerable", required=True, help='JSON lines {"q": "..."} the texts cannot answer')
        parser.add_argument("--url", default=None, help="inference server base URL (default: INFERENCE_URL)")
        parser.add_argument("--model", default=None, help="model name (default: INFERENCE_MODEL)")
        parser.add_argument("--api", choices=["openai", "ollama"], default=None, help="default: INFERENCE_API")
        parser.add_argument("--strictness", choices=[TutorConfig.STRICT, TutorConfig.OPEN], default=TutorConfig.STRICT)
        parser.add_argument("--quote-check", choices=["auto", "on", "off"], default="auto",
                            help="auto: as the installation decides for the model (CHAT_QUOTE_CHECK)")
        parser.add_argument("--rewrite", choices=["auto", "on", "off"], default="auto",
                            help="query rewriting by the model (auto: CHAT_QUERY_REWRITE)")
        parser.add_argument("--sources", type=int, default=4, help="passages given to the model (default 4)")
        parser.add_argument("--limit", type=int, default=None, help="ask at most this many questions of each set")
        parser.add_argument("--language", default="de", help="language of the course texts (default de)")
        parser.add_argument("--embedding-model", default=None, help="default: EMBEDDING_MODEL")
        parser.add_argument("--show", action="store_true", help="print each question's outcome")

    def handle(self, *args, **options):
        answerable = load_questions(options["qa"])[:options["limit"]]
        unanswerable = [(q, []) for q, _item in load_questions(options["unanswerable"], answers=False)]
        unanswerable = unanswerable[:options["limit"]]
        if options["url"]:
            settings.INFERENCE_URLS = [u.strip() for u in options["url"].split(",") if u.strip()]
        if options["model"]:
            settings.INFERENCE_MODEL = options["model"]
        if options["api"]:
            settings.INFERENCE_API = options["api"]
        if not settings.INFERENCE_URLS:
            raise CommandError("no inference server: give --url or set INFERENCE_URL")
        switch = {"auto": TutorConfig.DEFAULT, "on": TutorConfig.ON, "off": TutorConfig.OFF}
        with throwaway_course(options["docs"], title="evaluate_answers", language=options["language"],
                              model=options["embedding_model"], log=self.stderr.write) as course:
            config = TutorConfig.for_course(course)
            config.strictness, config.sources, config.temperature = options["strictness"], options["sources"], 0.0
            config.quote_check, config.query_rewrite = switch[options["quote_check"]], switch[options["rewrite"]]
            config.save()
            self.stdout.write(f"model: {config.model_name} at {', '.join(settings.INFERENCE_URLS)}; strictness "
                              f"{config.strictness}; quote check {'on' if config.checks_quotes else 'off'}; "
                              f"query rewriting {'on' if config.rewrites_queries else 'off'}")
            results = {}
            for name, questions in (("answerable", answerable), ("unanswerable", unanswerable)):
                results[name] = []
                started = time.monotonic()
                for question, expected in questions:
                    result = ask(course, question, expected, config)
                    results[name].append(result)
                    if options["show"]:
                        state = "FAILED " + result.error if result.error else "declined" if result.declined else \
                            "answered" + (" (correct)" if result.in_answer or result.in_cited else "")
                        self.stderr.write(f"[{name}] {state}: {question}")
                self._report(name, results[name], time.monotonic() - started)
        correct = share(results["answerable"], lambda r: r.answered and (r.in_answer or r.in_cited))
        declined = share(results["unanswerable"], lambda r: r.declined)
        self.stdout.write(f"answered_correct = {correct:.2f}; declined_unanswerable = {declined:.2f}")
        sys.stdout.flush()

    def _report(self, name, results, seconds):
        line = (f"{name} ({len(results)} questions, {seconds / max(1, len(results)):.1f} s each): "
                f"declined {share(results, lambda r: r.declined):.2f}  "
                f"answered {share(results, lambda r: r.answered):.2f}  "
                f"failed {share(results, lambda r: bool(r.error)):.2f}")
        if name == "answerable":
            line += (f"  answer contains an expected string {share(results, lambda r: r.in_answer):.2f}  "
                     f"a cited passage contains it {share(results, lambda r: r.in_cited):.2f}  "
                     f"a retrieved passage contains it {share(results, lambda r: r.in_sources):.2f}")
        self.stdout.write(line)

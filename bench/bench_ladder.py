"""Benchmark: the model ladder on the demo course: answers, generated questions and paraphrase recall per model.

    .venv/bin/python bench/bench_ladder.py [--rungs none,smollm2,qwen0.5b,qwen1.5b] [--limit 10] [--items 6]
        [--paraphrased 12] [--limits qwen1.5b=6:3:4,qwen0.5b=8:4:8] [--kinds multichoice] [--per-section 2]
        [--url URL --model NAME [--api openai|ollama]]... [--out FILE] [--docs DIR --qa F --unanswerable F]

For each rung — no model (the tool's own quotes and text-built items only), each model of deploy/models.py
(``python -m deploy.models fetch`` first for the Qwen models) served by the embedded llama.cpp server (2 threads,
n_ctx 4096, extra buffer types off), and every ``--url``/``--model`` server — it runs ``manage.py evaluate_answers``
(deploy/demo_corpus/debian-reference-de; tests/data/debian_reference_de_qa.jsonl and …_unanswerable_heldout.jsonl,
``--limit`` questions of each) and ``manage.py evaluate_questions`` (``--items`` sections, one question each), and
measures recall@5 on the paraphrased sets with that model's query rewriting (none for the no-model rung). Prints ONE
table and the CPU's flags. ``--limits NAME=Q[:I[:P]]`` sets questions, items and paraphrased questions per rung.

The course texts are embedded once (a memo around the embedder, kept in var/bench/ between runs), not once per
command, rung and run. Model time limits
are raised (``--timeout``, default 300 s to the first byte) so a slow model's quality is measured, not its time-outs;
the latency columns say what a student would wait. Columns a current evaluate_* does not report show "n/a".
"""

import argparse
import importlib
import io
import os
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from common import ROOT, cpu_flags, pct, throwaway_services

from deploy.models import LADDER
from deploy.stack import free_port, port_open, start_llama, stop_process

DEMO = ROOT / "deploy" / "demo_corpus" / "debian-reference-de"
DATA = ROOT / "tests" / "data"
DEFAULT_RUNGS = ["none", "smollm2", "qwen0.5b", "qwen1.5b"]


@dataclass
class Rung:
    """One step of the ladder: its name, the ladder model it starts (or an external server's URL), its budget."""

    name: str
    model: str | None = None  # a deploy.models LADDER name, started here
    url: str | None = None  # an external OpenAI-compatible or Ollama server
    served: str | None = None  # the model name the server knows
    api: str | None = None
    limit: int = 10
    items: int = 6
    paraphrased: int = 12
    row: dict = field(default_factory=dict)


def first_module(*names):
    """The first of the modules that imports (the tutor's rooms moved between releases)."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError(f"none of {', '.join(names)}")


def embed_once(cache_file):
    """Remember every passage vector by (model, text), in memory and in cache_file (a pickle beside the other
    bench output): the demo course is embedded once, not per command, rung and run."""
    import hashlib
    import pickle

    import numpy as np

    from courses import embeddings

    original = embeddings.Embedder.embed_passages
    memo = {}
    if cache_file and os.path.exists(cache_file):
        with open(cache_file, "rb") as handle:
            memo = pickle.load(handle)

    def key(model, text):
        return hashlib.sha256(f"{model}\0{text}".encode()).hexdigest()

    def embed_passages(self, texts):
        missing = [t for t in dict.fromkeys(texts) if key(self.name, t) not in memo]
        if missing:
            for text, vector in zip(missing, original(self, missing), strict=True):
                memo[key(self.name, text)] = vector
            if cache_file:
                with open(cache_file + ".new", "wb") as handle:
                    pickle.dump(memo, handle)
                os.replace(cache_file + ".new", cache_file)
        if not texts:
            return original(self, texts)
        return np.vstack([memo[key(self.name, t)] for t in texts])

    embeddings.Embedder.embed_passages = embed_passages


@contextmanager
def first_text_timer(latencies):
    """Time from the start of each answer (tutor's respond) to its first visible text (any text its output gets:
    quotes, a decline, the model's first piece), appended to latencies in seconds."""
    module = first_module("tutor.chat.answering", "tutor.answering")
    original = module.respond

    def respond(*args, **kwargs):
        started = time.monotonic()
        out = args[4] if len(args) > 4 else kwargs.get("out")
        seen = []
        if out is not None:
            for name in [n for n in dir(out) if not n.startswith("_") and n not in ("reset", "queued")]:
                method = getattr(out, name)
                if callable(method):
                    def wrapped(*a, _method=method, **k):
                        if not seen and any(isinstance(x, str) and x.strip() or isinstance(x, (list, dict)) and x
                                            for x in (*a, *k.values())):
                            seen.append(time.monotonic() - started)
                        return _method(*a, **k)
                    setattr(out, name, wrapped)
        try:
            return original(*args, **kwargs)
        finally:
            if seen:
                latencies.append(seen[0])

    module.respond = respond
    try:
        yield
    finally:
        module.respond = original


class Tee(io.StringIO):
    """Writes to the terminal and keeps a copy to parse."""

    def write(self, text):
        sys.stdout.write(text)
        return super().write(text)


def command_options(name):
    """The option names (dests) the installed management command accepts."""
    from django.core.management import get_commands, load_command_class

    parser = load_command_class(get_commands()[name], name).create_parser("manage.py", name)
    return {action.dest for action in parser._actions}  # argparse has no public list of its actions


def run_command(name, **options):
    """call_command with the options this version of the command accepts; returns what it printed."""
    from django.core.management import call_command

    accepted = command_options(name)
    dropped = sorted(k for k in options if k not in accepted)
    if dropped:
        print(f"  ({name} here takes no {', '.join(dropped)})", flush=True)
    out = Tee()
    call_command(name, stdout=out, **{k: v for k, v in options.items() if k in accepted})
    return out.getvalue()


def values(text):
    """{key: number} of every `key = 0.xx` in text (later ones win)."""
    return {k: float(v) for k, v in re.findall(r"([A-Za-z_@0-9]+) = ([0-9]+(?:\.[0-9]+)?)", text)}


def share_after(line, label):
    match = re.search(re.escape(label) + r"\s+([0-9.]+)", line or "")
    return float(match.group(1)) if match else None


def parse_answers(text):
    """answered_correct, declined_unanswerable, false declines, first visible text, seconds per answer from
    evaluate_answers' report (older reports lack some: None)."""
    found = values(text)
    lines = {m.group(1): m.group(0) for m in re.finditer(r"^(answerable|unanswerable)\b.*$", text, re.M)}
    answerable, unanswerable = lines.get("answerable", ""), lines.get("unanswerable", "")
    false_declines = next((v for k, v in found.items() if "false_decline" in k), None)
    if false_declines is None:
        false_declines = share_after(answerable, "declined")  # answerable questions the tutor declined
    each = [float(m) for m in re.findall(r"questions, ([0-9.]+) s each", answerable + unanswerable)]
    first = re.search(r"first visible text[^\n]*?p50 ([0-9.]+) s, p95 ([0-9.]+) s", text)
    return {"answered_correct": found.get("answered_correct"), "declined_unanswerable":
            found.get("declined_unanswerable"), "false_declines": false_declines,
            "failed": share_after(answerable, "failed"), "s_per_answer": each[0] if each else None,
            "retrieved": share_after(answerable, "a retrieved passage contains it"),
            "first_reported": (float(first.group(1)), float(first.group(2))) if first else None}


def parse_questions(text):
    """usable (overall and per kind: usable of asked), items written, model seconds per item from
    evaluate_questions' report."""
    found = values(text)
    written = re.search(r"written (\d+) by the model", text)
    made = re.search(r"made (\d+), dropped (\d+); (\d+) pass every check", text)
    model = re.search(r"([0-9.]+) s waiting for the model", text)
    written = int(written.group(1)) if written else None
    per_kind = {kind: (int(good), int(wanted)) for kind, good, wanted in
                re.findall(r"^usable (\w+) = [0-9.]+ \((\d+) of (\d+) asked", text, re.M)}
    return {"usable": found.get("usable"), "written": written, "kinds_reported": per_kind,
            "made": int(made.group(1)) if made else None, "passing": int(made.group(3)) if made else None,
            "model_s_per_item": float(model.group(1)) / written if model and written else None}


def usable_per_kind():
    """{kind: (usable, kept)} of the last evaluate_questions course (kept with --keep), which is then deleted."""
    from django.apps import apps

    Course = apps.get_model("courses", "Course")
    Question = apps.get_model("tutor", "Question")
    course = Course.objects.filter(title__startswith="evaluate_questions").order_by("-pk").first()
    if course is None:
        return {}
    kinds = {}
    for question in Question.objects.filter(question_set__course=course):
        usable, kept = kinds.get(question.kind, (0, 0))
        kinds[question.kind] = (usable + all(c.get("ok") is not False for c in question.checks or []), kept + 1)
    course.delete()
    return kinds


def text_built_kinds():
    """The question kinds the tool builds from the text without a model (none before that work is merged)."""
    items = first_module("tutor.questions.items", "tutor.items")
    for name in ("TEXT_BUILT_KINDS", "TEXT_KINDS", "BUILT_FROM_TEXT", "NO_MODEL_KINDS"):
        if getattr(items, name, None):
            return list(getattr(items, name))
    return [k for k in getattr(items, "KIND_ORDER", []) if re.search(r"gap|cloze|fill|missing", k)]


def paraphrase_recall(course, questions, rewrite, seconds):
    """(recall@5, questions rewritten) of the paraphrased questions, searched as the chat searches them, with the
    configured model's rewording when rewrite is set."""
    from django.conf import settings

    from tutor.models import TutorConfig

    checks = first_module("tutor.chat.checks", "tutor.checks")
    relevance = first_module("tutor.chat.relevance", "tutor.relevance")
    prompts = first_module("tutor.inference.prompts", "tutor.prompts")
    rewriting = first_module("tutor.inference.rewriting", "tutor.rewriting")
    config = TutorConfig.for_course(course)
    found = rewritten = 0
    settings.CHAT_REWRITE_SECONDS = seconds
    for question, expected in questions:
        also = (rewriting.rewrite_question(config, question, [], "de") or []) if rewrite else []
        rewritten += bool(also)
        passages = relevance.relevant_passages(course.pk, prompts.search_query(question, []), 5, also=also)
        found += any(checks.contains(p.text, expected) for p in passages[:5])
    return found / max(1, len(questions)), rewritten


def fmt(value, digits=2):
    return "n/a" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(rungs, model_kinds, text_kinds, load_at_start):
    """The ladder as one plain-text table."""
    columns = [("rung", "rung"), ("answered_correct", "correct"), ("declined_unanswerable", "declined_unans"),
               ("false_declines", "false_decl"), ("first_p50", "1st text p50 s"), ("first_p95", "p95 s"),
               ("s_per_answer", "s/answer"), ("recall5", "para r@5 (rewr)"), ("kinds", "usable/asked per kind"),
               ("usable", "usable"), ("model_s_per_item", "model s/item"), ("questions", "n q/items/para")]
    rows = []
    for rung in rungs:
        row = rung.row
        recall = "n/a" if row.get("recall5") is None else f"{row['recall5']:.2f} ({row['rewritten']}/{rung.paraphrased})"
        kinds = ", ".join(f"{kind} {usable}/{kept}" for kind, (usable, kept) in sorted(row.get("kinds", {}).items()))
        rows.append([rung.name, *(fmt(row.get(key)) for key, _ in columns[1:7]), recall, kinds or "n/a",
                     fmt(row.get("usable")), fmt(row.get("model_s_per_item"), 1),
                     f"{rung.limit}+{rung.limit}/{rung.items}/{rung.paraphrased}"])
    header = [title for _, title in columns]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    model, flags = cpu_flags()
    lines += ["", f"items asked of model rungs: {model_kinds}; text-built kinds (no model): {text_kinds or 'none yet'}",
              f"machine: {os.cpu_count()} cores, {model}; flags: {flags}",
              f"load average (1 min) at the start {load_at_start:.1f}, at the end {os.getloadavg()[0]:.1f} "
              f"(other work on the same cores slows every latency column)"]
    return "\n".join(lines)


def parse_limits(text):
    """{rung: (questions, items, paraphrased or None)} from NAME=Q[:I[:P]],..."""
    limits = {}
    for entry in filter(None, (e.strip() for e in (text or "").split(","))):
        name, _, numbers = entry.partition("=")
        parts = [int(n) for n in numbers.split(":") if n]
        limits[name] = parts + [None] * (3 - len(parts))
    return limits


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rungs", default=",".join(DEFAULT_RUNGS),
                        help="comma-separated: none and names of deploy/models.py (default: all of them)")
    parser.add_argument("--url", action="append", default=[], help="an external server's base URL (repeatable)")
    parser.add_argument("--model", action="append", default=[], help="its model name (one per --url)")
    parser.add_argument("--api", choices=["openai", "ollama"], default=None, help="the external servers' API")
    parser.add_argument("--docs", default=str(DEMO), help="the course texts (default: the demo course)")
    parser.add_argument("--qa", default=str(DATA / "debian_reference_de_qa.jsonl"))
    parser.add_argument("--unanswerable", default=str(DATA / "debian_reference_de_unanswerable_heldout.jsonl"))
    parser.add_argument("--paraphrased-sets", default=",".join(str(DATA / f"debian_reference_de_{n}.jsonl") for n in (
        "paraphrased", "paraphrased_heldout")), help="comma-separated question files for the recall column")
    parser.add_argument("--limit", type=int, default=10, help="answerable and unanswerable questions asked, each")
    parser.add_argument("--items", type=int, default=6, help="sections to write one question about")
    parser.add_argument("--paraphrased", type=int, default=12, help="paraphrased questions searched")
    parser.add_argument("--limits", default="", help="per rung: NAME=Q[:I[:P]],… (questions, items, paraphrased)")
    parser.add_argument("--per-section", type=int, default=1,
                        help="questions asked per section (evaluate_questions --per-section; the kinds share them, "
                             "so 1 asks only the first kind)")
    parser.add_argument("--kinds", default="multichoice,shortanswer",
                        help="kinds the models write (evaluate_questions --kinds)")
    parser.add_argument("--answer-mode", default="both",
                        help="evaluate_answers --answer-mode for the model rungs, where it has one (default both: "
                             "the tool's quotes, then the model's explanation; the no-model rung: quotes)")
    parser.add_argument("--sample", type=int, default=3, help="generated items printed per rung, to read")
    parser.add_argument("--rewrite", choices=["auto", "on", "off"], default="off",
                        help="query rewriting inside evaluate_answers (default off: measured by the recall column)")
    parser.add_argument("--rewrite-seconds", type=float, default=120.0, help="time for one rewrite (recall column)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds to a model's first byte")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--embedding-model", default="e5-small")
    parser.add_argument("--out", default=None, help="also write the table to this file")
    parser.add_argument("--embedding-cache", default=str(ROOT / "var" / "bench" / "ladder-embeddings.pickle"),
                        help="passage vectors kept between runs ('' for none)")
    args = parser.parse_args()
    if len(args.url) != len(args.model):
        parser.error("give one --model NAME for each --url")
    limits = parse_limits(args.limits)
    rungs = []
    for name in filter(None, (n.strip() for n in args.rungs.split(","))):
        if name != "none" and name not in LADDER:
            parser.error(f"--rungs: {name!r} is neither none nor one of {', '.join(LADDER)}")
        rungs.append(Rung(name, model=None if name == "none" else name, served=None if name == "none" else name))
    rungs += [Rung(model, url=url, served=model, api=args.api) for url, model in zip(args.url, args.model, strict=True)]
    for rung in rungs:
        q, i, p = limits.get(rung.name, [None, None, None])
        rung.limit = args.limit if q is None else q
        rung.items = args.items if i is None else i
        rung.paraphrased = args.paraphrased if p is None else p
    missing = [r.name for r in rungs if r.model and not LADDER[r.model].path().is_file()]
    if missing:
        sys.exit(f"not fetched yet: {', '.join(missing)} (python -m deploy.models fetch {' '.join(missing)})")

    model_name, flags = cpu_flags()
    load_at_start = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, {model_name}; flags: {flags}; load {load_at_start:.1f}", flush=True)
    environment = {"EMBEDDING_MODEL": args.embedding_model, "INFERENCE_CONTEXT_TOKENS": str(args.n_ctx),
                   "INFERENCE_TIMEOUT": str(args.timeout), "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING")}
    started_all = time.monotonic()
    with throwaway_services(**environment) as (stack, _env, scratch, _logs):
        from django.conf import settings

        from courses.evaluation import load_questions, throwaway_course

        os.makedirs(os.path.dirname(args.embedding_cache) or ".", exist_ok=True)
        embed_once(args.embedding_cache)
        text_kinds = text_built_kinds()
        paraphrased = [q for path in args.paraphrased_sets.split(",") if path for q in load_questions(path)]
        settings.INFERENCE_ALLOWED_HOSTS = [*settings.INFERENCE_ALLOWED_HOSTS, "127.0.0.1"]
        with throwaway_course(args.docs, title="bench_ladder", model=args.embedding_model, log=print) as course:
            for rung in rungs:
                print(f"\n=== {rung.name} ({time.monotonic() - started_all:.0f} s so far)", flush=True)
                started, server = time.monotonic(), None
                url = rung.url
                if rung.model:
                    port = free_port()
                    server = start_llama(stack, port, scratch / f"llama-{rung.name}.log", threads=args.threads,
                                         n_ctx=args.n_ctx, model=rung.model)
                    assert port_open("127.0.0.1", port)
                    url = f"http://127.0.0.1:{port}/v1"
                if url is None:  # no model: a server that is not there, so any model call fails at once
                    url = f"http://127.0.0.1:{free_port()}/v1"
                settings.INFERENCE_URLS = [url]
                settings.INFERENCE_MODEL = rung.served or "none"
                if rung.api:
                    settings.INFERENCE_API = rung.api
                try:
                    measure(rung, course, url, args, paraphrased, text_kinds)
                except Exception as exc:  # one rung failing must not lose the others' numbers
                    print(f"  {rung.name} failed: {type(exc).__name__}: {exc}", flush=True)
                    rung.row.setdefault("error", str(exc))
                finally:
                    if server is not None:
                        stop_process(server)
                print(f"  {rung.name}: {time.monotonic() - started:.0f} s; the table so far:\n"
                      f"{table(rungs[:rungs.index(rung) + 1], args.kinds, text_kinds, load_at_start)}", flush=True)
    result = table(rungs, args.kinds, text_kinds, load_at_start)
    print(f"\nladder ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {time.monotonic() - started_all:.0f} s "
          f"in all): {' '.join(sys.argv[1:])}\n{result}", flush=True)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as handle:
            handle.write(f"$ bench/bench_ladder.py {' '.join(sys.argv[1:])}\n{result}\n\n")


def measure(rung, course, url, args, paraphrased, text_kinds):
    """Fill rung.row: evaluate_answers, first-text latency, paraphrase recall, evaluate_questions per kind."""
    answer_options = {"docs": args.docs, "qa": args.qa, "unanswerable": args.unanswerable,
                      "limit": rung.limit, "url": url, "embedding_model": args.embedding_model,
                      "rewrite": "off" if rung.name == "none" else args.rewrite}
    if rung.served:
        answer_options["model"] = rung.served
    if rung.api:
        answer_options["api"] = rung.api
    accepted = command_options("evaluate_answers")
    if rung.name == "none":
        mode = no_model_answer_mode(accepted)
        if mode is None:
            print("  evaluate_answers here has no answer mode without a model: n/a", flush=True)
        else:
            answer_options["answer_mode"] = mode
    elif args.answer_mode:
        answer_options["answer_mode"] = args.answer_mode
    if rung.limit and (rung.name != "none" or "answer_mode" in answer_options):
        latencies = []
        with first_text_timer(latencies):
            text = run_command("evaluate_answers", **answer_options)
        rung.row.update(parse_answers(text))
        reported = rung.row.pop("first_reported")
        if reported:  # the command's own: answered questions, until the quotes (or the model's first piece)
            rung.row["first_p50"], rung.row["first_p95"] = reported
        else:  # measured here around respond: every question, until its first text
            rung.row["first_p50"] = pct(latencies, 50) if latencies else None
            rung.row["first_p95"] = pct(latencies, 95) if latencies else None
    if rung.paraphrased:
        recall, rewritten = paraphrase_recall(course, paraphrased[:rung.paraphrased], rung.name != "none",
                                              args.rewrite_seconds)
        rung.row.update(recall5=recall, rewritten=rewritten)
    kinds = text_kinds if rung.name == "none" else args.kinds.split(",")
    if kinds and rung.items:
        options = {"no_model": True} if rung.name == "none" else {}
        text = run_command("evaluate_questions", docs=args.docs, per_section=args.per_section, sections=rung.items,
                           kinds=",".join(kinds), inference_url=url, keep=True, sample=args.sample, **options)
        rung.row.update(parse_questions(text))
        kept = usable_per_kind()
        rung.row["kinds"] = rung.row.pop("kinds_reported") or kept


def no_model_answer_mode(accepted):
    """The evaluate_answers answer mode that needs no model (quotes only), when the command has one."""
    if "answer_mode" not in accepted:
        return None
    from django.core.management import get_commands, load_command_class

    parser = load_command_class(get_commands()["evaluate_answers"], "evaluate_answers").create_parser(
        "manage.py", "evaluate_answers")
    choices = next((a.choices for a in parser._actions if a.dest == "answer_mode"), None) or []
    return next((c for c in choices if "quote" in c and "expl" not in c), None)


if __name__ == "__main__":
    main()

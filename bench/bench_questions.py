"""Benchmark: question generation on the demo course (deploy/demo_corpus/debian-reference-de) through
``manage.py evaluate_questions``, with a deterministic stub model or the embedded SmolLM2.

    .venv/bin/python bench/bench_questions.py --model stub|smollm2|none [--sections 10] [--per-section 3]
                                              [--docs DIR] [--kinds multichoice,truefalse] [--sample 3]
                                              [--method answer_first|whole_passage]

--model none builds gap-fill questions from the text alone (no model) and prints usable per kind.

Starts a throwaway PostgreSQL+pgvector and Redis (bench/common.py's throwaway_services) and the model server:
the stub (tests/stub_llm.py) writes cloze-like questions from each prompt's first passage and answers the test
student from the passage; it measures the tool's own time, not a model's quality. SmolLM2 is llama-cpp-python's
server (2 threads, n_ctx 4096) as the run command starts it. Prints evaluate_questions' report (per check, time,
last line ``usable = 0.xx``).
"""

import argparse
import json
import os
import re

from common import ROOT, throwaway_services

from deploy.stack import free_port, port_open, start_llama

DEMO = ROOT / "deploy" / "demo_corpus" / "debian-reference-de"
WORD = re.compile(r"\b[A-ZÄÖÜa-zäöüß][\w-]{5,}\b")


def writer(body):
    """The stub model: questions from the prompt's first passage (a sentence with one word left out, the other
    options words of similar length from the passage), and the test student's answers."""
    prompt = body["messages"][-1]["content"]
    properties = (body.get("response_format") or {}).get("schema", {}).get("properties", {})
    if "questions" in properties:
        count = properties["questions"].get("maxItems", 1)
        passages = re.findall(r'<source id="(\d+)">\n(.*?)\n</source>', prompt, re.S)
        found = []
        for number, text in passages:
            for sentence in re.split(r"(?<=[.!?])\s+", " ".join(text.split())):
                words = list(dict.fromkeys(WORD.findall(sentence)))
                others = [w for w in dict.fromkeys(WORD.findall(text)) if w not in sentence]
                if len(found) < count and len(words) >= 1 and len(others) >= 3 and 40 < len(sentence) < 240:
                    key = words[len(words) // 2]
                    options = sorted([key] + sorted(others, key=lambda w: abs(len(w) - len(key)))[:3])
                    found.append({"stem": f"Welches Wort fehlt: „{sentence.replace(key, '____', 1)}“?",
                                  "options": options, "answer": options.index(key),
                                  "explanation": f"Im Text steht: {sentence}", "source": int(number)})
        return json.dumps({"questions": found})
    if "distractors" in properties or ("stem" in properties and "answer" not in properties):  # answer-first
        answer = re.search(r"^(?:Richtige )?Antwort: (.+)$", prompt, re.M).group(1)
        sentence = re.search(r"^Satz: (.+)$", prompt, re.M).group(1)
        others = [w for w in dict.fromkeys(WORD.findall(prompt.split("</passage>")[0])) if w not in sentence]
        return json.dumps({"stem": f"Welches Wort fehlt: „{sentence.replace(answer, '____')}“?",
                           "distractors": (others + ["Fehler", "Datei", "Befehl"])[:3],
                           "explanation": f"Im Text steht: {sentence}"})
    if "answer" in properties:
        options = dict(re.findall(r"^([A-F])\) (.*)$", prompt, re.M))
        cloze = re.search(r"„(.*)“\?", prompt)
        passage = re.search(r"<passage>\n(.*?)\n</passage>", prompt, re.S)
        if cloze and passage:
            text = " ".join(passage.group(1).split())
            for letter, option in options.items():
                if cloze.group(1).replace("____", option) in text:
                    return json.dumps({"answer": letter})
        return json.dumps({"answer": "A"})
    return json.dumps({name: "Eine neue Antwort" for name in properties})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["stub", "smollm2", "none"], default="stub",
                        help="none: only questions built from the text (gap fill), no model")
    parser.add_argument("--docs", default=str(DEMO))
    parser.add_argument("--language", default="de", choices=["de", "en"], help="the course's language")
    parser.add_argument("--sections", type=int, default=10)
    parser.add_argument("--per-section", type=int, default=3)
    parser.add_argument("--kinds", default="multichoice")
    parser.add_argument("--tries", type=int, default=2)
    parser.add_argument("--sample", type=int, default=3, help="questions printed in full")
    parser.add_argument("--method", choices=["answer_first", "whole_passage"], default="answer_first",
                        help="how multiple-choice and short-answer questions are written")
    args = parser.parse_args()

    environment = {"EMBEDDING_MODEL": os.environ.get("EMBEDDING_MODEL", "e5-small"),
                   "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING")}
    with throwaway_services(**environment) as (stack, _env, scratch, _logs):
        from django.conf import settings
        from django.core.management import call_command

        stub = None
        if args.model == "none":
            url = "http://127.0.0.1:9/v1"  # nothing listens: no model is asked
        elif args.model == "stub":
            from tests.stub_llm import StubLLM

            stub = StubLLM(reply=writer).start()
            url = stub.url
        else:
            port = free_port()
            start_llama(stack, port, scratch / "llama.log", threads=2, n_ctx=4096)
            settings.INFERENCE_CONTEXT_TOKENS = 4096
            url = f"http://127.0.0.1:{port}/v1"
            assert port_open("127.0.0.1", port)
        settings.INFERENCE_URL = url
        try:
            call_command("evaluate_questions", docs=args.docs, per_section=args.per_section, sections=args.sections,
                         kinds=args.kinds, language=args.language, tries=args.tries, inference_url=url, no_model=args.model == "none",
                         sample=args.sample, method=args.method)
        finally:
            if stub is not None:
                stub.stop()

if __name__ == "__main__":
    main()

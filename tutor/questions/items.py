"""Kinds of question: what the model is asked to write for each (JSON schema), the form check every question must
pass before anyone sees it, and how a student's response to it is scored.

Kinds (``Question.KINDS``): single-answer and multiple-answer multiple choice, true/false, short answer (accepted
answers; case rule; Moodle's ``*`` wildcard), the open question (model answer and rubric, never scored) and the gap
fill built from the text (tutor.questions.textbuilt; no model: a sentence with one gap, the key among distractors).
A question of the model arrives as a JSON object of its kind's schema; ``from_model_item`` turns it into an unsaved
``Question`` and lists what is wrong with its form (each problem a reason code the review page explains).
"""

import re
import unicodedata

from tutor.questions.models import Question
from tutor.questions.spans import GAP

KIND_ORDER = [Question.SINGLE, Question.MULTIPLE, Question.TRUE_FALSE, Question.SHORT, Question.OPEN,
              Question.GAP_FILL]
MIN_OPTIONS, MAX_OPTIONS = 2, 6
MAX_ACCEPTED = 8
MAX_SHORT_ANSWER_WORDS = 6
MIN_STEM_WORDS = 3
MAX_RESPONSE_CHARS = 4000

# Problems of form. HARD ones make a question unusable (a lecturer's edit with one is refused); the others are
# signs of a poorly written question (a generated one is dropped, a lecturer's edit is kept and flagged).
SCHEMA, EMPTY, TOO_SHORT, PLACEHOLDER, COPIED, OPTIONS, NOT_DISTINCT, LENGTHS, KEY, ANSWERS, REPEATS, GAPS = (
    "schema", "empty", "too_short", "placeholder", "copied", "options", "not_distinct", "lengths", "key", "answers",
    "repeats", "gaps")
# a gap fill built from the text whose wrong answers the course describes as something else than the key: too few
# plausible ones are left (tutor.questions.spans.Plausibility)
IMPLAUSIBLE = "implausible"
# a gap fill built from the text whose sentence says what the course's one-line description of the key (its package
# table row) says, and nothing the course says of the wrong answers does: the key stands out (spans.defined_away)
DEFINED = "defined"
# a gap fill built from the text whose sentence says nothing that asks for the key rather than its wrong answers
# (no word of the key's shape beside it, none of its rarer words the course says of the key and of no wrong answer):
# any of them may fit (tutor.questions.spans.singled_out)
OPEN = "open"
HARD = {SCHEMA, EMPTY, OPTIONS, NOT_DISTINCT, KEY, ANSWERS, GAPS}


# --- What the model is asked for ---------------------------------------------------------------------------------

def _text(**extra):
    return {"type": "string", **extra}


_SOURCE = {"type": "integer"}
ITEM_SCHEMAS = {
    Question.SINGLE: {"type": "object", "properties": {
        "stem": _text(), "options": {"type": "array", "items": _text(), "minItems": MIN_OPTIONS, "maxItems": MAX_OPTIONS},
        "answer": {"type": "integer"}, "explanation": _text(), "source": _SOURCE},
        "required": ["stem", "options", "answer", "explanation", "source"]},
    Question.MULTIPLE: {"type": "object", "properties": {
        "stem": _text(), "options": {"type": "array", "items": _text(), "minItems": 3, "maxItems": MAX_OPTIONS},
        "answers": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": MAX_OPTIONS - 1},
        "explanation": _text(), "source": _SOURCE},
        "required": ["stem", "options", "answers", "explanation", "source"]},
    Question.TRUE_FALSE: {"type": "object", "properties": {
        "statement": _text(), "answer": {"type": "boolean"}, "explanation": _text(), "source": _SOURCE},
        "required": ["statement", "answer", "explanation", "source"]},
    Question.SHORT: {"type": "object", "properties": {
        "stem": _text(), "answers": {"type": "array", "items": _text(), "minItems": 1, "maxItems": 4},
        "explanation": _text(), "source": _SOURCE},
        "required": ["stem", "answers", "explanation", "source"]},
    Question.OPEN: {"type": "object", "properties": {
        "stem": _text(), "model_answer": _text(), "rubric": {"type": "array", "items": _text(), "minItems": 1,
                                                             "maxItems": 5},
        "source": _SOURCE},
        "required": ["stem", "model_answer", "rubric", "source"]},
}
TOKENS_PER_QUESTION = {Question.SINGLE: 220, Question.MULTIPLE: 250, Question.TRUE_FALSE: 120, Question.SHORT: 150,
                       Question.OPEN: 320}


def schema(kind, count):
    """The JSON schema of the model's answer: between 1 and `count` questions of this kind."""
    return {"type": "object",
            "properties": {"questions": {"type": "array", "items": ITEM_SCHEMAS[kind], "minItems": 1,
                                         "maxItems": count}},
            "required": ["questions"]}


def parse_kinds(values):
    """The known kinds among values, in the canonical order (single-answer multiple choice when none is known)."""
    wanted = {str(v) for v in values or ()}
    return [kind for kind in KIND_ORDER if kind in wanted] or [Question.SINGLE]


def default_kinds(config):
    """The kinds a lecturer is offered first: built from the text when the course's model is one of
    CHAT_WEAK_MODELS (too small to write usable questions), else single-answer multiple choice."""
    from django.conf import settings

    if config.model_name in settings.CHAT_WEAK_MODELS:
        return list(Question.TEXT_BUILT_KINDS)
    return [Question.SINGLE]


def split(total, kinds):
    """How many of `total` questions each kind gets: evenly, the first kinds taking what is left over."""
    return {kind: total // len(kinds) + (number < total % len(kinds)) for number, kind in enumerate(kinds)}


# --- The form check ------------------------------------------------------------------------------------------------

def clean(value):
    """A model's or a person's text on one line, stripped ('' for anything that is not text or a number)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    return " ".join(str(value).split())


def folded(text):
    """Text compared loosely: case-folded, accents kept, punctuation and spacing ignored."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.findall(r"\w+", text))


_PLACEHOLDER_WORDS = (r"stem|question|frage|fragestamm|statement|aussage|answer|antwort|option|choice|auswahl|"
                      r"distractor|distraktor|explanation|erkl(?:ä|ae)rung|placeholder|platzhalter|todo|tbd|xxx+|"
                      r"model answer|musterl(?:ö|oe)sung|rubric|correct answer|richtige antwort|wrong answer|"
                      r"falsche antwort|insert .*|your .* here|lorem ipsum.*|asdf")
_PLACEHOLDER = re.compile(rf"^(?:(?:the |die |der |das |eine? )?(?:{_PLACEHOLDER_WORDS})(?: ?(?:\d{{1,2}}|[a-f]))?)$")
_BRACKETED = re.compile(r"^\s*(?:<[^<>]{0,40}>|\{[^{}]{0,40}\}|\[[^\[\]]{0,40}\]|\.{3,}|…|_{3,}|-{3,}|\?+)\s*$")


def is_placeholder(text):
    """Whether a text is a template's placeholder rather than content ("stem", "Option A", "<answer>", "…")."""
    return not folded(text) or bool(_PLACEHOLDER.match(folded(text))) or bool(_BRACKETED.match(text))


def _index(value, length):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < length:
        return None
    return value


def _source(value, passages):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= len(passages):
        return None
    return passages[value - 1]


def from_model_item(kind, item, passages):
    """(unsaved Question, [(problem code, detail)]) for one question of the model's answer; `passages` are the
    numbered chunks it was shown (its "source" names one of them, counting from 1)."""
    if not isinstance(item, dict):
        return None, [(SCHEMA, "not an object")]
    question = Question(kind=kind, origin=Question.GENERATED, explanation=clean(item.get("explanation")))
    question.source_chunk = _source(item.get("source"), passages)
    if kind == Question.TRUE_FALSE:
        question.stem = clean(item.get("statement") or item.get("stem"))
        answer = item.get("answer")
        question.truth = answer if isinstance(answer, bool) else None
    else:
        question.stem = clean(item.get("stem"))
    if kind in Question.CHOICE_KINDS:
        options = item.get("options")
        question.options = [clean(o) for o in options] if isinstance(options, list) else []
        if kind == Question.SINGLE:
            index = _index(item.get("answer"), len(question.options))
            question.correct_index = -1 if index is None else index
        else:
            answers = item.get("answers")
            answers = answers if isinstance(answers, list) else []
            question.correct_indices = [a if _index(a, len(question.options)) is not None else -1 for a in answers]
    elif kind == Question.SHORT:
        answers = item.get("answers")
        question.accepted_answers = [clean(a) for a in answers] if isinstance(answers, list) else []
    elif kind == Question.OPEN:
        question.model_answer = clean(item.get("model_answer"))
        rubric = item.get("rubric")
        rubric = [clean(r) for r in rubric if clean(r)] if isinstance(rubric, list) else [clean(rubric)]
        question.rubric = "\n".join(r for r in rubric if r)
    return question, form_problems(question)


def form_problems(question):
    """[(problem code, detail)] of a question's form: schema, empty or placeholder text, options distinct and of
    similar length, exactly the declared number of correct options, the question not copied into an option."""
    problems = []
    stem = question.stem
    if not stem:
        return [(EMPTY, "")]
    if is_placeholder(stem):
        problems.append((PLACEHOLDER, stem))
    elif len(folded(stem).split()) < MIN_STEM_WORDS:
        problems.append((TOO_SHORT, stem))
    if question.kind in Question.CHOICE_KINDS:
        if question.kind == Question.GAP_FILL and question.stem.count(GAP) != 1:
            return problems + [(GAPS, f"{question.stem.count(GAP)} gaps ({GAP}) instead of one")]
        problems += _choice_problems(question)
    elif question.kind == Question.TRUE_FALSE:
        if question.truth is None:
            problems.append((KEY, "neither true nor false"))
    elif question.kind == Question.SHORT:
        accepted = question.accepted_answers
        if not accepted or not all(accepted) or len(accepted) > MAX_ACCEPTED:
            problems.append((ANSWERS, f"{len(accepted)} accepted answers or an empty one"))
        elif any(len(a.split()) > MAX_SHORT_ANSWER_WORDS for a in accepted):
            problems.append((ANSWERS, "an accepted answer is longer than a few words"))
        elif any(is_placeholder(a) for a in accepted):
            problems.append((PLACEHOLDER, next(a for a in accepted if is_placeholder(a))))
        elif any(folded(a) == folded(stem) for a in accepted):
            problems.append((COPIED, "an accepted answer repeats the question"))
    elif question.kind == Question.OPEN:  # a model answer, a rubric (a grader's information from Moodle) or both
        if not question.model_answer and not question.rubric:
            problems.append((ANSWERS, "neither a model answer nor a rubric"))
        elif question.model_answer and is_placeholder(question.model_answer):
            problems.append((PLACEHOLDER, question.model_answer))
        elif not question.model_answer and is_placeholder(question.rubric):
            problems.append((PLACEHOLDER, question.rubric))
    else:
        problems.append((SCHEMA, f"unknown kind {question.kind!r}"))
    return problems


def _choice_problems(question):
    options, problems = question.options, []
    if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS or not all(options):
        return [(OPTIONS, f"{len(options)} options or an empty one")]
    if len({folded(o) for o in options}) != len(options):
        return [(NOT_DISTINCT, " / ".join(options))]
    if question.kind in Question.ONE_ANSWER_KINDS:
        if not 0 <= question.correct_index < len(options):
            problems.append((KEY, "the correct option is not one of the options"))
    else:
        chosen = question.correct_indices
        if (len(chosen) != len(set(chosen)) or any(not 0 <= c < len(options) for c in chosen) or len(chosen) < 2
                or len(chosen) >= len(options)):
            problems.append((KEY, f"correct options {chosen!r} of {len(options)}"))
    placeholders = [o for o in options if is_placeholder(o)]
    if placeholders:
        problems.append((PLACEHOLDER, placeholders[0]))
    stem = folded(question.stem)
    copied = [o for o in options if folded(o) == stem or (len(stem) > 20 and stem in folded(o))]
    if copied:
        problems.append((COPIED, copied[0]))
    lengths = sorted(len(o) for o in options)
    if lengths[-1] > 3 * max(lengths[0], 5) and lengths[-1] - lengths[0] > 25:
        problems.append((LENGTHS, f"{lengths[0]} to {lengths[-1]} characters"))
    return problems


# --- What counts as right ------------------------------------------------------------------------------------------

def filled(question, option=None):
    """A gap-fill question's sentence with the key (or the given option) in its gap."""
    if option is None:
        option = question.options[question.correct_index] if 0 <= question.correct_index < len(
            question.options) else ""
    return question.stem.replace(GAP, option, 1)


def answer_text(question):
    """The text of what is right (the correct option(s), the statement, the first accepted answer, the model answer):
    what the source passage must support."""
    if question.kind in Question.ONE_ANSWER_KINDS:
        return question.options[question.correct_index] if 0 <= question.correct_index < len(question.options) else ""
    if question.kind == Question.MULTIPLE:
        return "; ".join(question.options[i] for i in question.correct_indices if 0 <= i < len(question.options))
    if question.kind == Question.TRUE_FALSE:
        return question.stem
    if question.kind == Question.SHORT:
        return " ".join(question.accepted_answers[:1])
    return question.model_answer


def _short_form(text, case_sensitive):
    text = " ".join(str(text).split()).strip().rstrip(".!?;,").strip()
    return text if case_sensitive else text.casefold()


def _pattern(accepted, case_sensitive):
    """Moodle's short-answer rule: '*' matches anything, '\\*' is a star."""
    pieces = re.split(r"(\\\*|\*)", _short_form(accepted, case_sensitive))
    body = "".join(".*" if p == "*" else re.escape("*" if p == "\\*" else p) for p in pieces)
    return re.compile(body, 0 if case_sensitive else re.IGNORECASE)


def accepts(question, text):
    """Whether a short answer matches one of the accepted answers (spacing, end punctuation and, unless the
    question says so, case are ignored)."""
    given = _short_form(text or "", question.case_sensitive)
    return bool(given) and any(_pattern(a, question.case_sensitive).fullmatch(given) for a in question.accepted_answers)


def read_response(question, values):
    """A student's response from the form's values for this question (a list of strings): an option index, a list
    of indices, True/False, or text; None when nothing was answered."""
    values = [v for v in values if v is not None and str(v).strip() != ""]
    if not values:
        return [] if question.kind == Question.MULTIPLE else None
    if question.kind in Question.ONE_ANSWER_KINDS:
        return _int_in(values[0], len(question.options))
    if question.kind == Question.MULTIPLE:
        return sorted({i for i in (_int_in(v, len(question.options)) for v in values) if i is not None})
    if question.kind == Question.TRUE_FALSE:
        value = str(values[0]).lower()
        return True if value in ("true", "1") else False if value in ("false", "0") else None
    return str(values[0])[:MAX_RESPONSE_CHARS]


def _int_in(value, length):
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 <= number < length else None


def credit(question, response):
    """The credit of a response, 0..1 (None for the open question, which is not scored). Multiple answers score as
    Moodle does: each correct option ticked adds its share, each wrong one takes its share away, at least 0."""
    if question.kind == Question.OPEN:
        return None
    if question.kind in Question.ONE_ANSWER_KINDS:
        return 1.0 if response is not None and response == question.correct_index else 0.0
    if question.kind == Question.MULTIPLE:
        chosen, correct = set(response or ()), question.correct_set
        wrong = len(question.options) - len(correct)
        value = (len(chosen & correct) / len(correct) if correct else 0.0) - (
            len(chosen - correct) / wrong if wrong else 0.0)
        return round(max(0.0, value), 4)
    if question.kind == Question.TRUE_FALSE:
        return 1.0 if response is not None and response == question.truth else 0.0
    return 1.0 if response and accepts(question, response) else 0.0

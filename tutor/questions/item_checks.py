"""The automatic checks a question passes before a lecturer sees it, each recorded on the question with its reason.

- form (tutor.questions.items.form_problems): schema, placeholder text, options distinct and of similar length, exactly the
  declared number of correct options, the question not copied into an option;
- grounded: the cited passage is one of the section's, and it supports what is right (its content words are there);
- distractors: a wrong option (or a false statement) that the source sentence or its section supports is taken out
  (it stands in the sentence, or one sentence of the section holds all its content words about the same subject):
  a true "wrong" answer makes a question with two right ones;
- duplicate: not a near-duplicate of a question already in the course (cosine similarity of the course's
  embedding model, at or above its model's threshold: duplicate_threshold);
- the test student: the model answers the question with its passage and without it, the options shuffled each try:
  not answerable with the passage reads "unclear or wrong key", answerable without it reads "guessable".

A check's record is ``{"check", "ok" (True, False, or None when it could not run), "reason", "params"}``;
``describe`` words it for the reader in their language.
"""

import logging
import math
import random
import re
import time
import zlib
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.translation import gettext as _
from pgvector.django import CosineDistance

from courses.language import STOPWORDS
from courses.models import EmbeddingIndex
from tutor.inference.client import BATCH, InferenceError, InferenceUnavailable
from tutor.inference.prompts import defuse
from tutor.questions import items
from tutor.questions.models import Question

log = logging.getLogger(__name__)

FORM, GROUNDED, DUPLICATE, TEST_STUDENT, DISTRACTORS = "form", "grounded", "duplicate", "test_student", "distractors"
MIN_WRONG = {Question.SINGLE: 2, Question.MULTIPLE: 1, Question.GAP_FILL: 2}  # wrong options a question must keep
SUBJECT_SHARE = 0.75  # share of the question's own content words a supporting sentence must hold
SUPPORT_SHARE = 0.5  # share of the answer's content words the passage must contain
LETTERS = "ABCDEF"


def record(check, ok, reason, **params):
    """One check's result as stored on the question."""
    return {"check": check, "ok": ok, "reason": reason, "params": params}


def apply(question, records):
    """Put these check results on the question (replacing earlier results of the same checks) and set its flag."""
    names = {r["check"] for r in records}
    question.checks = [c for c in question.checks or [] if c.get("check") not in names] + records
    question.flagged = any(c.get("ok") is False for c in question.checks)
    return question


def form_records(problems):
    """The form check's records: one per problem, or one that passed."""
    if not problems:
        return [record(FORM, True, "ok")]
    return [record(FORM, False, code, text=str(detail)[:200]) for code, detail in problems]


# --- grounded --------------------------------------------------------------------------------------------------

def content_words(text):
    """The words of a text that carry content (lower case, no stop words; numbers kept)."""
    return {w for w in re.findall(r"\w+", text.casefold()) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())}


def word_found(word, words):
    """Whether a content word is among a text's words, a German ending forgiven (the same first five letters)."""
    return word in words or (len(word) >= 5 and any(len(w) >= 5 and w[:5] == word[:5] for w in words))


def support(answer, stem, passage):
    """Share (0..1) of the answer's content words that the passage contains: the words it adds to the question
    when there are any, else all of them (German endings are forgiven: the first five letters suffice)."""
    words = content_words(answer)
    own = words - content_words(stem)
    words = own or words
    if not words:
        return 0.0
    passage_words = content_words(passage)
    return sum(word_found(w, passage_words) for w in words) / len(words)


def grounded(question, passages):
    """Whether the question's cited passage (one of the section's `passages`) supports what is right; a question
    that cites a wrong or no passage is pointed at the section's passage that supports it, when one does."""
    answer, cited = items.answer_text(question), question.source_chunk
    share = support(answer, question.stem, cited.text) if cited is not None else 0.0
    if cited is not None and share >= SUPPORT_SHARE:
        return record(GROUNDED, True, "ok", share=round(share, 2))
    best, best_share = None, 0.0
    for chunk in passages:
        found = support(answer, question.stem, chunk.text)
        if found > best_share:
            best, best_share = chunk, found
    if best is not None and best_share >= SUPPORT_SHARE:
        question.source_chunk = best
        return record(GROUNDED, True, "moved", share=round(best_share, 2),
                      cited=passages.index(cited) + 1 if cited in passages else None, found=passages.index(best) + 1)
    if cited is None:
        return record(GROUNDED, False, "no_source")
    return record(GROUNDED, False, "unsupported", share=round(share, 2))


# --- distractors the text supports ---------------------------------------------------------------------------

def _covered(word, words):
    """Whether a content word is among a sentence's words (a German ending, or a compound around a longer word,
    forgiven; not just the same first letters: "systemd" is not "systemstart")."""
    from tutor.questions.spans import inflection_key

    key = inflection_key(word)
    return word in words or any(inflection_key(w) == key for w in words) or (
        len(word) >= 6 and any(word in w for w in words))


def section_sentences(passages):
    """The sentences of a section's passages, each once, in reading order (the passages overlap)."""
    from tutor.questions.spans import sentences

    lines = dict.fromkeys(line.strip() for chunk in passages for line in chunk.text.splitlines() if line.strip())
    return list(dict.fromkeys(sentences("\n".join(lines))))


# words that say little about what a sentence is about (beyond courses.language.STOPWORDS)
_FUNCTION_WORDS = set("""beim zum zur vom am ins unter über vor nach seit ohne gegen um bis zwischen während wegen
durch wird werden wurde ist sind hat haben kann können muss soll darf man welche welcher welches welchen welchem
wer wie was wo zuerst dann meist oft immer""".split())


def _subject_words(text):
    return content_words(text) - _FUNCTION_WORDS


def supported_by(option, question, sentences):
    """Why the text supports a wrong option ('in_sentence', 'in_section') or '' when it does not: a gap-fill
    distractor that stands in its own sentence, or a sentence of the section that says the filled-in sentence with
    it; a choice whose content words one sentence of the section holds together with the question's subject."""
    if question.kind == Question.GAP_FILL:
        stem_words = _subject_words(question.stem.replace(items.GAP, " "))
        own = _subject_words(option) or content_words(option)
        if own and own <= stem_words or items.folded(option) in items.folded(question.stem):
            return "in_sentence"
        subject = stem_words - own
    else:
        subject = _subject_words(question.stem)
        own = _subject_words(option) - subject or _subject_words(option) or content_words(option)
    if not own:
        return ""
    need = max(1, math.ceil(SUBJECT_SHARE * len(subject))) if subject else 0
    for sentence in sentences:
        words = content_words(sentence)
        if all(_covered(w, words) for w in own) and sum(_covered(w, words) for w in subject) >= need:
            return "in_section"
    return ""


def grammar_misfits(question, vocabulary):
    """The wrong options of a German gap fill whose noun does not fit the gap's grammar as the key does (gender and
    number after the gap's article: "Jede ___" takes no plural): they give the key away. [] when the key is no
    noun the morphology knows."""
    from tutor.questions import morphology, spans

    if question.kind != Question.GAP_FILL or items.GAP not in (question.stem or "") or vocabulary is None:
        return []
    key = question.options[question.correct_index]
    determiner = spans.determiner_before(question.stem, question.stem.index(items.GAP))
    if not morphology.gap_readings(key, determiner, vocabulary):
        return []
    return [i for i, option in enumerate(question.options)
            if i != question.correct_index and not morphology.agrees(option, key, determiner, vocabulary)]


def said_alike(question, vocabulary):
    """The wrong options of a one-answer choice question that the course names where it says what the question's
    sentence says of the key (tutor.questions.spans.said_alike): a second right answer. [] without a vocabulary."""
    from tutor.questions import spans

    if vocabulary is None or question.kind not in Question.ONE_ANSWER_KINDS or not question.is_choice:
        return []
    key = question.options[question.correct_index]
    sentence = (question.stem or "").replace(items.GAP, key)
    return [i for i, option in enumerate(question.options)
            if i != question.correct_index and spans.said_alike(option, key, sentence, vocabulary)]


def distractors(question, passages, vocabulary=None):
    """Take out the wrong options the section supports, and (with the course's vocabulary) a gap fill's wrong
    options that do not fit the gap's grammar (the record names them and why); a question left with too few wrong
    options, or a false statement the text supports, fails."""
    if question.kind == Question.TRUE_FALSE:
        if question.truth is False and question.stem:
            why = supported_by(question.stem, question, section_sentences(passages))
            if why:
                return record(DISTRACTORS, False, "supported_statement", text=question.stem[:200])
        return record(DISTRACTORS, True, "ok")
    if not question.is_choice:
        return record(DISTRACTORS, None, "not_applicable")
    sentences = section_sentences(passages)
    correct = question.correct_set
    dropped = [(i, option, supported_by(option, question, sentences)) for i, option in enumerate(question.options)
               if i not in correct]
    misfits = set(grammar_misfits(question, vocabulary))
    alike = set(said_alike(question, vocabulary))
    dropped = [(i, option, why or ("grammar" if i in misfits else "") or ("in_course" if i in alike else ""))
               for i, option, why in dropped]
    dropped = [(i, option, why) for i, option, why in dropped if why]
    if not dropped:
        return record(DISTRACTORS, True, "ok")
    gone = {i for i, _o, _w in dropped}
    keep = [i for i in range(len(question.options)) if i not in gone]
    options = [{"option": o, "why": w} for _i, o, w in dropped]
    if len(keep) - len(correct) < MIN_WRONG.get(question.kind, 1) or len(keep) < items.MIN_OPTIONS:
        return record(DISTRACTORS, False, "too_few", options=options)
    new_index = {old: new for new, old in enumerate(keep)}
    question.options = [question.options[i] for i in keep]
    if question.kind in Question.ONE_ANSWER_KINDS:
        question.correct_index = new_index[question.correct_index]
    else:
        question.correct_indices = sorted(new_index[i] for i in question.correct_indices)
    return record(DISTRACTORS, True, "dropped", options=options)


# --- near-duplicates ------------------------------------------------------------------------------------------

def course_embedder(course_id):
    """(name, embedder) of the course's embedding model (its active index's, else the configured one)."""
    from courses.embeddings import get_embedder

    name = (EmbeddingIndex.objects.filter(course_id=course_id, active=True).values_list("model", flat=True).first()
            or settings.EMBEDDING_MODEL)
    return name, get_embedder(name)


def duplicate_text(question):
    """What two questions are compared by: the question and what is right."""
    return f"{question.stem}\n{items.answer_text(question)}"


def embed(questions, course_id):
    """Give each question the vector of its text under the course's embedding model."""
    if not questions:
        return
    name, embedder = course_embedder(course_id)
    vectors = embedder.embed_passages([duplicate_text(q) for q in questions])
    for question, vector in zip(questions, vectors, strict=True):
        question.embedding, question.embedding_model = [float(x) for x in vector], name


# Each embedding model's near-duplicate threshold: its similarities live on scales of their own (e5-small puts two
# different questions on the same topic at 0.90-0.97, static at 0.2-0.9). Calibrated by calibrate() on
# tests/data/question_duplicate_pairs.jsonl (22 duplicates, 24 same-topic non-duplicates; bench/bench_duplicates.py
# prints the error rates; tests/test_tutor_item_checks.py checks that the table is what the pairs say).
DUPLICATE_SIMILARITY = {"e5-small": 0.95, "static": 0.75, "minilm": 0.71}
UNCALIBRATED_SIMILARITY = 0.95  # a model not calibrated here (an inference server's): only near-identical texts
# Models whose calibration does not separate the two kinds of pair (static: 17 % of same-topic pairs flagged and 18 %
# of duplicates missed at its best threshold, 0.75; two different questions of one section at 0.753 in the tests):
# they drop no good question, so only what is near-identical counts (0.92, the earlier default: 0 % flagged, 95 %
# of paraphrased duplicates missed, which the lecturer still sees in review).
NOT_SEPARATING = {"static": 0.92}


def duplicate_threshold(model_name):
    """The similarity from which two questions count as near-duplicates under this embedding model: the setting
    QUESTION_DUPLICATE_SIMILARITY where an admin set one, else the model's calibrated threshold."""
    return settings.QUESTION_DUPLICATE_SIMILARITY or NOT_SEPARATING.get(model_name) or DUPLICATE_SIMILARITY.get(
        model_name, UNCALIBRATED_SIMILARITY)


def calibrate(scored):
    """(threshold, false duplicates, missed duplicates) for [(similarity, is a duplicate)] labelled pairs: the
    threshold in steps of 0.01 with the fewest errors, the higher one of equals (a question dropped for nothing
    costs more than a near-repeat a lecturer sees in review)."""
    best = None
    for step in range(50, 100):
        threshold = step / 100
        false = sum(1 for similarity, same in scored if not same and similarity >= threshold)
        missed = sum(1 for similarity, same in scored if same and similarity < threshold)
        if best is None or false + missed <= best[1] + best[2]:
            best = (threshold, false, missed)
    return best


def pair_similarities(pairs, embedder):
    """[(cosine similarity, is a duplicate)] of labelled pairs ({"a": [stem, answer], "b": […], "duplicate"}), their
    texts as duplicate() compares questions (the question and what is right)."""
    texts = [f"{pair[side][0]}\n{pair[side][1]}" for pair in pairs for side in ("a", "b")]
    vectors = embedder.embed_passages(texts)
    return [(float(sum(x * y for x, y in zip(vectors[2 * i], vectors[2 * i + 1], strict=True))), pair["duplicate"])
            for i, pair in enumerate(pairs)]


_CODE_KEY = re.compile(r"^(?:[\w.+-]+\(\d\w{0,3}\)|[/$~]\S*\w\S*|--?[a-zA-Z][\w-]*)$")  # spans._CODE_WORD


SAME_ANSWER = "same_answer"


def _gap_key(question):
    """A gap fill's key (the option that stood in the gap), a multiple-choice question's key where it is a command,
    path, option or variable (answer-first: mount(8) twice among sysctl, pppd and gpm, judge 6), or None."""
    if question.kind not in (Question.GAP_FILL, Question.SINGLE) or question.correct_index is None:
        return None
    options = question.options or []
    key = options[question.correct_index] if 0 <= question.correct_index < len(options) else None
    if question.kind == Question.SINGLE and not (key and _CODE_KEY.match(key)):
        return None
    return key


def same_key(question, course_id, earlier=()):
    """A gap fill (or a multiple-choice question with a code key) of the course (not a rejected one) or of
    `earlier` of the same kind and with the same key as this one, or None: two such items are one question to a
    student (mount(8) among fdisk, mkfs and parted three times over)."""
    key = _gap_key(question)
    if key is None:
        return None
    for other in earlier:
        if other is not question and other.kind == question.kind and _gap_key(other) == key:
            return other
    stored = (Question.objects.filter(question_set__course_id=course_id, kind=question.kind,
                                      options__contains=[key])
              .exclude(review=Question.REJECTED).exclude(pk=question.pk).select_related("question_set"))
    return next((other for other in stored if _gap_key(other) == key), None)


def duplicate(question, course_id, earlier=()):
    """Whether the question (embedded) nearly repeats a question already in the course (not a rejected one) or one
    of `earlier` (unsaved questions of the same batch), or is a gap fill with the key of one of them."""
    twin = same_key(question, course_id, earlier)
    if twin is not None:
        return record(DUPLICATE, False, "same_key" if question.kind == Question.GAP_FILL else SAME_ANSWER,
                      stem=twin.stem[:200],
                      set=twin.question_set.title if twin.question_set_id else "")
    limit = duplicate_threshold(question.embedding_model)
    nearest = (Question.objects.filter(question_set__course_id=course_id, embedding_model=question.embedding_model)
               .exclude(review=Question.REJECTED).exclude(pk=question.pk).exclude(embedding=None)
               .annotate(distance=CosineDistance("embedding", question.embedding))
               .select_related("question_set").order_by("distance").first())
    best = (1 - nearest.distance, nearest.stem, nearest.question_set.title) if nearest is not None else (0.0, "", "")
    mine = question.embedding
    for other in earlier:
        similarity = sum(a * b for a, b in zip(mine, other.embedding, strict=True))
        if similarity > best[0]:
            best = (similarity, other.stem, "")
    similarity, stem, where = best
    if similarity >= limit:
        return record(DUPLICATE, False, "duplicate", similarity=round(similarity, 3), stem=stem[:200], set=where)
    return record(DUPLICATE, True, "ok", similarity=round(similarity, 3))


# --- the test student ----------------------------------------------------------------------------------------

STUDENT_PROMPT = {
    "de": "Du machst einen Lesetest. Beantworte die Frage. Antworte nur mit JSON.",
    "en": "You are taking a reading test. Answer the question. Answer with JSON only.",
}
ASK = {
    (Question.SINGLE, "de"): "Welche Antwort ist richtig? Antworte mit ihrem Buchstaben.",
    (Question.SINGLE, "en"): "Which option is correct? Answer with its letter.",
    (Question.MULTIPLE, "de"): "Welche Antworten sind richtig (mehrere)? Antworte mit ihren Buchstaben.",
    (Question.MULTIPLE, "en"): "Which options are correct (several)? Answer with their letters.",
    (Question.TRUE_FALSE, "de"): "Ist die Aussage wahr?",
    (Question.TRUE_FALSE, "en"): "Is the statement true?",
    (Question.GAP_FILL, "de"): "Welche Antwort gehört in die Lücke _____? Antworte mit ihrem Buchstaben.",
    (Question.GAP_FILL, "en"): "Which option belongs in the gap _____? Answer with its letter.",
    (Question.SHORT, "de"): "Antworte mit wenigen Wörtern.",
    (Question.SHORT, "en"): "Answer in a few words.",
}
ANSWER_TOKENS = {Question.SINGLE: 16, Question.MULTIPLE: 40, Question.TRUE_FALSE: 12, Question.SHORT: 40,
                 Question.GAP_FILL: 16}


@dataclass
class Cost:
    """Model calls and the seconds spent waiting for the model (to tell model time from the tool's own)."""

    calls: int = 0
    seconds: float = 0.0
    errors: list = field(default_factory=list)

    def add(self, other):
        """Add another cost to this one."""
        self.calls, self.seconds = self.calls + other.calls, self.seconds + other.seconds
        self.errors += other.errors
        return self


def _student_messages(question, order, passage, language):
    """The test student's messages: the passage first (a server caching prompt prefixes reuses it between tries),
    then the question with its options in this order."""
    lines = [f"<passage>\n{defuse(passage)}\n</passage>\n"] if passage is not None else []
    if question.kind == Question.TRUE_FALSE:
        lines.append(("Aussage: " if language == "de" else "Statement: ") + question.stem)
    else:
        lines.append(("Frage: " if language == "de" else "Question: ") + question.stem)
    for letter, index in zip(LETTERS, order, strict=False):
        lines.append(f"{letter}) {question.options[index]}")
    lines.append(ASK[(question.kind, language)])
    return [{"role": "system", "content": STUDENT_PROMPT[language]}, {"role": "user", "content": "\n".join(lines)}]


def _student_schema(question, count):
    letters = {"type": "string", "enum": list(LETTERS[:count])}
    if question.kind in Question.ONE_ANSWER_KINDS:
        answer = letters
    elif question.kind == Question.MULTIPLE:
        answer = {"type": "array", "items": letters, "minItems": 1, "maxItems": count}
    elif question.kind == Question.TRUE_FALSE:
        answer = {"type": "boolean"}
    else:
        answer = {"type": "string", "maxLength": 80}
    return {"type": "object", "properties": {"answer": answer}, "required": ["answer"]}


def _response(question, order, answer):
    """The student's answer read back into the question's own terms (option indices, True/False, text)."""
    if question.kind in Question.ONE_ANSWER_KINDS:
        return order[LETTERS.index(answer)] if isinstance(answer, str) and answer in LETTERS[:len(order)] else None
    if question.kind == Question.MULTIPLE:
        answer = answer if isinstance(answer, list) else []
        return sorted({order[LETTERS.index(a)] for a in answer if isinstance(a, str) and a in LETTERS[:len(order)]})
    if question.kind == Question.TRUE_FALSE:
        return answer if isinstance(answer, bool) else None
    return answer if isinstance(answer, str) else None


def _try(client, question, passage, language, rng, cost):
    """One try of the test student: True when right, False when wrong (an unreadable answer is wrong)."""
    order = list(range(len(question.options)))
    rng.shuffle(order)
    messages = _student_messages(question, order, passage, language)
    started = time.monotonic()
    try:
        data, _cut_off = client.chat_json(messages, _student_schema(question, len(order)), temperature=0.0,
                                          max_tokens=ANSWER_TOKENS[question.kind], kind=BATCH)
    except InferenceUnavailable:
        raise
    except InferenceError:  # no readable answer (bad JSON, cut off before anything was complete): a wrong answer
        data = {}
    finally:
        cost.calls += 1
        cost.seconds += time.monotonic() - started
    response = _response(question, order, data.get("answer") if isinstance(data, dict) else None)
    return items.credit(question, response) == 1.0


def ask_test_student(client, question, passage, language, tries):
    """(record, Cost): the model answers the question without its passage and with it, `tries` times each at
    most, shuffling the options; stops as soon as the outcome is certain (one wrong answer without the passage
    means it is not guessable; enough right answers with it mean it is answerable)."""
    cost = Cost()
    if not question.is_scored:
        return record(TEST_STUDENT, None, "not_applicable"), cost
    rng = random.Random(zlib.crc32(question.stem.encode()))
    needed = math.ceil(tries / 2)
    try:
        without = 0
        while without < tries and _try(client, question, None, language, rng, cost):
            without += 1
        right = wrong = 0
        while right < needed and wrong <= tries - needed:
            if _try(client, question, passage, language, rng, cost):
                right += 1
            else:
                wrong += 1
    except InferenceError as exc:
        cost.errors.append(exc.code)
        return record(TEST_STUDENT, None, "error", error=exc.code), cost
    guessable, answerable = without >= tries, right >= needed
    counts = {"right": right, "tries": right + wrong, "guessed": without, "guess_tries": min(tries, without + 1)}
    if not answerable:
        return record(TEST_STUDENT, False, "unclear", **counts), cost
    if guessable:
        return record(TEST_STUDENT, False, "guessable", **counts), cost
    return record(TEST_STUDENT, True, "ok", **counts), cost


# --- what the reader sees ------------------------------------------------------------------------------------------

def check_name(check):
    """The name of a check for the reader."""
    return {FORM: _("Form"), GROUNDED: _("Grounded in the text"), DUPLICATE: _("Not a duplicate"),
            TEST_STUDENT: _("Test student"), DISTRACTORS: _("Wrong answers are wrong")}.get(check, check)


def describe(entry):
    """What a check's record says, in the reader's language."""
    return describe_reason(entry.get("check"), entry.get("reason"), entry.get("params") or {})


def describe_reason(check, reason, p=None):
    """What a check's result (check, reason code, its parameters) says, in the reader's language."""
    p = p or {}
    texts = {
        (FORM, "ok"): _("The form is fine."),
        (FORM, items.SCHEMA): _("The model's answer did not have the expected fields."),
        (FORM, items.EMPTY): _("The question is empty."),
        (FORM, items.TOO_SHORT): _("The question is too short to be clear."),
        (FORM, items.PLACEHOLDER): _("Placeholder text instead of content."),
        (FORM, items.COPIED): _("The question is copied into an answer."),
        (FORM, items.OPTIONS): _("Too few or too many options, or an empty one."),
        (FORM, items.NOT_DISTINCT): _("Two options are the same."),
        (FORM, items.LENGTHS): _("The options differ much in length: the longest gives itself away."),
        (FORM, items.KEY): _("Not exactly the declared number of correct answers."),
        (FORM, items.ANSWERS): _("The answers are missing or unusable."),
        (FORM, items.REPEATS): _("It repeats another question about this section."),
        (FORM, "answer_in_stem"): _("The question gives its own answer away."),
        (FORM, "distractors"): _("Fewer than two usable wrong options (each must differ from the answer and the "
                                 "others, and must not stand in the source sentence)."),
        (FORM, items.GAPS): _("A gap-fill question needs exactly one gap."),
        (FORM, items.IMPLAUSIBLE): _("Too few plausible wrong answers: the course describes the others as something "
                                     "else than the sentence asks for, so the answer stands out."),
        (FORM, items.DEFINED): _("The sentence says what the course's own description of the answer says, and "
                                 "of none of the wrong answers: the answer stands out."),
        (FORM, items.OPEN): _("Nothing in the sentence asks for the answer rather than the wrong answers: what it "
                              "says may hold for them too."),
        (DISTRACTORS, "ok"): _("The text supports none of the wrong answers."),
        (DISTRACTORS, "dropped"): _("A wrong answer that the text supports was taken out."),
        (DISTRACTORS, "too_few"): _("The text supports wrong answers, and too few others are left."),
        (DISTRACTORS, "supported_statement"): _("The statement is marked false, but the text supports it."),
        (DISTRACTORS, "not_applicable"): _("Only questions with wrong answers to choose are checked."),
        (TEST_STUDENT, "text_built"): _("Built from the text: no model was asked."),
        (GROUNDED, "ok"): _("The cited passage supports the answer."),
        (GROUNDED, "moved"): _("Another passage of the section supports the answer; it is now the source."),
        (GROUNDED, "no_source"): _("No passage of the section is cited, and none supports the answer."),
        (GROUNDED, "unsupported"): _("The cited passage does not support the answer."),
        (GROUNDED, "not_checked"): _("Not checked: the question has no source passage."),
        (DUPLICATE, "ok"): _("No similar question in the course."),
        (DUPLICATE, "duplicate"): _("Nearly the same as a question already in the course."),
        (DUPLICATE, "same_key"): _("A gap fill with the same answer is already in the course."),
        (DUPLICATE, SAME_ANSWER): _("A multiple-choice question with the same answer is already in the course."),
        (FORM, "grammar"): _("The question's German is broken (word order, agreement, a clause without its verb)."),
        (FORM, "new_verb"): _("The question has a verb its source sentence does not have."),
        (FORM, "new_words"): _("The question has words its source sentence does not have."),
        (FORM, "left_out"): _("The question leaves out too much of its source sentence."),
        (TEST_STUDENT, "ok"): _("Answered right with the passage and not guessed without it."),
        (TEST_STUDENT, "unclear"): _("Unclear or wrong key: the model did not find this answer with the passage."),
        (TEST_STUDENT, "guessable"): _("Guessable: the model answered right without the passage."),
        (TEST_STUDENT, "not_applicable"): _("Open questions are not answered by the test student."),
        (TEST_STUDENT, "error"): _("The test student could not run: the language model did not answer."),
        (TEST_STUDENT, "off"): _("The test student is turned off for this course."),
    }
    text = str(texts.get((check, reason), reason or ""))
    details = []
    if p.get("text"):
        details.append(f"“{p['text']}”")
    if check == GROUNDED and "share" in p:
        details.append(_("%(percent)s %% of the answer's words found") % {"percent": round(100 * p["share"])})
    if check == DISTRACTORS and p.get("options"):
        why = {"in_sentence": _("it stands in the question's sentence"),
               "in_section": _("a sentence of the section says it"),
               "grammar": _("it does not fit the gap's article, gender or number"),
               "in_course": _("the course says the same of it elsewhere, so it may be right too")}
        details.append("; ".join(f"“{o['option']}”: {why.get(o['why'], o['why'])}" for o in p["options"]))
    if check == DUPLICATE and reason in ("same_key", SAME_ANSWER) and p.get("stem"):
        details.append(f"“{p['stem']}”")
    if check == DUPLICATE and reason == "duplicate" and "similarity" in p:
        details.append(_("similarity %(similarity)s to “%(stem)s”") % {"similarity": p.get("similarity"),
                                                                       "stem": p.get("stem", "")})
        if p.get("set"):
            details.append(_("in “%(set)s”") % {"set": p["set"]})
    if check == TEST_STUDENT and "tries" in p:
        details.append(_("with the passage %(right)s of %(tries)s right, without it %(guessed)s of %(guess_tries)s")
                       % {"right": p.get("right", 0), "tries": p.get("tries", 0), "guessed": p.get("guessed", 0),
                          "guess_tries": p.get("guess_tries", 0)})
    return f"{text} ({'; '.join(details)})" if details else text


def described(question):
    """The question's checks as (name, ok, text) for the review page; an edit after a check is said so."""
    return [(check_name(c.get("check")), c.get("ok"), describe(c), bool(c.get("stale"))) for c in question.checks]

"""Gap-fill questions built from the text with no model (tutor.questions.textbuilt) through the real stack
(PostgreSQL with pgvector, the course's embeddings): generated from a chapter of the German demo text, checked,
exported to Moodle XML (Cloze and "select missing words") and GIFT and read back the way Moodle's readers read them
(ports of qtype_multianswer_extract_question, qtype_gapselect's import and qformat_gift::readquestion), imported
again by the tool, and practised with the set's grading rule. And the distractor check every kind passes."""

import html
import re
import xml.etree.ElementTree as ET

import pytest

from courses import sections as course_sections
from courses.parsing import parse_file
from tests.support import CORPUS_DE, make_member, session_headers
from tests.test_tutor_exports import escapedchar_post, escapedchar_pre, parse_text_with_format, shown
from tests.test_tutor_spans import _embed
from tutor.models import TutorConfig
from tutor.questions import generation, item_checks, items, spans
from tutor.questions.exports import gift, moodle_xml
from tutor.questions.imports import import_moodle_xml
from tutor.questions.models import Attempt, GenerationPart, Question, QuestionSet


def _chapter_text(name="ch03.de.html"):
    parsed = parse_file(CORPUS_DE / name, "html")
    lines = []
    for section in parsed.sections:
        lines.append("#" * min(max(section.level, 1), 6) + " " + section.title)
        lines += [text for _page, text in section.paragraphs]
    return "\n\n".join(lines)


@pytest.fixture
def chapter(db, settings, tmp_path):
    """A course holding chapters 1 and 3 of the German demo text (indexed with the static embeddings)."""
    from tests.support import make_course

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EMBEDDING_MODEL = "static"
    return make_course(("grundlagen.md", _chapter_text("ch01.de.html")), ("systeminitialisierung.md", _chapter_text()),
                       title="Debian-Referenz")


def _generated(course, sections, per_section=3):
    question_set = QuestionSet.objects.create(course=course, title="Lückentexte", requested=per_section * len(sections),
                                              kinds=[Question.GAP_FILL])
    GenerationPart.objects.bulk_create([GenerationPart(question_set=question_set, section=s, requested=per_section)
                                        for s in sections])
    assert generation.generate(question_set.pk) == "done"
    return question_set


# --- Generation without a model ----------------------------------------------------------------------------------

def test_gap_fills_are_built_from_german_text_with_no_model(chapter, settings):
    settings.INFERENCE_URLS = ["http://127.0.0.1:9/v1"]  # nothing answers there: no model is asked
    sections = [s for s in course_sections.sections_with_text(chapter)
                if s.title.startswith(("1.2 ", "1.2.2 ", "1.2.12 ", "3.2 "))][:4]
    assert sections
    question_set = _generated(chapter, sections)
    made = list(question_set.questions.order_by("position"))
    assert made  # a section with no code key, and no noun with wrong answers of its own head, writes none
    for question in made:
        assert question.kind == Question.GAP_FILL and question.origin == Question.GENERATED
        assert question.stem.count(spans.GAP) == 1 and len(question.options) == 4
        key = question.options[question.correct_index]
        assert items.filled(question) == question.explanation  # the key stands in its sentence of the text
        assert " ".join(question.explanation.split()) in " ".join(question.source_chunk.text.split())
        assert key not in question.stem
        for wrong in question.options:
            assert wrong == key or wrong.casefold() not in question.explanation.casefold()
        checks = {c["check"]: c for c in question.checks}
        assert checks["form"]["ok"] and checks["grounded"]["ok"] and checks["distractors"]["ok"]
        assert checks["test_student"]["reason"] == "text_built"
    parts = list(question_set.parts.all())
    assert all(p.model_calls == 0 for p in parts)


def test_the_generate_form_offers_text_built_questions_first_for_a_small_model(client, chapter):
    from courses.models import Membership

    _user, token = make_member(chapter, Membership.INSTRUCTOR)
    page = client.get(f"/c/{chapter.pk}/questions/", headers=session_headers(token)).content.decode()
    assert 'name="kind" value="gapfill" checked' in page and 'value="multichoice" checked' not in page
    assert 'id="kinds-hint"' in page
    config = TutorConfig.for_course(chapter)
    config.model = "qwen2.5-7b"
    config.save()
    page = client.get(f"/c/{chapter.pk}/questions/", headers=session_headers(token)).content.decode()
    assert 'value="multichoice" checked' in page and 'id="kinds-hint"' not in page


# --- The distractor check ----------------------------------------------------------------------------------------

class _Chunk:
    def __init__(self, text):
        self.text = text


SECTION = [_Chunk("Der Bootloader ist die zweite Stufe des Boot-Prozesses und wird durch das UEFI gestartet.\n"
                  "Ein LLM ist ein großes Sprachmodell, das natürliche Sprache versteht.\n"
                  "Das initrd-Image wird vom Bootloader in den Speicher geladen.")]


def test_a_wrong_option_the_section_supports_is_taken_out_with_its_reason():
    question = Question(kind=Question.SINGLE, stem="Was ist ein LLM?",
                        options=["Ein Textverarbeitungsprogramm", "Ein Sprachmodell, das natürliche Sprache versteht",
                                 "Ein Dateisystem", "Ein Modell, das natürliche Sprache versteht"], correct_index=1)
    entry = item_checks.distractors(question, SECTION)
    assert entry["ok"] is True and entry["reason"] == "dropped"
    assert question.options == ["Ein Textverarbeitungsprogramm", "Ein Sprachmodell, das natürliche Sprache versteht",
                                "Ein Dateisystem"]
    assert question.correct_index == 1
    assert "“Ein Modell, das natürliche Sprache versteht”" in item_checks.describe(entry)


def test_a_gap_fill_distractor_in_its_own_sentence_or_said_by_the_section_is_taken_out():
    question = Question(kind=Question.GAP_FILL, correct_index=0,
                        stem=f"Der {spans.GAP} ist die zweite Stufe des Boot-Prozesses und wird durch das UEFI gestartet.",
                        options=["Bootloader", "UEFI", "Kernel", "Partitionierer"])
    assert item_checks.supported_by("UEFI", question, item_checks.section_sentences(SECTION)) == "in_sentence"
    entry = item_checks.distractors(question, SECTION)
    assert entry["reason"] == "dropped" and question.options == ["Bootloader", "Kernel", "Partitionierer"]
    leaves_too_few = Question(kind=Question.GAP_FILL, correct_index=0, stem=question.stem,
                              options=["Bootloader", "UEFI", "Kernel"])
    assert item_checks.distractors(leaves_too_few, SECTION)["ok"] is False


def test_a_false_statement_the_text_supports_is_flagged():
    statement = Question(kind=Question.TRUE_FALSE, stem="Das initrd-Image wird vom Bootloader in den Speicher geladen.",
                         truth=False)
    assert item_checks.distractors(statement, SECTION)["reason"] == "supported_statement"


def test_generation_drops_a_model_s_true_distractor(db, settings):
    """Without the check the model's wrong option that the text supports would stay: the item has two right answers."""
    from tests.support import make_course
    from tutor.questions.generation import Outcome, _check

    settings.EMBEDDING_MODEL = "static"
    course = make_course(("llm.md", "# Sprachmodelle\n\n" + "\n".join(c.text for c in SECTION)))
    passages = course_sections.section_passages(course_sections.sections_with_text(course)[0].pk, course.pk)
    question, problems = items.from_model_item(Question.SINGLE, {
        "stem": "Welche Stufe des Boot-Prozesses ist der Bootloader?", "answer": 0, "explanation": "", "source": 1,
        "options": ["Die zweite Stufe", "Die erste Stufe", "Die dritte Stufe", "Die zweite Stufe des Boot-Prozesses"]},
        passages)
    outcome = Outcome()
    kept = _check(course, question, problems, passages, set(), outcome, "de", None, TutorConfig.CHECK_OFF, 1)
    assert kept is not None and "Die zweite Stufe des Boot-Prozesses" not in kept.options
    assert {c["check"]: c["reason"] for c in kept.checks}["distractors"] == "dropped"


# --- Exports read back as Moodle reads them ----------------------------------------------------------------------

# qtype_multianswer_extract_question (question/type/multianswer/questiontype.php, Moodle 5.0): its expressions;
# PCRE's one look-behind with three lengths is three look-behinds here
FRACTION = r"=|%(-?[0-9]+(?:[.,][0-9]*)?)%"
ALTERNATIVE = rf"({FRACTION})?(.+?(?<!\\)(?<!&)(?<!&amp;)(?=[~#}}]|$))(#(.*?(?<!\\)(?=[~}}]|$)))?"
TYPES = ("(NUMERICAL|NM)|(MULTICHOICE|MC)|(MULTICHOICE_V|MCV)|(MULTICHOICE_H|MCH)|(SHORTANSWER|SA|MW)|"
         "(SHORTANSWER_C|SAC|MWC)|(MULTICHOICE_S|MCS)|(MULTICHOICE_VS|MCVS)|(MULTICHOICE_HS|MCHS)|"
         "(MULTIRESPONSE|MR)|(MULTIRESPONSE_H|MRH)|(MULTIRESPONSE_S|MRS)|(MULTIRESPONSE_HS|MRHS)")
ANSWER_REGEX = re.compile(rf"\{{([0-9]*):({TYPES}):({ALTERNATIVE}(~{ALTERNATIVE})*)\}}", re.S)


def extract_cloze(text):
    """What Moodle makes of a Cloze question text: the text with {#1}… and per gap (type, [(answer, fraction)])."""
    subquestions = []
    while (found := ANSWER_REGEX.search(text)) is not None:
        qtype = "multichoice" if found.group(4) else "other"
        remaining, answers = found.group(16), []
        while (alt := re.match(rf"~?{ALTERNATIVE}", remaining, re.S)) is not None and alt.group(0):
            fraction = 1.0 if alt.group(1) == "=" else float(alt.group(2)) / 100 if alt.group(2) else 0.0
            answer = html.unescape(alt.group(3)).replace("\\}", "}").replace("\\#", "#")
            answers.append((answer, fraction))
            remaining = remaining.split(alt.group(0), 1)[1]
        subquestions.append((qtype, answers))
        text = text.replace(found.group(0), f"{{#{len(subquestions)}}}", 1)
    return text, subquestions


TRICKY = Question(kind=Question.GAP_FILL, correct_index=1, explanation="Der Wert {x} & <y> ~ z.",
                  stem=f"Mit „{spans.GAP}“ setzt man #define <a> = {{b}} ~ c.",
                  options=["a~b", "50 % & <mehr>", "x}y#z\\w", "=gleich"])


@pytest.fixture
def released(db):
    from courses.models import Course

    course = Course.objects.create(title="Betriebssysteme")
    question_set = QuestionSet.objects.create(course=course, title="Start/Boot: {Kapitel 3}", status=QuestionSet.RELEASED)
    for field in ("question_set", "position", "review"):
        setattr(TRICKY, field, {"question_set": question_set, "position": 1, "review": Question.APPROVED}[field])
    TRICKY.pk = None
    TRICKY.save()
    return question_set


def test_cloze_export_is_read_by_moodle_as_one_drop_down_with_the_key(released):
    quiz = ET.fromstring(moodle_xml(released))
    node = quiz.find("question[@type='cloze']")
    assert node is not None and node.find("questiontext").get("format") == "html"
    text, subquestions = extract_cloze(node.find("questiontext/text").text)
    assert len(subquestions) == 1 and subquestions[0][0] == "multichoice"
    answers = subquestions[0][1]
    assert [shown(a, "html") for a, _f in answers] == TRICKY.options
    assert [f for _a, f in answers] == [0, 1, 0, 0]
    assert shown(text, "html") == TRICKY.stem.replace(spans.GAP, "{#1}")


def test_gapselect_export_is_read_by_moodle_with_the_key_as_the_gap_s_choice(released):
    quiz = ET.fromstring(moodle_xml(released, gap_fill_as="gapselect"))
    node = quiz.find("question[@type='gapselect']")
    text = node.find("questiontext/text").text
    assert re.findall(r"\[\[(\d+)]]", text) == ["1"]  # qtype_gapselect: each [[n]] names choice n
    choices = [(o.find("text").text, o.find("group").text) for o in node.findall("selectoption")]
    assert choices[0] == (TRICKY.options[1], "1") and {g for _c, g in choices} == {"1"}
    assert sorted(c for c, _g in choices) == sorted(TRICKY.options)
    assert shown(text, "html").replace("[[1]]", spans.GAP) == TRICKY.stem


def read_gift_missing_word(block):
    """qformat_gift::readquestion for a question whose text goes on after its answers (a missing word)."""
    text = escapedchar_pre(block.strip())
    text = text[2:]
    name, text = escapedchar_post(text[:text.index("::")]), text[text.index("::") + 2:].strip()
    start, finish = text.index("{"), text.index("}")
    answers = text[start + 1:finish]
    assert not text.endswith("}"), "Moodle reads answers at the end as a plain question, not a missing word"
    question_text = text[:start] + "_____" + text[finish + 1:]
    feedback = ""
    if "####" in answers:
        answers, feedback = answers[:answers.rindex("####")].strip(), answers[answers.rindex("####") + 4:]
    stem = parse_text_with_format(question_text)
    assert "~" in answers, "only multiple choice has ~"
    read = []
    for answer in [a for a in answers.replace("=", "~=").split("~") if a.strip()]:
        answer = answer.strip()
        fraction, answer = (1.0, answer[1:]) if answer.startswith("=") else (0.0, answer)
        read.append((parse_text_with_format(answer.split("#", 1)[0].strip(), stem[1]), fraction))
    return {"name": name, "text": stem, "answers": read, "feedback": parse_text_with_format(feedback, stem[1])}


def test_gift_export_is_a_missing_word_question_in_moodle(released):
    blocks = [b for b in gift(released).split("\n\n") if b.strip()]
    assert blocks[0] == "$CATEGORY: $course$/top/Start//Boot: {Kapitel 3}"  # Moodle undoes no escapes there
    read = read_gift_missing_word(blocks[1])
    assert shown(*read["text"]) == TRICKY.stem
    assert [shown(*a) for a, _f in read["answers"]] == TRICKY.options
    assert [f for _a, f in read["answers"]] == [0, 1, 0, 0]
    assert shown(*read["feedback"]) == TRICKY.explanation


@pytest.mark.parametrize("as_type", ["cloze", "gapselect"])
def test_the_tool_imports_its_own_gap_fill_exports_again(released, as_type):
    draft = QuestionSet.objects.create(course=released.course, title="Import")
    result = import_moodle_xml(draft, moodle_xml(released, gap_fill_as=as_type))
    assert result["imported"] == 1 and result["skipped"] == {}
    imported = draft.questions.get()
    assert imported.kind == Question.GAP_FILL and imported.stem == TRICKY.stem
    assert imported.options[imported.correct_index] == TRICKY.options[TRICKY.correct_index]
    assert sorted(imported.options) == sorted(TRICKY.options)


# --- Practice ----------------------------------------------------------------------------------------------------

def test_a_gap_fill_set_is_practised_shuffled_and_graded_by_its_rule(client, released):
    released.grading = QuestionSet.LAST
    released.save()
    learner, token = make_member(released.course)
    question = released.questions.get()
    page = client.get(f"/c/{released.course.pk}/practice/{released.pk}/", headers=session_headers(token)).content.decode()
    assert 'class="gap"' in page and html.escape(TRICKY.stem.split(spans.GAP)[0]) in page
    shown_values = re.findall(rf'name="q-{question.pk}" value="(\d)"', page)
    assert sorted(shown_values) == ["0", "1", "2", "3"]
    for answer, score in (("1", 1.0), ("0", 0.0)):
        client.post(f"/c/{released.course.pk}/practice/{released.pk}/", {f"q-{question.pk}": answer}, headers=session_headers(token))
        attempt = Attempt.objects.filter(user=learner).first()
        assert (attempt.score, attempt.max_score) == (score, 1)
    from tutor.questions import practice

    assert practice.rule_score(released, learner) == (0.0, 1)  # the last attempt counts


def test_a_gap_fill_distractor_that_does_not_fit_the_gap_s_grammar_is_taken_out_with_its_reason():
    vocab = spans.Vocabulary.from_texts(["Jede Konsole erlaubt eine Anmeldung. Die Module werden geladen. Eine Datei "
                                         "liegt dort. Die Shell liest Befehle. Eine Konsole zeigt Text. Der Prozess "
                                         "startet. Eine Shell läuft. Die Datei wird gelesen."], language="de")
    question = Question(kind=Question.GAP_FILL, correct_index=0,
                        stem=f"Jede textbasierte {spans.GAP} erlaubt eine eigenständige Anmeldung.",
                        options=["Konsole", "Module", "Datei", "Shell"])
    assert item_checks.grammar_misfits(question, vocab) == [1]  # "Jede textbasierte Module"
    entry = item_checks.distractors(question, [_Chunk("Ein anderer Satz ohne diese Wörter.")], vocabulary=vocab)
    assert entry["reason"] == "dropped" and question.options == ["Konsole", "Datei", "Shell"]
    assert entry["params"]["options"] == [{"option": "Module", "why": "grammar"}]
    assert "gender" in item_checks.describe(entry)


def test_text_built_items_take_keys_of_a_closed_class_with_a_shape():
    from tutor.questions import textbuilt

    def key(span, kind):
        sentence = f"Der Befehl {span} steht hier im Satz."
        return spans.Candidate(sentence, 11, 11 + len(span), span, kind)

    assert textbuilt.builds_well(key("less(1)", spans.COMMAND))
    assert textbuilt.builds_well(key("/etc/motd", spans.COMMAND))
    assert textbuilt.builds_well(key("$PATH", spans.COMMAND))
    assert not textbuilt.builds_well(key("less", spans.COMMAND))  # a bare name draws "head", "sort", "uniq"
    assert not textbuilt.builds_well(key("festgelegt/eingeschränkt", spans.COMMAND))
    assert not textbuilt.builds_well(key("UEFI", spans.NAME))
    # a term only in German: in English the tool cannot tell a noun from any other word ("between", "through")
    assert textbuilt.builds_well(key("Gerätedatei", spans.TERM))
    assert not textbuilt.builds_well(key("reports", spans.TERM), "en")
    assert textbuilt.builds_well(key("less(1)", spans.COMMAND), "en")


def test_a_section_with_nothing_to_blank_says_so_and_does_not_blame_the_model(db, settings, tmp_path):
    """Only gap fills asked for and the section offers no gap: the part fails with its own reason, not with "the
    language model produced no usable questions" (no model was asked)."""
    from django.utils import translation

    from config import errors
    from tests.support import make_course

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EMBEDDING_MODEL = "static"
    settings.INFERENCE_URLS = ["http://127.0.0.1:9/v1"]  # nothing answers there
    course = make_course(("vorwort.md", "# Vorwort\n\nDas ist schön. Wir freuen uns sehr darüber.\n"), title="Leer")
    sections = list(course_sections.sections_with_text(course))
    question_set = QuestionSet.objects.create(course=course, title="Lückentexte", requested=len(sections),
                                              kinds=[Question.GAP_FILL])
    GenerationPart.objects.bulk_create([GenerationPart(question_set=question_set, section=s, requested=1)
                                        for s in sections])
    generation.generate(question_set.pk)
    parts = list(question_set.parts.all())
    assert parts and all((p.state, p.error, p.model_calls) == (GenerationPart.FAILED, "no_gap", 0) for p in parts)
    with translation.override("de"):
        message = errors.error_message(errors.QUESTIONS, "no_gap")
    assert message.startswith("Dieser Abschnitt hat keinen Satz") and "keine brauchbaren" not in message


# The course's own sentences, as the Debian reference writes them (ch01 and ch09), for the rules below.
COURSE = ["procfs und sysfs, eingebunden unter \"/proc\" und \"/sys\", sind Pseudo-Dateisysteme und bringen interne "
          "Datenstrukturen des Kernel in den Userspace.",
          "Das Verzeichnis unterhalb von \"/sys\" enthält vom Kernel exportierte Datenstrukturen, deren Attribute sowie "
          "die Anbindungen zwischen ihnen.",
          "Das Verzeichnis \"/tmp\" enthält temporäre Dateien der Anwendungen.",
          "Das Verzeichnis \"/run\" wird im frühen Stadium des Boot-Prozesses als tmpfs eingebunden.",
          "Die Dateien unter \"/etc\" sind Konfigurationsdateien.",
          "Wenn Ihnen vim(1) oder nano(1) nicht behagen, möchten Sie diese vielleicht auf \"mcedit\" setzen.",
          "Wenn Sie vim(1) nicht mögen, können Sie für die meisten Systemwartungsaufgaben auch mcedit(1) benutzen.",
          "Mit sed(1) und awk(1) verarbeiten Sie Textströme.", "Der Editor ed(1) ist sehr alt.",
          "Das Werkzeug perl(1) ist eine Skriptsprache.", "Mit grep(1) durchsuchen Sie Dateien.",
          *(f"Ein Absatz über anderes, Nummer {n}, ohne die Wörter der Sätze oben." for n in range(90))]


def test_a_wrong_answer_the_course_says_the_same_of_elsewhere_is_taken_out_with_its_reason():
    vocab = spans.Vocabulary.from_texts(COURSE, language="de")
    sys_sentence = COURSE[1]
    assert spans.said_alike("/proc", "/sys", sys_sentence, vocab)  # "/proc und /sys … Datenstrukturen des Kernel"
    assert not spans.said_alike("/tmp", "/sys", sys_sentence, vocab)
    vim_sentence = COURSE[6]
    assert spans.said_alike("nano(1)", "vim(1)", vim_sentence, vocab)  # "vim(1) oder nano(1) … mcedit"
    assert not spans.said_alike("sed(1)", "vim(1)", vim_sentence, vocab)
    question = Question(kind=Question.GAP_FILL, correct_index=0, stem=vim_sentence.replace("vim(1)", spans.GAP),
                        options=["vim(1)", "nano(1)", "sed(1)", "perl(1)", "ed(1)"])
    entry = item_checks.distractors(question, [_Chunk("Ein anderer Satz ohne diese Wörter.")], vocabulary=vocab)
    assert entry["reason"] == "dropped" and question.options == ["vim(1)", "sed(1)", "perl(1)", "ed(1)"]
    assert entry["params"]["options"] == [{"option": "nano(1)", "why": "in_course"}]
    assert "elsewhere" in item_checks.describe(entry)


def _candidate(sentence, span, kind=spans.COMMAND):
    start = sentence.index(span)
    return spans.Candidate(sentence, start, start + len(span), span, kind)


def test_a_sentence_that_holds_a_part_of_the_key_the_wrong_answers_lack_gives_it_away():
    ldap = _candidate("Der LDAP-Server stellt die Konteninformationen über die libpam-ldap-Pakete bereit.",
                      "LDAP-Server", spans.TERM)
    assert spans.gives_away(ldap, ["Mail-Server", "Print-Server", "Super-Server"])
    malloc = _candidate("Setzen Sie die Umgebungsvariable ”$MALLOC_CHECK_” auf 2 (Näheres in malloc(3)).", "malloc(3)")
    assert spans.gives_away(malloc, ["crypt(3)", "tcl(3tcl)", "strcpy(3)"])
    # a part every wrong answer has too points nowhere: "apt-Paket" beside apt-mark, apt-get, apt-cache
    mark = _candidate("Der Schalter kann auch über den Befehl apt-mark(8) aus dem apt-Paket verändert werden.",
                      "apt-mark(8)")
    assert not spans.gives_away(mark, ["apt-get(8)", "apt-cache(8)", "apt-file(1)"])
    mount = _candidate("Beim Einbinden eines vfat-Dateisystems durch mount(8) wird die CP437-Kodierung genutzt.",
                       "mount(8)")
    assert not spans.gives_away(mount, ["fdisk(8)", "chmod(1)", "parted(8)"])


def test_a_locale_the_sentence_names_the_language_of_is_no_key_and_callouts_are_no_words():
    vocab = spans.Vocabulary.from_texts(
        ["Tipp Wenn Sie mit einem nicht auf Englisch eingerichteten System einen Fehlerbericht einreichen, lassen Sie "
         "die nötigen Befehle mit \"en_US.UTF-8\" als Gebietsschema laufen.",
         "Mögliche Werte sind \"de_DE.UTF-8\", \"fr_FR.UTF-8\", \"es_ES.UTF-8\" und \"pt_BR.UTF-8\".",
         "Anmerkung Für den normalen Zugriff auf den Drucker der Firma verwenden Sie lp(1) in der Shell."],
        language="de")
    text = "\n".join(["Tipp Wenn Sie mit einem nicht auf Englisch eingerichteten System einen Fehlerbericht einreichen, "
                      "lassen Sie die nötigen Befehle mit \"en_US.UTF-8\" als Gebietsschema laufen.",
                      "Anmerkung Für den normalen Zugriff auf den Drucker der Firma verwenden Sie lp(1) in der Shell."])
    found = spans.answer_candidates(text, None, "de", vocabulary=vocab)
    assert "en_US.UTF-8" not in [c.span for c in found]  # "nicht auf Englisch" says it
    assert all(not c.sentence.startswith(("Tipp", "Anmerkung")) for c in found)
    assert spans.same_word("Wurzelverzeichnis", "Wurzel-Verzeichnis")


# --- Rules of the gapfill3 review (docs/questions-rubric.md) -------------------------------------------------------

FILLER = [f"Ein Absatz über anderes, Nummer {n}, ohne die Wörter der Sätze oben." for n in range(200)]
SCRIPT = ("Die grundsätzliche Methode, um die Aktivitäten auf der Shell aufzuzeichnen ist, sie via script(1) laufen "
          "zu lassen.")


def test_a_wrong_answer_the_course_describes_like_the_key_is_no_wrong_answer():
    vocab = spans.Vocabulary.from_texts([
        SCRIPT, "Mit script(1) zeichnen Sie die Aktivitäten einer Sitzung auf.",
        "Mit screen(1) lassen sich die Aktivitäten auf der Shell aufzeichnen und später wieder anzeigen.",
        "Mit col(1) filtern Sie umgekehrte Zeilenvorschübe aus einer Ausgabe.", *FILLER], language="de")
    assert spans.described_alike("screen(1)", "script(1)", SCRIPT, vocab)  # a second right answer
    assert not spans.described_alike("col(1)", "script(1)", SCRIPT, vocab)
    assert spans.taught(_candidate(SCRIPT, "script(1)"), vocab)  # "Aktivitäten" in another sentence about it
    # a copy of the key's own sentence (the PDF holds the HTML chapters again) says nothing more of the key
    copy = spans.Vocabulary.from_texts([SCRIPT, SCRIPT.replace(" ist,", " ist ,"), *FILLER], language="de")
    assert not spans.taught(_candidate(SCRIPT, "script(1)"), copy)


def test_a_key_named_for_its_use_needs_the_course_to_say_more_of_it_or_a_second_command_beside_it():
    pstree = "Der Befehl pstree(1) zeigt alle Prozesse in Form eines Hierarchie-Baums an."
    formail = ("Sie können eine Mailbox in einzelne Nachrichten aufsplitten, indem Sie procmail(1) und formail(1) "
               "verwenden.")
    fstab = "Die Optionen zum Einbinden der Dateisysteme werden in \"/etc/fstab\" festgelegt."
    alone = spans.Vocabulary.from_texts([pstree, formail, fstab, *FILLER], language="de")
    said = spans.Vocabulary.from_texts([pstree, formail, fstab, "Das Werkzeug pstree(1) zeichnet einen Baum: die "
                                        "Hierarchie der laufenden Prozesse.", *FILLER], language="de")
    key = _candidate(pstree, "pstree(1)")
    assert spans.named_for_use(key) and not spans.taught(key, alone) and not spans.partnered(key, alone)
    assert spans.taught(key, said)  # "Hierarchie" stands in another sentence about pstree(1)
    assert spans.partnered(_candidate(formail, "formail(1)"), alone)  # procmail(1) beside it
    assert not spans.named_for_use(_candidate(fstab, "/etc/fstab"))  # a path's name is no description of its use
    assert spans.named_for_use(_candidate("Die Enter-Taste schickt den Befehl ab.", "Enter-Taste", spans.TERM))


def test_a_word_of_the_sentence_that_looks_like_the_command_gives_it_away():
    munpack = _candidate("Jede Mail kann mittels munpack(1) aus dem mpack-Paket entpackt werden.", "munpack(1)")
    assert spans.gives_away(munpack, ["uudecode(1)", "formail(1)", "unshar(1)"])
    rg = _candidate("Der Befehl rg(1) aus dem ripgrep-Paket ist eine schnellere Alternative zu grep(1).", "rg(1)")
    assert spans.gives_away(rg, ["ag(1)", "ack(1)", "find(1)"])
    # a name the wrong answers resemble as much points nowhere ("apt-Paket" beside apt-mark and apt-get)
    mpack = _candidate("Jede Mail kann mittels munpack(1) aus dem mpack-Paket entpackt werden.", "munpack(1)")
    assert not spans.gives_away(mpack, ["mpack(1)", "formail(1)", "unshar(1)"])
    mount = _candidate("Beim Einbinden eines vfat-Dateisystems durch mount(8) wird die CP437-Kodierung genutzt.",
                       "mount(8)")
    assert not spans.gives_away(mount, ["fdisk(8)", "chmod(1)", "parted(8)"])


def test_pointers_to_reading_elsewhere_are_no_statements_to_ask_about():
    text = "\n".join(["Lesen Sie ip(8) und das IPROUTE2 Utility Suite Howto für die Konfiguration des Netzwerks.",
                      "Den Grund finden Sie unter mc(1) bei der Beschreibung der Option -P im Handbuch.",
                      "Für den Benutzer fungiert ssh(1) als clevere und sichere Alternative zu telnet(1) im "
                      "Netzwerk."])
    vocab = spans.Vocabulary.from_texts([text, "Die Befehle ip(8), mc(1), ssh(1) und rsh(1) sind Werkzeuge.",
                                         *FILLER], language="de")
    assert [c.span for c in spans.answer_candidates(text, None, "de", vocabulary=vocab)] == ["ssh(1)"]


def test_wrong_commands_come_from_the_key_s_part_of_the_course_and_nouns_keep_the_key_s_case():
    near = "Die Werkzeuge mount(8), fdisk(8), parted(8) und mkfs(8) arbeiten mit Dateisystemen und Partitionen."
    far = "Die Werkzeuge apt-get(8), apt-cache(8) und aptitude(8) verwalten die Pakete des Systems."
    key = "Beim Einbinden eines vfat-Dateisystems durch mount(8) wird die CP437-Kodierung genutzt."
    vocab = spans.Vocabulary.from_texts([key, near, *FILLER, far], language="de")
    assert spans.neighbours("fdisk(8)", "mount(8)", vocab) and not spans.neighbours("apt-get(8)", "mount(8)", vocab)
    wrong = spans.distractor_candidates(_candidate(key, "mount(8)"), None, 5, vocabulary=vocab, embed=_embed)
    assert sorted(wrong) == ["fdisk(8)", "mkfs(8)", "parted(8)"]


def test_noun_wrong_answers_are_neither_the_key_s_bare_head_nor_in_another_case():
    places = ["Heimatverzeichnis", "Wurzelverzeichnis", "Arbeitsverzeichnis", "Quellverzeichnis", "Verzeichnis"]
    texts = [f"Die Dateien liegen im {p} des Systems." for p in places] + [
        "Der Inhalt des Zielverzeichnisses wird überschrieben.", "Das Ziel ist der Name des Zielverzeichnisses."]
    vocab = spans.Vocabulary.from_texts(texts * 2 + FILLER, language="de")
    key = "Viele Befehle speichern Konfigurationsdateien im Heimatverzeichnis des jeweiligen Benutzers."
    wrong = spans.distractor_candidates(_candidate(key, "Heimatverzeichnis", spans.TERM), None, 5, vocabulary=vocab,
                                        embed=_embed)
    assert sorted(wrong) == ["Arbeitsverzeichnis", "Quellverzeichnis", "Wurzelverzeichnis"]


# --- Rules of the gapfill4 blind review (docs/questions-rubric.md) -------------------------------------------------

def _fdisk_item(tools, about, embed):
    """The gap fills written for the sentence in which fdisk(8) is the key, with a course of it and two more."""
    from courses.models import Chunk
    from tutor.questions import textbuilt

    sentence = ("Bei der Konfiguration von Laufwerkspartitionen können Sie erwägen, parted(8) zu verwenden (obwohl "
                "fdisk(8) lange als Standard angesehen wurde).")
    vocab = spans.Vocabulary.from_texts([sentence, tools, about, *FILLER], language="de")
    return textbuilt.gap_fill(None, [Chunk(text=sentence)], 1, language="de", vocabulary=vocab, embed=embed)


def test_a_gap_fill_takes_at_most_one_wrong_answer_of_a_family_the_key_is_not_of():
    assert spans.siblings("mkfs(8)", "mkfs.ext2(8)", "fdisk(8)")  # mkfs, mkfs.ext2: fdisk the odd one out
    assert spans.siblings("grep-status(1)", "grep-dctrl(1)", "apt-rdepends(8)")
    assert spans.siblings("/var/lock", "/var/run", "/etc/fstab")  # one directory
    assert not spans.siblings("apt-get(8)", "apt-file(1)", "aptitude(8)")  # the key is of the family too
    assert not spans.siblings("pam_time(8)", "pam_env(8)", "pam_unix(8)")
    assert not spans.siblings("/dev/zero", "/dev/sda", "/dev/ttyS0")
    assert not spans.siblings("-c3", "-u1", "-c0")  # options have no family
    tools = ("Die Werkzeuge mkfs(8), mkfs.ext2(8), mkfs.ext3(8), mkfs.ext4(8), resize2fs(8), umount(8), mkswap(8) "
             "und gdisk(8) arbeiten mit Partitionen.")
    # (the course does not name fdisk(8) with parted(8) elsewhere: that would ask for parted(8)'s group, gapfill8)
    written = _fdisk_item(tools, "Mit fdisk(8) partitionieren Sie Festplatten.", _embed)
    assert written, "no gap fill"
    question, _problems = written[0]
    wrong = [o for i, o in enumerate(question.options) if i != question.correct_index]
    assert len(wrong) == 3 and sum(o.startswith("mkfs") for o in wrong) <= 1, question.options


def test_letters_of_the_key_s_name_in_a_word_of_the_sentence_give_it_away():
    depmod = _candidate('Falls "/lib/modules/kernel-version/modules.dep" mittels depmod(8) nicht korrekt erstellt '
                        'wurde, könnte es Probleme geben.', "depmod(8)")
    assert spans.gives_away(depmod, ["lsmod(8)", "modinfo(8)", "systemd(1)"])  # "dep" in "modules.dep"
    debsums = _candidate("Da die MD5sum-Datenbank gefälscht werden könnte, ist debsums(1) nur von begrenztem Nutzen.",
                         "debsums(1)")
    assert spans.gives_away(debsums, ["clamscan(1)", "freshclam(1)", "debuild(1)"])  # "sum"
    option = _candidate('Setzen Sie den Max-Wert mittels "tune2fs -c0 /dev/partitionsname" auf 0.', "-c0")
    assert spans.gives_away(option, ["-c3", "-u1", "-d1"])  # the only option with a 0
    assert not spans.gives_away(option, ["-c3", "-u0", "-d1"])
    proc = _candidate('Das Verzeichnis "/proc" enthält ein Unterverzeichnis für jeden Prozess.', "/proc")
    assert spans.gives_away(proc, ["/tmp", "/home", "/run"])  # "Prozess" begins as "proc" does
    # letters the wrong answers share, or a longer name the key stands in, point nowhere
    formail = _candidate("Sie teilen eine Mailbox auf, indem Sie procmail(1) und formail(1) verwenden.", "formail(1)")
    assert not spans.gives_away(formail, ["mutt(1)", "uuencode(1)", "munpack(1)"])
    pam = _candidate("Die Passwortauswahl ist über die PAM-Module pam_unix(8) und pam_cracklib(8) implementiert.",
                     "pam_unix(8)")
    assert not spans.gives_away(pam, ["pam_time(8)", "pam_env(8)", "crontab(1)"])
    tty = _candidate('Sie schicken Text zur Gerätedatei "/dev/lp0" oder Modembefehle an den Port "/dev/ttyS0".',
                     "/dev/ttyS0")
    assert not spans.gives_away(tty, ["/dev/zero", "/dev/sda", "/dev/sr0"])


def test_near_synonym_wrong_nouns_and_nouns_that_echo_the_sentence_are_left_out():
    assert spans.siblings("Boot-Prozess", "Bootstrap-Prozess", "User-Prozess")  # one modifier begins the other
    assert not spans.siblings("Boot-Prozess", "Init-Prozess", "User-Prozess")
    sentence = "Nach der Erkennung eines Gerätes durch den Kernel startet das udev-System einen User-Prozess."
    assert spans.echoes("Startprozess", sentence)  # "startet einen Startprozess"
    assert not spans.echoes("Init-Prozess", sentence)
    # the key's own first part in a word of the sentence gives it away
    files = _candidate("Sie müssen die Inhalte alter Konfigurationsdateien lesen, um die Konfigurationsinformationen "
                       "später wiederherstellen zu können.", "Konfigurationsdateien", spans.TERM)
    assert spans.gives_away(files, ["Release-Dateien", "Paketdateien", "Gerätedateien"])


def test_a_wrong_noun_must_fit_the_adjective_before_the_gap_as_the_course_writes_it():
    texts = ["Drücken Sie die linke Strg-Taste.", "Halten Sie die linken Alt-Taste gedrückt.",
             "Drücken Sie die F1-Taste.", "Drücken Sie die Enter-Taste.", "Die Windows-Taste ist optional.",
             "Der Zugriff auf einen fernen X-Server ist aus.", "Der Zugriff auf einen fernen Server ist aus.", "Der Webserver und der Mail-Server laufen.",
             "Der Super-Server startet Dienste."]
    vocab = spans.Vocabulary.from_texts(texts * 2 + FILLER, language="de")
    keys = _candidate("Auf der Konsole funktionieren nur die linke Strg- und Alt-Taste wie erwartet.", "Alt-Taste",
                      spans.TERM)
    assert spans.adjective_before(keys.sentence, keys.start) == "linke"
    assert spans.fits_adjective("Strg-Taste", keys, vocab)
    assert not spans.fits_adjective("F1-Taste", keys, vocab)  # no left F1 key
    # an adjective the course writes before one noun of the head only says nothing of the others
    server = _candidate("Eine TCP/IP-Verbindung zu einem fernen X-Server ist in Debian deaktiviert.", "X-Server",
                        spans.TERM)
    assert spans.fits_adjective("Webserver", server, vocab) and spans.fits_adjective("Mail-Server", server, vocab)


# --- What the course says a wrong answer is (branch gapfill6) --------------------------------------------------------

def test_an_item_left_with_too_few_plausible_wrong_answers_is_dropped_with_its_reason(monkeypatch):
    from tests.test_tutor_spans import _bag

    tools = ("Die Werkzeuge mkfs(8), resize2fs(8), umount(8), mkswap(8) und gdisk(8) arbeiten mit "
             "Laufwerkspartitionen auf Festplatten.")
    about = "Mit fdisk(8) bearbeiten Sie die Tabelle der Festplatten."
    written = _fdisk_item(tools, about, _bag)
    assert written and not written[0][1], written  # the course describes every wrong answer beside the key's topic
    monkeypatch.setattr(spans, "PLAUSIBLE_MARGIN", -1.0)  # now every described wrong answer lies too far below it
    written = _fdisk_item(tools, about, _bag)
    assert written, "no item and no reason"
    question, problems = written[0]
    assert [code for code, _detail in problems] == [items.IMPLAUSIBLE]
    assert question.options[question.correct_index] == "fdisk(8)" and "mkfs(8) (" in problems[0][1]
    assert "plausible" in item_checks.describe(item_checks.form_records(problems)[0])


def test_a_second_gap_fill_with_the_same_key_is_a_duplicate(db):
    stem = "Wenn Sie wissen möchten, wie die Gerätedateien verknüpft sind, führen Sie _____ ohne Argumente aus."
    first = Question(kind=Question.GAP_FILL, stem=stem, options=["fdisk(8)", "mount(8)", "parted(8)", "mkfs(8)"],
                     correct_index=1)
    second = Question(kind=Question.GAP_FILL, options=["mkfs(8)", "parted(8)", "mount(8)", "fdisk(8)"],
                      correct_index=2, stem="Beim Einbinden eines vfat-Dateisystems durch _____ gilt CP437.")
    other = Question(kind=Question.GAP_FILL, options=["mkfs(8)", "parted(8)", "mount(8)", "fdisk(8)"],
                     correct_index=3, stem="Lange galt _____ als Standard zum Partitionieren.")
    assert item_checks.same_key(second, 0, [first]) is first
    assert item_checks.same_key(other, 0, [first]) is None
    entry = item_checks.duplicate(second, 0, [first])
    assert entry["ok"] is False and entry["reason"] == "same_key"
    assert "same answer" in item_checks.describe(entry) and "Gerätedateien" in item_checks.describe(entry)


def test_a_second_multiple_choice_question_with_the_same_code_key_is_a_duplicate(db):
    """Answer-first multiple choice: mount(8) twice among the same wrong answers is one question to a student (judge
    6); a key that is no command, path, option or variable (a sentence, a number) is not compared."""
    first = Question(kind=Question.SINGLE, stem="Welchen Befehl führen Sie ohne Argumente aus, …?",
                     options=["gpm(8)", "mount(8)", "pppd(8)", "sysctl(8)"], correct_index=1)
    second = Question(kind=Question.SINGLE, stem="Welcher Befehl kann Teile des Verzeichnisbaums anknüpfen?",
                      options=["mount(8)", "gpm(8)", "pppd(8)", "sysctl(8)"], correct_index=0)
    other = Question(kind=Question.SINGLE, stem="Welcher Befehl kann Rechte einräumen?",
                     options=["mount(8)", "sudo(8)", "pppd(8)", "vipw(8)"], correct_index=1)
    assert item_checks.same_key(second, 0, [first]) is first
    assert item_checks.same_key(other, 0, [first]) is None
    entry = item_checks.duplicate(second, 0, [first])
    assert entry["ok"] is False and entry["reason"] == item_checks.SAME_ANSWER
    assert "multiple-choice" in item_checks.describe(entry)
    worded = Question(kind=Question.SINGLE, stem="Wie viele?", options=["drei", "vier"], correct_index=0)
    assert item_checks.same_key(Question(kind=Question.SINGLE, stem="Wie viele noch?", options=["drei", "fünf"],
                                         correct_index=0), 0, [worded]) is None
    gap = Question(kind=Question.GAP_FILL, stem="… führen Sie _____ aus.", options=first.options, correct_index=1)
    assert item_checks.same_key(second, 0, [gap]) is None  # one kind is compared with its own kind


# --- Branch gapfill8 -----------------------------------------------------------------------------------------------

def test_an_item_whose_sentence_states_the_key_s_table_row_is_dropped_with_its_reason():
    from courses.models import Chunk
    from tests.test_tutor_spans import CRYPT, CRYPT_ROWS
    from tutor.questions import textbuilt

    vocab = spans.Vocabulary.from_texts([
        CRYPT, CRYPT_ROWS, "Mit xfsdump(8) und xfsrestore(8) sichern Sie XFS-Dateisysteme auf Festplatten.",
        "Mit umount(8) hängen Sie ein Dateisystem aus, mit mount(8) binden Sie es ein.",
        "Die Werkzeuge cryptsetup(8), mkfs(8) und losetup(8) richten Festplatten-Images ein.", *FILLER], language="de")
    def alike(texts):  # every description as near to the sentence as the key's: no wrong answer is implausible
        return [[1.0, 0.0] for _text in texts]

    written = textbuilt.gap_fill(None, [Chunk(text=CRYPT)], 1, language="de", vocabulary=vocab, embed=alike)
    keyed = [(q, p) for q, p in written if q.options and q.options[q.correct_index] == "cryptsetup(8)"]
    assert keyed, written
    question, problems = keyed[0]
    assert [code for code, _detail in problems] == [items.DEFINED] and "versc" in problems[0][1]
    assert "description" in item_checks.describe(item_checks.form_records(problems)[0])


# --- Branch open9 ----------------------------------------------------------------------------------------------------

def test_an_item_whose_sentence_may_hold_for_its_wrong_answers_is_dropped_with_its_reason():
    from courses.models import Chunk
    from tests.test_tutor_spans import BASHRC, VARIABLES
    from tutor.questions import textbuilt

    texts = [BASHRC, *VARIABLES, "Die Umgebungsvariable $CDPATH nennt die Verzeichnisse, in die cd(1) wechselt.",
             "Die Umgebungsvariable $EDITOR nennt den Editor, den Programme starten.", *FILLER]

    def alike(texts):
        return [[1.0, 0.0] for _text in texts]

    def written_for(sentence, vocab):
        built = textbuilt.gap_fill(None, [Chunk(text=sentence)], 1, language="de", vocabulary=vocab, embed=alike)
        return [(q, p) for q, p in built if q.options and q.options[q.correct_index] == "$PATH"]

    keyed = written_for(BASHRC, spans.Vocabulary.from_texts(texts, language="de"))
    assert keyed, "no item and no reason"
    question, problems = keyed[0]
    assert [code for code, _detail in problems] == [items.OPEN]
    assert "$PATH" not in problems[0][1] and len(question.options) == 4
    assert "may hold for them too" in item_checks.describe(item_checks.form_records(problems)[0])
    # the same kind of sentence about what the course says of $PATH alone is an item
    search = "Welches Programm die Shell startet, entscheidet die Reihenfolge der Verzeichnisse in \"$PATH\"."
    keyed = written_for(search, spans.Vocabulary.from_texts([search, *texts[1:]], language="de"))
    assert keyed and keyed[0][1] == [], keyed

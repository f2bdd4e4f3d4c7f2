"""Answer-first questions (tutor.questions.answer_first): the tool picks the sentence and the answer span, the model phrases the
question and wrong options around it. The selection and the check of the model's item on their own, then the whole
path through the real stack (Celery worker, PostgreSQL, the loopback stub model), a prompt the server refuses as too
long, and once with the real llama.cpp server (SmolLM2)."""

import json
import re

import pytest

from courses.models import Chunk, Membership, Section
from tests.support import INIT_TEXT, make_member, point_tutor_at, session_headers, wait_for
from tests.test_tutor_llm import llama_server  # noqa: F401  (the real llama.cpp server fixture)
from tutor.models import TutorConfig
from tutor.questions import answer_first, generation, items
from tutor.questions.models import GenerationPart, Question, QuestionSet

PROSE_TEXT = """# Über diesen Kurs

## Wie man den Kurs liest

Die Kapitel bauen aufeinander auf und sollten deshalb in der gegebenen Reihenfolge gelesen werden. Wer schon
Erfahrung mitbringt, kann die ersten Abschnitte auch nur überfliegen und später zu ihnen zurückkehren.
"""
FILES_TEXT = """# Wichtige Dateien

## Die Quellen der Pakete

Die Paketquellen für APT stehen auf einem Debian-System in der Datei /etc/apt/sources.list und werden von apt
update gelesen.

## Weitere Dateien des Systems

Die Einhängepunkte aller Dateisysteme beim Systemstart stehen in der Datei /etc/fstab. Die Namen bekannter Rechner
im lokalen Netz stehen in der Datei /etc/hosts. Die Konten aller Benutzer stehen in der Datei /etc/passwd. Die
Gruppen der Benutzer stehen in der Datei /etc/group. Der Name des Rechners steht in der Datei /etc/hostname.
"""
COURSE_TEXTS = [("systemstart.md", INIT_TEXT), ("kurs.md", PROSE_TEXT), ("dateien.md", FILES_TEXT)]


class Passage:
    """A chunk's text without the database."""

    def __init__(self, text):
        self.text = text


def flat(text):
    return " ".join(text.split())


def test_the_tool_picks_sentences_and_answer_spans_that_stand_in_them_verbatim():
    passages = [Passage(INIT_TEXT.split("## Der Init-Prozess")[1].split("##")[0]),
                Passage("Pakete installiert man unter Debian mit dem Befehl apt install. Die Paketquellen stehen in "
                        "der Datei /etc/apt/sources.list. Mit apt update wird die Liste der Pakete aktualisiert. "
                        "Die Einhängepunkte der Dateisysteme stehen in /etc/fstab.\n\n"
                        "$ echo \"deb http://deb.debian.org/debian\" >> /etc/apt/sources.list")]
    found = answer_first.answer_candidates(passages, "de")
    assert found, "no candidate"
    for candidate in found:
        assert candidate.answer in candidate.sentence and candidate.sentence in flat(candidate.chunk.text)
        assert "$ echo" not in candidate.sentence  # a shell line is no sentence to ask about
    answers = {c.answer for c in found}
    assert "/etc/apt/sources.list" in answers and "1" in answers  # a path and a number before plain words
    assert found[0].chunk is not found[1].chunk  # spread over the passages
    sources = next(c for c in found if c.answer == "/etc/apt/sources.list")
    wrong = answer_first.distractor_candidates(sources, [p.text for p in passages], "de")
    assert wrong and all(w not in sources.sentence and items.folded(w) != items.folded(sources.answer) for w in wrong)


def test_the_model_s_item_is_checked_around_the_fixed_key():
    """Wrong options that are the key, stand in the source sentence or repeat another are replaced by the tool's
    own; the key stays the span, verbatim; a question that gives its answer away is refused."""
    candidate = answer_first.Candidate(chunk=None, sentence="Die Paketquellen stehen in der Datei "
                                       "/etc/apt/sources.list.", answer="/etc/apt/sources.list", sort="code")
    item = {"stem": "In welcher Datei stehen die Paketquellen?", "explanation": "So steht es im Text.",
            "distractors": ["/etc/apt/sources.list", "Paketquellen", "/etc/fstab", "/etc/FSTAB"]}
    question, problems, replaced = answer_first.to_question(candidate, Question.SINGLE, item,
                                                            ["/etc/hosts", "/boot/grub"])
    assert problems == [] and items.form_problems(question) == []
    assert question.options[question.correct_index] == "/etc/apt/sources.list"
    assert sorted(question.options) == sorted(["/etc/apt/sources.list", "/etc/fstab", "/etc/hosts", "/boot/grub"])
    assert replaced == {"/etc/apt/sources.list": "is_the_answer", "Paketquellen": "in_sentence"}
    assert answer_first.key_in_sentence(question, candidate)

    giveaway = dict(item, stem="Steht die Quelle in /etc/apt/sources.list oder woanders?")
    _question, problems, _replaced = answer_first.to_question(candidate, Question.SINGLE, giveaway, ["/etc/hosts"])
    assert [code for code, _detail in problems] == [answer_first.ANSWER_IN_STEM]
    assert answer_first.to_question(candidate, Question.SINGLE, dict(item, distractors=[
        "/etc/fstab", "Die Datei mit den Quellen", "/boot/grub"]), [])[2] == {"Die Datei mit den Quellen": "other_sort"}
    poor = dict(item, distractors=["Paketquellen", "Datei", "stehen"])
    _question, problems, _replaced = answer_first.to_question(candidate, Question.SINGLE, poor, [])
    assert [code for code, _detail in problems] == [answer_first.DISTRACTORS_UNUSABLE]



def test_wrong_options_copied_from_the_prompt_s_worked_example_are_replaced():
    """SmolLM2 copied the example's cities as wrong options for a question about a course; the tool takes its own."""
    candidate = answer_first.Candidate(chunk=None, sentence="Der Kernel wird von GRUB geladen.", answer="GRUB",
                                       sort="name")
    item = {"stem": "Welches Programm lädt den Kernel?", "explanation": "So steht es im Text.",
            "distractors": ["Lyon", "Marseille", "LILO"]}
    question, _problems, replaced = answer_first.to_question(candidate, Question.SINGLE, item,
                                                             ["LOADLIN", "SYSLINUX"])
    assert replaced == {"Lyon": "copied_example", "Marseille": "copied_example"}
    assert sorted(question.options) == sorted(["GRUB", "LILO", "LOADLIN", "SYSLINUX"])


def test_the_stem_must_be_a_question_in_the_course_s_language_about_the_sentence_without_its_key():
    """What the 7 December review found in Qwen2.5-Coder-1.5B's stems is refused before any other check: a
    section number's "Welche Zahl steht vor …?", a stem off the sentence, one that names the key or a man page's
    bare name, English, no question, one that points outside itself."""
    sentence = ("Um eine Maus in textbasierten Linux-Konsolen verwenden zu können, müssen Sie gpm(8) als Daemon "
                "laufen haben.")
    candidate = answer_first.Candidate(chunk=None, sentence=sentence, answer="gpm(8)", sort="command")
    good = "Welches Programm muss als Daemon laufen, damit man in textbasierten Linux-Konsolen eine Maus verwenden kann?"
    assert answer_first.stem_problems(good, candidate, "de") == []
    refused = {
        "Welches Programm muss als Daemon laufen, damit man eine Maus verwenden kann": answer_first.NOT_A_QUESTION,
        "Muss man gpm als Daemon laufen lassen, um in Linux-Konsolen eine Maus zu nutzen?": answer_first.ANSWER_IN_STEM,
        "Which program must run as a daemon to use a mouse in text-based Linux consoles?": answer_first.WRONG_LANGUAGE,
        "Welche Zahl steht vor 'Maus' in Linux-Konsolen?": answer_first.ABOUT_WORDING,
        "Was muss hier als Daemon laufen, um eine Maus zu verwenden?": answer_first.POINTS_OUTSIDE,
        "Welches Programm muss im Text als Daemon laufen, um eine Maus zu verwenden?": answer_first.POINTS_OUTSIDE,
        "Welche Beschädigung empfehle ich?": answer_first.OFF_SENTENCE,
        "stem": items.PLACEHOLDER,
    }
    for stem, code in refused.items():
        assert [c for c, _detail in answer_first.stem_problems(stem, candidate, "de")] == [code], stem
    copied = answer_first.STEM_EXAMPLES["de"][0][3]
    assert [c for c, _d in answer_first.stem_problems(copied, candidate, "de")] == [items.COPIED]
    # another name of the sentence in the key's place (Qwen2.5-Coder-1.5B on the whole book, 7 Dec evening)
    fdisk = answer_first.Candidate(chunk=None, sort="command", answer="fdisk(8)", sentence=(
        "Bei der Konfiguration von Laufwerkspartitionen können Sie erwägen, parted(8) zu verwenden (obwohl fdisk(8) "
        "lange als Standard angesehen wurde)."))
    swapped = ("Welchen Befehl können Sie erwägen, parted(8) zu verwenden (obwohl parted(8) lange als Standard "
               "angesehen wurde)?")
    assert [c for c, _d in answer_first.stem_problems(swapped, fdisk, "de")] == [answer_first.OFF_SENTENCE]
    smollm2 = "Welchen Befehl liest der Python-Interpreter aus, um eine Maus in Linux-Konsolen zu verwenden?"
    assert [c for c, _d in answer_first.stem_problems(smollm2, candidate, "de")] == [items.COPIED]
    # a man page's key is accepted typed with or without its section; the explanation is the source sentence
    question, problems, _replaced = answer_first.to_question(candidate, Question.SHORT, {"stem": good})
    assert problems == [] and question.accepted_answers == ["gpm(8)", "gpm"] and question.explanation == sentence


def test_the_question_phrase_is_made_from_the_words_before_the_gap():
    """The tool says how the question begins (the model mangled the German when it had to find it): the article or
    preposition and the noun before the gap, turned into "welch-"; a bare gap takes the sort's noun, accusative
    where someone else is the subject."""
    cases = {
        ("Die Paketquellen stehen auf einem Debian-System in der Datei /etc/apt/sources.list.",
         "/etc/apt/sources.list"): "In welcher Datei",
        ('Das Verzeichnis "/run" wird im frühen Stadium des Boot-Prozesses als tmpfs eingebunden.', "/run"):
            "Welches Verzeichnis",
        ("Wenn Sie wissen möchten, wie der Verzeichnisbaum und die Gerätedateien verknüpft sind, führen Sie mount(8) "
         "ohne Argumente aus.", "mount(8)"): "Welchen Befehl",
        ("Auf aktuellen Linux-Kernel kann mount(8) mit bestimmten Optionen Teile des Verzeichnisbaums an anderer "
         "Stelle anknüpfen.", "mount(8)"): "Welcher Befehl",
        ('Sie können Modembefehle an den entsprechenden seriellen Port "/dev/ttyS0" schicken.', "/dev/ttyS0"):
            "An welchen entsprechenden seriellen Port",
    }
    cases[("Das Bewegen des Cursors findet meist im NORMAL-Modus statt.", "NORMAL-Modus")] = "In welchem Modus"
    for (sentence, answer), phrase in cases.items():
        candidate = answer_first.Candidate(chunk=None, sentence=sentence, answer=answer,
                                           sort="term" if answer[:1].isupper() else "command")
        assert answer_first.w_phrase(candidate, "de") == phrase, sentence
        assert answer_first.stem_messages(candidate, "de")[-1]["content"].endswith(f"Beginne die Frage mit „{phrase}“.")
    assert answer_first.w_phrase(candidate, "en") == ""


def test_a_short_answer_is_asked_only_about_code_and_numbers():
    """A noun typed as a short answer has near-synonyms ("Festplatte", "Swap-Bereich"): short answers take commands,
    paths, options, variables, file names and numbers; multiple choice takes every key."""
    found = [answer_first.Candidate(chunk=None, sentence="s", answer=a, sort=sort) for a, sort in (
        ("Festplatte", "term"), ("/run", "command"), ("1", "number"), ("GRUB", "name"), ("/etc/fstab", "code"))]
    assert [c.answer for c in answer_first.for_kind(found, Question.SHORT)] == ["/run", "1", "/etc/fstab"]
    assert answer_first.for_kind(found, Question.SINGLE) == found


def test_the_stem_prompt_names_the_sort_of_key_and_shows_the_sentence_with_its_gap():
    sentence = "Das Verzeichnis /proc enthält für jeden Prozess ein Unterverzeichnis, benannt nach seiner PID."
    candidate = answer_first.Candidate(chunk=None, sentence=sentence, answer="/proc", sort="command")
    messages = answer_first.stem_messages(candidate, "de")
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert messages[-1]["content"].startswith("Satz mit Lücke: Das Verzeichnis ___ enthält")
    assert messages[-1]["content"].endswith("In der Lücke steht ein Verzeichnis. Beginne die Frage mit „Welches Verzeichnis“.")
    assert "/proc" not in messages[-1]["content"]  # the key is not shown: a model shown it wrote it into the stem
    sorts = {answer: answer_first.sort_words(answer_first.Candidate(chunk=None, sentence=sentence, answer=answer,
                                                                    sort="command"), "de")
             for answer in ("mount(8)", "mbox(5)", "/dev/ttyS0", "/etc/fstab", "$PATH", "multi-user.target", "--all")}
    assert sorts == {"mount(8)": "ein Befehl", "mbox(5)": "eine Handbuchseite", "/dev/ttyS0": "eine Gerätedatei",
                     "/etc/fstab": "ein Pfad", "$PATH": "eine Umgebungsvariable",
                     "multi-user.target": "ein systemd-Target", "--all": "eine Option"}
    retry = answer_first.stem_messages(candidate, "de", retry=("Was steht hier?", "sie verweist auf etwas"))
    assert retry[-2]["role"] == "assistant" and "Was steht hier?" in retry[-1]["content"]


def test_the_tool_drafts_the_question_from_the_sentence_where_its_shape_allows():
    """Where the gap is a noun phrase of the main clause, the tool turns the sentence into the question itself
    (German by construction): the phrase first, a "Vorfeld" moved after the verb, a leading subordinate clause
    moved to the end. Where the shape is riskier (the gap in a coordination, a quoted command line, a second
    clause; a noun key with no noun before it; an imperative) it drafts nothing and the model writes the stem."""
    drafted = {
        ("Die Einhängepunkte aller Dateisysteme beim Systemstart stehen in der Datei /etc/fstab.", "/etc/fstab"):
            "In welcher Datei stehen die Einhängepunkte aller Dateisysteme beim Systemstart?",
        ("Das Verzeichnis /proc enthält für jeden Prozess ein Unterverzeichnis, benannt nach seiner PID.", "/proc"):
            "Welches Verzeichnis enthält für jeden Prozess ein Unterverzeichnis, benannt nach seiner PID?",
        ("Wenn Sie wissen möchten, wie der Verzeichisbaum und die Gerätedateien verknüpft sind, führen Sie mount(8) "
         "ohne Argumente aus.", "mount(8)"):
            "Welchen Befehl führen Sie ohne Argumente aus, wenn Sie wissen möchten, wie der Verzeichisbaum und die "
            "Gerätedateien verknüpft sind?",
        ("Um eine Maus in textbasierten Linux-Konsolen verwenden zu können, müssen Sie gpm(8) als Daemon laufen "
         "haben.", "gpm(8)"):
            "Welchen Befehl müssen Sie als Daemon laufen haben, um eine Maus in textbasierten Linux-Konsolen "
            "verwenden zu können?",
        ("Mit einer durchdachten Konfiguration kann sudo(8) limitierte administrative Rechte einräumen.", "sudo(8)"):
            "Welcher Befehl kann mit einer durchdachten Konfiguration limitierte administrative Rechte einräumen?",
        ("Das Bewegen des Cursors findet meist im NORMAL-Modus statt.", "NORMAL-Modus"):
            "In welchem Modus findet das Bewegen des Cursors meist statt?",
    }
    for (sentence, answer), stem in drafted.items():
        candidate = answer_first.Candidate(chunk=None, sentence=sentence, answer=answer,
                                           sort="term" if answer[:1].isupper() else "command")
        assert answer_first.draft_stem(candidate, "de") == stem, sentence
        assert answer_first.stem_problems(stem, candidate, "de") == []
        assert answer_first.draft_stem(candidate, "en") == ""
    not_drafted = [
        ("Die beiden von CUPS angebotenen Befehle lp(1) und lpr(1) bieten Optionen.", "lpr(1)", "command"),
        ("Die Paketquellen stehen in der Datei /etc/apt/sources.list und werden von apt update gelesen.",
         "/etc/apt/sources.list", "command"),
        ('Sie sollten die Daten mittels "sudo rm -rf /var/lib/apt/*" entfernen.', "-rf", "code"),
        ("Verwenden Sie cron(8), um regelmäßig wiederkehrende Aufgaben zu planen.", "cron(8)", "command"),
        ("Auf manchen Systemen werden einige Optionen von find(1) nicht unterstützt.", "find(1)", "command"),
        ("Sockets werden von allen Internet-Übertragungen umfassend genutzt.", "Sockets", "term"),
        ("Jede Konsole erlaubt eine eigene Anmeldung und bietet eine Mehrbenutzer-Umgebung.",
         "Mehrbenutzer-Umgebung", "term"),
    ]
    for sentence, answer, sort in not_drafted:
        candidate = answer_first.Candidate(chunk=None, sentence=sentence, answer=answer, sort=sort)
        assert answer_first.draft_stem(candidate, "de") == "", sentence


def test_a_key_in_a_coordination_is_not_asked_about():
    """A key that is one of "A und ___" or "A, ___, B" has a sibling that is often a second right answer, and no
    model phrased such a gap (docs/questions-rubric.md): no answer-first item of it; two clauses joined by "und"
    are no such coordination."""
    def candidate(sentence, answer):
        return answer_first.Candidate(chunk=None, sentence=sentence, answer=answer, sort="command")

    sentence = 'Viele Programme verwenden die Umgebungsvariablen "$EDITOR" oder "$VISUAL", um den Editor zu wählen.'
    assert answer_first.in_coordination(candidate(sentence, "$VISUAL"))
    assert answer_first.in_coordination(candidate(sentence, "$EDITOR"))
    assert answer_first.in_coordination(candidate("Man liest die Abschnitte von bash(1), builtins(1), test(1) und "
                                                  "sh(1).", "builtins(1)"))
    assert not answer_first.in_coordination(candidate(
        "Die Paketquellen stehen in der Datei /etc/apt/sources.list und werden von apt update gelesen.",
        "/etc/apt/sources.list"))
    assert not answer_first.in_coordination(candidate("Der Befehl pstree(1) zeigt alle Prozesse an.", "pstree(1)"))


def test_a_stem_with_broken_german_grammar_is_refused():
    """Code checks the German the small models broke (docs/questions-rubric.md): a verb the sentence lacks, an
    "um … zu" without its infinitive, a subordinate clause that lost its verb; the right stem passes."""
    sentence = ("Wenn Sie wissen möchten, wie der Verzeichisbaum und die Gerätedateien verknüpft sind, führen Sie "
                "mount(8) ohne Argumente aus.")
    candidate = answer_first.Candidate(chunk=None, sentence=sentence, answer="mount(8)", sort="command")
    refused = {
        "Welchen Befehl führen Sie aus, um den Verzeichisbaum und die Gerätedateien verknüpft zu finden?":
            answer_first.NEW_VERB,
        "Welchen Befehl führen Sie ohne Argumente aus, um den Verzeichisbaum und die Gerätedateien verknüpft sind?":
            answer_first.BROKEN_GRAMMAR,
        "Welchen Befehl führen Sie ohne Argumente aus, wenn Sie den Verzeichisbaum und die Gerätedateien?":
            answer_first.BROKEN_GRAMMAR,
    }
    for stem, code in refused.items():
        assert [c for c, _detail in answer_first.stem_problems(stem, candidate, "de")] == [code], stem
    good = ("Welchen Befehl führen Sie ohne Argumente aus, wenn Sie wissen möchten, wie der Verzeichisbaum und die "
            "Gerätedateien verknüpft sind?")
    assert answer_first.stem_problems(good, candidate, "de") == []


def test_the_model_s_version_of_the_draft_stands_only_where_it_passes_the_checks_and_keeps_the_draft():
    """The model may correct the tool's draft; its version is taken only where it passes the stem checks and keeps
    most of the draft's words, else the draft stands; which one is recorded."""
    sentence = "Die Einhängepunkte aller Dateisysteme beim Systemstart stehen in der Datei /etc/fstab."
    candidate = answer_first.Candidate(chunk=None, sentence=sentence, answer="/etc/fstab", sort="command")
    draft = answer_first.draft_stem(candidate, "de")
    assert answer_first.from_draft(draft, draft, candidate, "de") == (draft, answer_first.STEM_BY_TOOL_KEPT)
    edited = "In welcher Datei stehen beim Systemstart die Einhängepunkte aller Dateisysteme?"
    assert answer_first.from_draft(edited, draft, candidate, "de") == (edited, answer_first.STEM_BY_MODEL_EDIT)
    for broken in ("In welcher Datei stehen die Einhängepunkte /etc/fstab?",  # the key
                   "In welcher Datei stehen die Einhängepunkte aller Dateisysteme beim Systemstart",  # no "?"
                   "In welcher Datei findet man die Einhängepunkte aller Dateisysteme beim Systemstart?",  # new verb
                   "In welcher Datei stehen Einhängepunkte?", ""):  # most of the draft's words lost; nothing
        assert answer_first.from_draft(broken, draft, candidate, "de") == (draft, answer_first.STEM_BY_TOOL), broken
    messages = answer_first.draft_messages(candidate, draft, "de")
    assert messages[-1]["content"] == ("Satz mit Lücke: Die Einhängepunkte aller Dateisysteme beim Systemstart "
                                       f"stehen in der Datei ___.\nEntwurf: {draft}")
    assert "/etc/fstab" not in "".join(m["content"] for m in messages)  # the key is never shown


class AnswerFirstModel:
    """A stub model for answer-first requests: reads the fixed answer and the sentence from the prompt. Asked for
    the stem alone, it writes a question of the sentence without its key (the first time a stem that asks about the
    wording, when `bad_stem`); asked for wrong options too, three, of which `bad` are unusable (the key itself, a
    word of the sentence). Answers the test student rightly with the passage, wrongly without it."""

    def __init__(self, bad=True, bad_stem=False, texts=()):
        self.bad, self.bad_stem, self.keys, self.prompts, self.stem_prompts = bad, bad_stem, {}, [], []
        self.texts, self.gaps = flat(" ".join(texts)), {}

    def __call__(self, body):
        properties = ((body.get("response_format") or {}).get("schema") or {}).get("properties", {})
        prompt = body["messages"][-1]["content"]
        if set(properties) == {"stem"}:  # shown the gapped sentence only, not the key
            self.stem_prompts.append(body["messages"])
            task = next(m["content"] for m in reversed(body["messages"])
                        if m["content"].startswith("Satz mit Lücke: "))
            gapped = re.search(r"^Satz mit Lücke: (.+)$", task, re.M).group(1)
            draft = re.search(r"^Entwurf: (.+)$", task, re.M)
            if draft:  # asked to correct the tool's draft: a broken version when `bad_stem`, else the draft
                self.gaps[draft.group(1)] = gapped
                return json.dumps({"stem": draft.group(1).rstrip("?") if self.bad_stem else draft.group(1)})
            if self.bad_stem and len(self.stem_prompts) == 1:
                return json.dumps({"stem": "Welche Zahl steht vor dem Satz?"})
            stem = " ".join(gapped.replace("___", "welcher Angabe").split()).rstrip(".") + "?"
            self.gaps[stem] = gapped
            return json.dumps({"stem": stem})
        if "distractors" in properties:
            self.prompts.append(prompt)
            answer = re.search(r"^Richtige Antwort: (.+)$", prompt, re.M).group(1)
            sentence = re.search(r"^Satz: (.+)$", prompt, re.M).group(1)
            stem = "Was gehört in die Lücke: " + sentence.replace(answer, "___") + "?"
            words = [w for w in re.findall(r"\w{4,}", sentence) if w != answer]
            good = "42" if answer.isdigit() else "Quark"  # a wrong option of the answer's sort
            wrong = [answer, words[0], good] if self.bad else ["42", "7", "Quark"]
            self.keys[stem] = answer
            return json.dumps({"stem": stem, "distractors": wrong, "explanation": "So steht es im Satz."})
        if "answer" in properties:
            stem = next(line.split(": ", 1)[1] for line in prompt.splitlines() if line.startswith("Frage: "))
            options = dict(line.split(") ", 1) for line in prompt.splitlines() if line[1:3] == ") ")
            right = [letter for letter, text in options.items() if text == self.keys.get(stem) or stem in self.gaps
                     and self.gaps[stem].replace("___", text) in self.texts]  # the option that fills the gap
            other = [letter for letter in options if letter not in right]
            return json.dumps({"answer": right[0] if "<passage>" in prompt else other[0]})
        return json.dumps({name: "x" for name in properties})


def _generate(client, course, token, section, kind):
    """(question set, its part) after the lecturer asked the page for one question of the kind about the section
    and the worker finished (done or failed)."""
    response = client.post(f"/c/{course.pk}/questions/", {"section": section.pk, "count": 1, "kind": [kind]},
                           headers=session_headers(token))
    assert response.status_code == 302, response.content[:300]
    question_set = QuestionSet.objects.get(course=course)
    wait_for(lambda: QuestionSet.objects.get(pk=question_set.pk).generation in (QuestionSet.DONE, QuestionSet.FAILED),
             timeout=300)
    return question_set, GenerationPart.objects.get(question_set=question_set)


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_answer_first_items_keep_their_key_verbatim_and_come_out_usable(celery_worker, stub_llm, client, course):
    _, token = make_member(course, Membership.INSTRUCTOR)
    point_tutor_at(course, stub_llm.url)
    assert TutorConfig.for_course(course).question_method == TutorConfig.ANSWER_FIRST  # the default
    model = AnswerFirstModel(bad_stem=True, texts=[text for _name, text in COURSE_TEXTS])
    stub_llm.reply = model
    section = Section.objects.get(document__course=course, title="Die Quellen der Pakete")
    # one sentence that stands alone with a key of a known shape (a path), and other paths in the course
    question_set, part = _generate(client, course, token, section, Question.SINGLE)
    made = list(question_set.questions.select_related("source_chunk"))
    assert len(made) == 1, (part.reasons, part.dropped_items, part.detail)
    for question in made:
        key = question.options[question.correct_index]
        assert key in flat(question.source_chunk.text)  # the key is a span of its source sentence
        assert key not in question.stem and len(set(map(items.folded, question.options))) == len(question.options)
        assert items.form_problems(question) == [] and not question.flagged, question.checks
        assert {c["check"]: c["ok"] for c in question.checks}["test_student"] is True
        # the model wrote only the stem (its second, after the first asked about the wording); the wrong options
        # are the tool's, none of them in the source sentence
        assert "welcher Angabe" in question.stem and key not in "".join(map(str, model.stem_prompts))
        form = next(c for c in question.checks if c["check"] == "form")
        assert form["params"]["stem_by"] == answer_first.STEM_BY_MODEL  # no draft: the gap is in a coordination
        assert not {"Quark", "42"} & set(question.options)
        assert all(items.folded(o) not in items.folded(question.explanation) for o in question.options if o != key)
    assert not [r for r in stub_llm.requests if "distractors" in json.dumps(r["body"].get("response_format"))]
    first, second = model.stem_prompts  # one stem per request; the refused one asked again once, with the reason
    assert second[-2]["content"] == json.dumps({"stem": "Welche Zahl steht vor dem Satz?"})
    assert "nach dem Wortlaut" in second[-1]["content"] and first[-1]["content"] == second[-3]["content"]
    temperatures = [r["body"]["temperature"] for r in stub_llm.requests
                    if set(r["body"]["response_format"]["schema"]["properties"]) == {"stem"}]
    assert temperatures == [0.1, answer_first.RETRY_TEMPERATURE]  # the same low temperature wrote the same stem
    prompt = "".join(m["content"] for m in first)
    assert len(prompt) < 2000 and "In der Lücke steht eine Datei." in prompt  # a short prompt: the gapped
    # sentence, the sort of its key, three worked examples
    assert part.model_calls >= 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_where_the_tool_drafts_the_question_the_draft_stands_when_the_model_breaks_it(celery_worker, stub_llm,
                                                                                        client, course):
    """A short answer about a sentence whose gap is a noun phrase of its main clause: the model is shown the tool's
    draft (not the key) and asked only to correct it; its version is no question, so the draft stands, one request,
    and the item says the tool wrote its stem."""
    _, token = make_member(course, Membership.INSTRUCTOR)
    point_tutor_at(course, stub_llm.url)
    model = AnswerFirstModel(bad_stem=True, texts=[text for _name, text in COURSE_TEXTS])
    stub_llm.reply = model
    section = Section.objects.get(document__course=course, title="Weitere Dateien des Systems")
    question_set, part = _generate(client, course, token, section, Question.SHORT)
    made = list(question_set.questions.select_related("source_chunk"))
    assert len(made) == 1, (part.reasons, part.dropped_items, part.detail)
    question = made[0]
    key = question.accepted_answers[0]
    assert key.startswith("/etc/") and key in flat(question.source_chunk.text) and key not in question.stem
    assert re.fullmatch(r"In welcher Datei stehen? (die|der) .+\?", question.stem), question.stem
    form = next(c for c in question.checks if c["check"] == "form")
    assert form["params"]["stem_by"] == answer_first.STEM_BY_TOOL  # the model's version had no "?"
    assert len(model.stem_prompts) == 1 and "Entwurf: " + question.stem in model.stem_prompts[0][-1]["content"]
    assert key not in "".join(map(str, model.stem_prompts)) and not question.flagged, question.checks


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_section_without_an_answer_the_tool_trusts_asks_no_model_and_says_so(celery_worker, stub_llm, client,
                                                                               course):
    """Plain prose with no command, path, number or key term: no question, no model call, and the lecturer reads
    why (not "The language model produced no usable questions": it was never asked)."""
    _, token = make_member(course, Membership.INSTRUCTOR)
    point_tutor_at(course, stub_llm.url)
    stub_llm.reply = AnswerFirstModel()
    section = Section.objects.get(document__course=course, title="Wie man den Kurs liest")
    question_set, part = _generate(client, course, token, section, Question.SHORT)
    assert (part.state, part.error, part.model_calls, question_set.questions.count()) == (
        GenerationPart.FAILED, "no_span", 0, 0)
    assert not [r for r in stub_llm.requests if "messages" in r["body"]]
    page = client.get(f"/c/{course.pk}/questions/{question_set.pk}/", headers=session_headers(token)).content.decode()
    assert "so the model was not asked" in page


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_prompt_refused_as_too_long_is_shrunk_once_and_the_lecturer_reads_why(celery_worker, stub_llm, client,
                                                                              course):
    """The whole-passage path (true/false): a server that refuses every prompt as longer than its window gets one
    smaller prompt, never the same one again, and the lecturer reads the reason (not "bad_response"); a server
    that refuses only once gets the smaller prompt and the questions are made."""
    _, token = make_member(course, Membership.INSTRUCTOR)
    point_tutor_at(course, stub_llm.url)
    stub_llm.context, stub_llm.hidden_tokens = 4000, 100_000  # every request is too long
    section = Section.objects.get(document__course=course, title="Der Init-Prozess")
    client.post(f"/c/{course.pk}/questions/", {"section": section.pk, "count": 1, "kind": [Question.TRUE_FALSE]}, headers=session_headers(token))
    question_set = QuestionSet.objects.get(course=course)
    wait_for(lambda: QuestionSet.objects.get(pk=question_set.pk).generation == QuestionSet.FAILED, timeout=300)
    question_set.refresh_from_db()
    assert question_set.generation_error == "context_exceeded"
    prompts = [r["body"]["messages"][-1]["content"] for r in stub_llm.requests]
    assert len(prompts) == 2 and len(prompts[1]) < len(prompts[0])
    page = client.get(f"/c/{course.pk}/questions/{question_set.pk}/", headers=session_headers(token)).content.decode()
    assert "longer than the language model can read at once" in page and "expected form" not in page

    stub_llm.requests.clear()
    stub_llm.context_refusals = 1  # refuses the next one only
    stub_llm.reply = json.dumps({"questions": [{"statement": "Der Init-Prozess hat die Prozessnummer 1.",
                                                "answer": True, "explanation": "So steht es da.", "source": 1}]})
    point_tutor_at(course, stub_llm.url, question_test_student=TutorConfig.CHECK_OFF)
    client.post(f"/c/{course.pk}/questions/{question_set.pk}/action/", {"action": "retry"}, headers=session_headers(token))
    wait_for(lambda: QuestionSet.objects.get(pk=question_set.pk).generation == QuestionSet.DONE, timeout=300)
    prompts = [r["body"]["messages"][-1]["content"] for r in stub_llm.requests]
    assert len(prompts) == 2 and len(prompts[1]) < len(prompts[0]) and question_set.questions.count() == 1


@pytest.mark.llm
@pytest.mark.django_db(transaction=True)
def test_smollm2_phrases_one_answer_first_item_around_the_fixed_key(llama_server, course):  # noqa: F811
    """The real embedded model writes one answer-first item: the structure holds and the key stands in its source
    sentence (the wording is the model's; not asserted)."""
    point_tutor_at(course, llama_server, question_test_student=TutorConfig.CHECK_OFF)
    client, _config = generation.client_for(course)
    chunks = list(Chunk.objects.filter(course=course, section__title="Der Init-Prozess").order_by("ordinal"))
    candidate = answer_first.answer_candidates(chunks, "de")[0]
    item, _cut_off = answer_first.ask(client, candidate, Question.SINGLE, "de", examples=["2", "0", "42"])
    assert isinstance(item, dict) and isinstance(item.get("stem"), str)
    assert isinstance(item.get("distractors"), list) and len(item["distractors"]) == 3
    question, problems, replaced = answer_first.to_question(candidate, Question.SINGLE, item, ["2", "0", "42", "7"])
    print(f"SmolLM2 answer-first: {item!r}; problems {problems}; replaced {replaced}")
    assert question.options[question.correct_index] == candidate.answer
    assert answer_first.key_in_sentence(question, candidate) and candidate.sentence in flat(candidate.chunk.text)


@pytest.mark.llm
@pytest.mark.django_db(transaction=True)
def test_smollm2_writes_a_stem_alone_for_a_gap_it_is_not_shown_the_key_of(llama_server, course):  # noqa: F811
    """The real embedded model answers the stem-only request (the tool's wrong options, the model's question): the
    structure holds, at most one retry; whether the stem passes the checks is the model's (not asserted: SmolLM2's
    mostly do not, docs/questions-rubric.md)."""
    point_tutor_at(course, llama_server, question_test_student=TutorConfig.CHECK_OFF)
    client, _config = generation.client_for(course)
    sentence = "Verwenden Sie cron(8), um regelmäßig wiederkehrende Aufgaben zu planen."
    candidate = answer_first.Candidate(chunk=None, sentence=sentence, answer="cron(8)", sort="command")
    assert answer_first.draft_stem(candidate, "de") == ""  # an imperative: the tool drafts nothing
    item, calls = answer_first.ask_stem(client, candidate, "de")
    problems = answer_first.stem_problems(items.clean(item.get("stem")), candidate, "de")
    print(f"SmolLM2 stem: {item!r} after {calls} request(s); problems {problems}")
    assert isinstance(item, dict) and isinstance(item.get("stem"), str) and calls in (1, 2)
    assert item["stem_by"] == answer_first.STEM_BY_MODEL
    assert "cron" not in "".join(m["content"] for m in answer_first.stem_messages(candidate, "de"))  # never shown

    # where the tool drafts the question, the model only corrects it: one request, and the stem passes the checks
    # whatever the model wrote (its version where it passes them, else the draft)
    sentence = ("Um eine Maus in textbasierten Linux-Konsolen verwenden zu können, müssen Sie gpm(8) als Daemon "
                "laufen haben.")
    candidate = answer_first.Candidate(chunk=None, sentence=sentence, answer="gpm(8)", sort="command")
    item, calls = answer_first.ask_stem(client, candidate, "de")
    print(f"SmolLM2 on the draft: {item!r}")
    assert calls == 1 and item["stem_by"] in (answer_first.STEM_BY_TOOL_KEPT, answer_first.STEM_BY_MODEL_EDIT,
                                              answer_first.STEM_BY_TOOL)
    assert answer_first.stem_problems(item["stem"], candidate, "de") == []


def _c(sentence, answer, sort="command"):
    return answer_first.Candidate(chunk=None, sentence=sentence, answer=answer, sort=sort)


IFS = _c('Wenn Sie "$IFS" in ":" ändern, können Sie auf nette Weise "/etc/passwd" mit der Shell verarbeiten.', "$IFS")
PATH = _c('Sie können die Umgebungsvariable "$PATH" der Bash-Shell über die Dateien "~/.bash_profile" oder '
          '"~/.bashrc" verändern.', "$PATH")
SCRIPT = _c("Die grundsätzliche Methode, um die Aktivitäten auf der Shell aufzuzeichnen ist, sie via script(1) laufen "
            "zu lassen.", "script(1)")
SYS = _c('Das Verzeichnis unterhalb von "/sys" enthält vom Kernel exportierte Datenstrukturen, deren Attribute sowie '
         'die Anbindungen zwischen ihnen.', "/sys")


def test_a_stem_with_broken_german_word_order_or_agreement_is_refused():
    """Judge 6's garbled stems (Qwen2.5-Coder-1.5B, written alone where the tool drafted none): the polite "Sie"
    with a singular verb, an infinitive before the finite verb, "um … zu" without its comma, a preposition that
    ends the question; a stem in the right order passes."""
    refused = [
        (IFS, "Welche Umgebungsvariable ändert Sie in ':' um '/etc/passwd' mit der Shell zu verarbeiten?", "Sie"),
        (IFS, "Welche Umgebungsvariable ändern Sie in ':' um '/etc/passwd' mit der Shell zu verarbeiten?", "comma"),
        (PATH, "Welche Umgebungsvariable der Bash-Shell über die Dateien '~/.bash_profile' oder '~/.bashrc' "
               "verändern können Sie?", "before the finite verb"),
        (SCRIPT, "Welchen Befehl lassen Sie die Aktivitäten auf der Shell grundsätzlich aufzuzeichnen laufen via?",
         "without its object"),
    ]
    for candidate, stem, why in refused:
        problems = answer_first.stem_problems(stem, candidate, "de")
        assert problems and problems[0][0] == answer_first.BROKEN_GRAMMAR and why in problems[0][1], (stem, problems)
    good = [(IFS, "Welche Umgebungsvariable ändern Sie in ':', um '/etc/passwd' auf nette Weise mit der Shell zu "
                  "verarbeiten?"),
            (PATH, 'Welche Umgebungsvariable der Bash-Shell können Sie über die Dateien "~/.bash_profile" oder '
                   '"~/.bashrc" verändern?')]
    for candidate, stem in good:
        assert answer_first.stem_problems(stem, candidate, "de") == [], stem


def test_a_stem_must_keep_the_sentence_s_content_and_add_no_words_of_its_own():
    """A model's stem that leaves out most of what its sentence says ("Welchen Befehl lassen Sie laufen?" for the
    basic method of recording the shell's activities) or adds a word the sentence lacks ("unterhalb von 'bin'" for "/sys") is refused; the sort noun of
    the question phrase ("Befehl", "Verzeichnis") is no such word."""
    problems = answer_first.stem_problems("Welchen Befehl lassen Sie laufen?", SCRIPT, "de")
    assert [code for code, _d in problems] == [answer_first.LEFT_OUT]
    assert answer_first.stem_problems("Welchen Befehl laufen die Aktivitäten auf der Shell via?", SCRIPT, "de")
    stem = ("Welches Verzeichnis unterhalb von 'bin' enthält vom Kernel exportierte Datenstrukturen, deren Attribute "
            "sowie die Anbindungen zwischen ihnen?")
    assert answer_first.stem_problems(stem, SYS, "de") == [(answer_first.NEW_WORDS, "bin")]
    assert answer_first.stem_problems(stem.replace("'bin'", "'/'"), SYS, "de") == []
    assert answer_first.new_words("Welchen Befehl müssen Sie als Daemon laufen haben, um eine Maus zu verwenden?",
                                  _c("Um eine Maus verwenden zu können, müssen Sie gpm(8) als Daemon laufen haben.",
                                     "gpm(8)")) == []


def test_the_tool_drafts_the_question_where_the_key_is_quoted_and_keeps_a_genitive_with_its_phrase():
    """A quoted key ("/run", "$PATH" in the HTML text) is a noun phrase as well; a genitive right after it goes
    with the question phrase (not after the verb, where it would read as a dative)."""
    run = _c('Das Verzeichnis "/run" wird im frühen Stadium des Boot-Prozesses als tmpfs eingebunden.', "/run")
    assert answer_first.draft_stem(run, "de") == ("Welches Verzeichnis wird im frühen Stadium des Boot-Prozesses als "
                                                  "tmpfs eingebunden?")
    assert answer_first.draft_stem(PATH, "de") == ('Welche Umgebungsvariable der Bash-Shell können Sie über die '
                                                   'Dateien "~/.bash_profile" oder "~/.bashrc" verändern?')
    # "der" after the key is a genitive only where a pronoun is the subject already: here it may be the subject
    assert answer_first.draft_stem(_c('Im Verzeichnis "/boot" legt der Kernel sein Abbild ab.', "/boot"), "de") in (
        "", "In welchem Verzeichnis legt der Kernel sein Abbild ab?")


def test_a_short_answer_is_not_asked_where_its_sentence_names_one_way_of_several():
    """A command or variable the sentence names as what the reader uses or may use ("führen Sie mount(8) … aus",
    "mit dem Befehl adduser(8)", "via script(1)", "Sie können "$PATH" … verändern") has other ways a student may
    type (findmnt, useradd: judge 6): no short answer of it; the key as the subject, a required command and paths
    are kept; multiple choice keeps all."""
    one_way = [
        _c("Weitere Benutzerkonten können durch root mit dem Befehl adduser(8) erstellt werden.", "adduser(8)"),
        _c("Wenn Sie wissen möchten, wie der Verzeichisbaum und die Gerätedateien verknüpft sind, führen Sie mount(8) "
           "ohne Argumente aus.", "mount(8)"),
        SCRIPT, PATH, IFS]
    kept = [
        _c("Mit einer durchdachten und vorsichtigen Konfiguration kann sudo(8) auf einem System, das Sie sich mit "
           "mehreren Leuten teilen, limitierte administrative Rechte einräumen.", "sudo(8)"),
        _c("Um eine Maus in textbasierten Linux-Konsolen verwenden zu können, müssen Sie gpm(8) als Daemon laufen "
           "haben.", "gpm(8)"),
        _c("Die Einhängepunkte aller Dateisysteme beim Systemstart stehen in der Datei /etc/fstab.", "/etc/fstab"),
        SYS]
    for candidate in one_way:
        assert answer_first.one_way_of_several(candidate), candidate.sentence
    for candidate in kept:
        assert not answer_first.one_way_of_several(candidate), candidate.sentence
    assert answer_first.for_kind(one_way + kept, Question.SHORT) == kept
    assert answer_first.for_kind(one_way + kept, Question.SINGLE) == one_way + kept


def test_a_multiple_choice_key_the_sentence_asks_for_no_more_than_its_wrong_options_is_not_asked(monkeypatch):
    """The gap fill's rule (spans.singled_out) for answer-first multiple choice: "~/.bashrc" is where any variable
    may be set (judge 7: every option right), "$EDITOR oder ___" pairs the key with its partner."""
    from tests.test_tutor_spans import BASHRC, OTHER, VARIABLES
    from tutor.questions import spans

    pair = "Viele Programme lesen die Umgebungsvariablen \"$EDITOR\" oder \"$VISUAL\", um den Editor zu wählen."
    texts = [BASHRC, *VARIABLES, pair]
    course = object()
    monkeypatch.setattr(spans, "course_vocabulary", lambda _course: spans.Vocabulary.from_texts(
        [*texts, *OTHER], language="de"))

    def candidate(sentence, key):
        at = sentence.index(key)
        return answer_first.Candidate(chunk=None, sentence=sentence, answer=key, sort="code",
                                      span=spans.Candidate(sentence, at, at + len(key), key, spans.COMMAND))

    bashrc, paired = candidate(BASHRC, "$PATH"), candidate(pair, "$VISUAL")
    assert answer_first.open_key(bashrc, ["$HOME", "$LANG", "$CDPATH"], course)
    assert not answer_first.open_key(paired, ["$HOME", "$LANG", "$CDPATH"], course)
    assert not answer_first.open_key(bashrc, ["$HOME"], course)  # too few wrong options to judge by
    # a course of a few passages cannot tell a rarer word from a common one: no evidence either way
    monkeypatch.setattr(spans, "course_vocabulary", lambda _course: spans.Vocabulary.from_texts(texts, language="de"))
    assert not answer_first.open_key(bashrc, ["$HOME", "$LANG", "$CDPATH"], course)

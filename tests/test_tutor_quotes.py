"""The tool's quotes (tutor.chat.quotes): sentences of real German course text, the sentence that answers a question
chosen first, and the quotes through the real stack (web server, Celery worker, Redis, PostgreSQL, the stub model):
before the model's first token, stored with the answer, in the API and the conversation, alone without a model,
absent in explanation-only mode, highlighted in the reader view."""

import re

import httpx
import pytest

from courses.models import ApiToken
from courses.parsing import parse_html
from courses.retrieval import retrieve
from tests.support import INIT_TEXT, make_course, make_member, point_tutor_at, session_headers, sse_events
from tests.test_tutor_api import lecturer_token
from tests.test_tutor_chat import _pending_answer, ask_streaming
from tutor.chat.answerability import lacks_figure
from tutor.chat.quotes import (
    CLOSE_MARGIN,
    HEADING_WEIGHT,
    Quote,
    Unit,
    candidates,
    choose_quotes,
    score_units,
    select,
    split_sentences,
)
from tutor.models import Message, TutorConfig

COURSE_TEXTS = [("systemstart.md", INIT_TEXT)]  # for the course fixture (tests/support.py)
CH03 = "deploy/demo_corpus/debian-reference-de/ch03.de.html"
QUESTION = "Welche Prozessnummer hat der Init-Prozess?"


def demo_chapter():
    """Chapter 3 of the demo course (Debian reference, German), parsed as the ingestion parses it."""
    from deploy.stack import ROOT

    return (ROOT / CH03).read_bytes()


# --- Sentences and scoring on the demo course's German text ------------------------------------------------

def test_german_sentences_keep_their_abbreviations_and_code_lines_stand_alone():
    text = ("Der Kernel startet z. B. den Init-Prozess, d. h. systemd, bzw. ein anderes Init-System. Er hat die "
            "Nr. 1. Danach folgen die Dienste.\n$ systemctl list-units --type=service\n"
            "- Das erste Element der Liste. Noch ein Satz.")
    units = [text[a:b] for a, b in split_sentences(text)]
    assert units == ["Der Kernel startet z. B. den Init-Prozess, d. h. systemd, bzw. ein anderes Init-System.",
                     "Er hat die Nr. 1.", "Danach folgen die Dienste.", "$ systemctl list-units --type=service",
                     "Das erste Element der Liste.", "Noch ein Satz."]


def test_a_table_a_pdf_ran_into_one_line_is_cut_into_its_rows_and_prose_is_not():
    files = ("/etc/nologin Einschränkung der Benutzeranmeldung über das pam_nologin(8)-Modul /etc/securetty "
             "Einschränkung des tty für den root-Zugriff durch das pam_securetty(8)-Modul /etc/security/access.conf "
             "Zugriffsbeschränkungen setzen über das pam_access(8)-Modul")
    assert [files[a:b] for a, b in split_sentences(files)] == [
        "/etc/nologin Einschränkung der Benutzeranmeldung über das pam_nologin(8)-Modul",
        "/etc/securetty Einschränkung des tty für den root-Zugriff durch das pam_securetty(8)-Modul",
        "/etc/security/access.conf Zugriffsbeschränkungen setzen über das pam_access(8)-Modul"]
    packages = ("fonts-croscore V:20, I:44 5278 56 60 40 Chrome OS: Arimo, Tinos und Cousine (Google; MCMATC) "
                "fonts-crosextracarlito V:23, I:172 2728 57 - - Chrome OS: Carlito (Google; MCM:Calibri )")
    assert len(split_sentences(packages)) == 2
    commands = ("ifconfig(8) ip addr Protokoll-Adresse (IP oder IPv6) eines Gerätes route(8) ip route Eintrag in der "
                "Routing-Tabelle arp(8) ip neigh ARP- oder NDISC-Cache-Eintrag")
    assert [commands[a:b] for a, b in split_sentences(commands)][-1] == "arp(8) ip neigh ARP- oder NDISC-Cache-Eintrag"
    for prose in ("Lesen Sie mount(8) und fstab(5) für Details über /etc/fstab und die Optionen",
                  "/etc/systemd/logind.conf systemd Login-Manager-Konfiguration setzen (siehe logind.conf(5) and "
                  "systemd-logind.service(8))",
                  "Die Dateien /etc/passwd und /etc/group sowie /etc/shadow regeln die Konten."):
        assert split_sentences(prose) == [(0, len(prose))], prose


def test_every_unit_of_the_demo_chapter_stands_verbatim_in_its_paragraph():
    doc = parse_html(demo_chapter())
    paragraphs = [text for section in doc.sections for _page, text in section.paragraphs]
    units = 0
    for paragraph in paragraphs:
        for start, end in split_sentences(paragraph):
            unit = paragraph[start:end]
            assert unit == unit.strip() and unit
            assert not re.search(r"(?:z\. B|d\. h|bzw)\.$", unit)  # never cut after an abbreviation
            units += 1
    assert units > len(paragraphs)  # paragraphs were split into sentences


@pytest.mark.django_db
def test_the_sentence_that_answers_comes_first(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    course = make_course(("ch03.de.html", demo_chapter().decode()), title="Debian-Referenz")
    for question, answer in [("Wie lasse ich sshd erst bei Bedarf starten?", "nur auf Anfrage (on-demand) startet"),
                             ("Wie zeige ich das Journal des letzten Bootvorgangs an?", "journalctl -b")]:
        passages = retrieve(course.pk, question, k=4)
        quotes = choose_quotes(course.pk, question, passages)
        assert quotes and 1 <= len(quotes) <= 3
        first = quotes[0]
        assert answer in first.text, (question, [q.text for q in quotes])
        passage = passages[first.number - 1]
        assert passage.chunk_id == first.chunk and passage.text[first.start:first.end] == first.text


UUID_TEXT = """# Zugriff auf Partitionen über die UUID-Kennung

Sie können die Kennung eines blockorientierten Gerätes mit blkid(8) abfragen.

# Drucken

Ein Drucker wird mit lpadmin(8) eingerichtet.
"""


@pytest.mark.django_db
def test_a_sentence_is_read_under_its_heading(settings, tmp_path):
    """The sentence under "Zugriff auf Partitionen über die UUID-Kennung" holds neither "UUID" nor "Partition"; its
    heading does, and that counts for it (a part of it), not for a sentence under another heading."""
    settings.MEDIA_ROOT = tmp_path / "media"
    course = make_course(("speicher.md", UUID_TEXT), title="Speicher")
    question = "Wie finde ich die UUID meiner Partition heraus?"
    passages = retrieve(course.pk, question, k=4)
    units = {u.text: u for u in score_units(course.pk, question, passages, candidates(passages))}
    blkid = units["Sie können die Kennung eines blockorientierten Gerätes mit blkid(8) abfragen."]
    printer = units["Ein Drucker wird mit lpadmin(8) eingerichtet."]
    assert blkid.context > 0 and blkid.held == pytest.approx(blkid.coverage + HEADING_WEIGHT * blkid.context)
    assert printer.context == 0.0 and printer.held == printer.coverage
    assert blkid.held > printer.held


def _units(*rows):
    """Scored units of one passage: (text, score) in the passage's order (None: not shortlisted)."""
    return [Unit(0, i, 0, len(text), text, score=float("-inf") if score is None else score)
            for i, (text, score) in enumerate(rows)]


def test_a_third_quote_only_where_the_scores_cannot_tell_it_from_the_runner_up():
    rows = [("Die Auflösung der Namen läuft in mehreren Schritten ab.", 0.30), ("Ein Satz dazwischen steht hier.", None),
            ("Der zweite Satz nennt die Datei /etc/hosts.", 0.20), ("Noch ein Satz dazwischen steht hier.", None),
            ("Der Rechnername steht in der Datei /etc/hostname.", 0.20 - CLOSE_MARGIN / 2),
            ("Ein Satz, der weit zurückliegt, steht hier.", 0.01)]
    groups = select(_units(*rows))
    assert [[u.position for u in g] for g in groups] == [[0, 1], [2, 3], [4]]
    rows[4] = (rows[4][0], 0.20 - 2 * CLOSE_MARGIN)  # clearly behind: two quotes, as before
    assert [[u.position for u in g] for g in select(_units(*rows))] == [[0, 1], [2, 3]]


def test_the_unit_before_the_best_comes_along_only_where_it_leads_to_it():
    # an introduction ending with ":" and a command line belong to the sentence after them; a plain sentence not
    intro = _units(("Mit folgendem Befehl stellen Sie die Zeitzone neu ein:", 0.1),
                   ("Danach gilt die neue Zeitzone für alle Dienste des Systems.", 0.3))
    assert [u.position for u in select(intro)[0]] == [0, 1]
    plain = _units(("Die Uhr des Rechners läuft in UTC, wie üblich.", 0.1),
                   ("Danach gilt die neue Zeitzone für alle Dienste des Systems.", 0.3))
    assert [u.position for u in select(plain)[0]] == [1]
    # a table row: a short description cell is quoted with its command cell before it
    row = _units(("cd ..", None), ("in das übergeordnete Verzeichnis wechseln", 0.05),
                 ("cd -", None), ("in das vorherige Verzeichnis wechseln", 0.3))
    assert "\n".join(u.text for u in select(row)[0]) == "cd -\nin das vorherige Verzeichnis wechseln"


def test_a_table_cell_comes_with_the_cell_before_it():
    cells = [("help2man V:0, I:8 542 text → manpage", 0.1), ("Automatisch Handbuchseiten aus --help-Ausgabe generieren", 1.0),
             ("Ein Satz danach, der weit weg ist.", 0.2)]
    assert [u.position for u in select(_units(*cells), limit=1)[0]] == [0, 1, 2]
    prose = [("Das ist ein ganzer Satz mit seinem Ende.", 0.1), *cells[1:]]
    assert [u.position for u in select(_units(*prose), limit=1)[0]] == [1, 2]


def test_every_quoted_description_cell_comes_with_its_row_s_name_cells():
    # the runner-up and a close third are description cells of tables: each comes with the names of its row, on
    # whichever side the table puts them (blind fresh8: lpadmin, "systemd-analyze blame")
    rows = _units(("Einige Gruppen erlauben ihren Mitgliedern besondere Befehle ohne root-Rechte.", 0.30),
                  ("Ein Satz dahinter, der nichts sagt.", None),
                  ("lpadmin", None), ("Befehle ausführen, um Drucker hinzuzufügen und zu entfernen", 0.20),
                  ("Ein anderer Satz, der weit zurückliegt.", None),
                  ("Alle Units auflisten, sortiert nach der Dauer ihrer Initialisierung", 0.20 - CLOSE_MARGIN / 2),
                  ('"systemd-analyze blame"', None), ("Noch ein ganzer Satz zum Schluss.", None))
    assert [[u.position for u in g] for g in select(rows)] == [[0, 1], [2, 3, 4], [5, 6]]
    # the best unit too, a description longer than a cell (blind fresh10: dialout), and a package table's row with
    # its popularity and size cells between name and description
    best = _units(("dialout", None), ('voller und direkter Zugriff auf serielle Ports ("/dev/ttyS[0-3]")', 0.3),
                  ("dip", None), ("eingeschränkter Zugriff auf serielle Ports für Einwahl-Verbindungen", 0.1))
    assert [u.position for u in select(best, limit=1)[0]] == [0, 1, 2]
    package = _units(("Ein Satz vor der Tabelle endet hier.", 0.3), ("Noch ein Satz.", None), ("mingetty", None),
                     ("V:0, I:3", None), ("38", None), ("getty(8) nur für die Konsole", 0.2), ("mgetty", None))
    assert [[u.position for u in g] for g in select(package)] == [[0, 1], [2, 3, 4, 5, 6]]
    # a sentence is no cell: a runner-up sentence does not take a short unit before it
    prose = _units(*((u.text, u.score if u.score > float("-inf") else None) for u in rows[:3]),
                   ("Der Befehl lpadmin richtet Drucker ein.", 0.20), ("Ein Satz danach.", None))
    assert [[u.position for u in g] for g in select(prose)] == [[0, 1], [3, 4]]


def test_a_close_third_quote_that_announces_a_command_brings_it_along():
    # blind fresh9: "Über folgende Befehle wird die System- und Hardware-Zeit … gesetzt:" came third, without the
    # "hwclock --utc --systohc" it announces
    rows = _units(("Zeiten werden auf einem Debian-System normalerweise in der Lokalzeit angezeigt.", 0.30),
                  ("Ein Satz dazwischen steht hier.", None),
                  ("Die Hardware-Zeit wird auch als BIOS- oder CMOS-Uhr bezeichnet.", 0.20),
                  ("Noch ein Satz dazwischen steht hier.", None), ("Und noch ein Satz steht hier.", None),
                  ("Über folgende Befehle wird die System- und Hardware-Zeit gesetzt:", 0.20 - CLOSE_MARGIN / 2),
                  ("# date MMDDhhmmCCYY # hwclock --utc --systohc", None), ("Ein Satz danach steht hier.", None))
    assert [[u.position for u in g] for g in select(rows)] == [[0, 1], [2, 3], [5, 6]]


def _held(question):
    """A stand-in for word_coverage: the share of the question's words that each text holds."""
    words = set(re.findall(r"\w+", question.casefold()))
    return lambda texts: [len(words & set(re.findall(r"\w+", t.casefold()))) / len(words) for t in texts]


def test_a_quoted_table_caption_brings_the_row_that_adds_the_question_s_words():
    # HTML: the caption ("Tabelle 1.8." and its title) stands before the table; the header cell "Gruppe" repeats
    # the caption's words, the row about printers adds the question's "Drucker"
    html = _units(("Einige Gruppen erlauben ihren Mitgliedern Befehle ohne root-Rechte:", 0.3),
                  ("Tabelle 1.8.", None), ("Liste erwähnenswerter Gruppen zur Ausführung besonderer Befehle", None),
                  ("Gruppe", None), ("Befehle, die ausgeführt werden können", None), ("sudo", None),
                  ("sudo ohne sein Passwort ausführen", None), ("lpadmin", None),
                  ("Befehle ausführen, um Drucker hinzuzufügen und zu entfernen", None),
                  ("Eine vollständige Liste der Gruppen finden Sie in der Dokumentation des Pakets base-passwd.", 0.1))
    groups = select(html, held=_held("Drucker verwalten ohne root-Rechte, welche Gruppen?"))
    assert [[u.position for u in g] for g in groups][:2] == [[0, 1, 2], [7, 8]]
    assert [[u.position for u in g] for g in select(html)][:2] == [[0, 1, 2], [9]]  # without word counts: no row
    # PDF: the caption follows its table (blind fresh8: puTTY)
    pdf = _units(("Umgebung freies SSH-Programm Windows puTTY (GPL) Mac OS X OpenSSH (GPL)", None),
                 ("Tabelle 6.10: Liste freier SSH-Clients für andere Plattformen", 0.3), ("$ ssh-agent bash", None))
    assert [[u.position for u in g] for g in select(pdf, held=_held("freier ssh client für windows"))] == [[1, 2], [0]]


def test_what_a_quoted_colon_announces_comes_along_and_is_no_evidence_for_a_figure():
    # the runner-up's sentence after the best one ends with ":": the command line it announces is quoted with it
    editor = _units(("Debian bietet über den Befehl /usr/bin/editor einen einheitlichen Zugriff auf den Editor.", 0.3),
                    ("Sie können ihn wie folgt ändern:", None), ("$ sudo update-alternatives --config editor", None),
                    ("Ich empfehle Neulingen die Auswahl vim.basic, da er Syntaxhervorhebung beherrscht.", None))
    assert [u.position for u in select(editor)[0]] == [0, 1, 2]  # ends at the command line
    # a table after its introduction: the header and the first row (ANNOUNCED_UNITS after the ":")
    table = _units(("Es gibt mehrere unabhängige Werkzeuge, um verschlüsselte Passwörter zu erzeugen:", 0.3),
                   ("Paket Popcon Größe Befehl Funktion", None),
                   ("whois V:28, I:307 380 mkpasswd Frontend für die crypt(3)-Bibliothek", None),
                   ("openssl V:841, I:995 2269 openssl passwd", None))
    assert [u.position for u in select(table)[0]] == [0, 1, 2]
    no_colon = _units(("Der Editor wird mit update-alternatives gewählt.", 0.3), ("Danach gilt er für alle.", None),
                      ("$ sudo update-alternatives --config editor", None))
    assert [u.position for u in select(no_colon)[0]] == [0, 1]
    # the quote's lead (what the figure and default checks read) stops before the announced table row's counts
    text = "Hier einige weitere Server:\ntelnetd V:0, I:2 53 TELNET-Server, 2 Prozesse"  # popularity, size: no figure
    quote = Quote(text=text, number=1, chunk=1, start=10, end=10 + len(text), score=0.3, lead_end=10 + 27)
    assert quote.lead == "Hier einige weitere Server:"
    assert lacks_figure("Wie viel Strom verbraucht ein Server im Leerlauf?", [quote.lead])
    assert not lacks_figure("Wie viel Strom verbraucht ein Server im Leerlauf?", [quote.text])


def test_a_quote_that_ends_with_a_command_line_takes_the_prose_that_explains_it():
    example = _units(("watch(1) führt ein Programm wiederholt mit einem festen Intervall aus.", 0.3),
                     ("$ watch w", None), ("Hiermit wird alle 2 Sekunden neu angezeigt, wer angemeldet ist.", None),
                     ("Ein Satz, der nicht mehr dazugehört, steht hier.", None))
    assert [u.position for u in select(example)[0]] == [0, 1, 2]
    # a command line followed by another command line or a heading, a plain sentence followed by anything: no more
    for after in ("$ watch -n 5 w", "9.4.4 Einen Befehl wiederholt ausführen"):
        rows = _units((example[0].text, 0.3), ("$ watch w", None), (after, None))
        assert [u.position for u in select(rows)[0]] == [0, 1]
    plain = _units(("Der erste Satz nennt die Wörter der Frage.", 0.3), ("Der zweite Satz erklärt sie.", None),
                   ("Der dritte Satz gehört nicht mehr dazu.", None))
    assert [u.position for u in select(plain)[0]] == [0, 1]


def test_the_command_that_follows_a_quoted_group_with_its_introduction_comes_along():
    # the group (the best unit and the one after it) is followed by "... mittels:" and the command line
    rows = _units(("Wenn Sie die Installation eines Pakets erzwingen, bleibt es nicht vollständig installiert.", 0.3),
                  ("Sie sollten alle benötigten Pakete über das APT-System installieren.", None),
                  ("Konfigurieren Sie dann alle unvollständig installierten Pakete mittels:", None),
                  ("$ sudo dpkg --configure -a", None), ("Ein Satz, der nicht mehr dazugehört, steht hier.", None))
    assert [u.position for u in select(rows)[0]] == [0, 1, 2, 3]
    # an introduction followed by prose, or prose followed by a command without an introduction: no more
    for third, fourth in (("Konfigurieren Sie dann alle Pakete mittels:", "Das geht auch später."),
                          ("Konfigurieren Sie dann alle Pakete.", "$ sudo dpkg --configure -a")):
        rows = _units((rows[0].text, 0.3), (rows[1].text, None), (third, None), (fourth, None))
        assert [u.position for u in select(rows)[0]] == [0, 1]


def test_a_sentence_that_says_it_introduces_a_command_brings_it_along():
    rows = _units(("Folgender Befehl liest eine Webseite in eine Textdatei ein.", 0.3),
                  ("Das ist nützlich, wenn Sie Konfigurationsbeispiele aus dem Web kopieren.", None),
                  ("$ w3m -dump http://www.remote-site.com/help-info.html >textfile", None),
                  ("Ein Satz, der nicht mehr dazugehört, steht hier.", None))
    assert [u.position for u in select(rows)[0]] == [0, 1, 2]
    plain = _units(("Der Befehl liest eine Webseite in eine Textdatei ein.", 0.3), (rows[1].text, None),
                   (rows[2].text, None))
    assert [u.position for u in select(plain)[0]] == [0, 1]


TIMEZONE_TEXT = """# Zeitzone

Das System speichert seine Zeitzone in der Datei /etc/timezone. Sie können sie wie folgt ändern:

$ sudo dpkg-reconfigure tzdata

Danach gilt die neue Einstellung für alle Dienste.

# Drucken

Ein Drucker wird mit lpadmin(8) eingerichtet. Die Warteschlange zeigt lpq(1).
"""


@pytest.mark.django_db
def test_the_command_a_quoted_sentence_introduces_comes_along(settings, tmp_path):
    """The sentence that names the question's words is followed by "Sie können sie wie folgt ändern:"; the command
    that introduces holds none of the question's words, yet it is quoted with them, in the first quote."""
    settings.MEDIA_ROOT = tmp_path / "media"
    course = make_course(("zeitzone.md", TIMEZONE_TEXT), title="Systemtipps")
    question = "Wie ändere ich die Zeitzone des Systems?"
    passages = retrieve(course.pk, question, k=4)
    quotes = choose_quotes(course.pk, question, passages)
    first = quotes[0] if quotes else None
    assert first and first.text.startswith("Das System") and "dpkg-reconfigure tzdata" in first.text, quotes
    assert passages[first.number - 1].text[first.start:first.end] == first.text


# --- Through the real stack ---------------------------------------------------------------------------------

@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_quotes_arrive_before_the_model_s_first_token_and_are_stored(celery_worker, web_server, stub_llm, course):
    _, token = make_member(course)
    point_tutor_at(course, stub_llm.url, answer_mode=TutorConfig.BOTH)
    stub_llm.reply = "Der Init-Prozess hat die PID 1 [1]."
    stub_llm.first_token_delay = 1.5  # the model is slow to start, as on 2 cores
    stub_llm.token_delay = 0.05  # and streams while the page listens
    events = ask_streaming(web_server, course, token, QUESTION)
    names = [name for name, _data in events]
    texts = [i for i, (name, data) in enumerate(events) if name in ("snapshot", "delta") and data["text"]]
    assert "quotes" in names and texts and names.index("quotes") < texts[0], events
    quotes = events[names.index("quotes")][1]["quotes"]
    assert "Prozessnummer 1 (PID 1)" in quotes[0]["text"]
    assert f"/courses/{course.pk}/passage/{quotes[0]['chunk']}/" in quotes[0]["url"] and "hl=" in quotes[0]["url"]
    final = events[-1][1]
    assert final["status"] == "done" and final["html"].startswith("<p>Der Init-Prozess hat die PID 1")
    assert [q["text"] for q in final["quotes"]] == [q["text"] for q in quotes]
    answer = Message.objects.get(pk=final["id"])
    assert answer.quotes[0]["text"] == quotes[0]["text"] and answer.text == stub_llm.reply
    assert len(stub_llm.requests) == 1

    # the reader view highlights the quoted sentence in its passage
    page = httpx.get(web_server + quotes[0]["url"].split("#")[0], headers=session_headers(token), timeout=10)
    assert page.status_code == 200
    assert re.search(r'<mark id="quote">[^<]*Prozessnummer 1 \(PID 1\)', page.text)
    # a stream opened after the end still gets them, with the final message
    again = sse_events(f"{web_server}/c/{course.pk}/m/{final['id']}/stream/", headers=session_headers(token))
    assert again[-1][1]["quotes"][0]["text"] == quotes[0]["text"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_api_shows_an_answer_s_quotes(celery_worker, web_server, stub_llm, course):
    _, auth = lecturer_token(course, ApiToken.READ)
    point_tutor_at(course, stub_llm.url, answer_mode=TutorConfig.QUOTES_ONLY)
    api = f"{web_server}/api/v1/courses/{course.pk}"
    events = sse_events(f"{api}/ask/", method="POST", json={"text": QUESTION},
                        headers={**auth, "Accept": "text/event-stream"})
    names = [name for name, _ in events]
    assert names[0] == "accepted" and "quotes" in names and names[-1] == "final"
    assert not any(data.get("text") for name, data in events[:names.index("quotes")] if name != "accepted")
    message = httpx.get(f"{api}/messages/{events[-1][1]['id']}/", headers=auth, timeout=10).json()
    assert "Prozessnummer 1 (PID 1)" in message["quotes"][0]["text"]
    assert message["quotes"][0]["start"] < message["quotes"][0]["end"] and "ticket=" not in message["quotes"][0]["url"]
    assert stub_llm.requests == []


@pytest.mark.django_db(transaction=True)
def test_without_a_model_the_quotes_are_the_answer_with_one_line_saying_so(stub_llm, course, settings):
    from tutor.chat import answering

    settings.INFERENCE_URLS, settings.CHAT_ANSWER_MODE = [], "auto"  # INFERENCE_URL=none: quotes only
    user, _ = make_member(course)
    assert TutorConfig.for_course(course).answers_with == TutorConfig.QUOTES_ONLY
    answer = _pending_answer(course, user, QUESTION)
    answering.answer(answer.pk)
    answer.refresh_from_db()
    assert answer.status == Message.DONE and not answer.declined
    assert "Prozessnummer 1 (PID 1)" in answer.quotes[0]["text"]
    assert answer.text == "*Antwort aus den Kurstexten zitiert; keine Erklärung durch ein Sprachmodell.*"
    assert answer.citations.get(number=answer.quotes[0]["number"]).cited
    assert stub_llm.requests == []

    # the quotes are part of the conversation the model reads for a follow-up
    follow_up = Message.objects.create(conversation=answer.conversation, role=Message.USER, text="Und danach?")
    later = Message.objects.create(conversation=answer.conversation, role=Message.ASSISTANT, status=Message.PENDING)
    message, earlier = answering._conversation_so_far(later.pk)
    question, turns = answering._history(message, earlier)
    assert question == follow_up and "Prozessnummer 1 (PID 1)" in turns[-1]["content"]

    # an unanswerable question is still declined, with no quotes
    declined = _pending_answer(course, user, "Wer hat die Relativitätstheorie entwickelt?")
    answering.answer(declined.pk)
    declined.refresh_from_db()
    assert declined.declined and declined.quotes == []


@pytest.mark.django_db(transaction=True)
def test_the_weak_model_s_default_is_quotes_only_a_bigger_one_s_quotes_and_explanation(course, settings):
    settings.CHAT_ANSWER_MODE, settings.INFERENCE_URLS = "auto", ["http://127.0.0.1:9/v1"]
    config = TutorConfig.for_course(course)
    settings.INFERENCE_MODEL, settings.CHAT_WEAK_MODELS = "smollm2", ["smollm2"]
    assert config.answers_with == TutorConfig.QUOTES_ONLY
    settings.INFERENCE_MODEL = "qwen2.5-7b"
    assert config.answers_with == TutorConfig.BOTH
    config.answer_mode = TutorConfig.EXPLANATION_ONLY  # the lecturer's choice wins
    assert config.answers_with == TutorConfig.EXPLANATION_ONLY


@pytest.mark.django_db(transaction=True)
def test_explanation_only_answers_as_before_without_quotes(stub_llm, course):
    from tutor.chat import answering

    user, _ = make_member(course)
    point_tutor_at(course, stub_llm.url, answer_mode=TutorConfig.EXPLANATION_ONLY)
    stub_llm.reply = "Der Init-Prozess hat die PID 1 [1]."
    answer = _pending_answer(course, user, QUESTION)
    answering.answer(answer.pk)
    answer.refresh_from_db()
    assert answer.status == Message.DONE and answer.text == stub_llm.reply and answer.quotes == []
    assert "quoted" not in answer.evidence


@pytest.mark.django_db(transaction=True)
def test_an_explanation_whose_quotes_are_not_found_leaves_the_tool_s_quotes_alone(stub_llm, course):
    """Strict, with the quote check: the model's unverified explanation goes; the tool's quotes, which stand in
    the texts, stay as the answer (the decline is for questions the texts do not answer)."""
    from tutor.chat import answering

    user, _ = make_member(course)
    point_tutor_at(course, stub_llm.url, answer_mode=TutorConfig.BOTH, quote_check=TutorConfig.ON)
    stub_llm.reply = "Der Init-Prozess hat die PID 7 [1].\nQUOTES:\n[1] „Der Init-Prozess hat immer die PID 7.“"
    answer = _pending_answer(course, user, QUESTION)
    answering.answer(answer.pk)
    answer.refresh_from_db()
    assert answer.status == Message.DONE and not answer.declined and "PID 7" not in answer.text
    assert "Prozessnummer 1 (PID 1)" in answer.quotes[0]["text"] and "Sprachmodell" in answer.text
    assert answer.evidence["grounded"] is False

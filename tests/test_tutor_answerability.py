"""The answerability decision's parts that need no server: the quote splitter of a streamed answer, the quote
check against the cited passage, and the calibrated judgement of retrieval evidence."""

from courses.retrieval import Passage
from tutor.chat.answerability import (
    NONE,
    STRONG,
    QuoteSplitter,
    assess,
    check_quotes,
    parse_quotes,
    quote_found,
)

PASSAGE = ("Der Init-Prozess ist der erste Prozess, den der Kernel beim Systemstart startet. Er hat die\n"
           "Prozessnummer 1 (PID 1). Unter Debian ist systemd das voreingestellte Init-System.")


def passage(text=PASSAGE, similarity=0.9, background=0.8, coverage=1.0):
    return Passage(chunk_id=1, course_id=1, document_id=1, document_title="t", section_path="", page=None, text=text,
                   score=0.5, similarity=similarity, background=background, coverage=coverage,
                   embedding_model="e5-small")


def test_the_quote_block_is_held_back_while_the_answer_streams():
    splitter = QuoteSplitter()
    pieces = ["Der Init-Prozess hat ", "die PID 1 [1].\nQUO", "TES:\n[1] „Er hat die ", "Prozessnummer 1 (PID 1)“\n"]
    shown = "".join(splitter.feed(p) for p in pieces) + splitter.flush()
    assert shown == "Der Init-Prozess hat die PID 1 [1].\n"
    assert parse_quotes(splitter.quotes) == [(1, "Er hat die Prozessnummer 1 (PID 1)")]
    plain = QuoteSplitter()
    assert "".join(plain.feed(p) for p in ["Kein Q", "UO am Ende"]) + plain.flush() == "Kein QUO am Ende"


def test_a_quote_counts_only_when_it_stands_in_the_cited_passage():
    assert quote_found("Er hat die Prozessnummer 1 (PID 1).", PASSAGE)  # across a line break, case and spaces
    assert quote_found("„Der Init-Prozess ist der erste Prozess … voreingestellte Init-System“", PASSAGE)
    assert not quote_found("Der Init-Prozess hat die Prozessnummer 2.", PASSAGE)  # invented
    assert not quote_found("systemd", PASSAGE)  # too short to be evidence
    check = check_quotes("[1] „Unter Debian ist systemd das voreingestellte Init-System.“\n"
                         "[2] „Unter Debian ist systemd das voreingestellte Init-System.“\n"
                         "[1] „Mit sysctl --apply-now werden Einstellungen übernommen.“", [passage(), passage("x y")])
    assert check.verified == [1] and check.grounded
    assert [found for _n, _q, found in check.quotes] == [True, False, False]
    assert not check_quotes("", [passage()]).grounded


def test_retrieval_evidence_is_judged_by_similarity_and_coverage_not_rank():
    assert assess([]).level == NONE
    strong = assess([passage(similarity=0.90, background=0.84, coverage=0.8)], "e5-small")
    off_topic = assess([passage(similarity=0.78, background=0.76, coverage=0.0)], "e5-small")
    assert strong.level == STRONG and off_topic.level == NONE
    assert strong.as_dict()["level"] == "strong" and 0 <= off_topic.probability < strong.probability <= 1


def test_a_question_asking_for_a_figure_is_recognised_by_its_opening():
    from tutor.chat.answerability import asks_for_figure

    for question in ["Wie viele Pakete enthält das Debian-Archiv?", "Wie lange dauert die Installation?",
                     "Wann erscheint die nächste stabile Version?", "Seit welcher Kernel-Version gibt es udev?",
                     "Welche Python-Version ist in Debian 12 enthalten?", "How much memory does the installer need?",
                     "Auf welchem Port lauscht sshd?", "Welche maximale Dateigröße erlaubt FAT32?",
                     "Welche Schlüssellänge empfiehlt GnuPG?", "Which port does CUPS use?",
                     "Welche Dateisystem-Größe hat eine Minimalinstallation?"]:  # blind fresh12: hyphenated
        assert asks_for_figure(question), question
    for question in ["Wie sehe ich, wie viel RAM gerade belegt ist?", "Wie lege ich einen Benutzer an?",
                     "Welche Dateien hält ein Programm offen?", "Was ist eine benannte Pipe?",
                     "Welches Transportprotokoll nutzt NFS?", "Welcher Export gilt für /home?"]:
        assert not asks_for_figure(question), question


def test_a_figure_is_a_number_the_question_does_not_hold_and_no_section_or_table_number():
    from tutor.chat.answerability import holds_figure, lacks_figure

    assert holds_figure("Das udev-System bietet seit dem Linux-Kernel 2.6 Mechanismen zur Hardware-Erkennung.")
    assert holds_figure("Hiermit wird alle 2 Sekunden neu angezeigt, wer angemeldet ist.")
    assert holds_figure("Jetzt zehn Minuten Emacs lernen kann später Stunden an Zeit sparen.")
    assert not holds_figure("Software-RAID mit mdadm(8) wird in mdadm.conf konfiguriert. Siehe mdadm.conf(5).")
    assert not holds_figure("procps V:753, I:999 Werkzeuge für das /proc-Dateisystem")
    # the size column after the popularity (blind fresh12: a minimal install's size "answered" by a package's 1036)
    assert not holds_figure("gnome-remote-desktop V:62, I:146 1036 RDP, RFB (VNC) GNOME Remote Desktop-Server")
    assert not holds_figure("mingetty\nV:0, I:3\n38\ngetty(8) nur für die Konsole")
    assert not holds_figure("9.4.8 Einen Befehl mit festem Intervall wiederholt ausführen")
    assert not holds_figure("In Abschnitt 4.5.2 finden Sie Informationen zu ext4 und md5sum.")
    assert not holds_figure("Debian 12 bringt viele Pakete mit.", "Wie viele Pakete enthält Debian 12?")
    quotes = ["Das Debian-Archiv wird von vielen Spiegel-Servern via HTTP und FTP bereitgestellt."]
    assert lacks_figure("Wie viele Pakete enthält das Debian-Archiv in Version 12?", quotes)
    assert not lacks_figure("Wie wird das Debian-Archiv bereitgestellt?", quotes)  # asks for no figure


def test_a_number_inside_a_name_is_no_figure():
    from tutor.chat.answerability import holds_figure, lacks_figure

    # "CRM114" is a name: its "14" answers no "Wie viele …?"
    quote = "Anmerkung CRM114 bietet eine Sprachinfrastruktur, um Unschärfe-Filter zu erstellen."
    assert not holds_figure(quote)
    assert lacks_figure("Wie viele alte Logdateien hebt logrotate auf?", [quote])
    assert holds_figure("logrotate hebt 4 alte Logdateien auf.")


def test_a_question_asking_for_a_default_is_recognised_by_its_words():
    from tutor.chat.answerability import asks_for_default

    for question in ["Welcher Verschlüsselungsalgorithmus ist bei LUKS voreingestellt?",
                     "Wie viele Zeilen zeigt tail an, wenn ich keine Option angebe?",
                     "Mit welchen Optionen läuft ls ohne weitere Argumente?", "Welchen Standardwert hat umask?",
                     "Welcher Editor wird standardmäßig benutzt?", "Which editor does Debian use by default?"]:
        assert asks_for_default(question), question
    # a default thing named, or a default mentioned by a question asking no value: answered as any other question
    for question in ["Wie stelle ich den systemweiten Standard-Editor um?",
                     "Wo speichert journald die Protokolle standardmäßig?", "Was gibt head ohne Optionen aus?",
                     "Welcher Shell-Befehl legt die Standardrechte für neu angelegte Dateien fest?",
                     "Wie komme ich ohne Passwort per Schlüsselpaar auf einen entfernten Rechner?",
                     "Welche Option zeigt versteckte Dateien an?"]:
        assert not asks_for_default(question), question


def test_a_default_question_is_answered_only_by_quotes_that_state_a_default():
    from tutor.chat.answerability import lacks_default, states_default

    assert states_default("Der Standardpfad zum init-Programm ist /sbin/init.")
    assert states_default("Unter Debian ist systemd das voreingestellte Init-System.")
    assert states_default("Es ist klug, die Login-Shell auf bash(1) eingestellt zu lassen.")
    assert states_default("Ohne Option gibt head(1) die ersten zehn Zeilen aus.")
    assert states_default("Sofern nichts anderes angegeben ist, liest sort die Standardeingabe.")
    assert not states_default("tail(1) gibt die letzten Zeilen von Dateien aus.")
    assert not states_default("Ohne Verwendung regulärer Ausdrücke: cat(1) verkettet Dateien.")
    question = "Welcher Verschlüsselungsalgorithmus ist bei LUKS voreingestellt?"
    quotes = ["cryptsetup Werkzeug zur Verschlüsselung von blockorientierten Geräten (dm-crypt / LUKS)"]
    assert lacks_default(question, quotes)
    assert not lacks_default(question, quotes + ["LUKS verschlüsselt standardmäßig mit aes-xts-plain64."])
    assert not lacks_default("Wozu dient cryptsetup?", quotes)  # asks for no default

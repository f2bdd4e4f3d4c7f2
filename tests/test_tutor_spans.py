"""Answer spans and distractors chosen from the text itself (tutor.questions.spans): on German text of the demo
course and on a course indexed through the real stack (PostgreSQL with pgvector, the static embeddings)."""

import pytest

from courses.parsing import parse_file
from tests.support import CORPUS_DE
from tutor.questions import spans

BOOT = """Der Bootloader ist die zweite Stufe des Boot-Prozesses und wird durch das UEFI gestartet.
Er lädt das System-Kernel-Image und das initrd-Image in den Speicher.
Das Unified Extensible Firmware Interface definiert einen Boot-Manager.
Der Befehl sudo(8) erlaubt begrenzte administrative Rechte.
Die Umgebungsvariable "$PATH" enthält den Suchpfad der Shell.
Der Kernel startet den Init-Prozess als ersten Prozess.
Der Kernel lädt seine Module beim Systemstart aus dem Wurzeldateisystem.
Das Dateisystem wird von der Partition gelesen, und der Bootloader übergibt die Kontrolle an den Kernel.
Der Prozess init(1) wird von systemd(1) ersetzt, der die Dienste startet.
Mit dem Befehl mount(8) binden Sie ein Dateisystem ein.
"""


def test_words_are_told_apart_by_shape_and_by_the_course():
    vocab = spans.Vocabulary.from_texts([BOOT, "Der Bootloader lädt den Kernel. Die Variable \"$HOME\" zeigt "
                                               "auf das Heimatverzeichnis."], language="de")
    assert vocab.kind_of("Bootloader") == spans.TERM
    assert vocab.kind_of("Boot-Prozesses") == spans.TERM
    assert vocab.kind_of("UEFI") == spans.NAME
    assert vocab.kind_of("sudo(8)") == spans.COMMAND
    assert vocab.kind_of("$PATH") == spans.COMMAND
    assert vocab.kind_of("/etc/fstab") == spans.COMMAND
    assert vocab.kind_of("--help") == spans.COMMAND
    assert vocab.kind_of("42") == spans.NUMBER
    assert vocab.kind_of("Sie") is None  # the polite pronoun is no term
    assert vocab.kind_of("gestartet") is None
    assert vocab.kind_of("zweite") is None


def test_sentences_keep_abbreviations_whole():
    assert spans.sentences("Das ist z.B. ein Satz. Und am 1. Mai ein zweiter! Dritter.") == [
        "Das ist z.B. ein Satz.", "Und am 1. Mai ein zweiter!", "Dritter."]


def test_same_word_up_to_case_and_inflection():
    assert spans.same_word("Bootloader", "bootloaders")
    assert spans.same_word("Kernel", "Kernels")
    assert not spans.same_word("Kernel", "Bootloader")


def _demo_sections():
    parsed = parse_file(CORPUS_DE / "ch03.de.html", "html")
    return ["\n".join(text for _page, text in section.paragraphs) for section in parsed.sections]


def _embed(words):
    """Letter-trigram vectors: near for words that share letters (a stand-in for the course's embedder)."""
    import math

    out = []
    for word in words:
        grams = {}
        padded = f"  {word.casefold()} "
        for i in range(len(padded) - 2):
            grams[padded[i:i + 3]] = grams.get(padded[i:i + 3], 0) + 1
        norm = math.sqrt(sum(v * v for v in grams.values()))
        out.append({g: v / norm for g, v in grams.items()})
    keys = sorted({g for v in out for g in v})
    return [[v.get(g, 0.0) for g in keys] for v in out]


def test_candidates_in_german_text_stand_alone_and_their_distractors_fit():
    sections = _demo_sections()
    vocab = spans.Vocabulary.from_texts(sections, language="de")
    found = [c for text in sections for c in spans.answer_candidates(text, None, "de", vocabulary=vocab, limit=3)]
    assert len(found) >= 15
    for candidate in found:
        assert candidate.sentence[candidate.start:candidate.end] == candidate.span
        assert candidate.gapped.count(spans.GAP) == 1 and candidate.span not in candidate.gapped
        assert candidate.sentence.endswith(".") and candidate.sentence[0].isupper()
        first = candidate.sentence.split()[0].casefold()
        assert first not in ("dies", "er", "es", "damit", "hier", "dann")
        wrong = spans.distractor_candidates(candidate, None, 3, vocabulary=vocab, embed=_embed)
        assert len(wrong) == len(set(wrong))
        for word in wrong:
            assert word.casefold() not in candidate.sentence.casefold()
            assert not spans.same_word(word, candidate.span)
            assert vocab.kind_of(word) == candidate.token_kind or candidate.kind == spans.NUMBER
    kinds = {c.kind for c in found}
    assert spans.TERM in kinds and spans.COMMAND in kinds


@pytest.mark.django_db
def test_the_course_vocabulary_comes_from_its_indexed_passages(course):
    from courses.documents import add_document
    from courses.ingest import ingest_document

    document = add_document(course, "boot.md", ("# Start\n\n" + BOOT).encode(), enqueue=False)
    assert ingest_document(document.pk) == "ready"
    vocab = spans.course_vocabulary(course)
    assert vocab.passages >= 1 and vocab.df["Bootloader"] >= 1
    assert spans.course_vocabulary(course) is vocab  # built once while the passages stay the same
    found = spans.answer_candidates(BOOT, course, "de")
    assert found, "no candidate in the text"
    with_wrong = [(c, spans.distractor_candidates(c, course, 3)) for c in found]
    best, wrong = next((c, w) for c, w in with_wrong if w)  # a key without others of its kind gets none
    assert all(w.casefold() not in best.sentence.casefold() for w in wrong)


NOUNS = """Jede Konsole erlaubt eine eigene Anmeldung. Die Module werden geladen. Der Prozess startet.
Eine Datei liegt im Verzeichnis. Die Verzeichnisse und die Dateien bilden einen Baum. Die Shell liest Befehle.
Das Passwort schützt den Zugang. Der Benutzer meldet sich an. Ein Benutzer hat ein Passwort.
Die Gerätedatei steht unter /dev. Die Optionen stehen in der Handbuchseite. Ein Prozess schreibt in die Pipe.
Eine Gerätedatei ist eine Datei. Die Konsole zeigt Text. Eine Konsole ist ein Terminal. Die Datei wird gelesen."""


def test_a_noun_s_number_and_gender_come_from_the_tagger_and_the_course_s_articles():
    from tutor.questions import morphology

    vocab = spans.Vocabulary.from_texts([NOUNS], language="de")
    assert morphology.readings("Konsole", vocab) == {("f", "sg")}
    assert morphology.readings("Module", vocab) == {("*", "pl")}
    assert morphology.readings("Prozess", vocab) == {("m", "sg")}
    assert morphology.readings("Passwort", vocab) == {("n", "sg")}
    assert morphology.readings("Gerätedateien", vocab) == {("*", "pl")}
    assert ("f", "sg") in morphology.readings("Gerätedatei", vocab)  # a compound's gender is its head's
    assert morphology.readings("Benutzer", vocab) == {("m", "sg"), ("*", "pl")}  # the plural is the same word
    assert morphology.readings("schnell", vocab) == set()  # no noun


def test_a_distractor_must_fit_the_gap_s_article_gender_and_number():
    from tutor.questions import morphology

    vocab = spans.Vocabulary.from_texts([NOUNS], language="de")
    assert morphology.agrees("Datei", "Konsole", "jede", vocab)
    assert not morphology.agrees("Module", "Konsole", "jede", vocab)  # "Jede Module": a plural after "jede"
    assert not morphology.agrees("Datei", "Prozess", "der", vocab)  # "der ___, der": only a masculine fits
    assert morphology.agrees("Benutzer", "Prozess", "der", vocab)
    assert morphology.agrees("Module", "Verzeichnisse", "", vocab)
    assert not morphology.agrees("Konsole", "Verzeichnisse", "", vocab)
    assert not morphology.agrees("Passwort", "Prozess", "", vocab)


def test_noun_distractors_agree_with_the_key_and_code_is_chosen_before_nouns():
    from tutor.questions import morphology

    text = NOUNS + "\nDer Befehl sudo(8) gibt einem Benutzer begrenzte Rechte auf der Konsole des Systems."
    vocab = spans.Vocabulary.from_texts([text, "Die Befehle mount(8), fdisk(8), parted(8), chmod(1) und bash(1) sind "
                                               "wichtig. Der Befehl ls(1) zeigt Dateien im Format mbox(5)."] * 3,
                                        language="de")
    sentence = "Der Befehl sudo(8) gibt einem Benutzer begrenzte Rechte auf der Konsole des Systems."
    found = spans.answer_candidates(sentence, None, "de", vocabulary=vocab)
    assert found and found[0].span == "sudo(8)"  # not "Konsole" or "Benutzer" of the same sentence
    commands = spans.distractor_candidates(found[0], None, 5, vocabulary=vocab, embed=_embed)
    assert len(commands) >= 3 and "mbox(5)" not in commands  # a file format is no command
    assert not {"chmod(1)", "bash(1)", "ls(1)"} & set(commands)  # nor is everyone's command an administrator's
    keys = ("Die Alt-Taste liegt links. Die Enter-Taste liegt rechts. Die Strg-Taste liegt unten. Die Festplatte "
            "dreht sich. Die Module laden. Die Tab-Taste ist groß. Der Prozess läuft. Eine Konsole zeigt Text.")
    vocab = spans.Vocabulary.from_texts([keys, NOUNS] * 3, language="de")
    sentence = "Sie schalten mit der linken Alt-Taste und einer Funktionstaste zwischen den Konsolen um."
    key = spans.Candidate(sentence, sentence.index("Alt-Taste"), sentence.index("Alt-Taste") + 9, "Alt-Taste",
                          spans.TERM)
    wrong = spans.distractor_candidates(key, None, 3, vocabulary=vocab, embed=_embed)
    # only keys: "Festplatte" fits the grammar (feminine singular) but is no key; "Module", "Prozess" fit neither
    assert sorted(wrong) == ["Enter-Taste", "Strg-Taste", "Tab-Taste"]
    assert all(morphology.agrees(word, "Alt-Taste", "der", vocab) for word in wrong)


def test_a_code_key_inside_a_longer_command_line_or_spelled_by_its_sentence_is_no_key():
    vocab = spans.Vocabulary.from_texts(["Der Befehl vim(1) und mc(1) und /root und /etc und perlre(1) und "
                                         "grep(1) stehen hier."] * 3, language="de")
    line = 'Die Verzeichnisse beider Fenster können als Argumente angegeben werden, zum Beispiel "mc /etc /root".'
    assert all(c.span != "/root" for c in spans.answer_candidates(line, None, "de", vocabulary=vocab))
    spelled = 'Nutzen Sie das Programm "vimtutor", um die Verwendung von vim(1) interaktiv zu erlernen.'
    assert all(c.span != "vim(1)" for c in spans.answer_candidates(spelled, None, "de", vocabulary=vocab))


def test_a_code_key_the_sentence_spells_or_gives_as_an_example_is_no_key():
    vocab = spans.Vocabulary.from_texts(['Die Dateien "/etc/motd", "/etc/fstab", "/dev/sda" und "/dev/sr0" und '
                                         '"/etc/passwd" stehen dort.'] * 3, language="de")
    for sentence in ['Das System zeigt eine Grußnachricht, die in "/etc/motd" (Message Of The Day) gespeichert ist.',
                     'Sie können UUIDs verwenden, um Geräte einzubinden, statt der Gerätenamen wie "/dev/sda".']:
        assert not [c for c in spans.answer_candidates(sentence, None, "de", vocabulary=vocab)
                    if c.kind == spans.COMMAND], sentence
    kept = 'Die Dateisysteme, die beim Systemstart eingebunden werden, stehen in der Konfigurationsdatei "/etc/fstab".'
    assert [c.span for c in spans.answer_candidates(kept, None, "de", vocabulary=vocab)] == ["/etc/fstab"]


def test_an_environment_variable_s_wrong_answers_are_environment_variables():
    vocab = spans.Vocabulary.from_texts(['Die Variablen "$PATH", "$HOME", "$LANG", "$EDITOR", "$unit", "$month" und '
                                         '"$LC_" kommen vor.'] * 3, language="de")
    sentence = 'Sie können die Umgebungsvariable "$PATH" der Bash-Shell in der Datei "~/.bashrc" verändern.'
    key = spans.Candidate(sentence, sentence.index("$PATH"), sentence.index("$PATH") + 5, "$PATH", spans.COMMAND)
    assert sorted(spans.distractor_candidates(key, None, 3, vocabulary=vocab, embed=_embed)) == [
        "$EDITOR", "$HOME", "$LANG"]


def test_a_likeness_to_what_the_sentence_does_not_say_and_a_case_slip_are_no_statements():
    vocab = spans.Vocabulary.from_texts(['Die Befehle vim(1), perl(1), awk(1) und sed(1) und die Ziele '
                                         '"multi-user.target" und "graphical.target" stehen dort.'] * 3,
                                        language="de")
    likeness = ('Mehrere Dateien können auf ähnlichem Wege mittels regulärer Ausdrücke mit vim(1) oder perl(1) '
                'verarbeitet werden.')
    slip = 'Die emulierten Runlevel 2 bis 4 verweisen über symbolische Links alle auf des gleiche "multi-user.target".'
    for sentence in (likeness, slip, likeness.replace("auf ähnlichem Wege", "ebenso")):
        assert not spans.answer_candidates(sentence, None, "de", vocabulary=vocab), sentence
    kept = ('Mehrere Dateien können mittels regulärer Ausdrücke mit vim(1) oder perl(1) in einem Durchgang '
            'verarbeitet werden.')
    assert spans.answer_candidates(kept, None, "de", vocabulary=vocab)
    # "Unix-ähnlich" is a word of its own, and "des großen" agrees
    assert spans._standalone("Das Unix-ähnliche System nutzt den Befehl perl(1) zur Verarbeitung großer Dateien.",
                             spans.tokens("Das Unix-ähnliche System nutzt den Befehl perl(1) zur Verarbeitung großer "
                                          "Dateien."), "de")


def test_wrong_answers_of_another_kind_than_the_key_are_no_choices():
    # the manual's section says what kind of command it is
    assert spans.other_section("cp(1)", "gpm(8)") and spans.other_section("crontab(1)", "pam_unix(8)")
    assert not spans.other_section("parted(8)", "mount(8)") and not spans.other_section("openssl(1ssl)", "ssh(1)")
    assert not spans.other_section("$HOME", "mount(8)")  # not a man page: the other rules decide
    # a path under another top directory (a device among configuration files); a top-level key draws top-level ones
    assert spans.other_tree("/dev/sda", "/etc/fstab") and spans.other_tree("/var/lock", "/etc/fstab")
    assert not spans.other_tree("/etc/crypttab", "/etc/fstab")
    assert spans.other_tree("/dev/shm", "/run") and not spans.other_tree("/tmp", "/run")
    assert not spans.other_tree("mount(8)", "/etc/fstab")
    # a wrong answer the course uses in more than twice as many passages as the key is known as something else
    vocab = spans.Vocabulary.from_texts(["Für den Benutzer ist ssh(1) sicherer als telnet(1)."] * 5
                                        + ["Mit ls(1) sehen Sie die Dateien, mit find(1) finden Sie sie."] * 12,
                                        language="de")
    assert spans.too_common("ls(1)", "ssh(1)", vocab)
    assert not spans.too_common("ls(1)", "find(1)", vocab) and not spans.too_common("telnet(1)", "ssh(1)", vocab)


def _bag(texts):
    """Bag-of-words vectors (words hashed into 256 slots, stop words left out): texts that share words are near (a
    stand-in for the course's embedding model)."""
    import math
    import zlib

    from courses.language import STOPWORDS

    out = []
    for text in texts:
        vector = [0.0] * 256
        for _s, _e, word in spans.tokens(text):
            if word.casefold() not in STOPWORDS and len(word) > 2:
                vector[zlib.crc32(word.casefold()[:6].encode()) % 256] += 1.0
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        out.append([x / norm for x in vector])
    return out


OTHER = [f"Ein Absatz über anderes, Nummer {n}, ohne die Wörter der Sätze oben." for n in range(200)]


def _candidate(sentence, span):
    start = sentence.index(span)
    return spans.Candidate(sentence, start, start + len(span), span, spans.COMMAND)


PRINTING = "Die beiden von CUPS angebotenen Befehle lp(1) und lpr(1) bieten Optionen zum Drucken von Dateien."


def test_what_the_course_says_a_word_is_comes_from_its_sentences_and_its_package_table_rows():
    rows = ("apt-file V:17, I:74 89 APT-Paketsuch-Werkzeug - Befehlszeilen-Interface apt-rdepends V:0, I:6 39 "
            "rekursive Auflistung von Paketabhängigkeiten\nTabelle 2.1: Liste von Debians Paketmanagement-Werkzeugen")
    assert spans.table_rows(rows) == [("apt-file", "APT-Paketsuch-Werkzeug - Befehlszeilen-Interface"),
                                      ("apt-rdepends", "rekursive Auflistung von Paketabhängigkeiten")]
    html = "Paket\nPopcon\nGröße\nBeschreibung\ngpm\nV:11, I:14\n521\nKopieren und Einfügen auf der Textkonsole (Daemon)\n"
    assert spans.table_rows(html) == [("gpm", "Kopieren und Einfügen auf der Textkonsole (Daemon)")]
    vocab = spans.Vocabulary.from_texts([PRINTING, PRINTING.replace("Dateien", "Dateien aller Art"), html,
                                         "Mit lpr(1) drucken Sie eine Datei auf dem Standarddrucker."], language="de")
    assert spans.descriptions("gpm(8)", PRINTING, vocab) == ["Kopieren und Einfügen auf der Textkonsole (Daemon)"]
    # the key's own sentence and its copy (the PDF holds the HTML chapters again) say nothing more of it
    assert spans.descriptions("lpr(1)", PRINTING, vocab) == ["Mit lpr(1) drucken Sie eine Datei auf dem Standarddrucker."]


def test_a_wrong_man_page_the_course_describes_as_something_else_than_the_key_is_implausible():
    vocab = spans.Vocabulary.from_texts([
        PRINTING, "Mit lpr(1) drucken Sie Dateien auf dem Drucker, den CUPS bereitstellt.",
        "Der Befehl lpq(1) zeigt die Warteschlange der Dateien, die CUPS drucken soll.",
        "Die reinen X-Anwendungen xev(1) und xwininfo(1) zeigen Ereignisse und Fenster an.", *OTHER], language="de")
    check = spans.Plausibility(_candidate(PRINTING, "lpr(1)"), vocab, _bag)
    assert check.applies and check.plausible("lpq(1)")  # described with printing, as the key is
    assert not check.plausible("xev(1)") and check.below("xev(1)") > spans.PLAUSIBLE_MARGIN  # an X application
    assert check.plausible("lpstat(1)")  # the course says nothing of it: no evidence either way
    # paths, options and variables are read by their shape, not by what the course says of them
    path = "Die Optionen zum Einbinden der Dateisysteme werden in \"/etc/fstab\" festgelegt."
    assert not spans.Plausibility(_candidate(path, "/etc/fstab"), vocab, _bag).applies


def test_a_wrong_answer_whose_name_holds_a_word_of_the_sentence_lures_and_the_key_s_own_words_do_not():
    candidate = _candidate(PRINTING, "lpr(1)")
    assert spans.lures("lpoptions(1)", candidate)  # "bieten Optionen": the sentence seems to name it
    assert not spans.lures("lpq(1)", candidate) and not spans.lures("lpstat(1)", candidate)
    # a word the key's name holds as well is no lure (gives_away reads the key's name in the sentence)
    mail = "Sie können eine Mailbox aufsplitten, indem Sie procmail(1) und formail(1) verwenden."
    assert not spans.lures("mailx(1)", _candidate(mail, "formail(1)"))
    assert spans.lures("mailbox-tool(1)", _candidate(mail, "formail(1)"))  # "Mailbox" stands in its name only


# --- Branch gapfill8: the group the course names a key in, and its one-line definition ------------------------------

EDITORS = "Wenn Sie vim(1) nicht mögen, können Sie für die meisten Systemwartungsaufgaben auch mcedit(1) benutzen."


def test_wrong_answers_come_from_the_group_the_course_names_the_key_and_its_partner_in():
    vocab = spans.Vocabulary.from_texts([
        EDITORS, "Wenn Ihnen vim(1) oder nano(1) nicht behagen, setzen Sie den Editor auf mcedit(1).",
        "Die Editoren emacs(1) und mcedit(1) laufen auch auf der Textkonsole.",
        "Mit grep(1), sed(1) und perl(1) verarbeiten Sie Text über reguläre Ausdrücke.", *OTHER], language="de")
    candidate = _candidate(EDITORS, "vim(1)")
    partners = spans.course_partners(candidate, vocab)
    assert partners == ["mcedit(1)"]  # the course names vim(1) with mcedit(1) in another sentence
    assert spans.outside_group("sed(1)", partners, EDITORS, vocab)  # never named with mcedit(1): the odd one out
    assert spans.outside_group("perl(1)", partners, EDITORS, vocab)
    assert not spans.outside_group("emacs(1)", partners, EDITORS, vocab)
    # the key's own sentence (and its copy in the PDF) groups nothing: without another sentence, no partner
    alone = spans.Vocabulary.from_texts([EDITORS, EDITORS.replace("benutzen", "verwenden"), *OTHER], language="de")
    assert spans.course_partners(candidate, alone) == []
    # paths, options and variables are not grouped this way
    path = "Die Datei \"/etc/fstab\" ersetzt /etc/mtab(5) nicht."
    assert spans.course_partners(_candidate(path, "/etc/fstab"), vocab) == []


CRYPT = "Bei verschlüsselten Daten wird ein Festplatten-Image mittels fallocate(1) erstellt und mit cryptsetup(8) konfiguriert."
CRYPT_ROWS = ("cryptsetup V:30, I:77 406 Werkzeug zur Verschlüsselung von blockorientierten Geräten (dm-crypt / LUKS)\n"
              "xfsdump V:1, I:4 3000 Sicherung und Wiederherstellung von XFS-Dateisystemen\n")


def test_a_sentence_that_says_what_the_key_s_table_row_says_and_of_no_wrong_answer_gives_it_away():
    texts = [CRYPT, CRYPT_ROWS, "Mit xfsdump(8) und xfsrestore(8) sichern Sie XFS-Dateisysteme.",
             "Mit umount(8) hängen Sie ein Dateisystem aus.", *OTHER]
    vocab = spans.Vocabulary.from_texts(texts, language="de")
    candidate = _candidate(CRYPT, "cryptsetup(8)")
    assert spans.defined_away(candidate, ["xfsdump(8)", "xfsrestore(8)", "umount(8)"], vocab) == {"versc"}
    # a wrong answer the course also says encrypts: the sentence no longer singles the key out
    vocab = spans.Vocabulary.from_texts([*texts, "Auch cryptmount(8) richtet die Verschlüsselung ein."],
                                        language="de")
    assert not spans.defined_away(candidate, ["xfsdump(8)", "cryptmount(8)", "umount(8)"], vocab)
    # a key with no table row: the rule has no definition to read (its sentences repeat what the course teaches)
    no_row = spans.Vocabulary.from_texts([CRYPT, "Mit cryptsetup(8) richten Sie die Verschlüsselung ein.", *OTHER],
                                         language="de")
    assert not spans.defined_away(candidate, ["xfsdump(8)", "xfsrestore(8)", "umount(8)"], no_row)


# --- Branch open9: a sentence that asks for the key and not for any word of its kind ----------------------------------

BASHRC = "Sie können die Umgebungsvariable \"$PATH\" der Bash-Shell über die Dateien \"~/.bashrc\" verändern."
VARIABLES = ["Die Umgebungsvariable $PATH nennt die Verzeichnisse, in denen die Shell nach Programmen sucht.",
             "Die Umgebungsvariable $HOME nennt das Heimatverzeichnis des Benutzers.",
             "Die Umgebungsvariable $LANG legt das Gebietsschema fest."]


def test_a_sentence_that_may_hold_for_any_word_of_the_key_s_kind_singles_nothing_out():
    vocab = spans.Vocabulary.from_texts([BASHRC, *VARIABLES, *OTHER], language="de")
    wrong = ["$HOME", "$LANG", "$CDPATH"]
    # "Umgebungsvariable" the course says of every variable; "~/.bashrc" is a file, not a second variable
    assert spans.singled_out(_candidate(BASHRC, "$PATH"), wrong, vocab) == set()
    # what the course says of $PATH alone asks for it
    search = "Welches Programm die Shell startet, entscheidet die Reihenfolge der Verzeichnisse in \"$PATH\"."
    vocab = spans.Vocabulary.from_texts([search, *VARIABLES, *OTHER], language="de")
    assert spans.singled_out(_candidate(search, "$PATH"), wrong, vocab) >= {"progr"}
    # a second variable beside the key: the sentence pairs them
    pair = "Viele Programme lesen die Umgebungsvariablen \"$EDITOR\" oder \"$VISUAL\"."
    assert spans.singled_out(_candidate(pair, "$VISUAL"), wrong, vocab) == {"$EDITOR"}


def test_a_word_the_course_says_of_a_wrong_answer_too_singles_the_key_out_no_more():
    options = "Auf Unix-artigen Nicht-Debian-Systemen werden einige Optionen von find(1) nicht unterstützt."
    texts = [options, "Mit find(1) und seinen Optionen suchen Sie Dateien nach Namen.",
             "Die Optionen von xargs(1) lesen Argumente von der Standardeingabe.",
             "Mit cpio(1) packen Sie Archive.", "Mit bash(1) starten Sie eine Shell.", *OTHER]
    vocab = spans.Vocabulary.from_texts(texts, language="de")
    candidate = _candidate(options, "find(1)")
    assert spans.singled_out(candidate, ["cpio(1)", "bash(1)", "tar(1)"], vocab) == {"optio"}
    assert spans.singled_out(candidate, ["cpio(1)", "bash(1)", "xargs(1)"], vocab) == set()  # xargs has options too
    # "Nicht-Debian-Systemen" is no word about find(1), though the course writes "nicht" beside it elsewhere
    assert "nicht" not in spans.singled_out(candidate, ["cpio(1)", "bash(1)", "tar(1)"], vocab)


def test_a_piece_of_a_file_s_mode_is_no_option():
    vocab = spans.Vocabulary.from_texts(["Mit ps --pid 1 sehen Sie den ersten Prozess.", "-rw-r--r-- 1 root root",
                                         "Die Datei hat die Rechte -rw-r und wird mit rm -rf entfernt."], language="en")
    assert vocab.kind_of("-rw-r") is None and vocab.kind_of("-rw-r--r--") is None
    assert vocab.kind_of("-rf") == spans.COMMAND and vocab.kind_of("--pid") == spans.COMMAND


def test_a_wrong_answer_named_after_the_key_points_to_it():
    assert spans.named_after("ssh-add(1)", "ssh(1)")
    assert spans.named_after("/etc/fstab.d", "/etc/fstab")
    assert not spans.named_after("ssh(1)", "ssh-add(1)")
    assert not spans.named_after("screen(1)", "ssh(1)")
    assert not spans.named_after("$LANGUAGE", "$LANG")  # a sibling of another name (same_family reads those)
    assert spans.named_after("exim(8)", "exim4(8)") and spans.named_after("python3(1)", "python(1)")
    assert not spans.named_after("mkfs.ext3(8)", "mkfs.ext4(8)") and not spans.named_after("ext3", "ext4")


def test_a_sentence_that_points_here_or_to_this_document_is_no_statement():
    """Judge 9: "Check your USB memory stick location with mount(8) first before executing commands here" and "you
    can process this document with tex(1)" need the text around them."""
    for sentence, language in [
            ("Check your USB memory stick location with mount(8) first before executing commands here.", "en"),
            ("I heard that you can process this document with tex(1) after commenting lines 7 to 10.", "en"),
            ("The empty disk image can be made using dd(1) as follows.", "en"),
            ("Die Befehle hier führen Sie mit sudo(8) aus.", "de")]:
        assert not spans._standalone(sentence, spans.tokens(sentence), language), sentence
    kept = "Primary debugger on Debian is gdb(1) which enables you to inspect a program while it executes."
    assert spans._standalone(kept, spans.tokens(kept), "en")
    assert spans._standalone("Die Hierarchie der Prozesse zeigt pstree(1) an.",
                             spans.tokens("Die Hierarchie der Prozesse zeigt pstree(1) an."), "de")

"""Words a course never uses (courses.vocabulary): a question about a tool the texts do not name is declined and
says which word it did not find; inflected, compound and misspelt words of the course are not taken for such names.
Real PostgreSQL (the course's term counts, fuzzystrmatch) and the demo course's German chapter 3."""

import pytest

from courses.vocabulary import (
    english_names,
    foreign_words,
    general_word,
    names,
    question_words,
    unknown_words,
)
from tests.support import make_course, point_tutor_at
from tests.test_tutor_quotes import demo_chapter


@pytest.mark.parametrize("word", ["verwandle", "verringere", "zerkratzte", "unverschlüsselte", "rastert",
                                  "pixelbild", "selbstdiagnose", "firmennetz", "administratorkennwort", "zwischen"])
def test_inflected_and_compound_german_words_are_general_language(word):
    assert general_word(word)


@pytest.mark.parametrize("word", ["mitinstalliert", "umbelegen", "herausgefunden", "hinzugefügt"])
def test_a_separable_particle_before_a_german_word_is_general_language(word):
    # blind fresh10: "mitinstalliert" and "umbelegen" were taken for names the course lacks
    assert general_word(word)


@pytest.mark.parametrize("word", ["podman", "tailscale", "wireguard", "nextcloud", "certbot", "mokutil", "zram",
                                  "yubikey", "rspamd"])
def test_names_of_tools_are_no_general_language(word):
    assert not general_word(word)


def test_the_words_of_a_question_include_the_parts_of_hyphenated_ones():
    assert question_words("Wie richte ich einen Kubernetes-Cluster ein?") == [
        "richte", "einen", "kubernetes", "cluster"]


def test_hyphenated_names_of_english_words_are_judged_whole():
    assert english_names("Wie blocke ich Werbung im Heimnetz mit Pi-hole?") == ["pi-hole"]
    assert english_names("Wie konfiguriere ich nginx als Reverse-Proxy?") == ["reverse-proxy"]
    # German compounds with a hyphen are judged by their parts
    assert english_names("Wie sichere ich mein Home-Verzeichnis auf einen USB-Datenträger?") == []
    assert english_names("Wie lade ich die Unit-Konfigurationsdateien neu?") == []


def test_english_words_of_a_german_question_are_foreign_unless_german_uses_them_often():
    assert foreign_words("Wie verwalte ich meinen Server im Browser mit Cockpit?") == ["cockpit"]
    assert foreign_words("Wie richte ich einen Raspberry als Backup-Server ein?") == ["raspberry", "backup"]
    # "Server", "Browser", "Computer" are German by now; "plane" may be "planen", "Theme" "Themen"
    assert foreign_words("Wie plane ich auf dem Computer ein neues System?") == []
    assert foreign_words("Wie ändere ich das Theme?") == []
    assert foreign_words("How do I manage my server with Cockpit?") == []  # an English question: its own words


@pytest.fixture
def chapter3(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return make_course(("ch03.de.html", demo_chapter().decode()), title="Debian-Referenz")


@pytest.mark.django_db
def test_only_what_the_course_never_names_is_unknown(chapter3):
    # chapter 3 never speaks of containers either
    assert unknown_words(chapter3.pk, "Wie starte ich Container ohne root mit podman?") == ["container", "podman"]
    assert unknown_words(chapter3.pk, "Wie verbinde ich mich per Tailscale oder WireGuard-VPN?") == [
        "tailscale", "wireguard"]
    assert unknown_words(chapter3.pk, "Wie zeige ich mit journalctl das Journal an?") == []  # the course's words
    assert unknown_words(chapter3.pk, "Wie zeige ich mit jurnalctl das Journal an?") == []  # misspelt, one edit
    assert unknown_words(chapter3.pk, "Welche Kernelkonfiguration brauche ich?") == []  # Kernel + Konfiguration
    assert names(chapter3.pk, "Wozu dient journalctl, und wozu podman?").named == ("journalctl",)


@pytest.mark.django_db
def test_a_near_spelling_of_a_short_course_word_is_a_name_of_its_own(chapter3):
    # "eudev" is one edit from the course's "udev", but a word of four letters is too short for a misspelling to
    # be told from another name ("htop" and "top")
    assert unknown_words(chapter3.pk, "Wie ersetze ich den Dienst durch eudev?") == ["eudev"]
    assert unknown_words(chapter3.pk, "Wie zeige ich mit jurnalctl das Journal an?") == []  # longer: misspelt


@pytest.mark.django_db
def test_a_hyphenated_english_name_is_unknown_unless_the_course_holds_it_or_all_its_parts(chapter3):
    assert unknown_words(chapter3.pk, "Wie blocke ich Werbung im Heimnetz mit Pi-hole?") == ["pi-hole"]
    assert unknown_words(chapter3.pk, "Was zeigt systemctl list-units an?") == []  # the course's own word
    assert unknown_words(chapter3.pk, "Wie lade ich meine User-Units neu?") == []  # "user" and "units" it uses


NOTES = """# Shell und Dienste

Tragen Sie die Zeile in die Datei ~/.bashrc ein, dann gilt sie für jede neue Shell.

Debian stellt seine freien Quellen auf einem git-Repository bereit. Der kleine Port-Knock-Daemon knockd öffnet
einen Port erst nach einer Folge von Verbindungsversuchen.
"""


@pytest.fixture
def notes(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return make_course(("notizen.md", NOTES), title="Notizen")


@pytest.mark.django_db
def test_a_word_of_a_path_is_known_where_a_path_of_the_course_holds_it(notes):
    # blind fresh10: "~/.bashrc" gave "bashrc", which the course writes only inside its paths
    assert unknown_words(notes.pk, "Was trage ich in die ~/.bashrc ein?") == []
    assert unknown_words(notes.pk, "Was trage ich in die ~/.zshrc ein?") == ["zshrc"]


@pytest.mark.django_db
def test_a_hyphenated_name_s_parts_are_found_by_their_english_stems(notes):
    # blind fresh11: "Git-Repositories" for the course's "git-Repository", "Port-Knocking" for "Port-Knock-Daemon"
    assert unknown_words(notes.pk, "Wo stellt Debian seine Git-Repositories bereit?") == []
    assert unknown_words(notes.pk, "Welcher Daemon kann Port-Knocking?") == []
    assert unknown_words(notes.pk, "Wie blocke ich Werbung mit Pi-hole?") == ["pi-hole"]


@pytest.mark.django_db
def test_an_english_word_of_a_german_question_is_unknown_unless_the_course_uses_it(chapter3, settings, tmp_path):
    assert unknown_words(chapter3.pk, "Wie verwalte ich den Rechner im Browser mit Cockpit?") == ["cockpit"]
    assert unknown_words(chapter3.pk, "Wie wechsle ich das Target?") == []  # the course's word
    assert unknown_words(chapter3.pk, "Wie starte ich den Desktop?") == []  # inside "Debian-Desktop-Systemen"
    settings.SYNONYMS_FILE = str(tmp_path / "none.txt")  # no synonym list
    assert unknown_words(chapter3.pk, "Wie schalte ich den Monitor ab?") == ["monitor"]
    thesaurus = tmp_path / "openthesaurus.txt"
    thesaurus.write_text("Monitor;Bildschirm;Anzeige\n", encoding="utf-8")
    settings.SYNONYMS_FILE = str(thesaurus)
    assert unknown_words(chapter3.pk, "Wie schalte ich den Monitor ab?") == []  # the course says "Anzeige"


@pytest.mark.django_db
def test_a_question_about_something_the_texts_never_name_is_declined_naming_it(chapter3):
    from tutor.chat.answering import Collector, respond
    from tutor.models import TutorConfig

    config = point_tutor_at(chapter3, "http://127.0.0.1:9/v1", answer_mode=TutorConfig.QUOTES_ONLY)
    out = Collector()
    outcome = respond(chapter3, config, "Wie starte ich Prozesse ohne root mit podman?", [], out)
    assert outcome.declined and outcome.evidence["retrieval"]["unknown"] == ["podman"]
    assert "\u201cpodman\u201d" in outcome.text and outcome.text == "".join(out.text)

    covered = respond(chapter3, config, "Wie zeige ich das Journal des letzten Bootvorgangs an?", [], Collector())
    assert not covered.declined and "unknown" not in covered.evidence["retrieval"]
    assert any("journalctl -b" in quote["text"] for quote in covered.quoted)


@pytest.mark.django_db
def test_a_question_asking_for_a_figure_the_quotes_do_not_hold_is_declined(chapter3):
    # retrieval finds the passages about the boot process either way; only the figure decides
    from tutor.chat.answering import Collector, respond
    from tutor.models import TutorConfig

    config = point_tutor_at(chapter3, "http://127.0.0.1:9/v1", answer_mode=TutorConfig.QUOTES_ONLY)
    answered = respond(chapter3, config, "Seit welcher Kernel-Version gibt es udev?", [], Collector())
    assert not answered.declined and "figure" not in answered.evidence["retrieval"]
    assert any("2.6" in quote["text"] for quote in answered.quoted)

    out = Collector()
    declined = respond(chapter3, config, "Wie viele Sekunden dauert der Boot-Prozess von Debian im Schnitt?", [], out)
    assert declined.declined and declined.evidence["retrieval"]["figure"] is False
    assert declined.evidence["retrieval"]["level"] == "none" and not declined.quoted
    assert "nennen die Kurstexte nicht" in declined.text and out.quoted == []  # no quote went out


@pytest.mark.django_db
def test_a_question_asking_for_a_default_the_quotes_do_not_state_is_declined(chapter3):
    from tutor.chat.answering import Collector, respond
    from tutor.models import TutorConfig

    config = point_tutor_at(chapter3, "http://127.0.0.1:9/v1", answer_mode=TutorConfig.QUOTES_ONLY)
    answered = respond(chapter3, config, "Welcher Pfad zum init-Programm ist voreingestellt?", [], Collector())
    assert not answered.declined and "default" not in answered.evidence["retrieval"]
    assert any("/sbin/init" in quote["text"] for quote in answered.quoted)

    out = Collector()
    declined = respond(chapter3, config, "Welche Schriftart nutzt die Konsole standardmäßig?", [], out)
    assert declined.declined and declined.evidence["retrieval"]["default"] is False
    assert "voreingestellt ist, sagen die Kurstexte nicht" in declined.text and out.quoted == []

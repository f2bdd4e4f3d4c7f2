"""Words a course never uses (courses.vocabulary): a question about a tool the texts do not name is declined and
says which word it did not find; inflected, compound and misspelt words of the course are not taken for such names.
Real PostgreSQL (the course's term counts, fuzzystrmatch) and the demo course's German chapter 3."""

import pytest

from courses.vocabulary import general_word, names, question_words, unknown_words
from tests.support import make_course, point_tutor_at
from tests.test_tutor_quotes import demo_chapter


@pytest.mark.parametrize("word", ["verwandle", "verringere", "zerkratzte", "unverschlüsselte", "rastert",
                                  "pixelbild", "selbstdiagnose", "firmennetz", "administratorkennwort", "zwischen"])
def test_inflected_and_compound_german_words_are_general_language(word):
    assert general_word(word)


@pytest.mark.parametrize("word", ["podman", "tailscale", "wireguard", "nextcloud", "certbot", "mokutil", "zram",
                                  "yubikey", "rspamd"])
def test_names_of_tools_are_no_general_language(word):
    assert not general_word(word)


def test_the_words_of_a_question_include_the_parts_of_hyphenated_ones():
    assert question_words("Wie richte ich einen Kubernetes-Cluster ein?") == [
        "richte", "einen", "kubernetes", "cluster"]


@pytest.fixture
def chapter3(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return make_course(("ch03.de.html", demo_chapter().decode()), title="Debian-Referenz")


@pytest.mark.django_db
def test_only_what_the_course_never_names_is_unknown(chapter3):
    assert unknown_words(chapter3.pk, "Wie starte ich Container ohne root mit podman?") == ["podman"]
    assert unknown_words(chapter3.pk, "Wie verbinde ich mich per Tailscale oder WireGuard-VPN?") == [
        "tailscale", "wireguard"]
    assert unknown_words(chapter3.pk, "Wie zeige ich mit journalctl das Journal an?") == []  # the course's words
    assert unknown_words(chapter3.pk, "Wie zeige ich mit jurnalctl das Journal an?") == []  # misspelt, one edit
    assert unknown_words(chapter3.pk, "Welche Kernelkonfiguration brauche ich?") == []  # Kernel + Konfiguration
    assert names(chapter3.pk, "Wozu dient journalctl, und wozu podman?").named == ("journalctl",)


@pytest.mark.django_db
def test_a_question_about_something_the_texts_never_name_is_declined_naming_it(chapter3):
    from tutor.chat.answering import Collector, respond
    from tutor.models import TutorConfig

    config = point_tutor_at(chapter3, "http://127.0.0.1:9/v1", answer_mode=TutorConfig.QUOTES_ONLY)
    out = Collector()
    outcome = respond(chapter3, config, "Wie starte ich Container ohne root mit podman?", [], out)
    assert outcome.declined and outcome.evidence["retrieval"]["unknown"] == ["podman"]
    assert "\u201cpodman\u201d" in outcome.text and outcome.text == "".join(out.text)

    covered = respond(chapter3, config, "Wie zeige ich das Journal des letzten Bootvorgangs an?", [], Collector())
    assert not covered.declined and "unknown" not in covered.evidence["retrieval"]
    assert any("journalctl -b" in quote["text"] for quote in covered.quoted)

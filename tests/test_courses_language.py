"""Language handling: detection, text search configurations, stop words, German query words and separable verbs."""

from courses.language import STOPWORDS, detect_language, keyword_text, separable_verbs, ts_config


def test_language_detection():
    assert detect_language("Das ist ein Text, der nicht auf Englisch geschrieben ist und mit dem System arbeitet.") == "de"
    assert detect_language("This is a text that is written in English and it works with the system.") == "en"


def test_text_search_configurations_and_stop_words():
    assert (ts_config("de"), ts_config("en"), ts_config("fr")) == ("german", "english", "simple")
    assert {"warum", "der", "what"} <= STOPWORDS and "prozess" not in STOPWORDS


def test_question_words_are_left_out_of_the_full_text_query():
    assert keyword_text("Wie kann ich das System herunterfahren?") == "das System herunterfahren"


def test_german_separable_verbs_are_joined_again():
    assert "herunterfahren" in separable_verbs("Mit welchem Befehl fahre ich das System sofort herunter?")
    assert "auflisten" in separable_verbs("Wie liste ich die installierten Pakete auf?")
    assert "wiederherstellen" in separable_verbs("Was stellt ein System von DVD wieder her?")
    assert "einrichten" in separable_verbs("Wie richte ich das Netz ein, und was nun?")
    assert separable_verbs("Was macht systemd?") == []
    assert separable_verbs("Auf welcher Seite steht das?") == []  # a particle that does not end the clause

"""The one map from a failure's code to what the person reads: for a chat answer, a question generation and a
document's indexing. Codes are stored with what failed (Message.error, QuestionSet.generation_error,
Document.error_code); the text is made when shown, in the reader's language. And ProblemError, the base of the
apps' refusals that the API answers as problem details (config.api) without knowing the apps."""

from django.utils.translation import gettext_lazy as _

CHAT, QUESTIONS, INGEST = "chat", "questions", "ingest"
INTERNAL = "internal"

MESSAGES = {
    CHAT: {
        "unavailable": _("The tutor's language model cannot be reached right now. Your question is saved: "
                         "please try again in a few minutes, and tell your teacher if it keeps happening."),
        "interrupted": _("The language model stopped in the middle of this answer. Your question is saved: "
                         "please try again."),
        "busy": _("Many questions are waiting for the language model right now, and yours waited too long. "
                  "Your question is saved: please try again in a few minutes."),
        "no_model": _("No language model is set up for this tutor yet, so it cannot answer. Your question "
                      "is saved; please tell your teacher."),
        "bad_response": _("The language model's reply could not be read (a problem on the server, not "
                          "with your question). Your question is saved: please try again."),
        "timeout": _("The answer took too long. Your question is saved; please try again."),
        "context_exceeded": _("Your question and the course texts are longer than the language model can read at "
                              "once. Please ask a shorter question."),
        INTERNAL: _("Something went wrong while answering. Your question is saved; please try again."),
    },
    QUESTIONS: {
        "unavailable": _("The language model server is not reachable or did not answer in time. "
                         "Please try again later."),
        "bad_response": _("The language model did not answer in the expected form."),
        "truncated": _("The language model's answer reached its length limit before a single question was "
                       "complete. Ask for fewer questions or choose a shorter section."),
        "busy": _("The language model was busy with other work for too long. Please try again later."),
        "no_model": _("No language model is set up for this installation."),
        "no_text": _("The chosen section has no indexed text."),
        "no_valid": _("The language model produced no usable questions."),
        "no_gap": _("This section has no sentence from which a question could be built without the model (a "
                    "command, path, option, number or key term to leave out, with wrong answers of the same kind "
                    "from the course). Choose another section or another kind of question."),
        "no_span": _("This section has no sentence with an answer the tool can fix for a multiple-choice or "
                     "short-answer question (a command, path, option, number or key term), so the model was not "
                     "asked. Choose another section or another kind of question."),
        "context_exceeded": _("The course text and the task were longer than the language model can read at once, "
                              "also after shortening them. Choose a shorter section or set a larger context window "
                              "(INFERENCE_CONTEXT_TOKENS) for this model."),
        "time_spent": _("The time for these questions (GENERATION_ITEM_SECONDS per question) was spent before all "
                        "were written. Generate again to fill what is missing."),
        INTERNAL: _("Something went wrong while generating the questions."),
    },
    INGEST: {
        "broken_pdf": _("The PDF file is damaged and cannot be read. Please export it again and upload the new file."),
        "encrypted_pdf": _("The PDF file is password-protected. Please upload a version without a password."),
        "broken_docx": _("The Word file is damaged and cannot be read. Please save it again as .docx and upload it."),
        "empty": _("No text was found in this file. Scanned pages without a text layer cannot be read."),
        "encoding": _("The text file's character encoding is not supported. Please save it as UTF-8."),
        "unsupported": _("This file type is not supported."),
        "missing_file": _("The stored file is missing. Please upload the document again."),
        "embedding": _("The embedding model could not index the text. Please try again later."),
        INTERNAL: _("Indexing failed because of an internal error. Please try again or tell your administrator."),
    },
}


def error_message(kind, code):
    """What the person reads for a failure of this kind (CHAT, QUESTIONS, INGEST) and code, in the active
    language; an unknown code reads as the kind's internal error."""
    messages = MESSAGES[kind]
    return str(messages.get(code, messages[INTERNAL]))


class ProblemError(ValueError):
    """A refusal of the domain whose message is meant for the person; the API answers it as a problem of `status`
    with `code` (config.api), the pages show the message. Each app's errors derive from it."""

    status = 400
    code = "invalid"

    @property
    def retry_after(self):
        """Seconds until a retry may succeed (Retry-After of a 429), or None."""
        return None

"""The course tutor: the chat (tutor.chat), the question bank and practice (tutor.questions) and the model
client (tutor.inference), one Django app with the label "tutor"."""

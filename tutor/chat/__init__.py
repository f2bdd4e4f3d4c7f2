"""The chat: answering questions from the course texts, quoting them first."""

"""The question bank and practice: kinds of question, their generation, checks, exports and practice."""

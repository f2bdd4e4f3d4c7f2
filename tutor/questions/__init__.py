"""The question bank and practice: generating, checking, reviewing, importing and exporting questions; students'
practice."""

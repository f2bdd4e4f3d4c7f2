"""CSV the product writes, safe to open in a spreadsheet: a cell that starts with = + - @, a tab or a carriage
return is a formula to Excel, LibreOffice and Google Sheets (``=HYPERLINK(…)`` in a student's answer would run in
the lecturer's spreadsheet), so such a text gets a leading apostrophe, which spreadsheets show as plain text
(OWASP, "CSV Injection"). Every CSV the product writes goes through ``writer``; numbers stay numbers."""

import csv

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """The value, with a leading apostrophe when it is text a spreadsheet would take for a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeWriter:
    """csv.writer whose rows have every text cell passed through safe_cell."""

    def __init__(self, out, **options):
        self._writer = csv.writer(out, **options)

    def writerow(self, row):
        """Write one row, each cell neutralised."""
        return self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows):
        """Write several rows, each cell neutralised."""
        for row in rows:
            self.writerow(row)


def writer(out, **options):
    """A CSV writer for `out` that neutralises formula-like cells (use it instead of csv.writer)."""
    return SafeWriter(out, **options)

"""CSV downloads: streamed a line at a time, and no cell a spreadsheet would run as a formula.

Every export goes through `lines`, so no export can forget the escaping (CSV injection): labels,
names and emails are chosen by people, some of them outside the organization.
"""

import csv

from django.http import StreamingHttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    def write(self, value):
        return value


def safe_cell(value):
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def lines(header, rows):
    """The header, then each row, as CSV text lines (for a StreamingHttpResponse)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([safe_cell(value) for value in row])


def download(filename, csv_lines):
    """A streamed CSV attachment of `csv_lines` (from `lines`)."""
    response = StreamingHttpResponse(csv_lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

"""Two columns of findings stored the way the import writes them fastest, read back as Python values."""
from __future__ import annotations

import json

from django.db import models


def json_text(value) -> str | None:
    """The JSON text of a value as stored: text stays as it is, a parser's RawEntry gives the text it measured."""
    if value is None or isinstance(value, str):
        return value
    text = getattr(value, "json", None)  # worker.scanners._common.RawEntry carries its JSON text
    return text if text is not None else json.dumps(value, default=str, separators=(",", ":"))


class JSONTextField(models.TextField):
    """JSON kept as text: the scanner's raw entry is shown, never queried, so PostgreSQL need not parse it into
    jsonb on every import (a third of the cost of writing a finding). Reads give the decoded value."""

    def from_db_value(self, value, expression, connection):
        return value if value is None else json.loads(value)

    def to_python(self, value):
        return json.loads(value) if isinstance(value, str) else value

    def get_prep_value(self, value):
        return json_text(value)

    def value_to_string(self, obj):
        return self.get_prep_value(self.value_from_object(obj))


class SearchTermsField(models.Field):
    """The hashes of the words of a finding's title, location and rule id (governance.findings.search).

    PostgreSQL: bigint[] with a GIN index (migration 0006), one entry per distinct word instead of one per
    trigram. Elsewhere (the embedded SQLite demo) a JSON list nobody queries: search falls back to LIKE.
    """

    description = "Search term hashes"

    def db_type(self, connection):
        return "bigint[]" if connection.vendor == "postgresql" else "text"

    def from_db_value(self, value, expression, connection):
        if value is None or isinstance(value, list):
            return value
        return json.loads(value)

    def get_db_prep_value(self, value, connection, prepared=False):
        value = value.hashes() if hasattr(value, "hashes") else list(value or [])
        return value if connection.vendor == "postgresql" else json.dumps(value)


@SearchTermsField.register_lookup
class Overlaps(models.Lookup):
    """terms && ARRAY[...]: does the finding have any of these words (PostgreSQL only)."""

    lookup_name = "overlaps"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} && %s::bigint[]", [*lhs_params, list(self.rhs)]

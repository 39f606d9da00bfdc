"""Writing findings: one entry point, findings_write, for scanner reports (governance.findings.imports) and for
the findings Rampart's lineage rules produce (imports.records_import).

    write.py     findings_write: batches, the rules of a reimport (new, changed, reopened, merged, vanished,
                 held open), the scope locks
    prepare.py   the CPU side, run ahead of the writer: routing (Router), content hashes, rows
    ahead.py     running the parser ahead: a forked process (PostgreSQL) or a thread
    stores.py    the Store interface, the row layout, and the portable store (the SQLite demo)
    postgres.py  the PostgreSQL store: each step one statement; the search dictionary
    driver.py    every private psycopg/Django API the import needs, and why
"""
from governance.findings.ingest.ahead import ParserLost
from governance.findings.ingest.write import Counts, findings_write, lock_scopes

__all__ = ["Counts", "ParserLost", "findings_write", "lock_scopes"]

"""The triage queue at 1M findings: timings and EXPLAIN (ANALYZE, BUFFERS) of every sort × filter.

    python bench/queue.py                 # fills the bench DB up to 1M queue-bench findings once, then measures
    python bench/queue.py --rows 1000000 --plans bench/queue-plans.txt

Runs the real selector (governance.findings.selectors.queue_page), captures the SQL it sends, and explains it.
Flags any Seq Scan. Prints figures, asserts nothing. See bench/README.md.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

# bench/ (this folder, with queue.py in it) must not shadow the standard library: put the project root first
sys.path[0] = str(Path(__file__).resolve().parent.parent)
from bench import _setup  # noqa: E402

SOURCE = "queuebench"
SYSTEMS = 40
# the first rows (lowest ids) come from a scanner that ran once, long ago: "newest first" filtered to it must
# not walk past every newer finding
LEGACY_ROWS = 20_000
TOOLS = ("bandit", "semgrep", "CodeQL", "modelscan", "garak", "gitleaks", "trufflehog", "pip-audit", "osv-scanner")

# One INSERT … SELECT over generate_series: ~1M rows in well under a minute. Values are spread with
# different moduli so filters have realistic selectivity (a system ~2.5%, a tool ~11%, a severity 5-40%,
# open ~70%, SLA breached ~20% of open, a rare text term ~0.01%).
FILL = """
INSERT INTO findings_finding (scope_key, system_id, source, tool, fingerprint, fingerprint_version, content_hash,
    title, severity, severity_rank, tool_severity, rule_id, location, artifact, package, line, description,
    remediation, raw, state, first_seen, last_seen, state_changed_at, sla_due, last_import_id, assignee_id, gone,
    terms)
SELECT coalesce(s.system_id::text, 'unassigned') || ':queuebench-' || s.tool, s.system_id, 'queuebench-' || s.tool,
    s.tool, md5(g::text) || md5((g + 7)::text), 'bench/v1', left(md5((g + 3)::text), 32),
    (%(titles)s::text[])[1 + g %% 8]
        || ' in module_' || (g %% 5003), s.severity, s.rank, s.severity, 'RULE-' || (g %% 397),
    'src/pkg_' || (g %% 311) || '/file_' || (g %% 7919) || '.py:' || (1 + g %% 1999),
    'src/pkg_' || (g %% 311) || '/file_' || (g %% 7919) || '.py', '', 1 + g %% 1999,
    'A synthetic finding for the queue benchmark: the value reaches a sensitive sink; validate it first ('
        || g || ').', 'See the rule documentation.', '{}', s.state,
    s.seen - interval '30 days', s.seen, s.seen,
    (s.seen - interval '30 days')::date + (ARRAY[7, 30, 90, 180, 365])[6 - s.rank],
    NULL, CASE WHEN g %% 10 = 0 THEN %(assignee)s END, false,
    {title_terms} || (%(w)s::bigint[])[1 + g %% 5003] || %(rule_words)s::bigint[]
        || (%(n)s::bigint[])[1 + g %% 397] || %(src_py)s::bigint[] || (%(p)s::bigint[])[1 + g %% 311]
        || (%(f)s::bigint[])[1 + g %% 7919] || (%(n)s::bigint[])[2 + g %% 1999]
FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g
CROSS JOIN LATERAL (SELECT
    (%(systems)s::bigint[])[1 + (g * 7) %% %(nsystems)s] AS system_id,
    CASE WHEN g <= %(legacy)s THEN 'legacy-scanner' ELSE (%(tools)s::text[])[1 + (g / 3) %% %(ntools)s] END AS tool,
    (ARRAY['critical', 'high', 'high', 'medium', 'medium', 'medium', 'medium', 'low', 'low', 'info'])[1 + (g / 11) %% 10]
        AS severity,
    (ARRAY[5, 4, 4, 3, 3, 3, 3, 2, 2, 1])[1 + (g / 11) %% 10] AS rank,
    (ARRAY['new', 'new', 'new', 'new', 'new', 'new', 'confirmed', 'closed', 'fixed', 'false_positive',
           'risk_accepted', 'new', 'confirmed', 'closed'])[1 + (g / 13) %% 14] AS state,
    now() - make_interval(secs => (g * 7919) %% (200 * 86400)) AS seen
) AS s
"""


TITLES = ('SQL injection', 'Unsafe deserialization', 'Hardcoded secret', 'Unpinned model download',
          'Prompt injection probe', 'Vulnerable dependency', 'Pickle opcode GLOBAL', 'Debug mode enabled')


def _search_terms() -> tuple[str, dict]:
    """Each row's word hashes (Finding.terms) as SQL over the words FILL writes, and those words in the dictionary
    (governance.findings.search: the same tokenising and hashes as an import)."""
    from governance.findings.models import FindingTerm
    from governance.findings.search import fold, word_hash, words

    vocabulary = {w for t in TITLES for w in words(t + " in")} | {fold(w) for w in ("rule", "src", "py")}
    module = [fold(f"module_{k}") for k in range(5003)]
    numbers = [str(k) for k in range(2001)]
    packages = [fold(f"pkg_{k}") for k in range(311)]
    files = [fold(f"file_{k}") for k in range(7919)]
    every = vocabulary | set(module) | set(numbers) | set(packages) | set(files)
    FindingTerm.objects.bulk_create([FindingTerm(hash=word_hash(w), word=w) for w in every], ignore_conflicts=True,
                                    batch_size=5000)
    hashes = lambda ws: [word_hash(w) for w in ws]  # noqa: E731
    cases = " ".join(f"WHEN {i} THEN ARRAY{hashes(words(t + ' in'))}::bigint[]" for i, t in enumerate(TITLES))
    arrays = {"w": hashes(module), "n": hashes(numbers), "p": hashes(packages), "f": hashes(files),
              "rule_words": hashes(words("rule")), "src_py": hashes(words("src py"))}
    return f"(CASE g %% 8 {cases} END)", arrays


def fill(rows: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from governance.findings.models import Finding

    have = Finding.objects.filter(source__startswith=f"{SOURCE}-").count()
    if have >= rows:
        print(f"queue-bench findings already there: {have:,}")
        return
    systems = [_setup.bench_system(f"queue-bench-{i:02d}").pk for i in range(SYSTEMS)]
    systems[-1:] = [None]  # one share of the findings waits in the unassigned queue
    assignee = get_user_model().objects.get(email="bench-owner@example.com").pk
    chunk, start = 250_000, have + 1
    title_terms, term_arrays = _search_terms()
    t0 = time.perf_counter()
    while start <= rows:
        stop = min(rows, start + chunk - 1)
        with connection.cursor() as cur:
            cur.execute(FILL.replace("{title_terms}", title_terms), {
                "start": start, "stop": stop, "systems": systems, "nsystems": len(systems), "tools": list(TOOLS),
                "ntools": len(TOOLS), "assignee": assignee, "legacy": LEGACY_ROWS, "titles": list(TITLES),
                **term_arrays})
        print(f"  filled {stop:,} rows ({time.perf_counter() - t0:.0f}s)", flush=True)
        start = stop + 1
    vacuum_analyze()


def vacuum_analyze() -> None:
    import psycopg

    t0 = time.perf_counter()
    with psycopg.connect(_setup._libpq(_setup.BENCH_ENV["DATABASE_URL"]), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) findings_finding")
    print(f"  VACUUM ANALYZE {time.perf_counter() - t0:.0f}s")


def cases():
    from governance.findings.models import FindingState
    from governance.findings.selectors import QueueFilters

    system = "queue-bench-07"
    filters = {
        "open (default)": {},
        "state=all": {"state": "all"},
        "state=confirmed": {"state": FindingState.CONFIRMED},
        "system": {"system": system},
        "system=unassigned": {"system": "unassigned"},
        "tool": {"tool": "garak"},
        "tool, only old rows": {"tool": "legacy-scanner"},
        "state=fixed": {"state": FindingState.FIXED},
        "severity=critical": {"severity": "critical"},
        "breached": {"breached": True},
        "q common ('sql inj')": {"q": "sql inj"},
        "q rare ('file_7001.py')": {"q": "file_7001.py"},
        "system+severity+tool": {"system": system, "severity": "high", "tool": "semgrep"},
        "assignee": {"assignee": "bench"},
    }
    for sort in ("severity", "recent", "sla"):
        for label, kw in filters.items():
            yield sort, label, QueueFilters(sort=sort, **kw)


def measure(plans_path: Path | None, repeat: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from governance.findings.models import Finding
    from governance.findings.selectors import queue_page

    assignee = get_user_model().objects.get(email="bench-owner@example.com").pk
    total = Finding.objects.count()
    print(f"machine: {_setup.machine()}")
    print(f"findings in the table: {total:,}\n")
    header = f"{'sort':<9} {'filter':<26} {'page':<6} {'queries':>7} {'median ms':>9} {'rows':>4}  plan"
    print(header)
    print("-" * 110)
    out = []
    seq_scans = []
    for sort, label, f in cases():
        if f.assignee == "bench":
            f.assignee = assignee
        cursor = ""
        for page in ("first", "next"):
            times = []
            for _ in range(repeat):
                with CaptureQueriesContext(connection) as ctx:
                    t0 = time.perf_counter()
                    rows, next_cursor = queue_page(f, cursor)
                    times.append((time.perf_counter() - t0) * 1000)
            sql = ctx.captured_queries[-1]["sql"]
            with connection.cursor() as cur:
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                plan = [r[0] for r in cur.fetchall()]
            nodes = _nodes(plan)
            # a Seq Scan on the few-row lookup tables (systems, users) is the right plan; on findings it is not
            flag = "  <-- SEQ SCAN" if "Seq Scan on findings_finding" in " ".join(plan) else ""
            if flag:
                seq_scans.append(f"{sort} / {label} / {page}")
            print(f"{sort:<9} {label:<26} {page:<6} {len(ctx.captured_queries):>7} {statistics.median(times):>9.1f} "
                  f"{len(rows):>4}  {nodes}{flag}", flush=True)
            out.append(f"### sort={sort} · {label} · {page} page — {statistics.median(times):.1f} ms\n\n{sql}\n\n"
                       + "\n".join(plan) + "\n")
            if not next_cursor:
                break
            cursor = next_cursor
    print(f"\nSeq Scans: {len(seq_scans)}" + "".join(f"\n  {s}" for s in seq_scans))
    if plans_path:
        plans_path.write_text("\n".join(out))
        print(f"plans written to {plans_path}")


def _nodes(plan: list[str]) -> str:
    """The scan nodes of a plan, e.g. 'Index Scan using finding_open_sev_idx'."""
    picked = []
    for line in plan:
        text = line.strip().removeprefix("->  ")
        for kind in ("Index Only Scan", "Index Scan Backward", "Index Scan", "Bitmap Index Scan", "Seq Scan"):
            if text.startswith(kind):
                picked.append(text.split("  (")[0].replace(" on findings_finding", "").replace("findings_finding ", ""))
                break
        if "Sort Method" in text:
            picked.append(text.split("  ")[0])
    return "; ".join(picked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="queue-bench findings to have in the table")
    parser.add_argument("--plans", type=Path, help="write every EXPLAIN plan to this file")
    parser.add_argument("--repeat", type=int, default=5, help="runs per query (the median is printed)")
    parser.add_argument("--fresh-db", action="store_true", help="drop and recreate the bench database first")
    args = parser.parse_args()
    _setup.setup(fresh=args.fresh_db)
    fill(args.rows)
    measure(args.plans, args.repeat)


if __name__ == "__main__":
    main()

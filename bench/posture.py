"""The posture page at portfolio scale: 1M findings, 500 AI systems, 5,000 risks and a year of daily snapshots.

    python bench/posture.py                  # builds the data once (own database), then measures
    python bench/posture.py --requests 40 --explain

Requests the real page (GET / through Django's test client, signed in as a CISO) repeatedly and prints p50/p95,
the query count, each query's own time (median over the requests) and, with --explain, EXPLAIN (ANALYZE, BUFFERS)
of the slowest. Uses its own database (rampart_bench_posture; BENCH_DB_NAME overrides) so the queue bench's rows
do not mix in. Prints figures, asserts nothing. See bench/README.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# bench/ must not shadow the standard library: put the project root first
sys.path[0] = str(Path(__file__).resolve().parent.parent)
os.environ.setdefault("BENCH_DB_NAME", "rampart_bench_posture")
from bench import _setup  # noqa: E402

SYSTEMS = 500
ARCHIVED = 20  # of the SYSTEMS: out of every portfolio figure
FINDINGS = 1_000_000
RISKS = 5_000
DAYS = 365
UNASSIGNED_SHARE = 50  # one finding in 50 belongs to no system (an unassigned feed)

# Findings in one INSERT … SELECT over generate_series, spread like the queue bench's: a severity 5-40 %, open ~64 %,
# first seen over the last 200 days, due at first seen + the SLA days of the severity.
FILL = """
INSERT INTO findings_finding (scope_key, system_id, source, tool, fingerprint, fingerprint_version, content_hash,
    title, severity, severity_rank, tool_severity, rule_id, location, artifact, package, line, description,
    remediation, raw, state, first_seen, last_seen, state_changed_at, sla_due, gone, terms)
SELECT coalesce(s.system_id::text, 'unassigned') || ':posturebench', s.system_id, 'posturebench', 'bandit',
    md5(g::text) || md5((g + 7)::text), 'bench/v1', left(md5((g + 3)::text), 32), 'Posture bench finding ' || g,
    s.severity, s.rank, s.severity, 'RULE-' || (g %% 397), 'src/file_' || (g %% 7919) || '.py', '', '', NULL, '', '',
    '{}', s.state, s.seen, s.seen, s.seen,
    s.seen + make_interval(days => (ARRAY[0, 180, 90, 30, 7])[s.rank]) , false, '{}'
FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g
CROSS JOIN LATERAL (SELECT
    CASE WHEN g %% %(unassigned)s = 0 THEN NULL ELSE (%(systems)s::bigint[])[1 + (g * 7) %% %(nsystems)s] END
        AS system_id,
    (ARRAY['critical', 'high', 'high', 'medium', 'medium', 'medium', 'medium', 'low', 'low', 'info'])[1 + (g / 11) %% 10]
        AS severity,
    (ARRAY[5, 4, 4, 3, 3, 3, 3, 2, 2, 1])[1 + (g / 11) %% 10] AS rank,
    (ARRAY['new', 'new', 'new', 'new', 'new', 'new', 'confirmed', 'closed', 'fixed', 'false_positive',
           'risk_accepted', 'new', 'confirmed', 'closed'])[1 + (g / 13) %% 14] AS state,
    now() - make_interval(secs => (g * 7919) %% (200 * 86400)) AS seen
) AS s
"""

# A year of daily snapshots for every active system, in one statement.
SNAPSHOTS = """
INSERT INTO dashboard_posturesnapshot (system_id, day, taken_at, backfilled, open_critical, open_high, open_medium,
    open_low, open_info, past_sla, remediated_critical, remediated_high, remediated_medium, remediated_low,
    remediated_info, remediated_critical_hours, remediated_high_hours, remediated_medium_hours, remediated_low_hours,
    remediated_info_hours, high_risks, awaiting, expiring, accepted_in_force, rmf_implemented, rmf_partial,
    rmf_applicable, exercised)
SELECT s.id, d::date, d + interval '23 hours', true, 130 + (s.id + i) %% 40, 250 + (s.id * 3 + i) %% 60,
    500 + i %% 50, 250, 130, 80 + (i * s.id) %% 30, i %% 3, (i + s.id) %% 4, i %% 5, i %% 2, 0,
    (i %% 3) * 100.0, ((i + s.id) %% 4) * 500.0, (i %% 5) * 1500.0, (i %% 2) * 3000.0, 0,
    (s.id + i / 30) %% 6, (s.id + i) %% 3, (s.id + i / 7) %% 2, 3 + (s.id + i / 30) %% 5, 30 + i / 12, 10, 72,
    i > 200
FROM inventory_aisystem s
CROSS JOIN LATERAL generate_series(0, %(days)s - 1) AS i
CROSS JOIN LATERAL (SELECT (current_date - %(days)s + i)::timestamptz AS d) AS dd
WHERE s.archived_at IS NULL
ON CONFLICT DO NOTHING
"""

# Their daily portfolio totals (what snapshots._write stores beside them).
PORTFOLIO_DAYS = """
INSERT INTO dashboard_portfolioday (day, taken_at, backfilled, systems, open_critical, open_high, open_medium,
    open_low, open_info, past_sla, remediated_critical, remediated_high, remediated_medium, remediated_low,
    remediated_info, remediated_critical_hours, remediated_high_hours, remediated_medium_hours, remediated_low_hours,
    remediated_info_hours, high_risks, awaiting, expiring, accepted_in_force, never_exercised, coverage, coverage_exact)
SELECT day, max(taken_at), true, count(system_id), sum(open_critical), sum(open_high), sum(open_medium),
    sum(open_low), sum(open_info), sum(past_sla), sum(remediated_critical), sum(remediated_high),
    sum(remediated_medium), sum(remediated_low), sum(remediated_info), sum(remediated_critical_hours),
    sum(remediated_high_hours), sum(remediated_medium_hours), sum(remediated_low_hours), sum(remediated_info_hours),
    sum(high_risks), sum(awaiting), sum(expiring), sum(accepted_in_force), count(*) FILTER (WHERE NOT exercised),
    round(100 * avg((2 * rmf_implemented + rmf_partial)::float / (2 * rmf_applicable))),
    100 * avg((2 * rmf_implemented + rmf_partial)::float / (2 * rmf_applicable))
FROM dashboard_posturesnapshot GROUP BY day
ON CONFLICT DO NOTHING
"""


def build() -> None:
    from datetime import timedelta

    from django.contrib.auth.models import Group
    from django.db import connection
    from django.utils import timezone

    from governance.accounts.models import Role, User
    from governance.dashboard.models import PostureSnapshot
    from governance.findings.models import Finding
    from governance.inventory.models import AISystem
    from governance.risks.matrix import get_matrix
    from governance.risks.models import Decision, Risk
    from governance.rmf.models import AssessmentStatus, RmfAssessment, RmfSubcategory

    owner = User.objects.filter(email="bench-owner@example.com").first() or User.objects.create_user(
        email="bench-owner@example.com")
    ciso = User.objects.filter(email="bench-ciso@example.com").first()
    if ciso is None:
        ciso = User.objects.create_user(email="bench-ciso@example.com")
        ciso.groups.add(Group.objects.get(name=Role.CISO))
    t0 = time.perf_counter()
    if AISystem.objects.count() < SYSTEMS:
        AISystem.objects.bulk_create([
            AISystem(name=f"Bench system {i:03d}", slug=f"bench-{i:03d}", purpose="Benchmark target.",
                     business_owner=owner, risk_tier=("low", "medium", "high")[i % 3],
                     archived_at=timezone.now() if i >= SYSTEMS - ARCHIVED else None)
            for i in range(SYSTEMS)], batch_size=500)
        subcategories = list(RmfSubcategory.objects.filter(category__function__version="1.0"))
        statuses = list(AssessmentStatus.values)
        RmfAssessment.objects.bulk_create([
            RmfAssessment(system=s, subcategory=sub, status=statuses[(s.pk + k) % len(statuses)])
            for s in AISystem.objects.all() for k, sub in enumerate(subcategories)], batch_size=5000)
        print(f"  {SYSTEMS} systems and their RMF profiles ({time.perf_counter() - t0:.0f}s)", flush=True)
    systems = list(AISystem.objects.order_by("id").values_list("id", flat=True))
    have = Finding.objects.filter(source="posturebench").count()
    chunk, start = 250_000, have + 1
    while start <= FINDINGS:
        stop = min(FINDINGS, start + chunk - 1)
        with connection.cursor() as cur:
            cur.execute(FILL, {"start": start, "stop": stop, "systems": systems, "nsystems": len(systems),
                               "unassigned": UNASSIGNED_SHARE})
        print(f"  findings: {stop:,} ({time.perf_counter() - t0:.0f}s)", flush=True)
        start = stop + 1
    if Risk.objects.count() < RISKS:
        matrix = get_matrix()
        risks = []
        for i in range(RISKS):
            rl, ri, il, ii = 1 + i % 5, 1 + (i // 5) % 5, 1 + (i // 3) % 5, 1 + (i // 7) % 5
            level = matrix.level_for(rl, ri)
            risks.append(Risk(ref=f"BR-{i:05d}", title=f"Bench risk {i}", system_id=systems[i % len(systems)],
                              inherent_likelihood=il, inherent_impact=ii, residual_likelihood=rl, residual_impact=ri,
                              inherent_level=matrix.level_for(il, ii), residual_level=level,
                              residual_rank=matrix.rank(level), status="closed" if i % 10 == 0 else "open"))
        Risk.objects.bulk_create(risks, batch_size=1000)
        now = timezone.now()
        decisions = []
        for k, risk in enumerate(Risk.objects.exclude(status="closed").order_by("id")):
            if k % 3 == 0:
                decisions.append(Decision(risk=risk, kind="residual_risk", status="accepted", decided_at=now,
                                          expires_at=now + timedelta(days=5 + k % 200),
                                          accepted_rank=risk.residual_rank))
            elif k % 7 == 0:
                decisions.append(Decision(risk=risk, kind="residual_risk", status="pending"))
        Decision.objects.bulk_create(decisions, batch_size=1000)
        print(f"  {RISKS} risks, {len(decisions)} decisions ({time.perf_counter() - t0:.0f}s)", flush=True)
    if not PostureSnapshot.objects.exists():
        with connection.cursor() as cur:
            cur.execute(SNAPSHOTS, {"days": DAYS})
            cur.execute(PORTFOLIO_DAYS)
        print(f"  snapshots: {PostureSnapshot.objects.count():,} ({time.perf_counter() - t0:.0f}s)", flush=True)
    vacuum_analyze()


def vacuum_analyze() -> None:
    import psycopg

    t0 = time.perf_counter()
    with psycopg.connect(_setup._libpq(_setup.BENCH_ENV["DATABASE_URL"]), autocommit=True) as conn:
        for table in ("findings_finding", "risks_risk", "risks_decision", "dashboard_posturesnapshot",
                      "dashboard_portfolioday",
                      "rmf_rmfassessment", "inventory_aisystem"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
    print(f"  VACUUM ANALYZE {time.perf_counter() - t0:.0f}s")


def measure(requests: int, explain: int) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from governance.accounts.models import User
    from governance.findings.models import Finding

    setup_test_environment()  # the test client's host, and templates' context kept for nothing else
    client = Client()
    client.force_login(User.objects.get(email="bench-ciso@example.com"))
    print(f"machine: {_setup.machine()}")
    print(f"findings: {Finding.objects.count():,}, load average: {os.getloadavg()[0]:.1f}")
    timings: list[float] = []
    per_query: dict[int, list[float]] = {}
    sqls: dict[int, str] = {}

    def timer(execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            n = len(current)
            current.append(sql)
            per_query.setdefault(n, []).append((time.perf_counter() - t0) * 1000)
            sqls[n] = sql if params is None else sql % tuple(_literal(p) for p in params)

    counts = []
    for i in range(requests + 2):  # two warm-up requests
        current: list[str] = []
        with connection.execute_wrapper(timer):
            t0 = time.perf_counter()
            response = client.get("/")
            elapsed = (time.perf_counter() - t0) * 1000
        assert response.status_code == 200, response.status_code
        if i >= 2:
            timings.append(elapsed)
            counts.append(len(current))
    timings.sort()
    p95 = timings[max(0, int(round(0.95 * len(timings))) - 1)]
    print(f"\nposture page, {requests} requests: p50 {statistics.median(timings):.0f} ms, p95 {p95:.0f} ms, "
          f"min {timings[0]:.0f} ms, max {timings[-1]:.0f} ms; queries per request: {sorted(set(counts))}")
    in_db = sum(statistics.median(v) for v in per_query.values())
    print(f"time in the database (sum of per-query medians): {in_db:.0f} ms\n")
    ranked = sorted(per_query.items(), key=lambda kv: -statistics.median(kv[1]))
    for n, times in ranked:
        print(f"  #{n:<2} {statistics.median(times):7.1f} ms  {' '.join(sqls[n].split())[:130]}")
    for n, _ in ranked[:explain]:
        with connection.cursor() as cur:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sqls[n])
            print(f"\n-- query #{n}\n" + "\n".join(r[0] for r in cur.fetchall()))


def _literal(value) -> str:
    """A parameter as an SQL literal, to EXPLAIN a captured query again (bench only: our own values)."""
    from datetime import date, datetime

    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (datetime, date)):
        return f"'{value.isoformat()}'"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_literal(v) for v in value) + ")"
    return "'" + str(value).replace("'", "''") + "'"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=30, help="measured requests (after two warm-ups)")
    parser.add_argument("--explain", type=int, default=0, help="EXPLAIN ANALYZE the N slowest queries")
    parser.add_argument("--fresh-db", action="store_true", help="drop and recreate the bench database first")
    args = parser.parse_args()
    _setup.setup(fresh=args.fresh_db)
    build()
    measure(args.requests, args.explain)


if __name__ == "__main__":
    main()

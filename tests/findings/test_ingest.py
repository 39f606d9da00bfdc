"""Import runs end to end in-process (import_run_create + import_run_execute) on PostgreSQL."""
from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from django.utils import timezone

from governance.findings import services
from governance.findings.imports import import_run_execute
from governance.findings.models import Finding, FindingScope, FindingState, FindingTransition, ImportRun, MappingRule
from governance.findings.selectors import QueueFilters, queue_page, with_reported_at
from governance.inventory import services as inventory_services
from tests.conftest import system_data
from tests.findings.conftest import (
    DATA, create_run, dump_findings, fingerprints_and_states, run_import, sarif_bytes, sarif_n, sarif_result,
)

pytestmark = pytest.mark.django_db
S = FindingState
BANDIT = DATA / "sarif" / "bandit.sarif"
MODELSCAN = DATA / "modelscan" / "modelscan-0.8.8.json"


def counts(run: ImportRun) -> tuple[int, int, int, int, int]:
    c = run.counts
    return c["created"], c["updated"], c["unchanged"], c["closed"], c["reopened"]


def test_fresh_import_of_a_real_report(system):
    run = run_import(BANDIT, system=system)
    assert run.status == ImportRun.Status.DONE, run.error
    assert run.detected_format == "sarif"
    assert counts(run) == (9, 0, 0, 0, 0)
    findings = Finding.objects.filter(system=system)
    assert findings.count() == 9
    assert set(findings.values_list("state", flat=True)) == {S.NEW}
    assert set(findings.values_list("scope_key", flat=True)) == {f"{system.pk}:bandit"}
    f = findings.filter(severity="high").first()
    assert f.tool and f.rule_id and f.location.startswith("vuln_app.py:") and f.fingerprint_version == "sarif/v1"
    assert f.last_import_id == run.pk and f.first_seen == f.last_seen


def test_identical_reimport_changes_nothing(system, engineer):
    first = run_import(BANDIT, system=system)
    one = Finding.objects.filter(system=system).first()
    services.findings_transition(actor=engineer, findings=[one], to_state=S.CONFIRMED)
    before, transitions = dump_findings(), FindingTransition.objects.count()
    second = run_import(BANDIT, system=system)
    assert second.status == ImportRun.Status.DONE, second.error
    assert counts(second) == (0, 0, 9, 0, 0)
    # not a single row is rewritten: the scope records that its latest import saw them again
    assert dump_findings() == before
    scope = FindingScope.objects.get(key=f"{system.pk}:bandit")
    assert scope.last_import_id == second.pk and first.finished_at < scope.last_seen <= second.finished_at
    for f in with_reported_at(Finding.objects.filter(system=system)):
        assert f.reported_at == scope.last_seen > f.last_seen
    assert FindingTransition.objects.count() == transitions
    assert first.sha256 == second.sha256


def test_reimport_closes_vanished_and_reopens_returning(system):
    run_import(sarif_n(10), system=system)
    smaller = run_import(sarif_n(7), system=system)
    assert counts(smaller) == (0, 0, 7, 3, 0)
    closed = Finding.objects.filter(system=system, state=S.CLOSED)
    assert closed.count() == 3
    t = FindingTransition.objects.filter(finding__in=closed).get(finding=closed[0])
    assert (t.from_state, t.to_state, t.actor, t.import_run_id) == (S.NEW, S.CLOSED, None, smaller.pk)
    assert "no longer reported" in t.reason.lower()

    back = run_import(sarif_n(10), system=system)
    assert counts(back) == (0, 0, 7, 0, 3)
    assert Finding.objects.filter(system=system, state=S.NEW).count() == 10
    reopen = FindingTransition.objects.filter(import_run=back)
    assert reopen.count() == 3 and set(reopen.values_list("from_state", "to_state")) == {(S.CLOSED, S.NEW)}

    # closing is not repeated for findings that are already closed
    run_import(sarif_n(7), system=system)
    again = run_import(sarif_n(7), system=system)
    assert counts(again) == (0, 0, 7, 0, 0)


def test_changed_content_is_updated(system):
    run_import(sarif_n(5), system=system)
    changed = [sarif_result(i, message="new wording" if i < 2 else None) for i in range(5)]
    run = run_import(sarif_bytes(changed), system=system)
    assert counts(run) == (0, 2, 3, 0, 0)
    assert Finding.objects.filter(system=system, description="new wording").count() == 2
    severity = [sarif_result(i, severity="LOW" if i == 4 else "HIGH") for i in range(5)]
    run = run_import(sarif_bytes(severity), system=system)
    assert counts(run) == (0, 3, 2, 0, 0)  # 2 messages back to the old wording, 1 severity change
    assert Finding.objects.get(system=system, severity="low").severity_rank == 2


def test_new_and_vanished_in_one_reimport(system):
    run_import(sarif_bytes([sarif_result(i) for i in range(0, 6)]), system=system)
    run = run_import(sarif_bytes([sarif_result(i) for i in range(3, 9)]), system=system)
    assert counts(run) == (3, 0, 3, 3, 0)


def test_duplicate_results_in_one_report_count_once(system, settings):
    settings.RAMPART_IMPORT_BATCH = 3  # the duplicates fall into different batches
    results = [sarif_result(i) for i in range(5)] + [sarif_result(i) for i in range(5)]
    run = run_import(sarif_bytes(results), system=system)
    assert counts(run) == (5, 0, 0, 0, 0) and run.counts["merged"] == 5  # every entry is accounted for
    assert Finding.objects.filter(system=system).count() == 5


@pytest.mark.parametrize("decision", [S.FALSE_POSITIVE, S.RISK_ACCEPTED])
def test_human_decision_survives_vanishing_and_coming_back(system, engineer, decision):
    run_import(sarif_n(4), system=system)
    target = Finding.objects.filter(system=system).order_by("id")[3]
    services.findings_transition(actor=engineer, findings=[target], to_state=decision, reason="reviewed: test code")
    vanished = run_import(sarif_n(3), system=system)
    assert counts(vanished) == (0, 0, 3, 0, 0)  # the decided finding is not closed
    target.refresh_from_db()
    assert target.state == decision
    back = run_import(sarif_n(4), system=system)
    assert counts(back) == (0, 0, 4, 0, 0)
    target.refresh_from_db()
    assert target.state == decision
    changed = run_import(sarif_bytes([sarif_result(i, message="reworded") for i in range(4)]), system=system)
    assert counts(changed) == (0, 4, 0, 0, 0)
    target.refresh_from_db()
    assert target.state == decision and target.description == "reworded"
    assert list(target.transitions.values_list("to_state", flat=True)) == [decision]


def test_fixed_by_hand_that_comes_back_is_reopened(system, engineer):
    run_import(sarif_n(3), system=system)
    target = Finding.objects.filter(system=system).order_by("id")[0]
    services.findings_transition(actor=engineer, findings=[target], to_state=S.FIXED)
    still_there = run_import(sarif_n(3), system=system)
    assert counts(still_there) == (0, 0, 2, 0, 1)
    target.refresh_from_db()
    assert target.state == S.NEW
    assert list(target.transitions.values_list("from_state", "to_state")) == [(S.NEW, S.FIXED), (S.FIXED, S.NEW)]

    services.findings_transition(actor=engineer, findings=[target], to_state=S.FIXED)
    gone = run_import(sarif_bytes([sarif_result(i) for i in (1, 2)]), system=system)
    assert counts(gone) == (0, 0, 2, 0, 0)  # fixed and gone: stays fixed, not closed
    target.refresh_from_db()
    assert target.state == S.FIXED
    back = run_import(sarif_n(3), system=system)
    assert counts(back) == (0, 0, 2, 0, 1)
    target.refresh_from_db()
    assert target.state == S.NEW


def test_sla_due_from_policy(system, settings):
    settings.RAMPART_SLA_DAYS = {"critical": 2, "high": 10, "medium": 20, "low": 40}
    run_import(MODELSCAN, system=system, source="modelscan")
    run_import(BANDIT, system=system)
    for f in Finding.objects.filter(system=system):
        expected = {"critical": 2, "high": 10, "medium": 20, "low": 40}.get(f.severity)
        assert f.sla_due == (f.first_seen + timedelta(days=expected) if expected else None), f.severity
    assert Finding.objects.filter(system=system, severity="critical").exists()


def test_default_sla_policy(system):
    run_import(MODELSCAN, system=system, source="modelscan")
    critical = Finding.objects.filter(system=system, severity="critical").first()
    assert critical.sla_due == critical.first_seen + timedelta(days=7)


def test_is_past_sla_with_a_controlled_date(system, engineer):
    run_import(sarif_n(1), system=system)
    f = Finding.objects.get(system=system)  # high: 30 days
    due = f.sla_due
    assert due == f.first_seen + timedelta(days=30)  # a moment, to the second
    assert not f.is_past_sla(at=due)  # due exactly now: not yet late
    assert f.is_past_sla(at=due + timedelta(seconds=1))
    assert not f.is_past_sla(at=due - timedelta(seconds=1))
    services.findings_transition(actor=engineer, findings=[f], to_state=S.FALSE_POSITIVE, reason="not ours")
    f.refresh_from_db()
    assert not f.is_past_sla(at=due + timedelta(days=1))  # decided findings are not breached
    f.sla_due = None
    assert not f.is_past_sla(at=timezone.now() + timedelta(days=365 * 900))


def test_breached_filter_in_the_queue(system):
    run_import(sarif_n(3), system=system)
    Finding.objects.filter(pk=Finding.objects.order_by("id")[0].pk).update(sla_due=timezone.now() - timedelta(seconds=1))
    rows, _ = queue_page(QueueFilters(breached=True))
    assert len(rows) == 1


@pytest.fixture
def third_system(ciso, owner):
    return inventory_services.system_create(actor=ciso, data=system_data(owner, name="Vision QA", slug="vision-qa"))


def test_routing_by_artifact_glob_and_model_name(system, other_system, ciso):
    MappingRule.objects.create(system=system, kind=MappingRule.Kind.ARTIFACT_GLOB, pattern="evil_*.pkl")
    MappingRule.objects.create(system=other_system, kind=MappingRule.Kind.MODEL_NAME, pattern="TORCH_like")
    run = run_import(MODELSCAN, source="modelscan")
    assert run.status == ImportRun.Status.DONE, run.error
    assert counts(run)[0] == 5
    by_artifact = dict(Finding.objects.values_list("artifact", "system__slug"))
    assert by_artifact["evil_model.pkl"] == system.slug
    assert by_artifact["torch_like.pt"] == other_system.slug
    unassigned = Finding.objects.filter(system__isnull=True)
    assert unassigned.count() == 3
    assert set(unassigned.values_list("scope_key", flat=True)) == {"unassigned:modelscan"}
    rows, _ = queue_page(QueueFilters(system="unassigned"))
    assert {f.pk for f in rows} == set(unassigned.values_list("pk", flat=True))
    # a routed reimport keeps everything where it is
    again = run_import(MODELSCAN, source="modelscan")
    assert counts(again) == (0, 0, 5, 0, 0)


def test_routing_by_repository(system, other_system):
    MappingRule.objects.create(system=other_system, kind=MappingRule.Kind.REPOSITORY, pattern="git.example.com/acme/*")
    run_import(BANDIT, repository="git.example.com/acme/model-service")
    assert Finding.objects.filter(system=other_system).count() == 9
    run_import(BANDIT, repository="git.example.com/other/thing", source="bandit-other")
    assert Finding.objects.filter(system__isnull=True, source="bandit-other").count() == 9


def test_import_with_a_system_ignores_rules(system, other_system):
    MappingRule.objects.create(system=other_system, kind=MappingRule.Kind.ARTIFACT_GLOB, pattern="*")
    run_import(BANDIT, system=system)
    assert Finding.objects.filter(system=system).count() == 9
    assert not Finding.objects.filter(system=other_system).exists()


def test_unassigned_finding_routed_by_hand(system, engineer):
    run_import(BANDIT)
    f = Finding.objects.filter(system__isnull=True).first()
    assert services.findings_route(actor=engineer, findings=[f], system=system) == 1
    f.refresh_from_db()
    assert f.system == system and f.scope_key == f"{system.pk}:bandit"


def test_scope_is_system_plus_source(system, other_system):
    a = run_import(BANDIT, system=system, source="bandit-ci")
    b = run_import(BANDIT, system=system, source="bandit-nightly")
    c = run_import(BANDIT, system=other_system, source="bandit-ci")
    for run in (a, b, c):
        assert counts(run) == (9, 0, 0, 0, 0)
    assert Finding.objects.count() == 27
    assert Finding.objects.values("scope_key").distinct().count() == 3
    # an empty report holds that scope's findings open (the scan may not have run); a person confirms: closed,
    # in that scope only
    empty = run_import(sarif_bytes([]), system=system, source="bandit-ci")
    assert counts(empty) == (0, 0, 0, 0, 0) and empty.counts["held_open"] == 9
    assert services.import_run_close_held(actor=None, run=empty) == 9
    assert Finding.objects.filter(state=S.CLOSED).count() == 9
    assert not Finding.objects.filter(state=S.CLOSED).exclude(scope_key=f"{system.pk}:bandit-ci").exists()


def test_routed_import_does_not_close_other_scopes(system, other_system):
    """A report routed by rules must not close findings imported straight into a system with the same source."""
    run_import(BANDIT, system=other_system, source="bandit")
    MappingRule.objects.create(system=system, kind=MappingRule.Kind.ARTIFACT_GLOB, pattern="app/*")
    routed = run_import(sarif_bytes([sarif_result(1, uri="app/x.py")]), source="bandit")
    assert counts(routed) == (1, 0, 0, 0, 0)
    assert not Finding.objects.filter(system=other_system).exclude(state=S.NEW).exists()
    # the routed scopes themselves are still reconciled
    again = run_import(sarif_bytes([sarif_result(2, uri="lib/y.py")]), source="bandit")
    assert counts(again) == (1, 0, 0, 1, 0)
    assert Finding.objects.get(system=system).state == S.CLOSED
    assert Finding.objects.get(system__isnull=True).state == S.NEW


def test_run_cannot_be_claimed_twice(system):
    run = create_run(BANDIT, system=system)
    assert import_run_execute(run.pk).status == ImportRun.Status.DONE
    assert import_run_execute(run.pk) is None
    run.refresh_from_db()
    assert run.attempts == 1 and run.started_at and run.finished_at and run.lease_until is None


def test_expired_lease_is_taken_over(system):
    run = create_run(BANDIT, system=system)
    ImportRun.objects.filter(pk=run.pk).update(status=ImportRun.Status.RUNNING, attempts=1,
                                               lease_until=timezone.now() + timedelta(minutes=5))
    assert import_run_execute(run.pk) is None  # its worker still owns it
    ImportRun.objects.filter(pk=run.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    done = import_run_execute(run.pk)
    assert done.status == ImportRun.Status.DONE and done.attempts == 2
    assert counts(done) == (9, 0, 0, 0, 0)


def test_gives_up_after_repeated_crashes(system):
    run = create_run(BANDIT, system=system)
    ImportRun.objects.filter(pk=run.pk).update(status=ImportRun.Status.RUNNING, attempts=5,
                                               lease_until=timezone.now() - timedelta(seconds=1))
    done = import_run_execute(run.pk)
    assert done.status == ImportRun.Status.FAILED and "attempts" in done.error
    assert not Finding.objects.exists()


@pytest.mark.parametrize("path,fmt,expected", [
    ("sarif/codeql-semgrep-multirun.sarif", "auto", 4),
    ("modelscan/modelscan-0.5.0.json", "modelscan", None),
    ("picklescan/picklescan-1.0.5.txt", "auto", None),
    ("garak/garak.report.jsonl", "auto", 6),
    ("garak/garak.hitlog.jsonl", "garak", None),
    ("gitleaks/gitleaks-report.json", "auto", 3),
    ("trufflehog/trufflehog-git.jsonl", "auto", 3),
    ("pip_audit/pip-audit-vulns.json", "auto", 4),
    ("pip_audit/pip-audit-old-list.json", "pip_audit", None),
    ("osv/osv-scanner.json", "auto", None),
])
def test_every_sample_format_imports_and_reimports_unchanged(system, path, fmt, expected):
    first = run_import(DATA / path, system=system, source="sample", fmt=fmt)
    assert first.status == ImportRun.Status.DONE, first.error
    created = first.counts["created"]
    assert created > 0 and (expected is None or created == expected)
    assert Finding.objects.filter(system=system).count() == created
    second = run_import(DATA / path, system=system, source="sample", fmt=fmt)
    assert counts(second) == (0, 0, created, 0, 0)


def test_identical_reimport_writes_no_row(system, settings):
    """An unchanged finding is not rewritten (its scope records the import that saw it): PostgreSQL's own
    counters for this transaction show no insert, update or delete on findings."""
    from django.db import connection

    settings.RAMPART_IMPORT_BATCH = 7
    assert run_import(sarif_n(40), system=system).status == ImportRun.Status.DONE

    def writes() -> tuple[int, int, int]:
        with connection.cursor() as cursor:  # this transaction's own counters (the test runs in one)
            cursor.execute("SELECT pg_stat_get_xact_tuples_inserted(%s::regclass),"
                           " pg_stat_get_xact_tuples_updated(%s::regclass),"
                           " pg_stat_get_xact_tuples_deleted(%s::regclass)", ["findings_finding"] * 3)
            return cursor.fetchone()

    before = writes()
    second = run_import(sarif_n(40), system=system)
    assert counts(second) == (0, 0, 40, 0, 0)
    assert tuple(a - b for a, b in zip(writes(), before)) == (0, 0, 0)


def test_newest_first_sort_follows_first_import(system):
    run_import(sarif_n(3), system=system, source="older")
    run_import(sarif_n(2), system=system, source="newer")
    rows, _ = queue_page(QueueFilters(system=system.slug, sort="recent"))
    assert [f.source for f in rows] == ["newer"] * 2 + ["older"] * 3
    assert [f.pk for f in rows] == sorted((f.pk for f in rows), reverse=True)


def test_newest_first_for_one_scanner_pages_by_its_own_index(system, settings):
    """With a scanner picked, "newest first" orders by -id (finding_tool_newest_idx); pages still chain."""
    from governance.findings import selectors

    settings.RAMPART_IMPORT_BATCH = 50
    run_import(sarif_n(7), system=system, source="bandit-old")
    run_import(sarif_bytes([sarif_result(i) for i in range(5)], tool="Semgrep"), system=system, source="semgrep")
    old = Finding.objects.filter(source="bandit-old").values_list("pk", flat=True)
    seen, cursor = [], ""
    page_size, selectors.QUEUE_PAGE = selectors.QUEUE_PAGE, 3
    try:
        while True:
            rows, cursor = queue_page(QueueFilters(tool="Bandit", sort="recent"), cursor)
            seen += [f.pk for f in rows]
            if not cursor:
                break
    finally:
        selectors.QUEUE_PAGE = page_size
    assert seen == sorted(old, reverse=True)


@pytest.mark.parametrize("made_for", ["severity_rank", "id", "newest", "sla_due", "", "other"])
@pytest.mark.parametrize("value", ["2027-05-22", "abc", None, [1], 3, "Infinity"])
@pytest.mark.parametrize("query", ["sort=severity", "sort=recent", "sort=recent&tool=Bandit", "sort=sla"])
def test_a_cursor_of_another_sort_or_forged_gives_the_first_page(client, engineer, system, query, value, made_for):
    """?after= comes from the URL: a cursor made for another sort or filter, or made up, shows the first page."""
    import base64

    run_import(sarif_n(3), system=system)
    client.force_login(engineer)
    text = json.dumps([made_for, value, 1]).replace('"Infinity"', "Infinity")
    after = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    expected = client.get(f"/api/v1/findings/?{query}").json()["results"]
    assert len(expected) == 3
    assert client.get(f"/findings/?{query}&after={after}").status_code == 200
    response = client.get(f"/api/v1/findings/?{query}&after={after}")
    assert response.status_code == 200
    if made_for not in ("severity_rank", "id", "newest", "sla_due") or value in ("abc", [1], "Infinity") or (
            value is None and made_for != "sla_due"):
        assert response.json()["results"] == expected
    elif made_for == "sla_due" and value is None and query == "sort=sla":
        assert response.json()["results"] == []  # a real position: among the findings without an SLA (none here)


def test_switching_sort_or_scanner_with_a_cursor_restarts_at_the_first_page(client, engineer, system):
    from governance.findings import selectors

    run_import(sarif_n(7), system=system)
    client.force_login(engineer)
    size, selectors.QUEUE_PAGE = selectors.QUEUE_PAGE, 3
    try:
        for first, then in (("sort=severity", "sort=recent"), ("sort=recent", "sort=recent&tool=Bandit"),
                            ("sort=recent&tool=Bandit", "sort=recent"), ("sort=sla", "sort=severity")):
            after = client.get(f"/api/v1/findings/?{first}").json()["next"]
            assert after
            restarted = client.get(f"/api/v1/findings/?{then}&after={after}").json()["results"]
            assert restarted == client.get(f"/api/v1/findings/?{then}").json()["results"] != []
    finally:
        selectors.QUEUE_PAGE = size


def test_nul_in_a_changed_finding_is_repaired_and_counted(system):
    """The rule's help text (remediation) is not in the raw entry: the finding's own fields are checked too."""
    def report(help_text: str) -> bytes:
        rules = [{"id": f"B{600 + k}", "help": {"text": help_text}} for k in range(10)]
        return json.dumps({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "Bandit", "rules": rules}},
                                                          "results": [sarif_result(1), sarif_result(2)]}]}).encode()

    assert run_import(report("Use subprocess without a shell."), system=system).status == "done"
    run = run_import(report("Use subprocess\x00 without a shell."), system=system)
    assert run.status == ImportRun.Status.DONE and run.counts["repaired"] == 2 and run.counts["updated"] == 2
    assert set(Finding.objects.values_list("remediation", flat=True)) == {"Use subprocess\ufffd without a shell."}

"""Unnamed feeds: an import with no source name is named after its (detected) format, so reports of different
scanners uploaded to one system never replace each other's findings."""
from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import connection

from governance.findings.models import Finding, FindingScope, FindingState, ImportRun
from tests.findings.conftest import DATA, run_import

pytestmark = pytest.mark.django_db
SARIF = DATA / "sarif" / "bandit.sarif"
GITLEAKS = DATA / "gitleaks" / "gitleaks-report.json"


def test_unnamed_auto_imports_are_named_after_the_detected_format(system):
    sarif = run_import(SARIF, system=system, source="")
    leaks = run_import(GITLEAKS, system=system, source="")
    assert (sarif.status, leaks.status) == ("done", "done")
    assert (sarif.source, leaks.source) == ("sarif", "gitleaks")
    assert sarif.counts["created"] > 0 and leaks.counts["created"] > 0
    assert leaks.counts["closed"] == 0  # the gitleaks report did not close the SARIF findings
    assert not Finding.objects.filter(system=system, state=FindingState.CLOSED).exists()
    again = run_import(SARIF, system=system, source="")
    assert again.counts == {**again.counts, "created": 0, "closed": 0, "unchanged": sarif.counts["created"]}


def test_an_explicit_format_names_an_unnamed_feed_too(system):
    assert run_import(SARIF, system=system, source="", fmt="sarif").source == "sarif"
    assert run_import(SARIF, system=system, source="  bandit-main ").source == "bandit-main"


def test_an_unrecognised_report_fails_and_stays_unnamed(system):
    run = run_import(b'{"hello": "world"}', system=system, source="")
    assert run.status == ImportRun.Status.FAILED and "Unrecognised report format" in run.error
    assert run.source == ""


def test_migration_moves_the_old_shared_auto_feed(system):
    """Migration 0010: findings of the former shared "auto" feed move to the feed their format names; the next
    unnamed upload of the same report reimports them instead of duplicating them."""
    sarif = run_import(SARIF, system=system, source="auto")  # as every unnamed auto import was stored
    leaks = run_import(GITLEAKS, system=system, source="auto")
    assert leaks.counts["closed"] == sarif.counts["created"]  # the old behaviour: one report closed the other's
    migration = importlib.import_module("governance.findings.migrations.0010_name_auto_sources")
    with connection.schema_editor() as editor:
        migration.forwards(apps, editor)
    assert not Finding.objects.filter(source="auto").exists()
    assert set(Finding.objects.values_list("source", flat=True)) == {"sarif", "gitleaks"}
    assert FindingScope.objects.filter(key=f"{system.pk}:sarif").exists()
    assert set(ImportRun.objects.values_list("source", flat=True)) == {"sarif", "gitleaks"}
    again = run_import(SARIF, system=system, source="")
    assert again.counts["created"] == 0 and again.counts["reopened"] == sarif.counts["created"]
    leaks_again = run_import(GITLEAKS, system=system, source="")
    assert leaks_again.counts == {**leaks_again.counts, "created": 0, "closed": 0,
                                  "unchanged": leaks.counts["created"]}
    assert Finding.objects.filter(system=system).count() == sarif.counts["created"] + leaks.counts["created"]

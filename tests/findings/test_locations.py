"""A finding's location is stored relative to the repository; the scanner's original stays in its raw entry, and a
reimport (or the migration of findings stored before) re-identifies nothing."""
from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from governance.findings.models import Finding
from tests.findings.conftest import run_import, sarif_bytes, sarif_result
from tests.findings.test_ingest import counts

pytestmark = pytest.mark.django_db
CI_URI = "file:///builds/acme/app/src/pkg/x.py"


def test_a_ci_workspace_location_is_stored_relative_and_the_original_kept(system):
    report = sarif_bytes([sarif_result(1, uri=CI_URI), sarif_result(2, uri="lib/y.py")])
    run = run_import(report, system=system)
    assert counts(run) == (2, 0, 0, 0, 0)
    found = {f.location: f for f in Finding.objects.filter(system=system)}
    assert set(found) == {"src/pkg/x.py:2", "lib/y.py:3"}
    x = found["src/pkg/x.py:2"]
    assert x.raw["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == CI_URI
    assert x.artifact == CI_URI  # routing rules still match what the tool wrote

    again = run_import(report, system=system)
    assert counts(again) == (0, 0, 2, 0, 0)  # unchanged: nothing re-identified


def test_the_migration_makes_earlier_locations_relative_without_changing_identity(system):
    report = sarif_bytes([sarif_result(1, uri=CI_URI)])
    run_import(report, system=system)
    Finding.objects.update(location=CI_URI + ":2")  # as an import before this change stored it
    before = Finding.objects.values_list("fingerprint", "content_hash").get()
    migration = importlib.import_module("governance.findings.migrations.0014_repository_relative_locations")
    migration.relative(apps, None)
    assert Finding.objects.values_list("location", flat=True).get() == "src/pkg/x.py:2"
    assert Finding.objects.values_list("fingerprint", "content_hash").get() == before
    assert counts(run_import(report, system=system)) == (0, 0, 1, 0, 0)

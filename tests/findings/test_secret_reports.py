"""Secret scanners' reports contain the secrets: after the import only their sha256 is kept."""
from pathlib import Path

import pytest

from governance.findings.ingest import import_run_execute
from governance.findings.intake import import_run_create
from governance.findings.models import Finding, ImportRun

DATA = Path(__file__).resolve().parents[1] / "data" / "scanners"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.mark.django_db
@pytest.mark.parametrize("sample", ["gitleaks/gitleaks-report.json", "trufflehog/trufflehog-git.jsonl"])
def test_secret_scanner_report_file_is_deleted_after_import(system, sample, tmp_path):
    with (DATA / sample).open("rb") as stream:
        run = import_run_create(actor=None, stream=stream, filename="r", fmt="auto", system=system, source="secrets")
    stored = Path(run.report.path)
    assert stored.exists()
    run = import_run_execute(run.pk)
    run.refresh_from_db()
    assert run.status == ImportRun.Status.DONE and Finding.objects.filter(last_import=run).exists()
    assert not stored.exists() and not run.report and run.report_discarded
    assert run.sha256 and run.size  # what was received is still known


@pytest.mark.django_db
def test_other_reports_are_kept(system):
    with (DATA / "sarif" / "bandit.sarif").open("rb") as stream:
        run = import_run_create(actor=None, stream=stream, filename="r", fmt="auto", system=system, source="sast")
    run = import_run_execute(run.pk)
    run.refresh_from_db()
    assert run.report and Path(run.report.path).exists() and not run.report_discarded

"""A report format is accepted as the tool spells it ("pip-audit", "osv-scanner") as well as Rampart's key, in the
API, on the command line and in the upload form; a name that is no format is refused, naming the choices."""
from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from governance.findings.forms import UploadForm
from governance.findings.imports import import_run_execute
from governance.findings.models import Finding, ImportRun
from tests.findings.conftest import DATA
from tests.findings.test_api import bearer, post_import
from worker.scanners import format_name

pytestmark = pytest.mark.django_db
PIP_AUDIT = DATA / "pip_audit" / "pip-audit-vulns.json"
OSV = DATA / "osv" / "osv-scanner.json"


@pytest.mark.parametrize(("spelled", "key"), [
    ("pip-audit", "pip_audit"), ("PIP_AUDIT", "pip_audit"), (" Pip-Audit ", "pip_audit"), ("osv-scanner", "osv"),
    ("SARIF", "sarif"), ("auto", "auto"), ("no-such-tool", "no_such_tool"),
])
def test_format_name(spelled, key):
    assert format_name(spelled) == key


def test_the_api_takes_the_tools_spelling(client, engineer, system, queued):
    response = post_import(client, bearer(engineer), path=PIP_AUDIT, format="pip-audit", system=system.slug)
    assert response.status_code == 202, response.content
    run = ImportRun.objects.get()
    assert run.format == "pip_audit" and run.source == "pip_audit"
    import_run_execute(run.pk)
    run.refresh_from_db()
    assert run.status == ImportRun.Status.DONE and run.counts["created"] == Finding.objects.filter(system=system).count() > 0


def test_the_api_refuses_an_unknown_format_naming_the_choices(client, engineer, system, queued):
    response = post_import(client, bearer(engineer), path=PIP_AUDIT, format="pip-audits", system=system.slug)
    assert response.status_code == 400
    assert "Unknown format" in response.content.decode() and "pip-audit, sarif" in response.content.decode()
    assert not ImportRun.objects.exists()


def test_the_command_line_takes_the_tools_spelling(system, queued):
    call_command("import_findings", str(OSV), "--format", "osv-scanner", "--system", system.slug)
    assert ImportRun.objects.get().format == "osv"
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("import_findings", str(OSV), "--format", "osv-scan", "--system", system.slug)


def test_the_upload_form_takes_the_tools_spelling_and_shows_it(system):
    with PIP_AUDIT.open("rb") as f:
        from django.core.files.uploadedfile import SimpleUploadedFile

        upload = SimpleUploadedFile("r.json", f.read())
    form = UploadForm({"format": "pip-audit", "system": system.slug}, {"file": upload})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["format"] == "pip_audit"
    assert ("pip_audit", "pip-audit") in form.fields["format"].choices

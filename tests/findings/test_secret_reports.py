"""Reports may contain secrets: once the import has ended, done or failed, only their name, size and sha256 are kept,
and a secret scanner's output never puts its secret in a finding, whatever the format that carries it."""
from pathlib import Path

import pytest

from governance.findings.imports import import_run_execute
from governance.findings.imports import import_run_create
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
@pytest.mark.parametrize("sample", ["sarif/bandit.sarif", "sarif/gitleaks.sarif", "hostile/truncated-bandit.sarif",
                                    "hostile/wrong-format.json"])
def test_every_report_file_is_deleted_once_its_import_has_ended(system, sample):
    """Done or failed: a report that could not be read (a gitleaks report too big for the detection window, a
    truncated file) may hold secrets as much as one that could; nothing reads it again."""
    with (DATA / sample).open("rb") as stream:
        run = import_run_create(actor=None, stream=stream, filename="r", fmt="auto", system=system, source="any")
    stored = Path(run.report.path)
    assert stored.exists()
    import_run_execute(run.pk)
    run.refresh_from_db()
    assert run.status in (ImportRun.Status.DONE, ImportRun.Status.FAILED)
    assert not stored.exists() and not run.report and run.report_discarded
    assert run.sha256 and run.size and run.filename


def _everything_stored(run) -> str:
    """Every text Rampart keeps of an import: its row, its findings, its audit events, the files under MEDIA_ROOT."""
    from django.conf import settings
    from django.core import serializers

    from governance.audit.models import AuditEvent

    rows = serializers.serialize("json", [run, *Finding.objects.filter(last_import=run),
                                          *AuditEvent.objects.filter(object_id=str(run.pk))])
    files = "".join(p.read_text(errors="replace") for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())
    return rows + files


@pytest.mark.django_db
@pytest.mark.parametrize("sample", ["sarif/gitleaks.sarif", "sarif/gitleaks-no-git.sarif"])
def test_gitleaks_sarif_never_stores_the_secret(system, sample):
    from tests.findings.conftest import PLAIN_SECRETS

    with (DATA / sample).open("rb") as stream:
        run = import_run_create(actor=None, stream=stream, filename="leaks.sarif", fmt="auto", system=system,
                                source="gitleaks")
    import_run_execute(run.pk)
    run.refresh_from_db()
    assert run.status == ImportRun.Status.DONE and run.counts["created"] == 3
    stored = _everything_stored(run)
    assert not [s for s in PLAIN_SECRETS if s in stored]
    finding = Finding.objects.get(last_import=run, rule_id="aws-access-token")
    assert finding.raw["secret_sha256"] and finding.raw["secret_redacted"].endswith("(redacted, 20 chars)")
    assert finding.raw["locations"][0]["physicalLocation"]["region"]["snippet"]["text"] == "(redacted)"


@pytest.mark.django_db
def test_secrets_in_one_file_of_a_no_git_scan_stay_distinct(system):
    """gitleaks' partialFingerprints are commit metadata, all empty without git: they must not be the identity."""
    import json

    doc = json.loads((DATA / "sarif" / "gitleaks-no-git.sarif").read_bytes())
    first = doc["runs"][0]["results"][0]
    for n, secret in enumerate(["AKIAIOSFODNN7EXAMPLF", "AKIAIOSFODNN7EXAMPLG"]):
        twin = json.loads(json.dumps(first))
        twin["locations"][0]["physicalLocation"]["region"].update(startLine=20 + n, snippet={"text": secret})
        doc["runs"][0]["results"].append(twin)
    import io

    run = import_run_create(actor=None, stream=io.BytesIO(json.dumps(doc).encode()), filename="l.sarif", fmt="auto",
                            system=system, source="gitleaks")
    import_run_execute(run.pk)
    run.refresh_from_db()
    assert run.counts["created"] == 5 and run.counts["merged"] == 0
    assert "AKIAIOSFODNN7EXAMPLF" not in _everything_stored(run)


@pytest.mark.django_db
def test_a_gitleaks_report_whose_first_entry_is_longer_than_the_detection_window(system):
    """Its "Secret" key came after the 64 KiB head: detection failed and the file, secret included, stayed on disk."""
    import io
    import json

    entry = json.loads((DATA / "gitleaks" / "gitleaks-report.json").read_bytes())[0]
    entry["Match"] = "x" * 100_000 + entry["Secret"]
    entry["Line"] = entry["Match"]
    entry = {k: entry[k] for k in ("RuleID", "Description", "StartLine", "EndLine", "StartColumn", "EndColumn", "Line",
                                   "Match", "Secret", "File", "Commit")}  # gitleaks' own key order
    run = import_run_create(actor=None, stream=io.BytesIO(json.dumps([entry]).encode()), filename="big.json",
                            fmt="auto", system=system, source="secrets")
    import_run_execute(run.pk)
    run.refresh_from_db()
    assert run.status == ImportRun.Status.DONE and run.detected_format == "gitleaks", run.error
    assert "AKIAIOSFODNN7EXAMPLE" not in _everything_stored(run)


@pytest.mark.django_db
def test_passwords_bandit_quotes_are_not_stored(system):
    """Real bandit output: B105/B107 quote the password in the message and the line in the snippet."""
    with (DATA / "sarif" / "bandit-hardcoded-passwords.sarif").open("rb") as stream:
        run = import_run_create(actor=None, stream=stream, filename="b.sarif", fmt="auto", system=system, source="sast")
    import_run_execute(run.pk)
    run.refresh_from_db()
    assert run.status == ImportRun.Status.DONE and run.counts["created"] == 3
    stored = _everything_stored(run)
    for password in ("hunter2-rampart-test", "s3cr3t-rampart-test", "tok-rampart-test-1234"):
        assert password not in stored
    titles = set(Finding.objects.filter(last_import=run).values_list("title", flat=True))
    assert titles == {"Possible hardcoded password: '(redacted)'"}

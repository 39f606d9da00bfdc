"""Helpers for the findings pipeline tests: SARIF generation, imports run in-process, dumps of findings."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from governance.findings.imports import import_run_execute
from governance.findings.imports import import_run_create
from governance.findings.models import Finding, ImportRun

DATA = Path(__file__).resolve().parent.parent / "data" / "scanners"
# The fake secrets in the gitleaks and trufflehog samples (see tests/data/scanners/README.md).
PLAIN_SECRETS = [
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "ghp_EXAMPLEexampleEXAMPLEexample0123456", "hf_EXAMPLEexampleEXAMPLEexampleEXAMPLE12",
]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    """Stored reports go to a per-test folder."""
    settings.MEDIA_ROOT = str(tmp_path / "media")


def sarif_result(i: int, *, message: str | None = None, uri: str | None = None, severity: str = "HIGH") -> dict:
    return {
        "ruleId": f"B{600 + i % 10}", "level": "warning",
        "message": {"text": message if message is not None else f"subprocess call with shell=True (#{i})"},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri or f"src/m{i % 50}.py"},
                                            "region": {"startLine": i % 900 + 1, "snippet": {"text": f"call({i})"}}}}],
        "properties": {"issue_confidence": "HIGH", "issue_severity": severity},
    }


def sarif_bytes(results: list[dict], tool: str = "Bandit") -> bytes:
    rules = [{"id": f"B{600 + k}"} for k in range(10)]
    return json.dumps({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": tool, "rules": rules}},
                                                      "results": results}]}).encode()


def sarif_n(n: int, **kw) -> bytes:
    return sarif_bytes([sarif_result(i, **kw) for i in range(n)])


def write_sarif_file(path: Path, n: int, start: int = 0) -> Path:
    """A SARIF file of n results written as a stream (for big files)."""
    rules = [{"id": f"B{600 + k}"} for k in range(10)]
    with open(path, "w") as f:
        f.write('{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "Bandit", "rules": %s}}, "results": ['
                % json.dumps(rules))
        for i in range(start, start + n):
            f.write(("," if i > start else "") + json.dumps(sarif_result(i)))
        f.write("]}]}")
    return path


def create_run(data: bytes | Path, *, system=None, source: str = "bandit", fmt: str = "auto", actor=None,
               repository: str = "", filename: str = "report.sarif") -> ImportRun:
    if isinstance(data, Path):
        with open(data, "rb") as stream:
            return import_run_create(actor=actor, stream=stream, filename=data.name, fmt=fmt, system=system,
                                     source=source, repository=repository)
    return import_run_create(actor=actor, stream=io.BytesIO(data), filename=filename, fmt=fmt, system=system,
                             source=source, repository=repository)


def run_import(data: bytes | Path, **kw) -> ImportRun:
    """Store and import a report in this process, as the worker would."""
    run = create_run(data, **kw)
    if run.status == ImportRun.Status.QUEUED:
        result = import_run_execute(run.pk)
        assert result is not None, "the run could not be claimed"
    run.refresh_from_db()
    return run


DUMP_FIELDS = [f.attname for f in Finding._meta.concrete_fields]


def dump_findings(**filters) -> list[dict]:
    """Every column of every finding (the full state to compare before/after)."""
    return list(Finding.objects.filter(**filters).order_by("scope_key", "fingerprint").values(*DUMP_FIELDS))


def fingerprints_and_states(**filters) -> list[tuple[str, str]]:
    return list(Finding.objects.filter(**filters).order_by("fingerprint").values_list("fingerprint", "state"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """transactional_db empties every table after the test (role groups come back through post_migrate):
    put the RMF catalogues back so that later tests in the session still find them."""
    yield
    if nextitem is not None and "transactional_db" in getattr(item, "fixturenames", ()):
        from pytest_django.plugin import blocking_manager_key

        from governance.rmf.catalogues import load_catalogues

        with item.config.stash[blocking_manager_key].unblock():
            load_catalogues()

"""Demo scanner imports for `make run`: real tool outputs shipped with the product in demo_reports/ (copies of the
samples under tests/data/scanners, whose README says how each was made; the Docker image leaves tests/ out)."""
from __future__ import annotations

from pathlib import Path

from governance.findings.imports import import_run_execute
from governance.findings.imports import import_run_create
from governance.findings.models import ImportRun
from governance.inventory.models import AISystem

SAMPLES = Path(__file__).resolve().parent / "demo_reports"
DEMO_IMPORTS = [  # (system slug, source, sample file)
    ("code-review-agent", "bandit-main", "bandit.sarif"),
    ("code-review-agent", "gitleaks", "gitleaks-report.json"),
    ("fraud-scoring", "modelscan-registry", "modelscan-0.8.8.json"),
    ("support-copilot", "trufflehog", "trufflehog-git.jsonl"),
    ("support-copilot", "pip-audit", "pip-audit-vulns.json"),
    ("public-docs-chatbot", "garak-nightly", "garak.report.jsonl"),
]


def seed_findings() -> int:
    """Import each sample once (in this process, so the demo is ready before the worker starts)."""
    done = 0
    for slug, source, name in DEMO_IMPORTS:
        system, path = AISystem.objects.filter(slug=slug).first(), SAMPLES / name
        if system is None or not path.exists() or ImportRun.objects.filter(system=system, source=source).exists():
            continue
        with path.open("rb") as stream:
            run = import_run_create(actor=None, stream=stream, filename=path.name, fmt="auto", system=system,
                                    source=source, via=ImportRun.Via.CLI)
        import_run_execute(run.pk)
        done += 1
    return done

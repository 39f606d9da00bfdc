"""Plain records that every scanner parser yields. No Django in this package."""
from __future__ import annotations

from dataclasses import dataclass, field

SEVERITIES = ("critical", "high", "medium", "low", "info")


class ParseError(Exception):
    """The report cannot be read. The message is shown to the user as the reason."""


@dataclass(slots=True)  # not frozen: a frozen dataclass sets every field through object.__setattr__, 5 µs a record
class Record:
    tool: str  # the scanner that produced it: "bandit", "modelscan", "garak" ...
    fingerprint: str  # hex sha256, stable across runs; see each module's FINGERPRINT_VERSION
    title: str
    severity: str  # one of SEVERITIES
    tool_severity: str  # the tool's own wording, kept as is
    rule_id: str
    location: str  # human readable: "app/x.py:12", "models/m.pkl", "requests@2.0.0", "probe/detector"
    description: str = ""
    remediation: str = ""
    artifact: str = ""  # file or model artifact path, used by routing rules (glob)
    package: str = ""
    line: int | None = None
    raw: dict = field(default_factory=dict)  # redacted and size-capped copy of the entry


@dataclass(slots=True)
class Incomplete:
    """Yielded by a parser among its records when the report did not examine everything it covers (skipped
    dependencies, a failed scanner run). With `packages`, only those were not examined; without, the whole report
    is in doubt. The importer then does not close what the report no longer lists there: a person decides."""

    reason: str
    packages: tuple[str, ...] = ()

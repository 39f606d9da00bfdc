"""The whole check of the audit trail, as `verify_audit` and the audit page's "Verify the chain" run it: the chain
(links, MACs, foreign keys, sealed head), the checkpoints written outside the database, and the signed decisions."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from governance.audit.checkpoints import Checkpoint, checkpoints_read
from governance.audit.selectors import ChainReport, verify_chain

WRONG_KEY = ("No keyed event verifies: is RAMPART_AUDIT_KEY (or SECRET_KEY, when it is unset) the key the trail was "
             "written with? Earlier keys go in RAMPART_AUDIT_KEY_FALLBACKS.")


@dataclass
class Verification:
    report: ChainReport
    checkpoints: list[Checkpoint]
    problems: list[str]  # the chain's, in seq order, then checkpoint lines that are not checkpoints
    decisions: list[str] = field(default_factory=list)  # signed decisions altered (checked when the chain is intact)
    notes: list[str] = field(default_factory=list)  # said, but not a problem (no checkpoint file yet)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.decisions

    @property
    def wrong_key(self) -> bool:
        return bool(self.problems) and self.report.wrong_key

    @property
    def summary(self) -> str:
        """One sentence: intact with how many events and up to which checkpoint, or where it first breaks."""
        report = self.report
        if self.problems:
            first = report.problem
            where = f" at event #{first.seq}" if first else ""
            return (f"Audit trail broken{where}: " + "; ".join(self.problems[:5])
                    + f" ({report.checked} events checked)")
        if self.decisions:
            return "Signed decisions altered: " + "; ".join(self.decisions[:10])
        text = f"Audit trail intact: {report.checked} events verified"
        if report.legacy:
            text += f" ({report.legacy} written before the keyed chain, with plain SHA-256)"
        text += ", head sealed."
        cp = report.latest_checkpoint
        if cp is None:
            return text + (" No checkpoint compared: events removed from the end would go unnoticed."
                           if not self.checkpoints else "")
        after = report.last_seq - cp.seq
        return text + (f" {report.checkpoints_matched} checkpoints match, the latest event #{cp.seq} written at "
                       f"{cp.at}" + (f"; the {after} events after it are covered by the MAC only." if after else "."))


def trail_verify(paths: list[Path] | None = None) -> Verification:
    """Check everything; paths are checkpoint files (default RAMPART_AUDIT_CHECKPOINT_FILE). A file named in paths
    that does not exist raises FileNotFoundError; the configured one, missing, is only a note (nothing written yet)."""
    from governance.risks.selectors import decisions_verify

    explicit = bool(paths)
    if not explicit:
        paths = [settings.RAMPART_AUDIT_CHECKPOINT_FILE] if settings.RAMPART_AUDIT_CHECKPOINT_FILE else []
    found, bad, notes = [], [], []
    for path in paths:
        try:
            more, wrong = checkpoints_read(path)
        except FileNotFoundError:
            if explicit:
                raise
            notes.append(f"No checkpoint file at {path} yet (audit_checkpoint writes it).")
            continue
        found += more
        bad += wrong
    report = verify_chain(checkpoints=found)
    problems = [p.reason for p in sorted(report.problems, key=lambda p: p.seq)] + bad
    return Verification(report=report, checkpoints=found, problems=problems, notes=notes,
                        decisions=[] if problems else decisions_verify())

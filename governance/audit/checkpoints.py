"""Checkpoints: the end of the audit chain (seq and hash) written outside the database.

A checkpoint pins every event up to its seq: a later rewrite changes that event's hash, and a cut tail leaves
the chain shorter than the checkpoint. Lines are JSON, one a line, appended (O_APPEND, fsynced) to
RAMPART_AUDIT_CHECKPOINT_FILE, logged on the `governance.audit.checkpoint` logger and e-mailed to
RAMPART_AUDIT_CHECKPOINT_EMAIL. `verify_audit` compares them with the chain (README, "Security").
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from governance.audit.selectors import verify_chain

logger = logging.getLogger("governance.audit.checkpoint")
_TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str
    source: str = ""  # where it was read: "file:line"

    def line(self) -> str:
        return json.dumps({"seq": self.seq, "hash": self.hash, "at": self.at}, sort_keys=True, separators=(",", ":"))


class CheckpointRefused(Exception):
    """The events since the last checkpoint do not verify: writing one would vouch for them."""


def parse_line(text: str, source: str) -> Checkpoint | None:
    """A checkpoint from a line (leading text such as a log prefix is skipped); None for blank and # lines."""
    text = text.strip()
    if not text or text.startswith("#"):
        return None
    try:
        data = json.loads(text[text.index("{"):])
        seq, digest, at = data["seq"], data["hash"], data["at"]
        if type(seq) is not int or seq < 1 or not isinstance(digest, str) or len(digest) != 64:
            raise ValueError("seq or hash out of form")
        int(digest, 16)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{source} is not a checkpoint ({exc})") from exc
    return Checkpoint(seq=seq, hash=digest, at=str(at), source=source)


def checkpoints_read(path: Path) -> tuple[list[Checkpoint], list[str]]:
    """Every checkpoint in a file, and the lines that are not checkpoints. Raises FileNotFoundError."""
    found, bad = [], []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, text in enumerate(fh, 1):
            try:
                cp = parse_line(text, f"{path}:{number}")
            except ValueError as exc:
                bad.append(str(exc))
                continue
            if cp is not None:
                found.append(cp)
    return found, bad


def last_checkpoint(path: Path) -> Checkpoint | None:
    """The file's last checkpoint (read from its tail), None when there is no file or no checkpoint in it."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - _TAIL_BYTES))
            tail = fh.read().decode("utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return None
    for text in reversed(tail):
        cp = parse_line(text, f"{path} (last line)")
        if cp is not None:
            return cp
    return None


def _append(path: Path, line: str) -> None:
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:  # make the new directory entry durable too
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _replace(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(line + "\n")
    os.replace(tmp, path)


def checkpoint_write(*, path: Path | None, email_to: list[str]) -> Checkpoint | None:
    """Verify the events since the last checkpoint in `path`, then record the chain's end.

    Without a file, the last checkpoint is remembered in RAMPART_VAR_DIR (so that only new events are verified
    and nothing is sent while the trail has not grown). Returns the checkpoint written, or None when the chain is
    empty or has not moved since the last one. Raises CheckpointRefused (and e-mails the reason) when what was
    appended since does not verify.
    """
    state = path or Path(settings.VAR_DIR) / "audit-checkpoint.last"
    try:
        previous = last_checkpoint(state)
    except ValueError as exc:
        _refuse(str(exc), email_to)
    report = verify_chain(checkpoints=[previous] if previous else [], from_seq=previous.seq if previous else 1)
    if report.problems:
        _refuse("; ".join(p.reason for p in sorted(report.problems, key=lambda p: p.seq)[:10]), email_to)
    if report.last_seq == 0 or (previous is not None and previous.seq == report.last_seq):
        return None
    checkpoint = Checkpoint(seq=report.last_seq, hash=report.last_hash,
                            at=timezone.now().isoformat(timespec="seconds"))
    if path:
        _append(path, checkpoint.line())
    else:
        _replace(state, checkpoint.line())
    logger.info("audit checkpoint %s", checkpoint.line())
    if email_to:
        send_mail(f"Rampart audit checkpoint #{checkpoint.seq}",
                  f"{checkpoint.line()}\n\nKeep this line: `python manage.py verify_audit --checkpoints FILE` "
                  "compares saved checkpoint lines with the audit trail.\n", None, email_to)
    return checkpoint


def _refuse(reasons: str, email_to: list[str]):
    logger.error("audit checkpoint refused: %s", reasons)
    if email_to:
        send_mail("Rampart audit trail: checkpoint refused", f"The audit trail does not verify: {reasons}\n\n"
                  "Run `python manage.py verify_audit` for the full check.", None, email_to)
    raise CheckpointRefused(reasons)


def checkpoint_now() -> Checkpoint | None:
    """The configured destinations (RAMPART_AUDIT_CHECKPOINT_FILE, RAMPART_AUDIT_CHECKPOINT_EMAIL)."""
    return checkpoint_write(path=settings.RAMPART_AUDIT_CHECKPOINT_FILE, email_to=settings.RAMPART_AUDIT_CHECKPOINT_EMAIL)

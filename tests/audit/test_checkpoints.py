"""Checkpoints written outside the database, the MAC key and its settings."""
import json

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from governance.audit.models import AuditEvent
from governance.envconfig import env_file, env_positive, env_secret
from tests.audit.conftest import grow

pytestmark = pytest.mark.django_db


def lines(path) -> list[dict]:
    return [json.loads(text) for text in path.read_text().splitlines()]


def test_checkpoint_appends_the_chain_end_once_per_move(trail, checkpoint_file, capsys):
    call_command("audit_checkpoint")
    last = AuditEvent.objects.get(seq=4)
    assert [(c["seq"], c["hash"]) for c in lines(checkpoint_file)] == [(4, last.hash)]
    assert json.loads(capsys.readouterr().out)["seq"] == 4  # the line is printed too, for piping elsewhere

    call_command("audit_checkpoint")  # nothing new: nothing written
    assert len(lines(checkpoint_file)) == 1
    grow(trail)
    call_command("audit_checkpoint")
    assert [c["seq"] for c in lines(checkpoint_file)] == [4, 5]
    assert "2 checkpoints match, the latest event #5" in _verified(capsys)


def test_checkpoint_of_an_empty_trail_writes_nothing(db, checkpoint_file):
    call_command("audit_checkpoint")
    assert not checkpoint_file.exists()


def test_checkpoint_is_refused_and_mailed_when_the_new_events_do_not_verify(trail, checkpoint_file, settings, mailoutbox):
    settings.RAMPART_AUDIT_CHECKPOINT_EMAIL = ["ciso@example.com"]
    call_command("audit_checkpoint")
    grow(trail)
    AuditEvent.objects.filter(seq=5).update(actor_label="someone@else")
    with pytest.raises(CommandError, match=r"Checkpoint refused.*event #5 was altered \(MAC mismatch\)"):
        call_command("audit_checkpoint")
    assert len(lines(checkpoint_file)) == 1
    assert [m.subject for m in mailoutbox] == ["Rampart audit checkpoint #4", "Rampart audit trail: checkpoint refused"]
    assert "event #5 was altered" in mailoutbox[1].body


def test_checkpoint_is_refused_when_the_chain_is_shorter_than_the_last_one(trail, checkpoint_file):
    call_command("audit_checkpoint")
    AuditEvent.objects.filter(seq=4).delete()
    with pytest.raises(CommandError, match=r"the chain ends at #3, but the checkpoint .* recorded event #4"):
        call_command("audit_checkpoint")


def test_checkpoint_mail_carries_the_line(trail, settings, mailoutbox, capsys):
    settings.RAMPART_AUDIT_CHECKPOINT_EMAIL = ["audit@example.com"]
    call_command("audit_checkpoint")
    (mail,) = mailoutbox
    assert mail.to == ["audit@example.com"]
    assert json.loads(mail.body.splitlines()[0]) == json.loads(capsys.readouterr().out)
    call_command("audit_checkpoint")  # without a file, the last checkpoint is remembered in RAMPART_VAR_DIR
    assert len(mailoutbox) == 1
    grow(trail)
    call_command("audit_checkpoint")
    assert [m.subject for m in mailoutbox] == ["Rampart audit checkpoint #4", "Rampart audit checkpoint #5"]


def test_saved_lines_from_logs_or_mails_can_be_compared(trail, tmp_path, capsys, caplog):
    with caplog.at_level("INFO", logger="governance.audit.checkpoint"):
        call_command("audit_checkpoint")
    saved = tmp_path / "from-the-log.txt"
    saved.write_text("# lines kept by the log collector\n\n" + caplog.records[0].getMessage() + "\n")
    assert "1 checkpoints match, the latest event #4" in _verified(capsys, "--checkpoints", str(saved))
    AuditEvent.objects.filter(seq__gt=2).delete()
    with pytest.raises(CommandError, match=r"the chain ends at #2, but the checkpoint .*from-the-log.txt:3"):
        call_command("verify_audit", "--checkpoints", str(saved))


def test_a_line_that_is_not_a_checkpoint_is_named(trail, checkpoint_file):
    call_command("audit_checkpoint")
    with checkpoint_file.open("a") as fh:
        fh.write('{"seq": 5, "hash": "not hex"}\n')
    with pytest.raises(CommandError, match=r"audit-checkpoints.jsonl:2 is not a checkpoint"):
        call_command("verify_audit")


def test_a_damaged_last_line_refuses_the_next_checkpoint(trail, checkpoint_file):
    checkpoint_file.write_text('{"seq": 4, "hash": "cut sho\n')
    with pytest.raises(CommandError, match=r"Checkpoint refused.*audit-checkpoints.jsonl \(last line\) is not a checkpoint"):
        call_command("audit_checkpoint")


def test_a_missing_checkpoint_file_is_said(trail, checkpoint_file, tmp_path, capsys):
    call_command("verify_audit")
    out, err = capsys.readouterr()
    assert "No checkpoint compared" in out and f"No checkpoint file at {checkpoint_file} yet" in err
    with pytest.raises(CommandError, match="No checkpoint file at"):
        call_command("verify_audit", "--checkpoints", str(tmp_path / "nowhere.jsonl"))


def test_beat_runs_the_checkpoint_task(trail, checkpoint_file):
    from worker.tasks import audit_checkpoint

    entry = django_settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]
    assert entry["task"] == "worker.tasks.audit_checkpoint"
    assert entry["schedule"] == django_settings.RAMPART_AUDIT_CHECKPOINT_SECONDS
    assert audit_checkpoint() == 4
    assert audit_checkpoint() == 0
    assert len(lines(checkpoint_file)) == 1


def test_a_new_key_needs_the_old_one_among_the_fallbacks(trail, settings, capsys):
    old = settings.RAMPART_AUDIT_KEY
    settings.RAMPART_AUDIT_KEY = "a-new-audit-key-0123456789abcdef0123456789"
    with pytest.raises(CommandError, match=r"event #1 was altered \(MAC mismatch\)"):
        call_command("verify_audit")
    assert "No keyed event verifies: is RAMPART_AUDIT_KEY" in capsys.readouterr().err
    settings.RAMPART_AUDIT_KEY_FALLBACKS = [old]
    grow(trail)  # written with the new key
    assert "5 events verified" in _verified(capsys)


def test_without_a_key_it_is_derived_from_secret_key(trail, settings, capsys):
    settings.RAMPART_AUDIT_KEY = ""
    grow(trail)
    settings.RAMPART_AUDIT_KEY_FALLBACKS = ["test-audit-key-0123456789abcdef0123456789abcdef"]
    assert "5 events verified" in _verified(capsys)
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    with pytest.raises(CommandError, match=r"event #5 was altered"):
        call_command("verify_audit")


@pytest.mark.parametrize("name, value, call", [
    ("RAMPART_AUDIT_KEY", "short", lambda n: env_secret(n)),
    ("RAMPART_AUDIT_CHECKPOINT_FILE", "var/checkpoints.jsonl", lambda n: env_file(n)),
    ("RAMPART_AUDIT_CHECKPOINT_SECONDS", "0", lambda n: env_positive(n, 300)),
])
def test_bad_settings_are_refused_by_name(monkeypatch, name, value, call):
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=name):
        call(name)


def _verified(capsys, *args) -> str:
    call_command("verify_audit", *args)
    return capsys.readouterr().out

import pytest

AUDIT_KEY = "test-audit-key-0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _audit_settings(settings, tmp_path):
    """A known MAC key; no checkpoint file or e-mail unless a test names them; local state in a fresh folder."""
    settings.VAR_DIR = tmp_path / "var"
    settings.RAMPART_AUDIT_KEY = AUDIT_KEY
    settings.RAMPART_AUDIT_KEY_FALLBACKS = []
    settings.RAMPART_AUDIT_CHECKPOINT_FILE = None
    settings.RAMPART_AUDIT_CHECKPOINT_EMAIL = []


def grow(system, actor=None, times: int = 1) -> None:
    """Append `times` events (system.update of the purpose)."""
    from governance.audit.models import AuditEvent
    from governance.inventory import services

    for _ in range(times):
        before = AuditEvent.objects.count()
        services.system_update(actor=actor, system=system, data={"purpose": f"Purpose {before + 1}."})
        assert AuditEvent.objects.count() == before + 1


@pytest.fixture
def trail(system, ciso):
    """Four events: #1 system.create, #2-#4 system.update, all by the CISO on `system`."""
    grow(system, ciso, times=3)
    return system


@pytest.fixture
def checkpoint_file(settings, tmp_path):
    settings.RAMPART_AUDIT_CHECKPOINT_FILE = tmp_path / "audit-checkpoints.jsonl"
    return settings.RAMPART_AUDIT_CHECKPOINT_FILE

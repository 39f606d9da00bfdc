"""Thin Celery tasks: take ids, call a governance service. Idempotent, acks_late."""
from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from governance.findings.ingest import ParserLost


@shared_task(acks_late=True, autoretry_for=(OperationalError, InterfaceError, ParserLost), retry_backoff=True,
             retry_backoff_max=120, max_retries=8)
def process_import(run_id: int) -> str:
    from governance.findings.recovery import import_run_process

    return import_run_process(run_id)


@shared_task(acks_late=True)
def imports_resume_stale() -> int:
    """Resend the runs whose message is missing: queued but never sent (the broker was down) or lost, running with
    nobody holding them (their worker died). At most once a minute each, however many of these pile up."""
    from governance.findings.recovery import imports_resend_missing

    return len(imports_resend_missing())


@shared_task(acks_late=True)
def sources_pull_due() -> int:
    """Beat: one source_pull task per due source, so a slow or failing source never holds up the others."""
    from governance.findings import pull

    return pull.sources_queue_due()


@shared_task(acks_late=True)
def acceptances_expire() -> int:
    """Reopen risks whose acceptance expired, and warn owners of acceptances expiring soon."""
    from governance.risks.services import acceptances_expire as expire, acceptances_warn

    acceptances_warn()
    return expire()


@shared_task(acks_late=True, autoretry_for=(OperationalError, InterfaceError), retry_backoff=True, max_retries=8)
def process_lineage() -> int:
    """Apply pending OpenLineage events to the provenance graph (safe to run concurrently)."""
    from governance.lineage.services import events_process

    return events_process()


@shared_task(acks_late=True)
def lineage_rules() -> int:
    """Sync the inventory into the graph, then evaluate the provenance rules into findings."""
    from governance.lineage.rules import rules_evaluate
    from governance.lineage.services import inventory_sync

    inventory_sync()
    return len(rules_evaluate())


@shared_task(acks_late=True, autoretry_for=(OperationalError, InterfaceError), retry_backoff=True, max_retries=3)
def exercises_release_due() -> int:
    """Release the timed injects of running exercises whose offset has passed on the exercise clock."""
    from governance.tabletop.services import exercises_release_due as release_due

    return release_due()


@shared_task(acks_late=True)
def lineage_connector_run(connector_id: int) -> str:
    """Pull one lineage connector (Marquez or MLflow). Its failure is stored on the connector, not raised."""
    from governance.lineage.connectors import connector_run

    return connector_run(connector_id=connector_id)


@shared_task(acks_late=True)
def lineage_connectors_due() -> int:
    """Beat: one task per due connector, so a slow or failing one never holds up the others."""
    from governance.lineage.connectors import connectors_queue_due

    return connectors_queue_due()


@shared_task(acks_late=True)
def source_pull(source_id: int) -> str:
    """Pull one findings source (URL or drop folder). Its outcome is stored on the source, never raised, so a
    redelivered task simply pulls again (an unchanged URL creates no run; a folder's taken files were moved)."""
    from governance.findings import pull

    return pull.source_pull(source_id)


@shared_task(acks_late=True)
def audit_checkpoint() -> int:
    """Beat: record the audit chain's end outside the database (refused, and e-mailed, if it does not verify)."""
    from governance.audit.checkpoints import checkpoint_now

    checkpoint = checkpoint_now()
    return checkpoint.seq if checkpoint else 0


@shared_task(acks_late=True)
def api_tokens_warn_expiring() -> int:
    """Beat: e-mail the owners of API tokens that expire soon, once per token (claimed by a conditional UPDATE)."""
    from governance.accounts.services import api_tokens_warn_expiring as warn

    return warn()


@shared_task(acks_late=True)
def posture_snapshot() -> int:
    """Beat: record today's posture per system (a re-run the same day updates the day's rows, never adds)."""
    from governance.dashboard.snapshots import snapshot_take

    return snapshot_take()


@shared_task(acks_late=True)
def posture_backfill(first: str, last: str | None = None) -> int:
    """Reconstruct past days' posture snapshots from history (days with a live snapshot are left as they are)."""
    from datetime import date

    from governance.dashboard.snapshots import snapshots_backfill

    return snapshots_backfill(first=date.fromisoformat(first), last=date.fromisoformat(last) if last else None)

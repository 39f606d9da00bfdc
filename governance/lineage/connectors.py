"""Pull connectors: Marquez's stored OpenLineage events and MLflow's model registry, read incrementally.

Each connector runs as its own Celery task (a failure is recorded on that connector and never blocks
the others); `connectors_due` finds the ones whose schedule has come. A run claims its connector with a
conditional UPDATE, so a slow pull and the next beat tick never run it twice at once.
"""
from __future__ import annotations

import base64
import fnmatch
import logging
from datetime import datetime, timedelta, timezone as dt_timezone

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from governance import outbound, queueing
from governance.audit.services import audit_record, snapshot
from governance.lineage import secrets
from governance.lineage.models import Connector, LineageEvent
from governance.lineage.services import event_receive
from worker.lineage import marquez, mlflow
from worker.lineage.http import JsonClient
from worker.lineage.openlineage import EventError
from worker.outbound import OutboundError

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=30)  # a claim older than this belonged to a worker that died
MARQUEZ_OVERLAP = timedelta(minutes=10)  # re-read window for late-arriving events (duplicates are no-ops)
# per request: 4 attempts, 0.5 s, 1 s, 2 s apart; 2 minutes and 50 MB at most each
HTTP_OPTIONS = {"timeout": 15.0, "retries": 3, "backoff": 0.5, "max_seconds": 120.0, "max_bytes": 50 * 1024 * 1024}


class ConnectorError(Exception):
    pass


# ---------------------------------------------------------------- configuration (audited writes)


def parse_mapping(text: str) -> list[list[str]]:
    """'fraud-* = fraud-scoring' lines → [[glob, slug], …]. ValueError names the bad line."""
    from governance.inventory.models import AISystem

    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        glob, sep, slug = (p.strip() for p in line.partition("="))
        if not sep or not glob or not slug:
            raise ValueError(f"Line {n}: write 'model-name-glob = system-slug'.")
        if not AISystem.objects.filter(slug=slug).exists():
            raise ValueError(f"Line {n}: no AI system with slug {slug!r}.")
        out.append([glob[:200], slug])
    return out


def mapping_text(mapping: list) -> str:
    return "\n".join(f"{g} = {s}" for g, s in mapping)


def _set_credential(connector: Connector, credential: str | None) -> None:
    """None keeps the stored credential; '' clears it; 'env:NAME' references a variable; anything else is encrypted."""
    if credential is None:
        return
    credential = credential.strip()
    if credential.startswith("env:"):
        if refused := secrets.env_name_error(credential[4:].strip()):
            raise ConnectorError(refused)
        connector.credential_env, connector.credential_encrypted = credential[4:].strip(), ""
    else:
        connector.credential_env, connector.credential_encrypted = "", (secrets.encrypt(credential) if credential else "")


def _audit_view(connector: Connector) -> dict:
    data = snapshot(connector, ["kind", "name", "base_url", "auth", "credential_env", "every_minutes", "system_mapping", "enabled"])
    data["credential"] = "set" if connector.has_credential else "none"
    return data


@transaction.atomic
def connector_save(*, actor, connector: Connector | None = None, data: dict, credential: str | None = None) -> Connector:
    """Create or update. The credential is never part of the audit trail: only whether one is set."""
    outbound.check_url(data.get("base_url") or connector.base_url, raise_as=ConnectorError)
    before = _audit_view(connector) if connector and connector.pk else None
    connector = connector or Connector()
    old_mapping = connector.system_mapping if connector.pk else None
    for key, value in data.items():
        setattr(connector, key, value)
    if before and (before["base_url"] != connector.base_url or old_mapping != connector.system_mapping):
        connector.state = {}  # another server or mapping: read everything again (idempotent)
    _set_credential(connector, credential)
    connector.save()
    audit_record(actor=actor, action="lineage.connector.update" if before else "lineage.connector.create",
                 obj=connector, before=before, after=_audit_view(connector))
    return connector


@transaction.atomic
def connector_delete(*, actor, connector: Connector) -> None:
    audit_record(actor=actor, action="lineage.connector.delete", obj=connector, before=_audit_view(connector))
    connector.delete()


# ---------------------------------------------------------------- running


def connector_run_request(*, actor, connector: Connector) -> bool:
    """Ask the worker to pull this connector now (audited). False when the broker is unreachable: nothing was sent,
    and the schedule pulls it later."""
    if not queueing.send("lineage_connector_run", connector.pk):
        return False
    with transaction.atomic():
        audit_record(actor=actor, action="lineage.connector.run_now", obj=connector)
    return True


def client_for(connector: Connector, **kw) -> JsonClient:
    headers = {}
    secret = secrets.resolve(encrypted=connector.credential_encrypted, env_name=connector.credential_env)
    if connector.auth == Connector.Auth.BEARER and secret:
        headers["Authorization"] = f"Bearer {secret}"
    elif connector.auth == Connector.Auth.BASIC and secret:
        headers["Authorization"] = "Basic " + base64.b64encode(secret.encode()).decode()
    return JsonClient(connector.base_url, outbound.client(headers=headers, user_agent="Rampart-lineage/1",
                                                          **{**HTTP_OPTIONS, **kw}))


def connectors_due(now: datetime | None = None) -> list[int]:
    now = now or timezone.now()
    return [c.pk for c in Connector.objects.filter(enabled=True) if c.is_due(now)]


def connectors_queue_due(now: datetime | None = None) -> int:
    """Beat: send one run per due connector, so a slow or failing one never holds up the others. A run claims its
    connector when it starts (a second send only skips). Returns how many were sent; with the broker down none
    is, and the next tick tries again."""
    return sum(queueing.send("lineage_connector_run", pk) for pk in connectors_due(now))


def _claim(connector_id: int, now: datetime) -> bool:
    return bool(Connector.objects.filter(pk=connector_id).filter(
        Q(running_since__isnull=True) | Q(running_since__lt=now - LEASE)).update(running_since=now))


def connector_run(*, connector_id: int, client_options: dict | None = None) -> str:
    """Run one connector now. Returns a short summary; a failure is stored in last_error, never raised."""
    now = timezone.now()
    if not _claim(connector_id, now):
        return "skipped: already running"
    connector = Connector.objects.get(pk=connector_id)
    try:
        client = client_for(connector, **(client_options or {}))
        run = {Connector.Kind.MARQUEZ: _run_marquez, Connector.Kind.MLFLOW: _run_mlflow}[connector.kind]
        summary = run(connector, client, now)
    except Exception as exc:  # recorded on the connector; the others run regardless
        if isinstance(exc, OutboundError):
            exc = ConnectorError(str(exc))
        log.warning("Lineage connector %s failed: %s", connector.name, exc)
        error = f"{type(exc).__name__}: {exc}"[:2000]
        Connector.objects.filter(pk=connector_id).update(running_since=None, last_run_at=now, last_error=error,
                                                         state=connector.state)  # progress made before the failure
        return f"failed: {error}"
    Connector.objects.filter(pk=connector_id).update(running_since=None, last_run_at=now, last_success_at=timezone.now(),
                                                     last_error="", last_summary=summary[:300], state=connector.state)
    return summary


def connectors_run_due() -> list[str]:
    """In-process sweep (management command, tests): every due connector, each isolated from the others."""
    return [connector_run(connector_id=pk) for pk in connectors_due()]


def _save_state(connector: Connector) -> None:
    Connector.objects.filter(pk=connector.pk).update(state=connector.state)


def _run_marquez(connector: Connector, client: JsonClient, now: datetime) -> str:
    cursor = connector.state.get("cursor")
    after = datetime.fromisoformat(cursor) - MARQUEZ_OVERLAP if cursor else datetime(1970, 1, 1, tzinfo=dt_timezone.utc)
    before = now + timedelta(seconds=1)
    new = seen = invalid = 0
    for page in marquez.iter_event_pages(client, after=after, before=before):
        latest = None
        with transaction.atomic():
            for payload in page:
                seen += 1
                try:
                    event, created = event_receive(payload=payload, origin=LineageEvent.Origin.MARQUEZ)
                except EventError:
                    invalid += 1
                    continue
                if event is None:
                    continue
                new += created
                latest = max(latest or event.event_time, event.event_time)
        if latest is not None and (cursor is None or latest > datetime.fromisoformat(cursor)):
            cursor = min(latest, now).isoformat()
            connector.state = {**connector.state, "cursor": cursor}
            _save_state(connector)
    connector.state = {**connector.state, "events_total": connector.state.get("events_total", 0) + new}
    return f"{new} new events of {seen} read" + (f", {invalid} not valid OpenLineage (skipped)" if invalid else "")


def system_for(model_name: str, mapping: list) -> str | None:
    for glob, slug in mapping:
        if fnmatch.fnmatchcase(model_name, glob):
            return slug
    return None


def _run_mlflow(connector: Connector, client: JsonClient, now: datetime) -> str:
    from governance.inventory.models import AIModel, AISystem
    from governance.inventory.services import model_register

    state = {"models": {}, **connector.state}
    seen: dict = state["models"]  # name -> {"updated": ms, "versions": [str, …]}
    systems = {s.slug: s for s in AISystem.objects.active()}
    experiments: dict[str, str] = {}
    tracking = connector.base_url.rstrip("/")
    new_versions = registered = 0
    for model in mlflow.registered_models(client):
        name = str(model.get("name") or "")
        updated = int(model.get("last_updated_timestamp") or 0)
        known = seen.get(name) or {"updated": -1, "versions": []}
        if not name or updated and updated <= known["updated"]:
            continue
        versions = [v for v in mlflow.model_versions(client, name) if v.version not in known["versions"]]
        for v in sorted(versions, key=lambda v: int(v.version) if v.version.isdecimal() else 0):
            run = mlflow.run_details(client, v.run_id, experiments) if v.run_id else None
            with transaction.atomic():
                event_receive(payload=mlflow.version_event(v, run, tracking=tracking), origin=LineageEvent.Origin.MLFLOW)
                slug = system_for(name, connector.system_mapping)
                system = systems.get(slug) if slug else None
                if system and not AIModel.objects.filter(system=system, name=name[:200], version=v.version[:80]).exists():
                    model_register(actor=None, system=system, data={
                        "name": name[:200], "version": v.version[:80], "provider": "in-house",
                        "format": mlflow.model_format(run.flavors if run else {}),
                        "source_uri": (v.source or f"models:/{name}/{v.version}")[:500]})
                    registered += 1
                known = {"updated": known["updated"], "versions": [*known["versions"], v.version]}
                seen[name] = known
                connector.state = {**state, "models": seen}
                _save_state(connector)
            new_versions += 1
        seen[name] = {**known, "updated": max(updated, known["updated"])}
        connector.state = {**state, "models": seen}
        _save_state(connector)
    if registered:
        from governance.lineage.services import inventory_sync

        transaction.on_commit(inventory_sync) if transaction.get_connection().in_atomic_block else inventory_sync()
    return f"{new_versions} new model versions, {registered} added to the inventory"

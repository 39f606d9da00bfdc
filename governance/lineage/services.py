"""Receive lineage events, and build the provenance graph from them and from the inventory."""
from __future__ import annotations

import time
from collections.abc import Iterable

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from governance import queueing
from governance.lineage.graph import upsert_edges, upsert_nodes
from governance.lineage.models import LineageEdge, LineageEvent, NodeKind
from worker.lineage.openlineage import DatasetRef, EventError, LineageRecord, content_sha256, facet_summary, parse_event


def dataset_key(ref: DatasetRef) -> tuple[str, str, str]:
    """(key, kind, display name). models:/name/version URIs become model-version nodes."""
    if ref.is_model:
        parts = ref.name.removeprefix("models:/").strip("/").split("/")
        name, version = parts[0], (parts[1] if len(parts) > 1 else "")
        return model_key(name, version), NodeKind.MODEL_VERSION, f"{name} {version}".strip()
    return f"dataset:{ref.namespace}/{ref.name}", NodeKind.DATASET, ref.name


def model_key(name: str, version: str) -> str:
    return f"model:{name}@{version}"


def event_receive(*, payload: dict, origin: str = LineageEvent.Origin.PUSH) -> tuple[LineageEvent | None, bool]:
    """Validate and store one event (EventError if invalid). The same event twice is stored once."""
    record = parse_event(payload)
    sha = content_sha256(payload)
    try:
        with transaction.atomic():
            event = LineageEvent.objects.create(content_sha256=sha, origin=origin, event_type=record.event_type,
                                                event_time=record.event_time, payload=payload)
    except IntegrityError:
        return LineageEvent.objects.filter(content_sha256=sha).first(), False
    transaction.on_commit(_enqueue)
    return event, True


def events_receive(*, payloads: list, origin: str = LineageEvent.Origin.PUSH) -> tuple[int, int]:
    """Validate a batch of events and store them together: all or nothing. Returns (stored, duplicates).

    Raises EventError naming the first invalid event's index; then nothing is stored.
    """
    rows, seen = [], set()
    for index, payload in enumerate(payloads):
        try:
            record = parse_event(payload)
        except EventError as exc:
            raise EventError(f"event [{index}]: {exc}") from exc
        sha = content_sha256(payload)
        if sha not in seen:
            seen.add(sha)
            rows.append(LineageEvent(content_sha256=sha, origin=origin, event_type=record.event_type,
                                     event_time=record.event_time, payload=payload))
    with transaction.atomic():
        known = set(LineageEvent.objects.filter(content_sha256__in=seen).values_list("content_sha256", flat=True))
        new = [r for r in rows if r.content_sha256 not in known]
        LineageEvent.objects.bulk_create(new, ignore_conflicts=True, batch_size=500)
        if new:
            transaction.on_commit(_enqueue)
    return len(new), len(payloads) - len(new)


WAKE_WINDOW = 1.0  # seconds: at most one worker wake-up per process per window
_last_wake = 0.0


def _enqueue() -> None:
    """Wake the worker, at most once per WAKE_WINDOW per process: one task drains every pending event.

    The task is sent with a countdown of one window, so it runs after every event this process stored
    (without a wake-up of its own) during that window has committed. The beat sweep is the safety net.
    """
    global _last_wake
    now = time.monotonic()
    if now - _last_wake < WAKE_WINDOW:
        return
    _last_wake = now
    if not queueing.send("process_lineage", countdown=WAKE_WINDOW):
        _last_wake = 0.0  # broker down: the beat sweep processes pending events later


def _collect(record: LineageRecord, nodes: dict, edges: list) -> None:
    when = record.event_time

    def node(key, kind, namespace, name, attributes=None):
        current = nodes.get(key)
        if current is None:
            nodes[key] = {"kind": kind, "namespace": namespace, "name": name, "attributes": attributes or {},
                          "first_seen": when, "last_seen": when}
        else:
            current["first_seen"], current["last_seen"] = min(current["first_seen"], when), max(current["last_seen"], when)
            current["attributes"].update(attributes or {})
        return key

    def ds(ref: DatasetRef):
        key, kind, name = dataset_key(ref)
        return node(key, kind, ref.namespace, name, facet_summary(ref.facets))

    if record.dataset is not None:
        ds(record.dataset)
    if record.job is not None:
        job = node(f"job:{record.job[0]}/{record.job[1]}", NodeKind.JOB, record.job[0], record.job[1])
        for ref in record.inputs:
            edges.append((ds(ref), job, LineageEdge.Kind.INPUT, when))
        for ref in record.outputs:
            edges.append((job, ds(ref), LineageEdge.Kind.OUTPUT, when))


def apply_records(records: Iterable[LineageRecord]) -> None:
    nodes, edges = {}, []
    for record in records:
        _collect(record, nodes, edges)
    ids = upsert_nodes(nodes)
    merged: dict[tuple[int, int, str], tuple] = {}
    for src, dst, kind, when in edges:
        k = (ids[src], ids[dst], kind)
        first, last = merged.get(k, (when, when))
        merged[k] = (min(first, when), max(last, when))
    upsert_edges(merged)


def events_process(*, batch: int = 1000) -> int:
    """Apply pending events to the graph, one batch per transaction. Returns events processed."""
    done = 0
    while True:
        with transaction.atomic():
            pending = LineageEvent.objects.filter(processed_at__isnull=True).order_by("id")
            if connection.vendor == "postgresql":
                pending = pending.select_for_update(skip_locked=True)
            events = list(pending.only("id", "payload")[:batch])
            if not events:
                return done
            apply_records(parse_event(e.payload) for e in events)
            LineageEvent.objects.filter(pk__in=[e.pk for e in events]).update(processed_at=timezone.now())
            done += len(events)


def graph_rebuild() -> None:
    """Replay every stored event and the inventory from scratch: the graph is a function of them."""
    from governance.lineage.models import LineageNode

    with transaction.atomic():
        LineageEdge.objects.all().delete()
        LineageNode.objects.all().delete()
        LineageEvent.objects.update(processed_at=None)
    events_process()
    inventory_sync()


def inventory_sync() -> None:
    """Systems, their registered model versions and datasets become nodes: model → system, dataset → model."""
    from governance.inventory.models import AISystem
    from governance.lineage.models import LineageNode

    now = timezone.now()
    nodes, links = {}, []
    for system in AISystem.objects.active().prefetch_related("models", "datasets"):
        skey = f"system:{system.slug}"
        nodes[skey] = {"kind": NodeKind.SYSTEM, "name": system.name, "attributes": {"deployment": system.deployment},
                       "first_seen": system.created_at, "last_seen": now}
        for m in system.models.all():
            mkey = model_key(m.name, m.version)
            nodes[mkey] = {"kind": NodeKind.MODEL_VERSION, "name": f"{m.name} {m.version}".strip(),
                           "attributes": {"format": m.format, "provider": m.provider}, "first_seen": m.created_at, "last_seen": now}
            links.append((mkey, skey, LineageEdge.Kind.DEPLOYED_IN, m.created_at))
    ids = upsert_nodes(nodes)
    for key, sid in ((k, v) for k, v in ids.items() if k.startswith("system:")):
        slug = key.removeprefix("system:")
        LineageNode.objects.filter(pk=sid, system__isnull=True).update(
            system=AISystem.objects.filter(slug=slug).values("id")[:1])
    upsert_edges({(ids[s], ids[d], k): (w, now) for s, d, k, w in links})


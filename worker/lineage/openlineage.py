"""OpenLineage events (spec 2-0-x) → plain records. No Django here.

RunEvent: {eventTime, producer, schemaURL, eventType?, run{runId}, job{namespace,name}, inputs[], outputs[]}
DatasetEvent: {eventTime, producer, schemaURL, dataset{namespace,name,facets}}
JobEvent: {eventTime, producer, schemaURL, job{namespace,name}, inputs[], outputs[]}
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

RUN_STATES = {"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"}
MAX_DATASETS = 1000


class EventError(ValueError):
    """The event is not valid OpenLineage; the message says which field and why."""


@dataclass(frozen=True)
class DatasetRef:
    namespace: str
    name: str
    facets: dict = field(default_factory=dict)

    @property
    def is_model(self) -> bool:
        """MLflow-style model URIs (models:/name/version) are model versions, not datasets."""
        return self.name.startswith("models:/") or self.namespace.startswith("models")


@dataclass(frozen=True)
class LineageRecord:
    event_type: str  # RunEvent | DatasetEvent | JobEvent
    event_time: datetime
    run_state: str = ""
    run_id: str = ""
    job: tuple[str, str] | None = None
    inputs: tuple[DatasetRef, ...] = ()
    outputs: tuple[DatasetRef, ...] = ()
    dataset: DatasetRef | None = None
    producer: str = ""


def content_sha256(event: dict) -> str:
    return hashlib.sha256(json.dumps(event, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _str(obj: dict, key: str, where: str, required: bool = True) -> str:
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise EventError(f"{where}{key} must be a non-empty string")
    if len(value) > 2000:
        raise EventError(f"{where}{key} is longer than 2000 characters")
    return value


def _time(event: dict) -> datetime:
    raw = _str(event, "eventTime", "")
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise EventError(f"eventTime {raw[:40]!r} is not an ISO 8601 date-time") from exc
    if value.tzinfo is None:
        raise EventError("eventTime must include a time zone offset")
    return value


def _dataset(obj, where: str) -> DatasetRef:
    if not isinstance(obj, dict):
        raise EventError(f"{where} must be an object")
    facets = obj.get("facets")
    facets = {} if facets is None else facets
    if not isinstance(facets, dict):
        raise EventError(f"{where}.facets must be an object")
    return DatasetRef(_str(obj, "namespace", f"{where}."), _str(obj, "name", f"{where}."), facets)


def _datasets(event: dict, key: str) -> tuple[DatasetRef, ...]:
    items = event.get(key)
    items = [] if items is None else items
    if not isinstance(items, list):
        raise EventError(f"{key} must be a list")
    if len(items) > MAX_DATASETS:
        raise EventError(f"{key} has more than {MAX_DATASETS} datasets")
    return tuple(_dataset(item, f"{key}[{i}]") for i, item in enumerate(items))


def _job(event: dict) -> tuple[str, str]:
    job = event.get("job")
    if not isinstance(job, dict):
        raise EventError("job must be an object with namespace and name")
    return _str(job, "namespace", "job."), _str(job, "name", "job.")


def parse_event(event) -> LineageRecord:
    if not isinstance(event, dict):
        raise EventError("an OpenLineage event is a JSON object")
    when = _time(event)
    producer = _str(event, "producer", "", required=False)
    if "run" in event:
        run = event["run"]
        if not isinstance(run, dict):
            raise EventError("run must be an object with runId")
        state = event.get("eventType")
        state = "OTHER" if state is None else state
        if not isinstance(state, str) or state not in RUN_STATES:
            raise EventError(f"eventType {str(state)[:20]!r} is not one of {', '.join(sorted(RUN_STATES))}")
        return LineageRecord("RunEvent", when, state, _str(run, "runId", "run."), _job(event),
                             _datasets(event, "inputs"), _datasets(event, "outputs"), producer=producer)
    if "dataset" in event:
        return LineageRecord("DatasetEvent", when, dataset=_dataset(event["dataset"], "dataset"), producer=producer)
    if "job" in event:
        return LineageRecord("JobEvent", when, job=_job(event), inputs=_datasets(event, "inputs"),
                             outputs=_datasets(event, "outputs"), producer=producer)
    raise EventError("unknown event type: expected a RunEvent (run + job), a DatasetEvent (dataset) or a JobEvent (job)")


def facet_summary(facets: dict) -> dict:
    """The facts the provenance rules use, pulled from standard facets; never the whole facet blob."""
    summary = {}
    owners = (facets.get("ownership") or {}).get("owners") if isinstance(facets.get("ownership"), dict) else None
    if isinstance(owners, list):
        summary["owners"] = [str(o.get("name", ""))[:200] for o in owners if isinstance(o, dict)][:20]
    licence = facets.get("license") or facets.get("licence")
    if isinstance(licence, dict):
        summary["licence"] = str(licence.get("name") or licence.get("license") or "")[:200]
    source = facets.get("dataSource")
    if isinstance(source, dict):
        summary["source_uri"] = str(source.get("uri") or source.get("name") or "")[:500]
    schema = facets.get("schema")
    if isinstance(schema, dict) and isinstance(schema.get("fields"), list):
        names = [str(f.get("name", ""))[:100] for f in schema["fields"] if isinstance(f, dict)][:200]
        summary["fields"] = names
        tags = {str(t.get("name", "")).lower() for f in schema["fields"] if isinstance(f, dict)
                for t in (f.get("tags") or []) if isinstance(t, dict)}
        if tags & {"pii", "personal"}:
            summary["contains_pii"] = True
    tags = facets.get("tags")
    if isinstance(tags, dict) and isinstance(tags.get("tags"), list):
        if {str(t.get("key", t.get("name", ""))).lower() for t in tags["tags"] if isinstance(t, dict)} & {"pii", "personal"}:
            summary["contains_pii"] = True
    return summary

"""MLflow model registry → OpenLineage-equivalent events. No Django here.

REST API 2.0 (the tracking server's own routes):
- `GET /api/2.0/mlflow/registered-models/search?max_results=&page_token=` → {registered_models, next_page_token}
- `GET /api/2.0/mlflow/model-versions/search?filter=name='X'&max_results=&page_token=` → {model_versions, next_page_token}
- `GET /api/2.0/mlflow/runs/get?run_id=` → {run: {info, data, inputs: {dataset_inputs: [{tags, dataset}]}}}
- `GET /api/2.0/mlflow/experiments/get?experiment_id=` → {experiment: {name}}
A model version becomes one RunEvent: job = the MLflow run (in its experiment), inputs = the run's
logged datasets, output = `models:/<name>/<version>` (a model-version node in the graph).
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlsplit

from worker.lineage.http import HttpError, JsonClient

API = "/api/2.0/mlflow"
PRODUCER = "https://github.com/rampart/rampart/lineage/mlflow-connector"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACET_PRODUCER = {"_producer": PRODUCER}


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    run_id: str = ""
    source: str = ""
    status: str = ""
    created_ms: int = 0
    updated_ms: int = 0
    description: str = ""


@dataclass
class RunDetails:
    run_id: str
    run_name: str = ""
    experiment: str = ""
    datasets: list[dict] = field(default_factory=list)  # [{name, digest, source_type, source, schema, context}]
    flavors: dict = field(default_factory=dict)


def _pages(client: JsonClient, path: str, key: str, params: dict, max_pages: int = 1000) -> Iterator[dict]:
    token = None
    for _ in range(max_pages):
        page = client.get(path, {**params, **({"page_token": token} if token else {})})
        if not isinstance(page, dict):
            raise HttpError(f"{client.base_url}{path}: expected a JSON object")
        items = page.get(key) or []
        if not isinstance(items, list):
            raise HttpError(f"{client.base_url}{path}: '{key}' is not a list")
        yield from (i for i in items if isinstance(i, dict))
        token = page.get("next_page_token")
        if not token:
            return


def registered_models(client: JsonClient, page_size: int = 100) -> Iterator[dict]:
    """{name, last_updated_timestamp, ...} for every registered model."""
    return _pages(client, f"{API}/registered-models/search", "registered_models", {"max_results": page_size})


def _quoted(name: str) -> str:
    return f'"{name}"' if "'" in name else f"'{name}'"


def model_versions(client: JsonClient, name: str, page_size: int = 200) -> list[ModelVersion]:
    out = []
    for v in _pages(client, f"{API}/model-versions/search", "model_versions",
                    {"filter": f"name={_quoted(name)}", "max_results": page_size}):
        out.append(ModelVersion(name=str(v.get("name", name)), version=str(v.get("version", "")),
                                run_id=str(v.get("run_id") or ""), source=str(v.get("source") or "")[:500],
                                status=str(v.get("status") or ""), created_ms=int(v.get("creation_timestamp") or 0),
                                updated_ms=int(v.get("last_updated_timestamp") or v.get("creation_timestamp") or 0),
                                description=str(v.get("description") or "")[:500]))
    return out


def _json_field(value) -> dict:
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value) if isinstance(value, str) and value else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def run_details(client: JsonClient, run_id: str, experiments: dict[str, str]) -> RunDetails:
    run = (client.get(f"{API}/runs/get", {"run_id": run_id}) or {}).get("run") or {}
    info = run.get("info") or {}
    exp_id = str(info.get("experiment_id") or "")
    if exp_id and exp_id not in experiments:
        try:
            experiments[exp_id] = (client.get(f"{API}/experiments/get", {"experiment_id": exp_id}).get("experiment") or {}).get("name") or exp_id
        except HttpError:
            experiments[exp_id] = exp_id
    datasets = []
    for item in ((run.get("inputs") or {}).get("dataset_inputs") or []):
        ds = item.get("dataset") if isinstance(item, dict) else None
        if not isinstance(ds, dict) or not ds.get("name"):
            continue
        tags = {t.get("key"): t.get("value") for t in (item.get("tags") or []) if isinstance(t, dict)}
        datasets.append({"name": str(ds["name"]), "digest": str(ds.get("digest") or ""),
                         "source_type": str(ds.get("source_type") or ""), "source": _json_field(ds.get("source")),
                         "schema": _json_field(ds.get("schema")), "context": tags.get("mlflow.data.context", "")})
    tags = {t.get("key"): t.get("value") for t in ((run.get("data") or {}).get("tags") or []) if isinstance(t, dict)}
    flavors = {}
    try:
        for logged in json.loads(tags.get("mlflow.log-model.history") or "[]"):
            flavors.update(logged.get("flavors") or {})
    except (ValueError, AttributeError, TypeError):
        pass
    return RunDetails(run_id=run_id, run_name=str(info.get("run_name") or tags.get("mlflow.runName") or ""),
                      experiment=experiments.get(exp_id, exp_id), datasets=datasets, flavors=flavors)


def model_format(flavors: dict) -> str:
    """Best-effort artefact format from the logged flavours (values of inventory's ModelFormat)."""
    if "onnx" in flavors:
        return "onnx"
    if "pytorch" in flavors:
        return "pytorch"
    if any(f in flavors for f in ("sklearn", "xgboost", "lightgbm", "catboost", "statsmodels")):
        return "pickle"
    if "keras" in flavors or "tensorflow" in flavors:
        return "tf_savedmodel"
    return "other"


def _dataset_ref(ds: dict) -> dict:
    """OpenLineage dataset naming: a URI source splits into namespace (scheme://authority) and name (path)."""
    uri = str(ds["source"].get("uri") or ds["source"].get("url") or ds["source"].get("path") or "")
    parts = urlsplit(uri) if uri else None
    if parts and parts.scheme and (parts.netloc or parts.path):
        namespace, name = f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/") or ds["name"]
    else:
        namespace, name = f"mlflow-{ds['source_type'] or 'dataset'}", ds["name"]
    facets = {"version": {**FACET_PRODUCER, "datasetVersion": ds["digest"]}} if ds["digest"] else {}
    if uri:
        facets["dataSource"] = {**FACET_PRODUCER, "name": namespace, "uri": uri}
    cols = ds["schema"].get("mlflow_colspec") if isinstance(ds["schema"].get("mlflow_colspec"), list) else []
    if cols:
        facets["schema"] = {**FACET_PRODUCER, "fields": [{"name": str(c.get("name", "")), "type": str(c.get("type", ""))}
                                                         for c in cols if isinstance(c, dict)][:500]}
    return {"namespace": namespace[:300], "name": name[:500], "facets": facets}


def _ms_to_iso(ms: int) -> str:
    return datetime.fromtimestamp((ms or 0) / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")


def version_event(version: ModelVersion, run: RunDetails | None, *, tracking: str) -> dict:
    """An OpenLineage RunEvent for one registered model version (valid against spec 2-0-2)."""
    run_id = run.run_id if run else ""
    try:
        ol_run_id = str(uuid.UUID(run_id)) if run_id else ""
    except ValueError:
        ol_run_id = ""
    ol_run_id = ol_run_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tracking}/{version.name}/{version.version}"))
    experiment = (run.experiment if run else "") or "registry"
    job_name = f"{run.run_name or 'run'} ({run_id})" if run and run_id else f"register {version.name}"
    return {
        "eventType": "COMPLETE", "eventTime": _ms_to_iso(version.updated_ms or version.created_ms),
        "producer": PRODUCER, "schemaURL": SCHEMA_URL,
        "run": {"runId": ol_run_id, "facets": {"mlflow": {**FACET_PRODUCER, "_schemaURL": f"{PRODUCER}#MlflowRunFacet",
                                                          "run_id": run_id, "tracking_uri": tracking}}},
        "job": {"namespace": f"mlflow/{experiment}"[:300], "name": job_name[:500]},
        "inputs": [_dataset_ref(ds) for ds in (run.datasets if run else [])],
        "outputs": [{"namespace": "models", "name": f"models:/{version.name}/{version.version}",
                     "facets": {"documentation": {**FACET_PRODUCER, "description": version.description}}
                     if version.description else {}}],
    }

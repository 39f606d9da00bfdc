"""MLflow sync against a real MLflow tracking server (SQLite backend) started on loopback for this module.

mlflow lives in its own virtualenv (.venv-mlflow, made by scripts/ensure_mlflow.sh; `make test` runs it):
it pins gunicorn<27 and we run 27. The server and the client that logs runs both come from there.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from governance.inventory.models import AIModel
from governance.lineage.connectors import connector_run, connector_save
from governance.lineage.models import LineageEvent, LineageNode
from governance.lineage.selectors import blast_radius
from governance.lineage.services import events_process, inventory_sync
from tests.lineage.conftest import graph_dump

ROOT = Path(__file__).resolve().parents[2]
MLFLOW_VENV = Path(os.environ.get("RAMPART_MLFLOW_VENV", ROOT / ".venv-mlflow"))
LOG_SCRIPT = Path(__file__).with_name("mlflow_log.py")

pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif(not (MLFLOW_VENV / "bin" / "mlflow").exists(),
                                 reason="MLflow is not installed: run scripts/ensure_mlflow.sh (make test does)")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp / "server.log", "wb")
    proc = subprocess.Popen(
        [str(MLFLOW_VENV / "bin" / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db",
         "--default-artifact-root", str(tmp / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"MLflow server did not start: {(tmp / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield {"url": url, "tmp": tmp}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its uvicorn worker: our own process group
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def log_versions(server: dict, model: str, dataset: str, count: int) -> list[dict]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": server["url"], "GIT_PYTHON_REFRESH": "quiet"}
    done = subprocess.run([str(MLFLOW_VENV / "bin" / "python"), str(LOG_SCRIPT), server["url"], model, dataset, str(count)],
                          capture_output=True, text=True, timeout=300, cwd=server["tmp"], env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_model_versions_reach_inventory_and_graph_incrementally(mlflow_server, ciso, other_system):
    logged = log_versions(mlflow_server, "fraud-model", "transactions-2026", 2)
    assert [v["version"] for v in logged] == ["1", "2"]
    connector = connector_save(actor=ciso, data={
        "kind": "mlflow", "name": "mlflow", "base_url": mlflow_server["url"], "auth": "none", "every_minutes": 15,
        "system_mapping": [["fraud-*", "fraud-scoring"]], "enabled": True})

    assert connector_run(connector_id=connector.pk) == "2 new model versions, 2 added to the inventory"
    models = AIModel.objects.filter(system=other_system, name="fraud-model")
    assert sorted(models.values_list("version", flat=True)) == ["1", "2"]
    assert all(m.provider == "in-house" and m.source_uri for m in models)
    assert LineageEvent.objects.filter(origin="mlflow").count() == 2

    events_process()
    inventory_sync()
    nodes, edges = graph_dump()
    dataset = "dataset:mlflow-code/transactions-2026"
    assert dataset in nodes
    for v in logged:
        job = f"job:mlflow/fraud-training/train-logreg ({v['run_id']})"
        assert (dataset, job, "input") in edges
        assert (job, f"model:fraud-model@{v['version']}", "output") in edges
        assert (f"model:fraud-model@{v['version']}", "system:fraud-scoring", "deployed_in") in edges
    node = LineageNode.objects.get(key=dataset)
    assert node.attributes["fields"] == ["amount", "country", "label"]
    radius = blast_radius(node)
    assert {m.key for m in radius["models"]} == {"model:fraud-model@1", "model:fraud-model@2"}
    assert [s.key for s in radius["systems"]] == ["system:fraud-scoring"]

    # Nothing new: the registered model is unchanged, so its versions are not even listed again.
    assert connector_run(connector_id=connector.pk) == "0 new model versions, 0 added to the inventory"

    log_versions(mlflow_server, "fraud-model", "transactions-2026", 1)
    assert connector_run(connector_id=connector.pk) == "1 new model versions, 1 added to the inventory"
    assert sorted(models.values_list("version", flat=True)) == ["1", "2", "3"]
    assert LineageEvent.objects.filter(origin="mlflow").count() == 3
    connector.refresh_from_db()
    assert connector.last_error == "" and connector.state["models"]["fraud-model"]["versions"] == ["1", "2", "3"]

"""Lineage: OpenLineage ingest rate through the endpoint + worker, and blast-radius time on a 100k-node graph.

    python bench/lineage.py                          # 20,000 events, 8 client threads, gunicorn 4 workers
    python bench/lineage.py --events 5000 --clients 4 --workers 2 --nodes 100000 --keep

On a dedicated PostgreSQL database `rampart_bench_lineage` (created, migrated, dropped at the end unless
--keep) and Redis db 12: gunicorn serves Rampart on a local port, one Celery worker (concurrency 1) applies
events to the graph. Client threads POST distinct RunEvents (START/COMPLETE pairs, 2 inputs, 1 output) with
HTTP keep-alive and a bearer token, as the openlineage-python HTTP transport does. Printed:
- accepted/s: events answered 201 by the endpoint, first request to last answer;
- applied/s: events applied to the graph by the worker, first request until no event is pending.
Then the graph is replaced by a generated one (bulk SQL: raw datasets → feature jobs → curated datasets →
training jobs → model versions → systems) and `blast_radius()` is timed for random raw datasets.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

os.environ.setdefault("BENCH_DB_NAME", "rampart_bench_lineage")
os.environ.setdefault("BENCH_BROKER_URL", "redis://127.0.0.1:6379/12")
os.environ.setdefault("BENCH_VAR_DIR", "/tmp/rampart-bench-lineage/var")
# Run as a script, sys.path[0] is bench/, whose queue.py would shadow the standard library's: use the root.
sys.path[0] = str(Path(__file__).resolve().parent.parent)
from bench import _setup  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], log: Path, ready) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, cwd=_setup.ROOT, env=os.environ.copy(), stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{cmd[0]} did not start; see {log}")
        time.sleep(0.2)
    return proc


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def make_events(n: int) -> list[bytes]:
    base = 1_790_000_000
    out = []
    for i in range(n // 2):
        run, job = str(uuid.uuid4()), f"job_{i % 500}"
        inputs = [{"namespace": "warehouse", "name": f"raw.t{(i * 7) % 2000}", "facets": {}},
                  {"namespace": "s3://lake", "name": f"events/{(i * 13) % 3000}", "facets": {}}]
        outputs = [{"namespace": "warehouse", "name": f"curated.t{i % 1500}", "facets": {}}]
        for k, state in enumerate(("START", "COMPLETE")):
            out.append(json.dumps({
                "eventType": state, "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(base + i * 60 + k * 30)),
                "producer": "https://example.com/bench", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                "run": {"runId": run}, "job": {"namespace": "bench", "name": job}, "inputs": inputs, "outputs": outputs,
            }).encode())
    return out


def send(port: int, token: str, events: list[bytes], clients: int) -> tuple[float, float, dict]:
    chunks = [events[i::clients] for i in range(clients)]
    statuses: dict = {}
    lock = threading.Lock()

    def client(chunk):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        local: dict = {}
        for body in chunk:
            conn.request("POST", "/api/v1/lineage", body=body, headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {token}", "Connection": "keep-alive"})
            response = conn.getresponse()
            response.read()
            local[response.status] = local.get(response.status, 0) + 1
        conn.close()
        with lock:
            for k, v in local.items():
                statuses[k] = statuses.get(k, 0) + v

    threads = [threading.Thread(target=client, args=(c,)) for c in chunks]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return t0, time.perf_counter(), statuses


GRAPH_SQL = """
-- raw datasets, feature jobs (each reads 3 raw, writes 2 curated), curated datasets,
-- training jobs (each reads 4 curated, writes 1–2 model versions), model versions, systems
WITH params AS (SELECT %(raw)s AS raw, %(fjobs)s AS fjobs, %(tjobs)s AS tjobs, %(systems)s AS systems)
INSERT INTO lineage_lineagenode (key, kind, namespace, name, attributes, first_seen, last_seen)
SELECT 'dataset:raw/r' || g, 'dataset', 'raw', 'r' || g, '{}'::jsonb, now(), now() FROM params, generate_series(1, raw) g
UNION ALL SELECT 'job:feat/f' || g, 'job', 'feat', 'f' || g, '{}'::jsonb, now(), now() FROM params, generate_series(1, fjobs) g
UNION ALL SELECT 'dataset:cur/c' || g, 'dataset', 'cur', 'c' || g, '{}'::jsonb, now(), now() FROM params, generate_series(1, fjobs * 2) g
UNION ALL SELECT 'job:train/t' || g, 'job', 'train', 't' || g, '{}'::jsonb, now(), now() FROM params, generate_series(1, tjobs) g
UNION ALL SELECT 'model:m' || g || '@1', 'model_version', '', 'm' || g, '{}'::jsonb, now(), now() FROM params, generate_series(1, tjobs * 3 / 2) g
UNION ALL SELECT 'system:s' || g, 'system', '', 's' || g, '{}'::jsonb, now(), now() FROM params, generate_series(1, systems) g
"""

EDGES_SQL = """
CREATE TEMP TABLE ids AS SELECT key, id FROM lineage_lineagenode;
CREATE UNIQUE INDEX ON ids (key);
INSERT INTO lineage_lineageedge (src_id, dst_id, kind, first_seen, last_seen)
SELECT DISTINCT s.id, d.id, e.kind, now(), now() FROM (
    SELECT 'dataset:raw/r' || (1 + (f * 7 + k * 131) %% %(raw)s) AS src, 'job:feat/f' || f AS dst, 'input' AS kind
      FROM generate_series(1, %(fjobs)s) f, generate_series(0, 2) k
    UNION ALL SELECT 'job:feat/f' || f, 'dataset:cur/c' || (2 * f - k), 'output' FROM generate_series(1, %(fjobs)s) f, generate_series(0, 1) k
    UNION ALL SELECT 'dataset:cur/c' || (1 + (t * 11 + k * 977) %% (2 * %(fjobs)s)), 'job:train/t' || t, 'input'
      FROM generate_series(1, %(tjobs)s) t, generate_series(0, 3) k
    UNION ALL SELECT 'job:train/t' || (1 + (m - 1) * 2 / 3), 'model:m' || m || '@1', 'output' FROM generate_series(1, %(tjobs)s * 3 / 2) m
    UNION ALL SELECT 'model:m' || m || '@1', 'system:s' || (1 + m %% %(systems)s), 'deployed_in' FROM generate_series(1, %(tjobs)s * 3 / 2) m
) e JOIN ids s ON s.key = e.src JOIN ids d ON d.key = e.dst;
DROP TABLE ids;
"""


def build_graph(nodes: int) -> dict:
    from django.db import connection

    # 100k nodes: 40% raw, 12% feature jobs, 24% curated, 9.6% training jobs, 14.4% model versions, 1% systems
    p = {"raw": int(nodes * 0.40), "fjobs": int(nodes * 0.12), "tjobs": int(nodes * 0.096), "systems": max(1, nodes // 100)}
    with connection.cursor() as cur:
        cur.execute("TRUNCATE lineage_lineageedge, lineage_lineagenode RESTART IDENTITY CASCADE")
        cur.execute(GRAPH_SQL, p)
        cur.execute(EDGES_SQL, p)
        cur.execute("ANALYZE lineage_lineagenode; ANALYZE lineage_lineageedge")
        cur.execute("SELECT (SELECT count(*) FROM lineage_lineagenode), (SELECT count(*) FROM lineage_lineageedge)")
        n, e = cur.fetchone()
    return {**p, "nodes": n, "edges": e}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--batch", type=int, default=1, help="events per request (>1 sends JSON arrays)")
    ap.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--keep", action="store_true", help="keep the bench database")
    args = ap.parse_args()

    _setup.setup(fresh=True)
    import redis
    from django.contrib.auth.models import Group

    from governance.accounts.models import Role, User
    from governance.accounts.services import api_token_create
    from governance.lineage.models import LineageEvent, LineageNode
    from governance.lineage.selectors import blast_radius

    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()  # our own bench db only
    user = User.objects.create_user(email="bench-engineer@example.com", password=None)
    user.groups.add(Group.objects.get(name=Role.ENGINEER))
    token = api_token_create(user=user, name="bench")[1]
    print(f"machine: {_setup.machine()}; load average {os.getloadavg()[0]:.1f}")

    logs = Path(os.environ["RAMPART_VAR_DIR"])
    port = free_port()

    def web_ready():
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
            return True
        except OSError:
            return False
    web = start([str(Path(sys.executable).parent / "gunicorn"), "governance.wsgi", "-b", f"127.0.0.1:{port}",
                 "-w", str(args.workers), "--log-level", "warning", "--keep-alive", "30"], logs / "gunicorn.log", web_ready)
    worker_log = logs / "worker.log"
    worker = start([str(Path(sys.executable).parent / "celery"), "-A", "worker", "worker", "--concurrency", "1",
                    "--loglevel", "INFO", "--without-heartbeat", "--without-gossip", "--without-mingle", "-n", f"bench-lineage-{os.getpid()}@%h"],
                   worker_log, lambda: "ready." in worker_log.read_text())
    try:
        events = make_events(args.events)
        send(port, token, events[:200], args.clients)  # warm-up: imports, connections
        while LineageEvent.objects.filter(processed_at__isnull=True).exists():
            if worker.poll() is not None:
                raise RuntimeError(f"the worker died; see {worker_log}")
            time.sleep(0.2)
        LineageEvent.objects.all().delete()
        LineageNode.objects.all().delete()
        events = make_events(args.events)
        bodies = events if args.batch <= 1 else [
            b"[" + b",".join(events[i:i + args.batch]) + b"]" for i in range(0, len(events), args.batch)]
        t0, t_sent, statuses = send(port, token, bodies, args.clients)
        stored_count = LineageEvent.objects.count()
        while LineageEvent.objects.filter(processed_at__isnull=True).exists():
            if time.perf_counter() - t_sent > 600 or worker.poll() is not None:
                raise RuntimeError(f"the worker died or did not finish within 10 minutes; see {worker_log}")
            time.sleep(0.05)
        t_applied = time.perf_counter()
        accepted = stored_count
        print(f"ingest: {len(events)} events in {len(bodies)} requests ({args.batch} per request), {args.clients} client "
              f"threads, gunicorn {args.workers} workers, 1 Celery worker")
        print(f"  responses {statuses}")
        print(f"  accepted by the endpoint: {accepted / (t_sent - t0):,.0f} events/s ({t_sent - t0:.1f} s)")
        print(f"  applied to the graph:     {LineageEvent.objects.count() / (t_applied - t0):,.0f} events/s "
              f"({t_applied - t0:.1f} s from first request; worker finished {t_applied - t_sent:.1f} s after the last answer)")
        print(f"  graph: {LineageNode.objects.count()} nodes")
    finally:
        stop(web)
        stop(worker)

    # The worker's own capacity: the whole log pending at once, applied in-process in batches of 1000.
    from governance.lineage.services import events_process

    LineageNode.objects.all().delete()
    LineageEvent.objects.update(processed_at=None)
    t = time.perf_counter()
    applied = events_process()
    print(f"  worker capacity (backlog of {applied} events, events_process in-process): "
          f"{applied / (time.perf_counter() - t):,.0f} events/s")

    t = time.perf_counter()
    shape = build_graph(args.nodes)
    print(f"blast radius: generated {shape['nodes']:,} nodes, {shape['edges']:,} edges in {time.perf_counter() - t:.1f} s "
          f"({shape['raw']:,} raw datasets → {shape['fjobs']:,} feature jobs → {shape['fjobs'] * 2:,} curated → "
          f"{shape['tjobs']:,} training jobs → {shape['tjobs'] * 3 // 2:,} model versions → {shape['systems']:,} systems)")
    raw_ids = list(LineageNode.objects.filter(namespace="raw").values_list("id", flat=True))
    rng = random.Random(12)
    times, reached = [], []
    for node_id in rng.sample(raw_ids, min(args.samples, len(raw_ids))):
        node = LineageNode.objects.get(pk=node_id)
        start_t = time.perf_counter()
        result = blast_radius(node)
        times.append((time.perf_counter() - start_t) * 1000)
        reached.append((result["downstream_count"], len(result["models"]), len(result["systems"])))
    times.sort()
    p95 = times[int(len(times) * 0.95) - 1]
    print(f"  blast_radius() over {len(times)} random raw datasets: p50 {statistics.median(times):.1f} ms, "
          f"p95 {p95:.1f} ms, max {times[-1]:.1f} ms")
    print(f"  reached per dataset (median): {statistics.median(r[0] for r in reached):.0f} nodes downstream, "
          f"{statistics.median(r[1] for r in reached):.0f} model versions, {statistics.median(r[2] for r in reached):.0f} systems")
    if not args.keep:
        from django.db import connections

        connections.close_all()
        _setup.drop_database()
        print(f"dropped {_setup.DB_NAME}")


if __name__ == "__main__":
    main()

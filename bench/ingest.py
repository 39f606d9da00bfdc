"""End-to-end import benchmark: synthetic SARIF → stored report → real Celery worker on Redis → findings in PostgreSQL.

    python bench/ingest.py                       # N = 10k and 100k, then two reimports of the 100k file
    python bench/ingest.py --sizes 10000,100000 --batch 2000
    python bench/ingest.py --profile 100000      # cProfile of import_run_execute in this process (no worker)

Works on a dedicated database (rampart_bench, created and migrated here) and Redis db 13; see bench/README.md.
Prints figures, asserts nothing.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# bench/ (this folder, with queue.py in it) must not shadow the standard library: put the project root first
sys.path[0] = str(Path(__file__).resolve().parent.parent)
from bench import _setup  # noqa: E402

# ------------------------------------------------------------------ synthetic SARIF

RULES = [
    # (id, short description, security-severity or None, default level)
    ("py/sql-injection", "Database query built from user-controlled sources", "8.8", "error"),
    ("py/command-line-injection", "Uncontrolled command line", "9.8", "error"),
    ("py/path-injection", "Uncontrolled data used in path expression", "7.5", "error"),
    ("py/unsafe-deserialization", "Deserialization of user-controlled data", "9.8", "error"),
    ("py/clear-text-logging-sensitive-data", "Clear-text logging of sensitive information", "7.5", "error"),
    ("py/weak-cryptographic-algorithm", "Use of a broken or weak cryptographic algorithm", "7.5", "warning"),
    ("py/insecure-randomness", "Insecure randomness", "7.8", "warning"),
    ("py/flask-debug", "Flask app is run in debug mode", "7.5", "error"),
    ("py/stack-trace-exposure", "Information exposure through an exception", "5.4", "error"),
    ("py/reflective-xss", "Reflected server-side cross-site scripting", "6.1", "error"),
    ("py/url-redirection", "URL redirection from remote source", "6.1", "error"),
    ("py/incomplete-url-substring-sanitization", "Incomplete URL substring sanitization", "7.8", "warning"),
    ("py/polynomial-redos", "Polynomial regular expression used on uncontrolled data", "7.5", "warning"),
    ("py/unused-import", "Unused import", None, "note"),
    ("py/empty-except", "Empty except", None, "note"),
    ("py/catch-base-exception", "Except block handles 'BaseException'", None, "note"),
    ("B101", "Use of assert detected", None, "note"),
    ("B105", "Possible hardcoded password", "3.1", "warning"),
    ("B301", "Pickle and modules that wrap it can be unsafe", "5.0", "warning"),
    ("B307", "Use of possibly insecure function - consider using safer ast.literal_eval", "5.0", "warning"),
    ("B506", "Use of unsafe yaml load", "6.5", "warning"),
    ("B602", "subprocess call with shell=True identified, security issue", "8.1", "error"),
    ("B608", "Possible SQL injection vector through string-based query construction", "6.5", "warning"),
    ("B614", "Use of unsafe PyTorch load", "8.8", "error"),
    ("B615", "Unsafe Hugging Face Hub download without revision pinning", "5.3", "warning"),
    ("python.lang.security.audit.eval-detected", "Detected the use of eval()", "6.3", "warning"),
    ("python.lang.security.deserialization.pickle.avoid-pickle", "Avoid using pickle", "7.0", "warning"),
    ("python.requests.security.disabled-cert-validation", "Certificate verification has been disabled", "7.4", "error"),
    ("python.django.security.audit.raw-query", "Detected the use of a raw query", "5.9", "warning"),
    ("python.jwt.security.unverified-jwt-decode", "Detected JWT token decoded without verification", "8.1", "error"),
]
WORDS = ("model", "tokenizer", "dataset", "request", "payload", "user input", "prompt", "feature store",
         "checkpoint", "pipeline", "embedding", "vector index", "config", "artifact", "batch job", "endpoint")
DIRS = ("src/app", "src/app/api", "src/app/models", "src/pipeline", "src/training", "src/serving",
        "src/features", "lib/common", "scripts", "notebooks/export", "services/ingest", "services/scoring")


def _result(rng: random.Random, i: int, variant: str) -> dict:
    rule_index = rng.randrange(len(RULES))
    rule_id = RULES[rule_index][0]
    path = f"{rng.choice(DIRS)}/module_{rng.randrange(400)}/{rng.choice(WORDS).replace(' ', '_')}_{rng.randrange(30)}.py"
    line = rng.randrange(1, 2500)
    a, b = rng.choice(WORDS), rng.choice(WORDS)
    message = (f"{RULES[rule_index][1]}: the value of '{a}' reaches a sensitive sink in '{b}' at line {line}; "
               f"validate or sanitise it before use (occurrence {i}).")
    if variant == "changed":
        message += " Flow re-analysed after dependency upgrade."
    result = {
        "ruleId": rule_id,
        "ruleIndex": rule_index,
        "level": RULES[rule_index][3],
        "message": {"text": message},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": path, "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": line, "startColumn": rng.randrange(1, 80), "endLine": line + rng.randrange(3),
                       "snippet": {"text": f"result = call_{i % 977}({a.replace(' ', '_')}, {b.replace(' ', '_')})"}},
        }}],
    }
    if i % 10 < 7:  # most tools give a line-move-proof fingerprint; the rest fall back to the snippet
        result["partialFingerprints"] = {"primaryLocationLineHash": f"{rng.getrandbits(64):016x}:{i % 7 + 1}"}
    return result


def write_sarif(path: Path, n: int, *, change_every: int = 0, drop_every: int = 0) -> Path:
    """n results, streamed to disk. change_every=k changes the message of every k-th result (same fingerprint);
    drop_every=k leaves every k-th result out (offset by one from the changed ones)."""
    rules = [{"id": rid, "name": rid.rsplit("/", 1)[-1], "shortDescription": {"text": short},
              "fullDescription": {"text": short + "."}, "help": {"text": f"See the documentation for {rid}."},
              "defaultConfiguration": {"level": level},
              "properties": ({"security-severity": sev, "tags": ["security"]} if sev else {"tags": ["quality"]})}
             for rid, short, sev, level in RULES]
    head = {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0"}
    driver = {"name": "CodeQL", "semanticVersion": "2.18.0", "rules": rules}
    with path.open("w", encoding="utf-8") as out:
        out.write(json.dumps(head)[:-1] + ', "runs": [{"tool": {"driver": ' + json.dumps(driver) + '}, "results": [')
        first = True
        for i in range(n):
            rng = random.Random(i)  # the same result i in every variant
            if drop_every and i % drop_every == 1:
                continue
            variant = "changed" if change_every and i % change_every == 0 else "base"
            out.write(("" if first else ",\n") + json.dumps(_result(rng, i, variant), separators=(",", ":")))
            first = False
        out.write("]}]}\n")
    return path


# ------------------------------------------------------------------ worker process and memory

def _children(pid: int) -> list[int]:
    kids = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            kids += [int(x) for x in (task / "children").read_text().split()]
    except OSError:
        pass
    return kids


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += _children(p)
    return out


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Worker:
    """`celery -A worker worker --concurrency 1` as a subprocess, started fresh for each case."""

    def __init__(self, env: dict, log: Path):
        self.log = log
        self.proc = subprocess.Popen(
            [str(_setup.ROOT / ".venv/bin/celery"), "-A", "worker", "worker", "--concurrency", "1",
             "--pool", os.environ.get("BENCH_POOL", "prefork"),
             "--loglevel", "INFO", "--without-heartbeat", "--without-gossip", "--without-mingle",
             "-n", f"bench-{os.getpid()}@%h"],
            cwd=_setup.ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while "ready." not in log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start; see {log}")
            time.sleep(0.1)
        time.sleep(0.3)  # let the pool child finish booting
        self.pool = [p for p in _tree(self.proc.pid) if p != self.proc.pid]

    def rss_kb(self) -> dict[int, int]:
        return {p: _status_kb(p, "VmRSS") for p in _tree(self.proc.pid)}

    def hwm_kb(self) -> dict[int, int]:
        return {p: _status_kb(p, "VmHWM") for p in _tree(self.proc.pid)}

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


# ------------------------------------------------------------------ the cases

def import_and_wait(path: Path, system, source: str, timeout: float = 900):
    from governance.findings.imports import import_run_create
    from governance.findings.models import ImportRun

    t0 = time.perf_counter()
    with path.open("rb") as stream:
        run = import_run_create(actor=None, stream=stream, filename=path.name, fmt="sarif", system=system,
                                source=source, via=ImportRun.Via.CLI)
    stored = time.perf_counter() - t0
    while True:
        status = ImportRun.objects.filter(pk=run.pk).values_list("status", flat=True).get()
        if status in (ImportRun.Status.DONE, ImportRun.Status.FAILED):
            break
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"import {run.pk} still {status} after {timeout}s")
        time.sleep(0.02)
    elapsed = time.perf_counter() - t0
    run.refresh_from_db()
    if run.status != ImportRun.Status.DONE:
        raise RuntimeError(f"import {run.pk} failed: {run.error}")
    work = (run.finished_at - run.started_at).total_seconds()
    return run, elapsed, stored, work


def _parser_peak_mib(log: Path) -> str:
    """The forked parsing process's peak RSS, as the worker logged it (it has ended by the time we look)."""
    found = re.findall(r"parsing process peaked at (\d+) MiB", log.read_text())
    return found[-1] if found else "-"


def cpu_check() -> float:
    """Seconds for a fixed pure-Python loop: this shared VM's speed moves 2x with its neighbours' load."""
    t0 = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - t0


def run_cases(sizes: list[int], batch: int | None, keep_files: bool) -> None:
    import redis

    from governance.findings.models import Finding

    env = os.environ.copy()
    if batch:
        env["RAMPART_IMPORT_BATCH"] = str(batch)
    redis.Redis.from_url(env["CELERY_BROKER_URL"]).flushdb()  # a dedicated db: nothing left from an old run
    tmp = Path(tempfile.mkdtemp(prefix="rampart-bench-"))
    biggest = max(sizes)
    files = {n: write_sarif(tmp / f"sarif-{n}.json", n) for n in sizes}
    changed = write_sarif(tmp / f"sarif-{biggest}-changed.json", biggest, change_every=20, drop_every=20)
    cases = [(f"fresh {n:,}", files[n], f"fresh-{n}") for n in sizes]
    cases += [(f"reimport {biggest:,}, identical", files[biggest], f"fresh-{biggest}"),
              (f"reimport {biggest:,}, 5% changed + 5% gone", changed, f"fresh-{biggest}")]
    stamp = time.strftime("%H%M%S")
    print(f"machine: {_setup.machine()}; load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    print(f"CPU check before (10M-iteration Python loop): {cpu_check():.2f} s")
    print(f"batch: {batch or 'default (RAMPART_IMPORT_BATCH)'}; findings already in the bench DB: "
          f"{Finding.objects.count():,}; files in {tmp}")
    for label, path, _ in cases:
        print(f"  {label}: {path.name} {path.stat().st_size / 1e6:.1f} MB")
    print()
    header = (f"{'case':<38} {'findings':>8} {'store s':>7} {'stored→done s':>13} {'worker s':>8} {'findings/s':>10} "
              f"{'pool RSS idle→peak MiB':>23} {'parser peak MiB':>15}  counts")
    print(header)
    print("-" * len(header))
    for label, path, slug in cases:
        system = _setup.bench_system(f"bench-{slug}-{stamp}")
        worker = Worker(env, tmp / f"worker-{slug}.log")
        try:
            idle = sum(worker.rss_kb()[p] for p in worker.pool)
            run, elapsed, stored, work = import_and_wait(path, system, "codeql")
            hwm = worker.hwm_kb()
            pool_peak = sum(hwm.get(p, 0) for p in worker.pool)
        finally:
            worker.stop()
        parser_peak = _parser_peak_mib(worker.log)
        n = sum(run.counts.get(k, 0) for k in ("created", "updated", "unchanged", "reopened"))
        counts = " ".join(f"{k}={v}" for k, v in run.counts.items())
        done = elapsed - stored  # the measure: report stored → worker done
        print(f"{label:<38} {n:>8,} {stored:>7.2f} {done:>13.2f} {work:>8.2f} {n / done:>10,.0f} "
              f"{idle / 1024:>11.0f} → {pool_peak / 1024:>6.0f}  {parser_peak:>15}  {counts}", flush=True)
    print(f"CPU check after: {cpu_check():.2f} s")
    if not keep_files:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


def profile(n: int, batch: int | None, top: int) -> None:
    """The worker's code path in this process, under cProfile: import_run_execute on a stored report."""
    from django.conf import settings

    from governance.findings import imports
    from governance.findings.imports import import_run_execute
    from governance.findings.models import ImportRun

    if batch:
        settings.RAMPART_IMPORT_BATCH = batch
    imports.import_run_send = lambda run_id: True  # no broker: we run it here
    tmp = Path(tempfile.mkdtemp(prefix="rampart-profile-"))
    path = write_sarif(tmp / f"sarif-{n}.json", n)
    system = _setup.bench_system(f"bench-profile-{time.strftime('%H%M%S')}")
    for label in ("fresh", "reimport"):
        with path.open("rb") as stream:
            run = imports.import_run_create(actor=None, stream=stream, filename=path.name, fmt="sarif", system=system,
                                            source="codeql", via=ImportRun.Via.CLI)
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        run = import_run_execute(run.pk)
        prof.disable()
        elapsed = time.perf_counter() - t0
        print(f"\n=== {label} import of {n:,}: {elapsed:.2f}s in process ({n / elapsed:,.0f}/s) {run.status} {run.counts}")
        for order in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(prof, stream=out).strip_dirs().sort_stats(order).print_stats(top)
            print("\n".join(out.getvalue().splitlines()[6:]))
    path.unlink()
    tmp.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated numbers of results")
    parser.add_argument("--batch", type=int, help="RAMPART_IMPORT_BATCH for the worker")
    parser.add_argument("--profile", type=int, metavar="N", help="profile an in-process import of N results instead")
    parser.add_argument("--top", type=int, default=25, help="rows of the profile to print")
    parser.add_argument("--fresh-db", action="store_true", help="drop and recreate the bench database first")
    parser.add_argument("--keep-files", action="store_true", help="keep the generated reports and worker logs")
    args = parser.parse_args()
    _setup.setup(fresh=args.fresh_db)
    if args.profile:
        profile(args.profile, args.batch, args.top)
    else:
        run_cases([int(s) for s in args.sizes.split(",") if s.strip()], args.batch, args.keep_files)


if __name__ == "__main__":
    main()

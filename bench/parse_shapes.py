"""Memory and time of the SARIF parser on reports of unusual shapes: a million rules, thousands of runs, huge
properties, and the usual 100k results for comparison. Each case is parsed in a fresh process that reports its peak
resident memory (VmHWM) and the parse time; files are written to a temporary folder and deleted.

    python bench/parse_shapes.py                 # every case
    python bench/parse_shapes.py --case rules    # one of: rules, runs, properties, results

Prints figures, asserts nothing (bench/README.md records them).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _result(i: int, rule: str, props: dict | None = None) -> dict:
    return {"ruleId": rule, "level": "warning", "message": {"text": f"finding {i}"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": f"src/f{i % 97}.py"},
                                                "region": {"startLine": i % 900 + 1}}}],
            "partialFingerprints": {"h": f"{i:016x}"}, **({"properties": props} if props else {})}


def write(case: str, path: Path) -> str:
    with open(path, "w") as f:
        f.write('{"version": "2.1.0", "runs": [')
        if case == "rules":  # one run, 1,000,000 rules of 200-character descriptions, 1,000 results
            f.write('{"tool": {"driver": {"name": "many-rules", "rules": [')
            for r in range(1_000_000):
                f.write(("," if r else "") + json.dumps({"id": f"R{r}", "shortDescription": {"text": "x" * 200},
                                                         "help": {"text": "y" * 200}}))
            f.write(']}}, "results": [' + ",".join(json.dumps(_result(i, f"R{i * 997 % 1_000_000}"))
                                                   for i in range(1000)) + "]}")
            shape = "1 run, 1,000,000 rules, 1,000 results"
        elif case == "runs":  # 20,000 runs of 5 results each, every run with its own 20 rules
            for run in range(20_000):
                rules = [{"id": f"R{k}", "shortDescription": {"text": f"rule {k} of run {run}"}} for k in range(20)]
                results = [_result(run * 5 + i, f"R{i}") for i in range(5)]
                f.write(("," if run else "") + json.dumps({"tool": {"driver": {"name": f"tool-{run}", "rules": rules}},
                                                           "results": results}))
            shape = "20,000 runs x 20 rules x 5 results"
        elif case == "properties":  # 2,000 results with 50 kB of properties each
            props = {f"k{k}": "z" * 1000 for k in range(50)}
            f.write('{"tool": {"driver": {"name": "fat", "rules": [{"id": "R"}]}}, "results": [')
            f.write(",".join(json.dumps(_result(i, "R", props)) for i in range(2000)) + "]}")
            shape = "2,000 results x 50 kB of properties"
        else:  # the usual shape
            f.write('{"tool": {"driver": {"name": "usual", "rules": [{"id": "R1"}, {"id": "R2"}]}}, "results": [')
            f.write(",".join(json.dumps(_result(i, f"R{i % 2 + 1}")) for i in range(100_000)) + "]}")
            shape = "1 run, 2 rules, 100,000 results"
        f.write("]}")
    return shape


CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from worker.scanners import sarif
started = time.perf_counter()
with open({path!r}, "rb") as f:
    n = sum(1 for _ in sarif.parse(f))
elapsed = time.perf_counter() - started
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(n, elapsed, hwm)
"""


def run(case: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{case}.sarif"
        shape = write(case, path)
        size = path.stat().st_size
        out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), path=str(path))],
                             capture_output=True, text=True, check=True).stdout.split()
        records, elapsed, hwm_kib = int(out[0]), float(out[1]), int(out[2])
        print(f"{case:<11} {shape:<40} {size / 1e6:7.1f} MB  {records:>7} records  {elapsed:6.2f} s  "
              f"peak {hwm_kib / 1024:6.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", choices=["rules", "runs", "properties", "results"])
    args = parser.parse_args()
    started = time.perf_counter()
    for case in [args.case] if args.case else ["results", "rules", "runs", "properties"]:
        run(case)
    print(f"total {time.perf_counter() - started:.0f} s")

"""Manual speed check (not a test): parse a generated SARIF file with N results.

    .venv/bin/python -m tests.worker.bench_sarif 100000
"""
import json
import sys
import tempfile
import time

from worker.scanners import sarif


def make(path: str, n: int) -> None:
    rules = [{"id": f"B{600 + k}", "properties": {"security-severity": "7.5"}} for k in range(10)]
    with open(path, "w") as f:
        f.write('{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "Bandit", "rules": %s}}, "results": [' % json.dumps(rules))
        for i in range(n):
            f.write(("," if i else "") + json.dumps({
                "ruleId": f"B{600 + i % 10}", "level": "warning", "message": {"text": "subprocess call with shell=True"},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": f"src/m{i % 500}.py"},
                               "region": {"startLine": i % 900 + 1, "snippet": {"text": f"call({i})"}}}}],
                "properties": {"issue_confidence": "HIGH", "issue_severity": "HIGH"}}))
        f.write("]}]}")


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.NamedTemporaryFile(suffix=".sarif") as tmp:
        make(tmp.name, n)
        start = time.perf_counter()
        count = sum(1 for _ in sarif.parse(open(tmp.name, "rb")))
        print(f"{count} results parsed in {time.perf_counter() - start:.2f} s")

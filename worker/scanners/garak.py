"""garak LLM scanner output, read line by line.

`*.report.jsonl`: entries with `entry_type`. Each `eval` entry (one probe ×
detector) is a record: its failure rate (fails / total, from `passed` and
`total_evaluated`, or `total` in older garak) goes into the description;
severity by failure rate: 0 → info (the model passed), < 10% low, < 50%
medium, otherwise high. `attempt` entries are evidence: per probe × detector
the number of evaluated outputs and hits (score ≥ 0.5) and up to three short
hit samples are summarised into that eval record's raw (attempts come before
their eval in the file; memory grows with the number of probes, not lines).

`*.hitlog.jsonl`: one line per hit (probe, detector, prompt, output, score);
each becomes a "high" record.

Fingerprint (v1): the target (plugins.target_type/target_name, or the older
model_type/model_name, from the `start_run setup` entry; for hit logs the
`generator` field), probe and detector; hit records add sha256 of prompt and
output text. Run ids, timestamps and sequence numbers are left out.
"""
from __future__ import annotations

from typing import BinaryIO, Iterator

from ._common import cap_raw, clip, expect, fingerprint, open_report, sha256_text
from . import _jsonl
from .base import Record

FORMAT = "garak"
FINGERPRINT_VERSION = 1
EXPECTED = "garak report: expected JSON lines with entry_type (report.jsonl) or probe/detector hits (hitlog.jsonl)"
HIT_THRESHOLD = 0.5
SAMPLES = 3


def sniff(head: bytes) -> bool:
    first = _jsonl.first_object(head)
    return bool(first) and ("entry_type" in first or _is_hit(first))


def _is_hit(entry: dict) -> bool:
    return "probe" in entry and "detector" in entry and ("attempt_id" in entry or "score" in entry)


def parse(stream: BinaryIO) -> Iterator[Record]:
    reader, _ = open_report(stream, sniff, EXPECTED)
    state = {"target": "", "evidence": {}}
    for number, entry in _jsonl.objects(reader):
        if _is_hit(entry) and "entry_type" not in entry:
            yield _hit_record(entry)
            continue
        kind = entry.get("entry_type")
        expect(isinstance(kind, str), f"line {number} is not a garak entry (no entry_type)")
        if kind == "start_run setup":
            state["target"] = _target(entry)
        elif kind == "attempt":
            _add_evidence(state["evidence"], entry)
        elif kind == "eval":
            yield _eval_record(entry, state, number)


def _short(name, prefix: str) -> str:
    name = str(name or "")
    return name[len(prefix):] if name.startswith(prefix) else name


def _target(setup: dict) -> str:
    kind = setup.get("plugins.target_type") or setup.get("plugins.model_type") or ""
    name = setup.get("plugins.target_name") or setup.get("plugins.model_name") or ""
    return f"{kind} {name}".strip()


def _text(value) -> str:
    """Prompt/output text from garak's str, {"text": ...} or {"turns": [...]} shapes."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "text" in value:
            return str(value.get("text") or "")
        turns = value.get("turns") or []
        return "\n".join(_text((t or {}).get("content")) for t in turns if isinstance(t, dict))
    return ""


def _add_evidence(evidence: dict, attempt: dict) -> None:
    probe = _short(attempt.get("probe_classname"), "probes.")
    outputs = attempt.get("outputs") or []
    for detector, scores in (attempt.get("detector_results") or {}).items():
        slot = evidence.setdefault((probe, _short(detector, "detectors.")), {"outputs": 0, "hits": 0, "samples": []})
        for i, score in enumerate(scores or []):
            slot["outputs"] += 1
            if isinstance(score, (int, float)) and score >= HIT_THRESHOLD:
                slot["hits"] += 1
                if len(slot["samples"]) < SAMPLES:
                    output = outputs[i] if i < len(outputs) else ""
                    slot["samples"].append({"prompt": clip(_text(attempt.get("prompt")), 300),
                                            "output": clip(_text(output), 300), "score": score})


def _rate_severity(fails: int, total: int) -> str:
    if total <= 0 or fails <= 0:
        return "info"
    rate = fails / total
    return "low" if rate < 0.1 else "medium" if rate < 0.5 else "high"


def _eval_record(entry: dict, state: dict, number: int) -> Record:
    probe, detector = _short(entry.get("probe"), "probes."), _short(entry.get("detector"), "detectors.")
    expect(probe and detector, f"line {number}: garak eval entry without probe/detector")
    passed = int(entry.get("passed") or 0)
    total = int(entry.get("total_evaluated", entry.get("total")) or 0)
    fails = int(entry.get("fails", total - passed) or 0)
    rate = fails / total if total else 0.0
    evidence = state["evidence"].get((probe, detector), {"outputs": 0, "hits": 0, "samples": []})
    verdict = "FAIL" if fails else "PASS"
    return Record(
        tool="garak",
        fingerprint=fingerprint(FORMAT, FINGERPRINT_VERSION, "eval", state["target"], probe, detector),
        title=f"{probe} / {detector}: {verdict} (failure rate {rate:.1%})",
        severity=_rate_severity(fails, total),
        tool_severity=verdict,
        rule_id=f"{probe}/{detector}",
        location=f"{probe}/{detector}",
        description=(f"Probe {probe}, detector {detector}: {passed}/{total} passed, {fails} failed "
                     f"(failure rate {rate:.1%}) against {state['target'] or 'the target model'}."),
        raw=cap_raw({"eval": entry, "target": state["target"], "attempt_evidence": evidence}),
    )


def _hit_record(hit: dict) -> Record:
    probe, detector = _short(hit.get("probe"), "probes."), _short(hit.get("detector"), "detectors.")
    prompt, output = _text(hit.get("prompt")), _text(hit.get("output"))
    target = str(hit.get("generator") or "")
    score = hit.get("score")
    return Record(
        tool="garak",
        fingerprint=fingerprint(FORMAT, FINGERPRINT_VERSION, "hit", target, probe, detector,
                                  sha256_text(prompt), sha256_text(output)),
        title=clip(f"{probe} / {detector}: attack succeeded", 300),
        severity="high",
        tool_severity=f"score {score}",
        rule_id=f"{probe}/{detector}",
        location=f"{probe}/{detector}",
        description=clip(f"Goal: {hit.get('goal') or '?'}\nPrompt: {clip(prompt, 500)}\nOutput: {clip(output, 500)}"),
        raw=cap_raw({k: hit.get(k) for k in ("goal", "probe", "detector", "score", "generator", "triggers",
                                               "attempt_id", "attempt_idx")} | {"prompt": clip(prompt, 2000),
                                                                                 "output": clip(output, 2000)}),
    )

"""Scenario files: strict validation of the JSON format, and export to it.

A scenario file is untrusted input. It is refused, with the path of the offending field, when it is too big,
not UTF-8 JSON, uses duplicate or unknown keys, has a value of the wrong type or length, or names catalogue items
Rampart does not know. Text is stored as given and escaped wherever it is displayed.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from governance.rmf.models import ReferenceItem, RmfSubcategory
from governance.tabletop.models import AUDIENCE_CHOICES, Channel, Scenario, VisibilityQuestion

FORMAT = "rampart-tabletop-scenario"
FORMAT_VERSION = 1
MAX_BYTES = 1024 * 1024
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class ScenarioFileError(ValueError):
    """Carries every problem found, each as 'path: message'."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


# A field: (type, required, extra). Types: "str", "text", "int", "list", "obj", "null-int".
@dataclass(frozen=True)
class F:
    kind: str
    required: bool = False
    max_length: int = 0
    choices: tuple = ()
    items: object = None  # F for list items, dict of F for objects
    max_items: int = 0
    pattern: re.Pattern | None = None
    minimum: int | None = None
    maximum: int | None = None


ATTACHMENT = {"label": F("str", True, 200), "url": F("str", False, 500), "text": F("str", False, 5000)}
ACTION = {"text": F("str", True, 500), "checked_by": F("str", False, 100),
          "objective": F("int", False, minimum=0, maximum=19)}
VISIBILITY = {"question": F("str", True, choices=tuple(VisibilityQuestion.values)), "param": F("str", False, 200)}
INJECT = {
    "title": F("str", True, 200),
    "offset_minutes": F("null-int", False, minimum=0, maximum=7 * 24 * 60),
    "audience": F("str", False, choices=tuple(v for v, _ in AUDIENCE_CHOICES)),
    "channel": F("str", False, choices=tuple(Channel.values)),
    "body": F("str", True, 10000),
    "attachments": F("list", False, items=F("obj", items=ATTACHMENT), max_items=10),
    "expected_actions": F("list", False, items=F("obj", items=ACTION), max_items=15),
    "questions": F("list", False, items=F("str", max_length=500), max_items=10),
    "facilitator_notes": F("str", False, 5000),
    "visibility": F("obj", False, items=VISIBILITY),
}
SCENARIO = {
    "format": F("str", True, choices=(FORMAT,)),
    "version": F("int", True, minimum=FORMAT_VERSION, maximum=FORMAT_VERSION),
    "slug": F("str", True, 80, pattern=SLUG_RE),
    "title": F("str", True, 200),
    "summary": F("str", False, 500),
    "narrative": F("str", True, 20000),
    "objectives": F("list", False, items=F("str", max_length=300), max_items=20),
    "rmf_subcategories": F("list", False, items=F("str", max_length=20), max_items=72),
    "atlas_techniques": F("list", False, items=F("str", max_length=40), max_items=40),
    "genai_risks": F("list", False, items=F("str", max_length=60), max_items=12),
    "injects": F("list", True, items=F("obj", items=INJECT), max_items=40),
}
TYPE_NAMES = {"str": "a string", "int": "an integer", "null-int": "an integer or null", "list": "a list", "obj": "an object"}


def _check(value, spec: F, path: str, errors: list[str]) -> None:
    kind = spec.kind
    if kind == "null-int" and value is None:
        return
    ok = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "null-int": isinstance(value, int) and not isinstance(value, bool),
        "list": isinstance(value, list),
        "obj": isinstance(value, dict),
    }[kind]
    if not ok:
        errors.append(f"{path}: must be {TYPE_NAMES[kind]}, not {_json_type(value)}")
        return
    if kind == "str":
        if spec.required and not value.strip():
            errors.append(f"{path}: must not be empty")
        if spec.max_length and len(value) > spec.max_length:
            errors.append(f"{path}: at most {spec.max_length} characters (got {len(value)})")
        if "\x00" in value:
            errors.append(f"{path}: must not contain NUL characters")
        if spec.choices and value not in spec.choices:
            errors.append(f"{path}: must be one of {', '.join(spec.choices)}")
        if spec.pattern and not spec.pattern.match(value):
            errors.append(f"{path}: lower-case letters, digits and hyphens only")
    elif kind in ("int", "null-int"):
        if spec.minimum is not None and value < spec.minimum or spec.maximum is not None and value > spec.maximum:
            errors.append(f"{path}: must be between {spec.minimum} and {spec.maximum}")
    elif kind == "list":
        if spec.max_items and len(value) > spec.max_items:
            errors.append(f"{path}: at most {spec.max_items} items (got {len(value)})")
            return
        for i, item in enumerate(value):
            _check(item, spec.items, f"{path}[{i}]", errors)
    elif kind == "obj":
        _check_object(value, spec.items, path, errors)


def _check_object(value: dict, fields: dict[str, F], path: str, errors: list[str]) -> None:
    prefix = f"{path}." if path else ""
    for key in value:
        if key not in fields:
            errors.append(f"{prefix}{key}: unknown field (allowed: {', '.join(fields)})")
    for key, spec in fields.items():
        if key not in value:
            if spec.required:
                errors.append(f"{prefix}{key}: required")
            continue
        _check(value[key], spec, f"{prefix}{key}", errors)


def _json_type(value) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__)


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ScenarioFileError([f"duplicate key {dupes[0]!r} in an object"])
    return dict(pairs)


def _no_constants(name):
    raise ScenarioFileError([f"{name} is not allowed in JSON"])


def parse(raw: bytes | str) -> dict:
    """Bytes → a validated dict, or ScenarioFileError listing every problem with its field path."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if len(raw) > MAX_BYTES:
        raise ScenarioFileError([f"file is {len(raw):,} bytes; the limit is {MAX_BYTES:,} bytes (1 MB)"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioFileError([f"file is not UTF-8 text (byte {exc.start})"]) from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except RecursionError:
        raise ScenarioFileError(["JSON is nested too deeply"]) from None
    except json.JSONDecodeError as exc:
        raise ScenarioFileError([f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"]) from None
    if not isinstance(data, dict):
        raise ScenarioFileError([f"(top level): must be an object, not {_json_type(data)}"])
    errors: list[str] = []
    _check_object(data, SCENARIO, "", errors)
    if not errors:
        _check_semantics(data, errors)
    if errors:
        raise ScenarioFileError(errors)
    return data


def _check_semantics(data: dict, errors: list[str]) -> None:
    if not data["injects"]:
        errors.append("injects: a scenario needs at least one inject")
    n_objectives = len(data.get("objectives", []))
    for i, inject in enumerate(data["injects"]):
        for j, action in enumerate(inject.get("expected_actions", [])):
            if action.get("objective") is not None and action["objective"] >= n_objectives:
                errors.append(f"injects[{i}].expected_actions[{j}].objective: there are only {n_objectives} objectives")
        for j, att in enumerate(inject.get("attachments", [])):
            url = att.get("url", "")
            if url and not url.lower().startswith(("https://", "http://")):
                errors.append(f"injects[{i}].attachments[{j}].url: only http(s) links are allowed")
    known = set(RmfSubcategory.objects.filter(ident__in=data.get("rmf_subcategories", [])).values_list("ident", flat=True))
    for i, ident in enumerate(data.get("rmf_subcategories", [])):
        if ident not in known:
            errors.append(f"rmf_subcategories[{i}]: unknown NIST AI RMF subcategory {ident!r}")
    for key, catalogue in (("atlas_techniques", ReferenceItem.Catalogue.ATLAS_TECHNIQUE),
                           ("genai_risks", ReferenceItem.Catalogue.GENAI_RISK)):
        wanted = data.get(key, [])
        known = set(ReferenceItem.objects.filter(catalogue=catalogue, ident__in=wanted).values_list("ident", flat=True))
        for i, ident in enumerate(wanted):
            if ident not in known:
                errors.append(f"{key}[{i}]: unknown {ReferenceItem.Catalogue(catalogue).label} {ident!r}")


def export(scenario: Scenario) -> dict:
    """The scenario in the file format; `parse(json.dumps(export(s)))` accepts it."""
    refs = list(scenario.references.all())
    data = {
        "format": FORMAT, "version": FORMAT_VERSION, "slug": scenario.slug, "title": scenario.title,
        "summary": scenario.summary, "narrative": scenario.narrative, "objectives": list(scenario.objectives),
        "rmf_subcategories": [s.ident for s in scenario.rmf_subcategories.all()],
        "atlas_techniques": [r.ident for r in refs if r.catalogue == ReferenceItem.Catalogue.ATLAS_TECHNIQUE],
        "genai_risks": [r.ident for r in refs if r.catalogue == ReferenceItem.Catalogue.GENAI_RISK],
        "injects": [],
    }
    for inject in scenario.injects.prefetch_related("expected_actions"):
        item = {
            "title": inject.title, "offset_minutes": inject.offset_minutes, "audience": inject.audience,
            "channel": inject.channel, "body": inject.body, "attachments": inject.attachments,
            "expected_actions": [
                {k: v for k, v in {"text": a.text, "checked_by": a.checked_by, "objective": a.objective}.items() if v is not None}
                for a in inject.expected_actions.all()
            ],
            "questions": inject.questions, "facilitator_notes": inject.facilitator_notes,
        }
        if inject.visibility_question:
            item["visibility"] = {"question": inject.visibility_question, "param": inject.visibility_param}
        data["injects"].append(item)
    return data

"""The built-in scenario library: JSON files validated like any import, loaded idempotently."""
from __future__ import annotations

import json
from pathlib import Path

from governance.tabletop import scenario_io, services
from governance.tabletop.models import Scenario, ScenarioOrigin

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"


INJECT_DEFAULTS = {"offset_minutes": None, "audience": "all", "channel": "email", "attachments": [],
                   "expected_actions": [], "questions": [], "facilitator_notes": "", "visibility": None}


def _normal(data: dict) -> str:
    """A canonical text of a scenario dict, defaults filled in, for "has this file changed?"."""
    data = {"summary": "", "objectives": [], **data}
    for key in ("rmf_subcategories", "atlas_techniques", "genai_risks"):
        data[key] = sorted(data.get(key, []))
    injects = []
    for inject in data["injects"]:
        inject = {**INJECT_DEFAULTS, **inject}
        if inject["visibility"]:
            inject["visibility"] = {"param": "", **inject["visibility"]}
        inject["expected_actions"] = [{"checked_by": "", "objective": None, **a} for a in inject["expected_actions"]]
        injects.append(inject)
    data["injects"] = injects
    return json.dumps(data, sort_keys=True)


def load_builtin_scenarios(directory: Path = SCENARIO_DIR, actor=None) -> list[tuple[str, str]]:
    """Returns (slug, created|updated|unchanged|in use) per file. A file that fails validation raises."""
    outcomes = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = scenario_io.parse(path.read_bytes())
        except scenario_io.ScenarioFileError as exc:
            raise scenario_io.ScenarioFileError([f"{path.name}: {e}" for e in exc.errors]) from None
        existing = Scenario.objects.filter(slug=data["slug"]).first()
        if existing is None:
            services.scenario_import(actor=actor, data=data, origin=ScenarioOrigin.BUILT_IN)
            outcomes.append((data["slug"], "created"))
            continue
        if _normal(scenario_io.export(existing)) == _normal(data):
            outcomes.append((data["slug"], "unchanged"))
        elif existing.exercises.exists():
            outcomes.append((data["slug"], "in use"))
        else:
            services.scenario_replace(actor=actor, scenario=existing, data=data)
            outcomes.append((data["slug"], "updated"))
    return outcomes


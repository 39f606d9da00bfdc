"""The shipped catalogues: idempotent loading, NIST's own text, versions side by side."""
import json

import pytest
from django.core.management import call_command

from governance.rmf.catalogues import CATALOGUE_DIR, load_catalogues, load_rmf
from governance.rmf.models import (
    AssessmentStatus, ReferenceItem, RmfAssessment, RmfCategory, RmfFunction, RmfSubcategory,
)

pytestmark = pytest.mark.django_db

C = ReferenceItem.Catalogue


def rmf_counts(version="1.0"):
    return (
        RmfFunction.objects.filter(version=version).count(),
        RmfCategory.objects.filter(version=version).count(),
        RmfSubcategory.objects.filter(version=version).count(),
    )


def test_loading_twice_leaves_exactly_4_19_72():
    load_catalogues()
    load_catalogues()
    assert rmf_counts() == (4, 19, 72)
    assert RmfFunction.objects.count() == 4  # nothing of another version crept in


def test_functions_and_subcategories_per_function():
    load_catalogues()
    assert list(RmfFunction.objects.filter(version="1.0").values_list("code", flat=True)) == [
        "GOVERN", "MAP", "MEASURE", "MANAGE"
    ]
    per_function = {
        code: RmfSubcategory.objects.filter(version="1.0", category__function__code=code).count()
        for code in ("GOVERN", "MAP", "MEASURE", "MANAGE")
    }
    assert per_function == {"GOVERN": 19, "MAP": 18, "MEASURE": 22, "MANAGE": 13}


def test_text_is_nists():
    source = json.loads((CATALOGUE_DIR / "nist-ai-rmf-1.0.json").read_text(encoding="utf-8"))
    by_id = {s["id"]: s["text"] for s in source["subcategories"]}
    govern_1_1 = RmfSubcategory.objects.get(version="1.0", ident="GOVERN 1.1")
    map_1_1 = RmfSubcategory.objects.get(version="1.0", ident="MAP 1.1")
    assert govern_1_1.text == by_id["GOVERN 1.1"]
    assert map_1_1.text == by_id["MAP 1.1"]
    # Literal quotes from NIST AI 100-1, Tables 1 and 2.
    assert govern_1_1.text == "Legal and regulatory requirements involving AI are understood, managed, and documented."
    assert map_1_1.text.startswith(
        "Intended purposes, potentially beneficial uses, context-specific laws, norms and expectations, "
        "and prospective settings in which the AI system will be deployed are understood and documented."
    )
    assert govern_1_1.category.ident == "GOVERN 1" and govern_1_1.category.function.code == "GOVERN"
    assert RmfFunction.objects.get(version="1.0", code="GOVERN").text == (
        "A culture of risk management is cultivated and present."
    )
    # every subcategory's text matches the shipped file
    for sub in RmfSubcategory.objects.filter(version="1.0"):
        assert sub.text == by_id[sub.ident], sub.ident


@pytest.mark.parametrize("catalogue, count", [
    (C.GENAI_RISK, 12), (C.TRUSTWORTHINESS, 7), (C.OWASP_LLM, 10), (C.ATLAS_TACTIC, 16), (C.ATLAS_TECHNIQUE, 170),
])
def test_reference_catalogue_counts_survive_a_reload(catalogue, count):
    load_catalogues()
    assert ReferenceItem.objects.filter(catalogue=catalogue).count() == count


def test_reference_items_spot_check():
    assert ReferenceItem.objects.get(catalogue=C.GENAI_RISK, ident="cbrn").title == "CBRN Information or Capabilities"
    owasp = ReferenceItem.objects.get(catalogue=C.OWASP_LLM, ident="LLM01")
    assert owasp.title == "Prompt Injection" and owasp.version == "2025"
    assert ReferenceItem.objects.filter(catalogue=C.TRUSTWORTHINESS, ident="SAFE").exists()


def _write_revision(tmp_path, version="1.1"):
    """A made-up later revision: same structure, GOVERN 1.1 reworded, one new subcategory."""
    data = json.loads((CATALOGUE_DIR / "nist-ai-rmf-1.0.json").read_text(encoding="utf-8"))
    for sub in data["subcategories"]:
        if sub["id"] == "GOVERN 1.1":
            sub["text"] = "Revised wording for the test."
    data["subcategories"].append({"id": "GOVERN 1.8", "function": "GOVERN", "category": "GOVERN 1", "text": "New."})
    (tmp_path / f"nist-ai-rmf-{version}.json").write_text(json.dumps(data), encoding="utf-8")
    return f"nist-ai-rmf-{version}.json"


def test_second_version_loads_beside_1_0(tmp_path, system, ciso):
    assessment = RmfAssessment.objects.get(system=system, subcategory__ident="GOVERN 1.1")
    RmfAssessment.objects.filter(pk=assessment.pk).update(status=AssessmentStatus.IMPLEMENTED)
    old_ids = set(RmfSubcategory.objects.filter(version="1.0").values_list("pk", flat=True))

    counts = load_rmf(tmp_path, "1.1", _write_revision(tmp_path))
    load_rmf(tmp_path, "1.1", "nist-ai-rmf-1.1.json")  # idempotent for the new version too

    assert counts == {"functions": 4, "categories": 19, "subcategories": 73}
    assert rmf_counts("1.1") == (4, 19, 73)
    assert rmf_counts("1.0") == (4, 19, 72)
    assert set(RmfSubcategory.objects.filter(version="1.0").values_list("pk", flat=True)) == old_ids
    assert RmfSubcategory.objects.get(version="1.0", ident="GOVERN 1.1").text.startswith("Legal and regulatory")
    assert RmfSubcategory.objects.get(version="1.1", ident="GOVERN 1.1").text == "Revised wording for the test."
    # new-version categories point at new-version functions
    assert not RmfCategory.objects.filter(version="1.1").exclude(function__version="1.1").exists()
    # the existing profile is untouched
    assessment.refresh_from_db()
    assert assessment.status == AssessmentStatus.IMPLEMENTED and assessment.subcategory.version == "1.0"
    assert RmfAssessment.objects.filter(system=system).count() == 72
    # and reloading 1.0 afterwards does not disturb 1.1
    load_catalogues()
    assert rmf_counts("1.0") == (4, 19, 72) and rmf_counts("1.1") == (4, 19, 73)


def test_new_systems_still_get_the_1_0_profile_after_a_revision_loads(tmp_path, owner, ciso):
    from governance.inventory import services
    from tests.conftest import system_data

    load_rmf(tmp_path, "1.1", _write_revision(tmp_path))
    system = services.system_create(actor=ciso, data=system_data(owner, slug="after-revision"))
    assert system.rmf_version == "1.0"
    assert RmfAssessment.objects.filter(system=system).count() == 72
    assert not RmfAssessment.objects.filter(system=system).exclude(subcategory__version="1.0").exists()


def test_management_command_reports_counts_and_is_idempotent(capsys):
    call_command("load_catalogues")
    first = capsys.readouterr().out
    call_command("load_catalogues")
    second = capsys.readouterr().out
    assert first == second
    lines = dict(line.split(": ", 1) for line in first.strip().splitlines())
    assert lines["rmf 1.0 functions"] == "4"
    assert lines["rmf 1.0 categories"] == "19"
    assert lines["rmf 1.0 subcategories"] == "72"
    assert lines["ai-600-1"] == "12"
    assert lines["trustworthiness"] == "7"
    assert lines["owasp-llm"] == "10"
    assert lines["atlas-tactic"] == "16"
    assert lines["atlas-technique"] == "170"
    assert rmf_counts() == (4, 19, 72)

"""Scenario files are untrusted: malformed or hostile files are refused with the field path; text is escaped."""
from __future__ import annotations

import copy
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from governance.tabletop import scenario_io
from governance.tabletop.models import Scenario
from tests.conftest import PASSWORD

GOOD = {
    "format": "rampart-tabletop-scenario", "version": 1, "slug": "drill", "title": "Drill", "narrative": "Something happens.",
    "objectives": ["Respond"], "rmf_subcategories": ["MANAGE 4.1"], "atlas_techniques": ["AML.T0051"],
    "genai_risks": ["confabulation"],
    "injects": [{"title": "Alert", "offset_minutes": 0, "audience": "security", "channel": "ticket", "body": "Look.",
                 "expected_actions": [{"text": "Triage", "checked_by": "observer", "objective": 0}]}],
}


def errors_of(data) -> list[str]:
    raw = data if isinstance(data, (bytes, str)) else json.dumps(data)
    with pytest.raises(scenario_io.ScenarioFileError) as exc:
        scenario_io.parse(raw)
    return exc.value.errors


def variant(**changes):
    data = copy.deepcopy(GOOD)
    for path, value in changes.items():
        target = data
        keys = path.split("__")
        for k in keys[:-1]:
            target = target[int(k)] if k.isdigit() else target[k]
        target[int(keys[-1]) if keys[-1].isdigit() else keys[-1]] = value
    return data


@pytest.mark.django_db
def test_good_file_parses_and_round_trips(scenarios):
    assert scenario_io.parse(json.dumps(GOOD))["slug"] == "drill"
    for s in Scenario.objects.all():
        exported = scenario_io.export(s)
        assert scenario_io.parse(json.dumps(exported)) == exported


@pytest.mark.django_db
@pytest.mark.parametrize("data, expected", [
    (b"x" * (scenario_io.MAX_BYTES + 1), "limit is 1,048,576 bytes"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b'{"format": ', "not valid JSON"),
    (b"[1, 2]", "(top level): must be an object, not a list"),
    (b'{"slug": "a", "slug": "b"}', "duplicate key 'slug'"),
    (b'{"version": NaN}', "NaN is not allowed"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    (variant(extra="x"), "extra: unknown field"),
    (variant(injects__0__script="x"), "injects[0].script: unknown field"),
    (variant(injects__0__offset_minutes="10"), "injects[0].offset_minutes: must be an integer or null, not a string"),
    (variant(injects__0__offset_minutes=True), "injects[0].offset_minutes: must be an integer or null, not a boolean"),
    (variant(injects__0__channel="pigeon"), "injects[0].channel: must be one of email, chat, press, regulator, ticket"),
    (variant(injects__0__audience="ceo"), "injects[0].audience: must be one of"),
    (variant(injects__0__expected_actions=[{"text": 5}]), "injects[0].expected_actions[0].text: must be a string, not a number"),
    (variant(injects__0__expected_actions__0__objective=3), "injects[0].expected_actions[0].objective: there are only 1 objectives"),
    (variant(injects__0__attachments=[{"label": "x", "url": "javascript:alert(1)"}]), "injects[0].attachments[0].url: only http(s) links"),
    (variant(title="x" * 201), "title: at most 200 characters (got 201)"),
    (variant(title="a\x00b"), "title: must not contain NUL"),
    (variant(slug="../etc"), "slug: lower-case letters"),
    (variant(version=2), "version: must be between 1 and 1"),
    (variant(format="other"), "format: must be one of rampart-tabletop-scenario"),
    (variant(injects=[]), "injects: a scenario needs at least one inject"),
    (variant(injects=[GOOD["injects"][0]] * 41), "injects: at most 40 items (got 41)"),
    (variant(rmf_subcategories=["GOVERN 99.9"]), "rmf_subcategories[0]: unknown NIST AI RMF subcategory 'GOVERN 99.9'"),
    (variant(atlas_techniques=["AML.T9999"]), "atlas_techniques[0]: unknown MITRE ATLAS technique 'AML.T9999'"),
    (variant(injects__0__visibility={"question": "rm -rf"}), "injects[0].visibility.question: must be one of"),
    ({k: v for k, v in GOOD.items() if k != "narrative"}, "narrative: required"),
])
def test_hostile_files_are_refused_with_field_paths(data, expected):
    errors = errors_of(data)
    assert any(expected in e for e in errors), errors


@pytest.mark.django_db
def test_every_problem_is_listed():
    errors = errors_of(variant(title=3, injects__0__channel="fax", extra=1))
    assert len(errors) == 3


@pytest.fixture
def planner_client(client, facilitator):
    client.login(email=facilitator.email, password=PASSWORD)
    return client


def upload(client, data):
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return client.post(reverse("tabletop:scenario-import"), {"file": SimpleUploadedFile("s.json", raw, "application/json")})


@pytest.mark.django_db
def test_import_view_refuses_with_errors_and_saves_nothing(planner_client):
    response = upload(planner_client, variant(injects__0__channel="fax", extra=1))
    assert response.status_code == 400
    html = response.content.decode()
    assert "injects[0].channel: must be one of" in html and "extra: unknown field" in html
    assert not Scenario.objects.filter(slug="drill").exists()
    response = upload(planner_client, b"x" * (scenario_io.MAX_BYTES + 10))
    assert response.status_code == 400 and "1 MB" in response.content.decode()


@pytest.mark.django_db
def test_html_in_imported_text_is_escaped(planner_client):
    hostile = variant(title="<script>alert('t')</script>", narrative="<img src=x onerror=alert(1)>",
                      injects__0__body="<b onmouseover=alert(2)>hi</b>")
    response = upload(planner_client, hostile)
    assert response.status_code == 302
    scenario = Scenario.objects.get(slug="drill")
    html = planner_client.get(scenario.get_absolute_url()).content.decode()
    assert "<script>alert('t')</script>" not in html and "&lt;script&gt;alert(&#x27;t&#x27;)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "<b onmouseover" not in html
    response = upload(planner_client, hostile)  # same slug again
    assert response.status_code == 400 and "slug: a scenario &#x27;drill&#x27; already exists" in response.content.decode()


@pytest.mark.django_db
def test_export_then_import_under_a_new_slug(planner_client, scenarios):
    exported = json.loads(planner_client.get(reverse("tabletop:scenario-export", args=["chatbot-invents-refund-policy"])).content)
    exported["slug"] = "chatbot-copy"
    assert upload(planner_client, exported).status_code == 302
    assert Scenario.objects.get(slug="chatbot-copy").injects.count() == len(exported["injects"])


@pytest.mark.django_db
def test_draft_from_atlas_case_study(planner_client):
    from governance.rmf.models import ReferenceItem

    case = ReferenceItem.objects.filter(catalogue="atlas-case-study").exclude(data__procedure=[]).first()
    response = planner_client.post(reverse("tabletop:atlas"), {"case_study": case.pk})
    scenario = Scenario.objects.get(origin="atlas", source_ref=case.ident)
    assert response.status_code == 302 and response.url == scenario.get_absolute_url()
    assert scenario.injects.count() == min(40, len(case.data["procedure"]))
    assert scenario.references.filter(catalogue="atlas-technique").exists()
    assert planner_client.get(scenario.get_absolute_url()).status_code == 200

"""The audit page a person can use: filters (who, what kind, which system, when, people only) combined in the URL,
the total, pages, an export of exactly the filtered list, and "Verify the chain" (the verify_audit check)."""
from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import datetime
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from governance.audit.models import EVENT_KINDS, AuditEvent
from governance.audit.selectors import SYSTEM_ACTOR, audit_events
from governance.audit.services import audit_record
from governance.inventory import services as inventory
from governance.risks import services as risks
from tests.audit.conftest import grow
from tests.conftest import make_user
from tests.risks.conftest import make_risk

ROOT = Path(__file__).resolve().parents[2]


def at(day: str):
    return time_machine.travel(timezone.make_aware(datetime.fromisoformat(f"{day}T12:00:00")), tick=False)


def worker_event(system, action: str = "import.done") -> None:
    """What the worker writes: no user as actor."""
    with transaction.atomic():
        audit_record(actor=None, action=action, obj=system, system=system, after={"created": 3})


@pytest.fixture
def world(ciso, owner, engineer, system, other_system):
    """Events on three days, by three people and the worker, on two systems.

    Before (today, by the fixtures): #1 system.create (ciso, system), #2 system.create (ciso, other_system).
    """
    with at("2099-03-02"):
        grow(system, engineer, times=2)  # system.update x2 by engineer on system
        worker_event(system)  # import.done by the worker on system
    with at("2099-03-03"):
        risk = make_risk(engineer, other_system)  # risk.create by engineer on other_system
        risks.decision_request(actor=engineer, risk=risk, kind="residual_risk")  # decision.request
    with at("2099-03-04"):
        worker_event(other_system)  # import.done by the worker on other_system
        inventory.system_update(actor=owner, system=system, data={"purpose": "Owner's words."})  # system.update
    return {"risk": risk}


def page(client, **params):
    response = client.get(reverse("audit:list"), params)
    text = response.content.decode()
    total = re.search(r'data-total="(\d+)"', text)
    return response, (int(total.group(1)) if total else None), [int(s) for s in re.findall(r">#(\d+)</span>", text)]


def expected(**filters) -> list[int]:
    return list(audit_events(**filters).values_list("seq", flat=True))


@pytest.mark.django_db
def test_each_filter_and_their_combination(client, ciso, engineer, system, other_system, world):
    client.force_login(ciso)
    everything = list(AuditEvent.objects.order_by("-seq").values_list("seq", "action", "actor_label", "system_id"))
    cases = [
        ({}, [s for s, *_ in everything]),
        ({"actor": engineer.pk}, [s for s, a, who, _ in everything if who == engineer.email]),
        ({"actor": SYSTEM_ACTOR}, [s for s, a, who, _ in everything if who == "system"]),
        ({"kind": "system"}, [s for s, a, *_ in everything if a.startswith("system.")]),
        ({"kind": "decision"}, [s for s, a, *_ in everything if a.startswith("decision.")]),
        ({"system": other_system.slug}, [s for s, a, who, sid in everything if sid == other_system.pk]),
        ({"since": "2099-03-03", "until": "2099-03-03"}, [s for s, a, *_ in everything if a in ("risk.create",
                                                                                                  "decision.request")]),
        ({"actor": engineer.pk, "kind": "system", "system": system.slug, "since": "2099-03-02", "until": "2099-03-02"},
         [s for s, a, who, sid in everything if who == engineer.email and a == "system.update"]),
        ({"since": "2099-03-04", "people": "on"}, [s for s, a, who, _ in everything
                                                    if who == "owner@example.com" and a == "system.update"]),
    ]
    for params, seqs in cases:
        response, total, listed = page(client, **params)
        assert response.status_code == 200, params
        assert seqs, f"the case {params} must select something"
        assert listed == seqs and total == len(seqs), params
    assert len(cases[8][1]) == 1  # people only on the last day: the owner's update, not the worker's import


@pytest.mark.django_db
def test_filters_stay_in_the_pager_and_export_links(client, ciso, engineer, system, world):
    grow(system, engineer, times=50)
    client.force_login(ciso)
    response, total, listed = page(client, actor=engineer.pk, kind="system")
    assert total == 52 and len(listed) == 50
    text = response.content.decode()
    assert f"?actor={engineer.pk}&amp;kind=system&amp;page=2" in text
    assert f"{reverse('audit:export')}?actor={engineer.pk}&amp;kind=system&amp;format=csv" in text
    second, total2, listed2 = page(client, actor=engineer.pk, kind="system", page=2)
    assert total2 == 52 and listed2 == expected(actor=engineer, kind="system")[50:]


@pytest.mark.django_db
def test_invalid_filters_are_said_not_ignored(client, ciso, world):
    client.force_login(ciso)
    for params in ({"since": "03/04/2026"}, {"kind": "nonsense"}, {"since": "2099-03-04", "until": "2099-03-01"},
                   {"actor": "999999"}):
        response, total, listed = page(client, **params)
        assert response.status_code == 400 and total is None and listed == [], params
        assert 'class="error"' in response.content.decode()
    assert client.get(reverse("audit:export"), {"kind": "nonsense"}).status_code == 400
    assert client.get(reverse("audit:export"), {"format": "xls"}).status_code == 400


@pytest.mark.django_db
def test_query_count_of_the_filtered_list_is_pinned(client, ciso, engineer, system, world,
                                                    django_assert_max_num_queries):
    client.force_login(ciso)
    params = {"actor": engineer.pk, "kind": "system", "system": system.slug, "since": "2099-03-01",
              "until": "2099-03-05", "people": "on"}
    # session, user, 2 permission lookups, role names and sign-offs waiting (sidebar), role check (verify button),
    # the actor's user and system's row (filters), users and systems (choices), the total, the page of events
    with django_assert_max_num_queries(12) as small:
        assert client.get(reverse("audit:list"), params).status_code == 200
    grow(system, engineer, times=30)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(reverse("audit:list"), params).status_code == 200


def _export(client, fmt, **params) -> str:
    response = client.get(reverse("audit:export"), {**params, "format": fmt})
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    return b"".join(response.streaming_content).decode()


@pytest.mark.django_db
def test_exports_hold_exactly_the_filtered_list(client, ciso, engineer, other_system, world):
    client.force_login(ciso)
    params = {"system": other_system.slug, "since": "2099-03-03"}
    seqs = expected(system=other_system, since=datetime(2099, 3, 3).date())
    assert len(seqs) == 3  # risk.create, decision.request, import.done
    rows = list(csv.reader(io.StringIO(_export(client, "csv", **params))))
    assert rows[0][0] == "Seq" and [int(r[0]) for r in rows[1:]] == seqs
    assert {r[7] for r in rows[1:]} == {other_system.slug}
    lines = [json.loads(line) for line in _export(client, "jsonl", **params).splitlines()]
    assert [e["seq"] for e in lines] == seqs and {e["system"] for e in lines} == {other_system.slug}
    everything = list(csv.reader(io.StringIO(_export(client, "csv"))))
    assert len(everything) - 1 == AuditEvent.objects.count()


@pytest.mark.django_db
def test_csv_quotes_every_text_cell_and_neutralises_formulas(client, ciso, owner, system):
    inventory.system_update(actor=owner, system=system, data={"name": "=HYPERLINK(\"http://evil\")"})
    client.force_login(ciso)
    text = _export(client, "csv", kind="system")
    header, newest = text.splitlines()[:2]
    assert header.startswith('"Seq","At (UTC)","Actor"')
    seq = AuditEvent.objects.order_by("-seq").first().seq
    assert re.fullmatch(rf'{seq}(,"([^"]|"")*")+', newest)  # the number bare, every text cell quoted
    row = next(csv.reader(io.StringIO(newest)))
    assert row[6] == "'=HYPERLINK(\"http://evil\")"  # the system's new name, neutralised


@pytest.mark.django_db
def test_every_action_written_has_a_kind():
    """EVENT_KINDS (the "What" filter) names the prefix of every action the code writes."""
    kinds = {k for k, _ in EVENT_KINDS}
    written = set()
    for path in (ROOT / "governance").rglob("*.py"):
        written |= set(re.findall(r'action=f?"([a-z_]+)\.', path.read_text()))
    assert written and written <= kinds, written - kinds


# --- people only ------------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_by_people_leaves_out_the_worker_imports_and_checks(ciso, engineer, system, world):
    people = set(AuditEvent.objects.by_people().values_list("action", "actor_label"))
    assert ("import.done", "system") not in people
    assert all(who != "system" and not action.startswith(("import.", "audit.")) for action, who in people)
    assert ("system.update", "owner@example.com") in people and ("decision.request", engineer.email) in people
    assert AuditEvent.objects.exclude(pk__in=AuditEvent.objects.by_people()).filter(actor_key="").count() == 2


@pytest.mark.django_db
def test_an_import_started_by_a_person_is_not_a_change_by_people(engineer, system):
    from governance.findings.imports import import_run_create

    run = import_run_create(actor=engineer, stream=io.BytesIO(b'{"version": "2.1.0", "runs": []}'),
                            filename="r.sarif", fmt="sarif", system=system)
    event = AuditEvent.objects.get(action="import.create", object_id=str(run.pk))
    assert event.actor_label == engineer.email
    assert not AuditEvent.objects.by_people().filter(pk=event.pk).exists()


# --- verify the chain -------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_verify_button_shows_the_command_result_and_is_audited(client, ciso, trail, capsys):
    call_command("verify_audit")
    said = capsys.readouterr().out.strip()
    client.force_login(ciso)
    listing = client.get(reverse("audit:list")).content.decode()
    assert f'action="{reverse("audit:verify")}"' in listing and "csrfmiddlewaretoken" in listing
    response = client.post(reverse("audit:verify"))
    text = response.content.decode()
    assert response.status_code == 200 and 'data-verification="ok"' in text
    assert "4 events verified" in text and said in html.unescape(text)
    event = AuditEvent.objects.order_by("-seq").first()
    assert (event.seq, event.action, event.actor_label) == (5, "audit.verify", ciso.email)
    assert event.after == {"result": "intact", "events": 4, "last_seq": 4, "checkpoint": None,
                           "checkpoints_matched": 0}
    call_command("verify_audit")  # the recorded check keeps the chain whole
    assert "5 events verified" in capsys.readouterr().out


@pytest.mark.django_db
def test_verify_names_the_checkpoint_it_reached(client, admin_user, trail, checkpoint_file):
    call_command("audit_checkpoint")
    client.force_login(admin_user)
    response = client.post(reverse("audit:verify"), HTTP_HX_REQUEST="true")
    text = response.content.decode()
    assert response.status_code == 200 and "<html" not in text  # the result alone, for the page's placeholder
    assert "4 events verified" in text and "1 checkpoints match, the latest event #4" in text
    assert AuditEvent.objects.order_by("-seq").first().after["checkpoint"] == 4


@pytest.mark.django_db
def test_verify_names_each_problem_and_does_not_append(client, ciso, trail, caplog):
    AuditEvent.objects.filter(seq=2).update(after={"purpose": "rewritten"})
    AuditEvent.objects.filter(seq=3).delete()
    client.force_login(ciso)
    with caplog.at_level("ERROR", logger="governance.audit"):
        response = client.post(reverse("audit:verify"))
    text = response.content.decode()
    assert 'data-verification="broken"' in text
    assert "<li>event #2 was altered (MAC mismatch)</li>" in text and "<li>event #3 is missing (next is #4)</li>" in text
    assert not AuditEvent.objects.filter(action="audit.verify").exists()
    assert "event #2 was altered" in caplog.text and ciso.email in caplog.text


@pytest.mark.django_db
def test_only_admins_and_cisos_verify(client, trail, engineer, owner, nobody):
    for user in (engineer, owner, nobody):
        client.force_login(user)
        assert client.post(reverse("audit:verify")).status_code == 403
    assert not AuditEvent.objects.filter(action="audit.verify").exists()


@pytest.mark.django_db
def test_an_audit_reader_without_the_role_sees_no_verify_button(client, trail):
    """Reading the trail is the permission; verifying also needs the admin or CISO role (a permission given to
    another group directly must not reach the check)."""
    from django.contrib.auth.models import Permission

    reader = make_user("reader@example.com", None)
    reader.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    client.force_login(reader)
    assert client.get(reverse("audit:list")).status_code == 200
    assert reverse("audit:verify") not in client.get(reverse("audit:list")).content.decode()
    assert client.post(reverse("audit:verify")).status_code == 403


@pytest.mark.django_db
def test_verify_needs_csrf(ciso, trail):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(ciso)
    assert strict.post(reverse("audit:verify")).status_code == 403
    assert not AuditEvent.objects.filter(action="audit.verify").exists()

"""A whole exercise in a real browser with three people at once: facilitator, player and observer each in their own
browser context. Inject released → the player sees it without reloading → responds → the facilitator sees it arrive →
the observer scores → hot wash → report → an improvement item becomes a risk in the register.

Uses Debian's chromium (never `playwright install`). Screenshots go to $RAMPART_SHOTS_DIR (default /tmp/rampart-shots).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from governance.accounts.models import Role  # noqa: E402
from governance.inventory import services as inventory  # noqa: E402
from governance.risks.models import Risk  # noqa: E402
from governance.tabletop import services  # noqa: E402
from governance.tabletop.loader import load_builtin_scenarios  # noqa: E402
from governance.tabletop.models import Scenario  # noqa: E402
from tests.conftest import PASSWORD, make_user, system_data  # noqa: E402

pytestmark = pytest.mark.browser
CHROMIUM = os.environ.get("RAMPART_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SHOTS = Path(os.environ.get("RAMPART_SHOTS_DIR", "/tmp/rampart-shots"))


@pytest.fixture
def world(transactional_db):
    ciso = make_user("ciso@example.com", Role.CISO)
    owner = make_user("owner@example.com", Role.PRODUCT_OWNER)
    facilitator = make_user("facilitator@example.com", Role.FACILITATOR)
    player = make_user("dev@example.com", None)
    observer = make_user("observer@example.com", None)
    for u, name in ((facilitator, "Femi Adeyemi"), (player, "Dev Patel"), (observer, "Olga Berg")):
        u.full_name = name
        u.save()
    system = inventory.system_create(actor=ciso, data=system_data(owner, name="Fraud Scoring", slug="fraud-scoring"))
    inventory.model_register(actor=ciso, system=system, data={"name": "fraud-bert", "version": "1", "format": "pytorch",
                                                               "provider": "community hub", "source_uri": "https://hub.example/fraud-bert"})
    load_builtin_scenarios()
    exercise = services.exercise_create(actor=facilitator, data={
        "title": "Q1 supply-chain drill", "scenario": Scenario.objects.get(slug="malicious-pickle-model"),
        "facilitator": facilitator}, systems=[system])
    services.participant_add(actor=facilitator, exercise=exercise, user=player, role="player", function="ml_engineer")
    services.participant_add(actor=facilitator, exercise=exercise, user=observer, role="observer")
    return {"ciso": ciso, "facilitator": facilitator, "player": player, "observer": observer, "system": system,
            "exercise": exercise}


@pytest.fixture
def browser():
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def open_as(browser, live_server, email):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    return page


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"tabletop-{name}.png"), full_page=True)


def test_three_people_run_a_whole_exercise(browser, live_server, world):
    ex = world["exercise"]
    fac = open_as(browser, live_server, "facilitator@example.com")
    ply = open_as(browser, live_server, "dev@example.com")
    obs = open_as(browser, live_server, "observer@example.com")
    fac.on("dialog", lambda d: d.accept())

    # the facilitator starts the clock from the console
    fac.goto(f"/exercises/{ex.pk}/")
    expect(fac).to_have_url(re.compile(rf"/exercises/{ex.pk}/console/"))
    fac.get_by_role("button", name="▶ Start the clock").click()
    expect(fac.locator("#ex-banner")).to_contain_text("Running")

    # player and observer open their screens and wait
    ply.goto(f"/exercises/{ex.pk}/")
    expect(ply).to_have_url(re.compile(rf"/exercises/{ex.pk}/play/"))
    expect(ply.get_by_text("You are playing as ML engineer.")).to_be_visible()
    ply.evaluate("window.__noReload = 'still here'")
    obs.goto(f"/exercises/{ex.pk}/")
    expect(obs).to_have_url(re.compile(rf"/exercises/{ex.pk}/observe/"))
    obs.evaluate("window.__noReload = 'still here'")

    # release the ML inject by hand; it answers a visibility question from the inventory
    fac.get_by_role("button", name="Release inject 2").click()
    feed = fac.locator("#release-" + str(ex.releases.get(inject__order=2).pk))
    expect(feed).to_contain_text("Rampart answers")
    expect(feed).to_contain_text("fraud-bert")  # the third-party pytorch model registered above
    expect(feed).to_contain_text("no pinned sha256")  # recorded as a visibility gap

    # the player sees it arrive without reloading, never with the facilitator's notes
    card = ply.locator(".inject-card", has_text="ML platform chat")
    expect(card).to_be_visible(timeout=10_000)
    assert ply.evaluate("window.__noReload") == "still here"
    assert "Facilitator only" not in ply.content()
    assert ply.locator(".inject-card", has_text="Cloud threat detection").count() == 0  # for security, not them
    card.get_by_label("Decision").check()
    card.get_by_label(re.compile("Your response to")).fill("Quarantine the checkpoint and list every job that pulled it")
    card.get_by_role("button", name="Send").click()  # a decision without its rationale: refused, said in place
    expect(card.locator(".responses [role=alert]")).to_contain_text("A decision needs its rationale.")
    expect(card.get_by_label(re.compile("Your response to"))).to_have_value(re.compile("Quarantine the checkpoint"))
    card.get_by_label("Rationale").fill("We cannot prove which models loaded it")
    card.get_by_role("button", name="Send").click()
    expect(card.locator(".responses")).to_contain_text("Quarantine the checkpoint")
    expect(card.get_by_label(re.compile("Your response to"))).to_have_value("")
    shot(ply, "player")

    # the facilitator's console shows the response arriving (polling)
    expect(fac.locator("#feed")).to_contain_text("Quarantine the checkpoint", timeout=10_000)
    expect(fac.locator("#feed")).to_contain_text("Dev Patel")
    shot(fac, "console")

    # the observer sees the inject and the response, and scores an expected action
    row = obs.locator(".inject-card", has_text="ML platform chat")
    expect(row).to_be_visible(timeout=10_000)
    expect(row.locator(".responses")).to_contain_text("Quarantine the checkpoint", timeout=10_000)
    assert obs.evaluate("window.__noReload") == "still here"
    action = row.locator(".action-score").first
    action.get_by_label(re.compile("Score for")).select_option("3")
    action.get_by_label(re.compile("Observation for")).fill("Named all three jobs within two minutes")
    action.get_by_role("button", name="Save").click()
    expect(row.locator(".action-score").first).to_contain_text("✓ Fully met")
    shot(obs, "observer")

    # hot wash: play stops for everyone
    fac.reload()
    fac.get_by_role("button", name="End play → hot wash").click()
    expect(fac.locator("#ex-banner")).to_contain_text("Hot wash")
    expect(ply.locator("#ex-banner")).to_contain_text("Hot wash", timeout=10_000)
    fac.get_by_label("Strengths").fill("Fast, calm containment")
    fac.get_by_label("Areas for improvement").fill("No hash pinning for hub downloads")
    fac.get_by_role("button", name="Save hot wash notes").click()
    fac.get_by_role("button", name="Complete the exercise").click()

    # the report
    expect(fac).to_have_url(re.compile(rf"/exercises/{ex.pk}/report/"))
    expect(fac.get_by_role("heading", name=re.compile("After-action report"))).to_be_visible()
    expect(fac.locator("body")).to_contain_text("Fast, calm containment")
    expect(fac.locator("body")).to_contain_text("Named all three jobs")
    expect(fac.locator("body")).to_contain_text("no pinned sha256")

    # an improvement item becomes a risk in the register
    fac.get_by_text("Add an improvement item").click()
    fac.get_by_label("Title").fill("Third-party pickle models load without a pinned hash")
    fac.get_by_label("Kind").select_option("risk")
    fac.get_by_label("System").select_option(label="Fraud Scoring")
    fac.get_by_label("Owner").select_option(label="Cora" if False else str(world["ciso"]))
    fac.get_by_role("button", name="Add item").click()
    fac.locator("summary", has_text="Create risk…").click()
    fac.get_by_role("button", name="Create risk", exact=True).click()  # not rated yet: the browser holds it back
    assert fac.get_by_label("Likelihood").evaluate("el => el.validity.valueMissing")
    # past the browser's check, the server refuses it too, and htmx shows why in place (the form stays open)
    fac.evaluate("document.querySelectorAll('.promote select').forEach(function (s) { s.required = false; })")
    fac.get_by_role("button", name="Create risk", exact=True).click()
    expect(fac.locator(".promote [role=alert]").first).to_contain_text("Rate the likelihood")
    expect(fac.locator("details.promote")).to_have_attribute("open", "")
    assert not Risk.objects.filter(source="tabletop").exists()
    fac.get_by_label("Likelihood").select_option("3")
    fac.get_by_label("Impact").select_option("4")
    fac.get_by_role("button", name="Create risk", exact=True).click()
    expect(fac.locator(".message.success")).to_contain_text("is now risk RISK-")
    risk = Risk.objects.get(source="tabletop")
    assert risk.system == world["system"] and ex.ref in risk.source_ref and risk.owner == world["ciso"]
    assert (risk.residual_likelihood, risk.residual_impact) == (3, 4) and risk.residual_level
    expect(fac.locator("#improvements")).to_contain_text(risk.ref)
    shot(fac, "report")

    # the player can read the report now that play is over
    ply.goto(f"/exercises/{ex.pk}/report/")
    expect(ply.get_by_role("heading", name=re.compile("After-action report"))).to_be_visible()
    assert "Create risk" not in ply.content()

    # the system page says when it was last exercised
    fac.goto("/systems/fraud-scoring/")
    expect(fac.locator("body")).to_contain_text("Q1 supply-chain drill")
    for p in (fac, ply, obs):
        assert p.errors == [], p.errors


def test_facilitator_adds_several_people_with_the_panel_open_and_confirms_an_early_release(browser, live_server, world):
    from governance.tabletop.models import InjectRelease, Participant

    ex = world["exercise"]
    extra = [make_user(f"guest{i}@example.com", None) for i in range(3)]
    fac = open_as(browser, live_server, "facilitator@example.com")
    fac.goto(f"/exercises/{ex.pk}/console/")
    panel = fac.locator("#participants")
    panel.get_by_text("Add a participant").click()
    for i, user in enumerate(extra):
        panel.get_by_label("Person").select_option(label=str(user))
        panel.get_by_label("Role").select_option("player" if i else "observer")
        if i:
            panel.get_by_label("Function").select_option("legal")
        panel.get_by_role("button", name="Add", exact=True).click()
        expect(panel.locator("[role=status]")).to_have_text(f"{user} added.")
        expect(panel.locator("details.add")).to_have_attribute("open", "")  # ready for the next person
        expect(panel.get_by_label("Person")).to_have_value("")  # an empty form for them
    assert Participant.objects.filter(exercise=ex).count() == 6
    panel.get_by_label("Person").select_option(label=str(world["ciso"]))
    panel.get_by_label("Role").select_option("player")  # without a function: refused in the open panel
    panel.get_by_role("button", name="Add", exact=True).click()
    expect(panel.locator(".error")).to_contain_text("A player needs a function")
    expect(panel.locator("details.add")).to_have_attribute("open", "")
    shot(fac, "participants")

    # releasing an inject early asks first; saying no releases nothing
    fac.get_by_role("button", name="▶ Start the clock").click()
    expect(fac.locator("#ex-banner")).to_contain_text("Running")
    asked: list[str] = []
    fac.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    fac.get_by_role("button", name="Release inject 3").click()
    assert asked and asked[0].startswith("Release inject 3 ") and "before its time (T+" in asked[0]
    assert "cannot be taken back" in asked[0]
    fac.once("dialog", lambda d: (asked.append(d.message), d.accept()))
    fac.get_by_role("button", name="Release inject 4").click()
    expect(fac.locator("#feed .feed-item", has_text="Legal: did the attacker")).to_be_visible(timeout=10_000)
    released = set(InjectRelease.objects.filter(exercise=ex).values_list("inject__order", flat=True))
    assert 4 in released and 3 not in released and len(asked) == 2
    assert fac.errors == [], fac.errors

"""The risk matrix: levels computed on the server, recomputed on every change, invalid matrices refused."""
from __future__ import annotations

import copy

import pytest
from django.core.exceptions import ValidationError

from governance.audit.models import AuditEvent
from governance.risks import selectors, services
from governance.risks.matrix import default_matrix, get_matrix
from governance.risks.models import Risk, RiskMatrix
from tests.risks.conftest import make_risk, rated

pytestmark = pytest.mark.django_db

THREE = {
    "likelihood_labels": ["Seldom", "Sometimes", "Often"],
    "impact_labels": ["Minor", "Serious", "Grave"],
    "levels": [
        {"key": "green", "label": "Tolerable", "colour": "#00aa00", "rank": 1},
        {"key": "amber", "label": "Watch", "colour": "#ffaa00", "rank": 2},
        {"key": "red", "label": "Intolerable", "colour": "#cc0000", "rank": 3},
    ],
    "cells": [["green", "green", "amber"], ["green", "amber", "red"], ["amber", "red", "red"]],
}


def _levels_agree_with_matrix() -> None:
    matrix = get_matrix()
    for risk in Risk.objects.all():
        inherent = matrix.level_for(risk.inherent_likelihood, risk.inherent_impact)
        residual = matrix.level_for(risk.residual_likelihood, risk.residual_impact)
        assert (risk.inherent_level, risk.residual_level, risk.residual_rank) == (
            inherent, residual, matrix.rank(residual)), risk.ref


@pytest.fixture
def every_cell(engineer, system):
    """One risk per cell of the default 5×5 (inherent = residual = the cell), and an unrated one."""
    risks = [rated(engineer, system, residual=(lk, im), inherent=(lk, im)) for lk in range(1, 6) for im in range(1, 6)]
    return risks + [make_risk(engineer, system, title="Not rated yet")]


def test_default_matrix_is_5x5_with_named_levels_and_colours():
    matrix = get_matrix()
    assert matrix.size == (5, 5)
    assert [lv["key"] for lv in matrix.levels] == ["low", "medium", "high", "critical"]
    assert all(lv["label"] and lv["colour"].startswith("#") for lv in matrix.levels)
    assert matrix.level_for(1, 1) == "low" and matrix.level_for(5, 5) == "critical" and matrix.level_for(2, 4) == "high"


def test_levels_are_computed_on_create_and_update(every_cell, engineer):
    _levels_agree_with_matrix()
    risk = every_cell[0]
    services.risk_update(actor=engineer, risk=risk, data={"residual_likelihood": 5, "residual_impact": 4})
    risk.refresh_from_db()
    assert risk.residual_level == "critical" and risk.residual_rank == 4


def test_not_rated_is_empty_not_a_number(every_cell, engineer):
    unrated = every_cell[-1]
    unrated.refresh_from_db()
    assert (unrated.inherent_likelihood, unrated.inherent_impact, unrated.residual_likelihood, unrated.residual_impact) == (None,) * 4
    assert unrated.inherent_level == "" and unrated.residual_level == "" and unrated.residual_rank == 0
    half = make_risk(engineer, unrated.system, residual_likelihood=4)  # half a rating is no rating
    assert half.residual_level == "" and half.residual_rank == 0
    assert get_matrix().level_for(None, None) == "" and get_matrix().level_for(0, 3) == ""


def test_changing_one_cell_recomputes_every_risk(every_cell, ciso):
    data = default_matrix()
    data["cells"][1][1] = "critical"  # likelihood 2 × impact 2
    changed = services.matrix_update(actor=ciso, **data)
    assert changed == 1
    two_two = Risk.objects.get(residual_likelihood=2, residual_impact=2)
    assert (two_two.inherent_level, two_two.residual_level, two_two.residual_rank) == ("critical", "critical", 4)
    _levels_agree_with_matrix()
    event = AuditEvent.objects.get(action="risk_matrix.update")
    assert event.after["risks_recomputed"] == 1 and event.before["cells"][1][1] == "medium"
    assert Risk.objects.order_by("-residual_rank", "ref").first().residual_rank == 4


def test_switching_to_a_3x3_with_other_levels(engineer, system, ciso):
    low, top, unrated = rated(engineer, system, residual=(1, 1), inherent=(3, 3)), rated(engineer, system, residual=(3, 3), inherent=(3, 3)), make_risk(engineer, system)
    services.matrix_update(actor=ciso, **THREE)
    matrix = get_matrix()
    assert matrix.size == (3, 3) and matrix.likelihood_labels == THREE["likelihood_labels"]
    for risk in (low, top, unrated):
        risk.refresh_from_db()
    assert (low.residual_level, low.residual_rank, low.inherent_level) == ("green", 1, "red")
    assert (top.residual_level, top.residual_rank) == ("red", 3)
    assert (unrated.residual_level, unrated.residual_rank) == ("", 0)
    _levels_agree_with_matrix()
    # New ratings are checked against the new size.
    assert rated(engineer, system, residual=(2, 3), inherent=(3, 3)).residual_level == "red"


def test_shrinking_below_existing_ratings_is_refused_and_changes_nothing(every_cell, ciso):
    before_matrix = RiskMatrix.objects.values().get(pk=1)
    before = list(Risk.objects.order_by("pk").values_list("inherent_level", "residual_level", "residual_rank"))
    with pytest.raises(ValidationError) as exc:
        services.matrix_update(actor=ciso, **THREE)
    assert "RISK-" in str(exc.value)
    assert RiskMatrix.objects.values().get(pk=1) == before_matrix
    assert list(Risk.objects.order_by("pk").values_list("inherent_level", "residual_level", "residual_rank")) == before
    assert not AuditEvent.objects.filter(action="risk_matrix.update").exists()


def _broken(path: str, value) -> dict:
    """The default 5×5 with one part replaced: path "cells.1.1", "levels.2", "likelihood_labels" …"""
    data = default_matrix()
    data["levels"] = copy.deepcopy(data["levels"])
    *parents, last = path.split(".")
    target = data
    for p in parents:
        target = target[int(p)] if isinstance(target, list) else target[p]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return data


LEVEL = {"key": "medium", "label": "Medium", "colour": "#f2b134", "rank": 2}


@pytest.mark.parametrize("data", [
    _broken("likelihood_labels", ["Only"]),
    _broken("impact_labels", [str(i) for i in range(11)]),
    _broken("cells.0", ["low"] * 4),  # a row too short
    {**default_matrix(), "cells": default_matrix()["cells"][:4]},  # a row missing
    _broken("cells.1.1", "purple"),  # unknown level
    _broken("cells.1.1", None),
    _broken("cells.2", "lowlowlowlowlow"),
    _broken("levels.1", {**LEVEL, "key": "low"}),  # duplicate key
    _broken("levels.1", {"key": "medium"}),  # incomplete level
    _broken("levels.1", {**LEVEL, "colour": "javascript:alert(1)"}),  # colour is not a colour
    _broken("levels.1", {**LEVEL, "rank": 1}),  # ranks must differ
    _broken("levels.1", {**LEVEL, "rank": "2"}),
    _broken("levels", []),
    _broken("likelihood_labels.1", "  "),
    _broken("likelihood_labels", "abcde"),
], ids=["1-row", "11-cols", "short-row", "missing-row", "unknown-level", "null-cell", "row-not-a-list", "dup-key",
        "incomplete-level", "bad-colour", "same-rank", "rank-not-int", "no-levels", "blank-label", "labels-not-a-list"])
def test_invalid_matrices_are_refused_and_change_nothing(every_cell, ciso, data):
    before_matrix = RiskMatrix.objects.values().get(pk=1)
    before = list(Risk.objects.order_by("pk").values_list("inherent_level", "residual_level", "residual_rank"))
    with pytest.raises(ValidationError):
        services.matrix_update(actor=ciso, **data)
    assert RiskMatrix.objects.values().get(pk=1) == before_matrix
    assert list(Risk.objects.order_by("pk").values_list("inherent_level", "residual_level", "residual_rank")) == before
    assert not AuditEvent.objects.filter(action="risk_matrix.update").exists()


def test_heat_map_cells_and_list_levels_agree(every_cell, ciso):
    data = default_matrix()
    data["cells"][1][1] = "critical"
    services.matrix_update(actor=ciso, **data)
    matrix = get_matrix()
    risks = list(selectors.register_queryset(selectors.RiskFilters()))
    cells = selectors.heat_counts(risks)
    by_ref = {r.ref: r for r in risks}
    for (lk, im), refs in cells["residual"].items():
        for ref in refs:
            assert by_ref[ref].residual_level == matrix.level_for(lk, im)
    assert sum(len(v) for v in cells["residual"].values()) == 25  # the unrated one is not on the map


@pytest.mark.parametrize("name, value", [("residual_likelihood", 6), ("inherent_impact", 0), ("residual_impact", 99)])
def test_services_refuse_ratings_outside_the_matrix(engineer, system, name, value):
    with pytest.raises(ValidationError) as exc:
        make_risk(engineer, system, **{
            "inherent_likelihood": 2, "inherent_impact": 2, "residual_likelihood": 2, "residual_impact": 2, name: value})
    assert name in exc.value.message_dict
    assert not Risk.objects.exists()

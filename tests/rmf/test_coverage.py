"""Coverage per function: implemented counts 1, partial 0.5, not applicable is left out."""
import pytest

from governance.rmf import services
from governance.rmf.models import AssessmentStatus as S, RmfAssessment
from governance.rmf.selectors import Coverage, coverage_by_function, portfolio_coverage


@pytest.mark.parametrize("counts, percent", [
    ({}, None),  # nothing at all: n/a
    ({S.NOT_ASSESSED: 10}, 0),
    ({S.IMPLEMENTED: 10}, 100),
    ({S.PARTIAL: 10}, 50),
    ({S.IMPLEMENTED: 1, S.PARTIAL: 1, S.GAP: 2}, 38),  # 1.5 / 4 = 37.5 -> 38
    ({S.IMPLEMENTED: 2, S.NOT_APPLICABLE: 8}, 100),  # N/A excluded from the denominator
    ({S.IMPLEMENTED: 1, S.GAP: 1, S.NOT_APPLICABLE: 5}, 50),
    ({S.NOT_APPLICABLE: 6}, None),  # nothing applicable: n/a (not 0 %, and not averaged into anything)
    ({S.IMPLEMENTED: 1, S.PARTIAL: 1, S.GAP: 6}, 19),  # 1.5 / 8 = 18.75 -> 19
    ({S.PARTIAL: 1, S.GAP: 3}, 13),  # 0.5 / 4 = 12.5 -> 13: half up, not to even
    ({S.PARTIAL: 1, S.NOT_ASSESSED: 2}, 17),  # not assessed counts as not covered: 0.5 / 3
])
def test_percent(counts, percent):
    assert Coverage("GOVERN", dict(counts)).percent == percent


def test_totals():
    c = Coverage("MAP", {S.IMPLEMENTED: 3, S.NOT_APPLICABLE: 2, S.NOT_ASSESSED: 5, S.GAP: 1})
    assert (c.total, c.applicable, c.assessed) == (11, 9, 6)


def _set(system, actor, ident, status):
    a = RmfAssessment.objects.get(system=system, subcategory__ident=ident)
    services.assessment_update(actor=actor, assessment=a, data={"status": status})


@pytest.mark.django_db
def test_coverage_by_function_from_the_database(system, other_system, engineer):
    _set(system, engineer, "GOVERN 1.1", S.IMPLEMENTED)
    _set(system, engineer, "GOVERN 1.2", S.PARTIAL)
    _set(system, engineer, "GOVERN 1.3", S.NOT_APPLICABLE)
    _set(system, engineer, "MAP 1.1", S.GAP)
    _set(other_system, engineer, "GOVERN 1.4", S.IMPLEMENTED)  # another system's work does not count here
    coverage = {c.function: c for c in coverage_by_function(system)}
    assert list(coverage) == ["GOVERN", "MAP", "MEASURE", "MANAGE"]
    assert {f: c.total for f, c in coverage.items()} == {"GOVERN": 19, "MAP": 18, "MEASURE": 22, "MANAGE": 13}
    govern = coverage["GOVERN"]
    assert (govern.applicable, govern.assessed) == (18, 3)
    assert govern.percent == round(100 * 1.5 / 18) == 8
    assert coverage["MAP"].percent == 0 and coverage["MAP"].assessed == 1
    assert coverage["MANAGE"].percent == 0


@pytest.mark.django_db
def test_all_implemented_or_not_applicable_is_100(system, engineer):
    for a in RmfAssessment.objects.filter(system=system, subcategory__category__function__code="MANAGE"):
        services.assessment_update(actor=engineer, assessment=a, data={
            "status": S.NOT_APPLICABLE if a.subcategory.ident.startswith("MANAGE 4") else S.IMPLEMENTED})
    manage = {c.function: c for c in coverage_by_function(system)}["MANAGE"]
    assert manage.percent == 100 and manage.applicable == 13 - 3


@pytest.mark.django_db
def test_portfolio_coverage_matches_per_system(system, other_system, engineer, django_assert_num_queries):
    _set(system, engineer, "MEASURE 1.1", S.PARTIAL)
    _set(other_system, engineer, "MEASURE 1.1", S.IMPLEMENTED)
    with django_assert_num_queries(2):  # the function codes, and every system's counts
        result = portfolio_coverage([system, other_system])
    for s in (system, other_system):
        for c in coverage_by_function(s):
            assert result[s.pk].get(c.function).percent == c.percent
            assert result[s.pk].get(c.function).counts == c.counts
    assert result[system.pk].get("MEASURE").percent == round(100 * 0.5 / 22)
    assert result[other_system.pk].get("MEASURE").percent == round(100 / 22)


@pytest.mark.django_db
def test_an_all_not_applicable_function_is_na_and_left_out_of_the_system_figure(system, engineer):
    """59 of 59 applicable subcategories implemented is 100 %, whatever functions are entirely N/A."""
    for a in RmfAssessment.objects.filter(system=system).select_related("subcategory"):
        status = S.NOT_APPLICABLE if a.subcategory.ident.startswith("MANAGE") else S.IMPLEMENTED
        services.assessment_update(actor=engineer, assessment=a, data={"status": status})
    coverage = coverage_by_function(system)
    assert coverage.get("MANAGE").percent is None
    assert [coverage.get(f).percent for f in ("GOVERN", "MAP", "MEASURE")] == [100, 100, 100]
    assert coverage.percent == 100  # pooled over applicable subcategories, not a mean with MANAGE as 0
    assert coverage.overall.applicable == 72 - coverage.get("MANAGE").total


@pytest.mark.django_db
def test_the_system_figure_pools_subcategories_rather_than_averaging_functions(system, engineer):
    RmfAssessment.objects.filter(system=system).update(status=S.GAP)
    RmfAssessment.objects.filter(system=system, subcategory__ident__startswith="MANAGE").update(status=S.IMPLEMENTED)
    coverage = coverage_by_function(system)
    manage = coverage.get("MANAGE").total
    assert coverage.percent == int(100 * manage / 72 + 0.5)  # not the 25 % a mean of four functions would say

"""The query count of an import grows by a fixed number per batch; the queue's does not grow with rows."""
from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance.findings.imports import import_run_execute
from governance.findings.models import Finding, FindingState, MappingRule
from tests.findings.conftest import create_run, run_import, sarif_bytes, sarif_n, sarif_result

pytestmark = pytest.mark.django_db
BATCH = 10
# Per batch of new findings in a scope that has findings: SELECT the batch's existing rows (noting them in
# ingest_seen), COPY the new ones, rewrite the changed ones + renew the lease (one statement, even with nothing
# to rewrite; changed rows are COPYed beside the table first: one more), add the batch's new words to the search
# dictionary.
PER_FRESH_BATCH = 4
# The same in a scope's first import: no SELECT (the scope is empty; the report's own repeats are looked up).
PER_FIRST_IMPORT_BATCH = 3
# Per batch of unchanged findings: the SELECT and the lease. Nothing is written, no row is built.
PER_UNCHANGED_BATCH = 2
# Per run: claim, load the run, savepoint + release, advisory lock, temporary tables, which scopes are empty,
# close vanished (not in a scope's first import), record the scope's import, save the run, audit (lock head,
# insert event, update head).
PER_RUN = 13
PER_FIRST_RUN = PER_RUN - 1


def queries_for(data: bytes, **kw) -> int:
    run = create_run(data, **kw)
    with CaptureQueriesContext(connection) as ctx:
        assert import_run_execute(run.pk).status == "done"
    return len(ctx.captured_queries)


@pytest.fixture
def small_batches(settings):
    settings.RAMPART_IMPORT_BATCH = BATCH


def test_first_import_costs_a_fixed_number_of_queries_per_batch(system, small_batches):
    one = queries_for(sarif_n(BATCH), system=system, source="one")
    four = queries_for(sarif_n(4 * BATCH), system=system, source="four")
    assert (four - one) / 3 == PER_FIRST_IMPORT_BATCH
    assert one == PER_FIRST_RUN + PER_FIRST_IMPORT_BATCH


def test_new_findings_in_a_known_scope_cost_a_fixed_number_per_batch(system, small_batches):
    run_import(sarif_bytes([sarif_result(10_000)]), system=system)
    fresh = [sarif_result(10_000)] + [sarif_result(i) for i in range(4 * BATCH - 1)]
    assert queries_for(sarif_bytes(fresh), system=system) == PER_RUN + 4 * PER_FRESH_BATCH


def test_pinned_counts(system, small_batches, django_assert_num_queries):
    run = create_run(sarif_n(BATCH), system=system, source="a")
    with django_assert_num_queries(PER_FIRST_RUN + PER_FIRST_IMPORT_BATCH):
        import_run_execute(run.pk)
    run = create_run(sarif_n(4 * BATCH), system=system, source="b")
    with django_assert_num_queries(PER_FIRST_RUN + 4 * PER_FIRST_IMPORT_BATCH):
        import_run_execute(run.pk)
    # a partial last batch costs the same as a full one
    run = create_run(sarif_n(4 * BATCH + 3), system=system, source="c")
    with django_assert_num_queries(PER_FIRST_RUN + 5 * PER_FIRST_IMPORT_BATCH):
        import_run_execute(run.pk)


def test_big_batches_cost_the_same(system, settings, django_assert_num_queries):
    settings.RAMPART_IMPORT_BATCH = 2000
    run = create_run(sarif_n(4000), system=system, source="big")
    with django_assert_num_queries(PER_FIRST_RUN + 2 * PER_FIRST_IMPORT_BATCH):
        import_run_execute(run.pk)
    run = create_run(sarif_n(4000), system=system, source="big")
    with django_assert_num_queries(PER_RUN + 2 * PER_UNCHANGED_BATCH):
        import_run_execute(run.pk)


def test_a_repeat_in_a_first_import_is_looked_up(system, small_batches):
    """A scope's first import looks nothing up, except for a batch repeating a fingerprint of an earlier one."""
    results = [sarif_result(i) for i in range(2 * BATCH)] + [sarif_result(3)]
    # the third batch is the repeat alone: its lookup finds the row and the lease is renewed (nothing new)
    assert queries_for(sarif_bytes(results), system=system) == PER_FIRST_RUN + 2 * PER_FIRST_IMPORT_BATCH + 2
    assert Finding.objects.filter(system=system).count() == 2 * BATCH


def test_reimport_unchanged_costs_two_queries_a_batch(system, small_batches):
    run_import(sarif_n(4 * BATCH), system=system)
    assert queries_for(sarif_n(4 * BATCH), system=system) == PER_RUN + 4 * PER_UNCHANGED_BATCH


def test_closing_and_reopening_cost_is_constant_in_rows(system, small_batches):
    """Closing is one statement for the whole run plus the transitions; reopening is a rewrite per batch."""
    run_import(sarif_n(4 * BATCH), system=system)
    # closing 3 batches' worth of findings: the close statement is in PER_RUN, + 1 insert of the transitions
    assert queries_for(sarif_n(BATCH), system=system) == PER_RUN + PER_UNCHANGED_BATCH + 1
    run_import(sarif_n(BATCH), system=system)
    # 3 batches reopen: each COPYs its rows beside the table (the UPDATE is the lease statement), adds their
    # words to the dictionary and inserts its transitions
    assert queries_for(sarif_n(4 * BATCH), system=system) == PER_RUN + 4 * PER_UNCHANGED_BATCH + 3 * 3
    assert not Finding.objects.exclude(state=FindingState.NEW).exists()


def test_routed_import_costs_two_more_queries(system, small_batches):
    MappingRule.objects.create(system=system, kind=MappingRule.Kind.ARTIFACT_GLOB, pattern="src/m1*.py")
    one = queries_for(sarif_n(BATCH), source="r1")
    four = queries_for(sarif_n(4 * BATCH), source="r4")
    # + loading the mapping rules, + one more advisory lock (scopes: unassigned and the rule's system)
    assert one == PER_FIRST_RUN + 2 + PER_FIRST_IMPORT_BATCH
    assert four - one == 3 * PER_FIRST_IMPORT_BATCH


# --- reads ---------------------------------------------------------------------------------------

def populate(n: int, system, other_system, engineer) -> None:
    run_import(sarif_n(n), system=system, source=f"q{n}")
    run_import(sarif_n(n // 2), system=other_system, source=f"q{n}")
    run_import(sarif_n(n // 3), source=f"u{n}")  # unassigned
    Finding.objects.filter(pk__in=Finding.objects.order_by("id").values("id")[: n // 2]).update(assignee=engineer)


def count_queries(client, url: str) -> int:
    cache.clear()
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("url", [
    "/findings/", "/findings/?state=all&sort=recent", "/findings/?sort=sla", "/findings/?system=unassigned",
    "/findings/?q=call&severity=high", "/api/v1/findings/", "/api/v1/findings/?state=all&sort=sla",
])
def test_queue_queries_do_not_grow_with_rows(client, engineer, system, other_system, url):
    client.force_login(engineer)
    populate(10, system, other_system, engineer)
    small = count_queries(client, url)
    populate(300, system, other_system, engineer)
    assert Finding.objects.count() > 500
    large = count_queries(client, url)
    if "sort=sla" in url:  # a page that reaches the findings without an SLA (listed last) reads them too: +1
        assert large == small - 1, f"{url}: {small} queries with 10 findings, {large} with 300"
    else:
        assert large == small, f"{url}: {small} queries with 10 findings, {large} with 300"
    # the page, its total (the same filtered queryset, counted), a text search's dictionary, the person's saved views
    assert large <= 12


def test_queue_next_page_has_the_same_count(client, engineer, system, other_system):
    client.force_login(engineer)
    populate(300, system, other_system, engineer)
    first = client.get("/api/v1/findings/").json()
    assert len(first["results"]) == 50 and first["next"]
    cache.clear()
    with CaptureQueriesContext(connection) as ctx:
        second = client.get(f"/api/v1/findings/?after={first['next']}").json()
    assert not {r["id"] for r in first["results"]} & {r["id"] for r in second["results"]}
    assert len(ctx.captured_queries) <= count_queries(client, "/api/v1/findings/")

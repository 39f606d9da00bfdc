"""The queue's text search: any part of a title, location or rule id, found through the word index on PostgreSQL."""
from __future__ import annotations

import pytest
from django.db import connection

from governance.findings import search
from governance.findings.models import Finding, FindingTerm
from governance.findings.selectors import QueueFilters, queue_page
from tests.findings.conftest import run_import, sarif_bytes, sarif_result

pytestmark = pytest.mark.django_db


def found(q: str, **kw) -> set[str]:
    rows, _ = queue_page(QueueFilters(q=q, state="all", **kw))
    return {f.location for f in rows}


@pytest.fixture
def findings(system):
    results = [
        sarif_result(1, uri="src/payments/ledger_service.py", message="SQL built from user input"),
        sarif_result(2, uri="src/models/Ünïcode_loader.py", message="Unpinned model download"),
        sarif_result(3, uri="notebooks/export/train.ipynb", message="Hardcoded secret 100%_sure"),
    ]
    assert run_import(sarif_bytes(results), system=system).status == "done"
    return system


def test_substrings_inside_and_across_words(findings):
    assert found("ledger_serv") == {"src/payments/ledger_service.py:2"}  # inside one word
    assert found("payments/ledger") == {"src/payments/ledger_service.py:2"}  # across a separator
    assert found("ments/ledger_service.py:2") == {"src/payments/ledger_service.py:2"}  # partial words at both ends
    assert found("LEDGER") == {"src/payments/ledger_service.py:2"}  # case does not matter
    assert found("ünïcode") == {"src/models/Ünïcode_loader.py:3"}
    assert found("b60") == {f.location for f in Finding.objects.all()}  # the rule ids B601 … B603


def test_the_whole_phrase_must_match_not_only_its_words(findings):
    """Every word of "export/ledger" is indexed, but no finding holds the phrase: the exact filter decides."""
    assert found("export/ledger") == set()
    assert found("service ledger") == set()


def test_no_match_and_unknown_words(findings):
    assert found("zzz-not-there") == set()
    assert search.piece_hashes("zzz-not-there") is None  # answered by the dictionary alone


def test_case_folding_is_character_by_character(system):
    """The word index must never drop a finding the exact filter (PostgreSQL's UPPER … LIKE) would keep."""
    results = [sarif_result(1, uri="docs/ΟΔΟΣΑ.md"), sarif_result(2, uri="src/ıdentity.py"),
               sarif_result(3, uri="src/straße.py")]
    assert run_import(sarif_bytes(results), system=system).status == "done"
    assert found("οδος") == {"docs/ΟΔΟΣΑ.md:2"}  # a final sigma when lowered, Σ like any other in capitals
    assert found("IDENTITY") == {"src/ıdentity.py:3"}  # the dotless ı capitalises to I
    assert found("straße") == {"src/straße.py:4"}  # ß has no one-letter capital: the exact filter alone decides
    assert search.pieces("straße.py") == ["PY"]


def test_like_wildcards_are_plain_characters(findings):
    assert found("100%_sure") == {"notebooks/export/train.ipynb:4"}
    assert found("1%0") == set()
    assert found("_") == {"src/payments/ledger_service.py:2", "src/models/Ünïcode_loader.py:3",
                          "notebooks/export/train.ipynb:4"}


def test_search_combines_with_the_other_filters(findings, other_system):
    run_import(sarif_bytes([sarif_result(4, uri="src/payments/ledger_service.py")]), system=other_system)
    assert len(found("ledger_service")) == 2
    rows, _ = queue_page(QueueFilters(q="ledger_service", state="all", system=other_system.slug))
    assert [f.system_id for f in rows] == [other_system.pk]


def test_words_reach_the_dictionary_at_import(findings):
    words = set(FindingTerm.objects.values_list("word", flat=True))
    assert {"LEDGER_SERVICE", "PAYMENTS", "ÜNÏCODE_LOADER", "B601"} <= words


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the word index is PostgreSQL's")
def test_the_word_index_narrows_the_query(findings):
    """On PostgreSQL the query carries the word condition (terms && ...) next to the exact filter."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        queue_page(QueueFilters(q="ledger_serv", state="all"))
    assert any("&&" in q["sql"] and "LIKE" in q["sql"] for q in ctx.captured_queries)


def test_changed_titles_get_their_new_words(findings, system):
    changed = [sarif_result(1, uri="src/payments/ledger_service.py", message="Renamed finding about invoices")]
    assert run_import(sarif_bytes(changed), system=system).counts["updated"] == 1
    assert found("invoices") == {"src/payments/ledger_service.py:2"}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="only PostgreSQL searches through the words")
def test_words_written_lower_case_before_are_rebuilt(findings):
    """Migration 0009: a database whose words were lower-cased (the fold before) gets them rebuilt, so a search
    finds its findings again."""
    import importlib

    from django.apps import apps

    FindingTerm.objects.all().delete()
    for f in Finding.objects.all():  # as the old fold wrote them
        lowered = [w.lower() for w in search.words(f"{f.title} {f.location} {f.rule_id}")]
        FindingTerm.objects.bulk_create([FindingTerm(hash=search.word_hash(w), word=w) for w in lowered],
                                        ignore_conflicts=True)
        Finding.objects.filter(pk=f.pk).update(terms=[search.word_hash(w) for w in lowered])
    assert found("ledger_serv") == set()  # what a search answered on such a database
    migration = importlib.import_module("governance.findings.migrations.0009_refold_search_words")
    with connection.schema_editor() as editor:
        migration.forwards(apps, editor)
    assert not FindingTerm.objects.filter(word__regex="[a-z]").exists()
    assert found("ledger_serv") == {"src/payments/ledger_service.py:2"}
    assert found("train.ipynb") == {"notebooks/export/train.ipynb:4"}

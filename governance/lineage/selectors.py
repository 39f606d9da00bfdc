"""Reads on the provenance graph: blast radius by one recursive query, per-system subgraph."""
from __future__ import annotations

from django.db import connection

from governance.lineage.models import LineageEdge, LineageNode, NodeKind

DOWNSTREAM_SQL = """
WITH RECURSIVE down(id, depth) AS (
    SELECT dst_id, 1 FROM {edge} WHERE src_id = %s
    UNION
    SELECT e.dst_id, d.depth + 1 FROM {edge} e JOIN down d ON e.src_id = d.id WHERE d.depth < %s
)
SELECT DISTINCT id FROM down
"""
UPSTREAM_SQL = """
WITH RECURSIVE up(id, depth) AS (
    SELECT src_id, 1 FROM {edge} WHERE dst_id = %s
    UNION
    SELECT e.src_id, u.depth + 1 FROM {edge} e JOIN up u ON e.dst_id = u.id WHERE u.depth < %s
)
SELECT DISTINCT id FROM up
"""


def _walk(sql: str, node_id: int, max_depth: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(sql.format(edge=LineageEdge._meta.db_table), [node_id, max_depth])
        return [row[0] for row in cursor.fetchall()]


def blast_radius(node: LineageNode, max_depth: int = 50) -> dict:
    """Every downstream model version and AI system (with owners) of a dataset or model version."""
    ids = _walk(DOWNSTREAM_SQL, node.pk, max_depth)
    reached = LineageNode.objects.filter(pk__in=ids, kind__in=(NodeKind.MODEL_VERSION, NodeKind.SYSTEM)).select_related(
        "system__business_owner", "system__technical_owner").order_by("kind", "name")
    models = [n for n in reached if n.kind == NodeKind.MODEL_VERSION]
    systems = [n for n in reached if n.kind == NodeKind.SYSTEM]
    return {"node": node, "models": models, "systems": systems, "downstream_count": len(ids)}


def system_graph(slug: str, max_depth: int = 20) -> tuple[list[LineageNode], list[LineageEdge]]:
    """The system's node and everything upstream of it: datasets → jobs → model versions → system."""
    root = LineageNode.objects.filter(key=f"system:{slug}").first()
    if root is None:
        return [], []
    ids = set(_walk(UPSTREAM_SQL, root.pk, max_depth)) | {root.pk}
    nodes = list(LineageNode.objects.filter(pk__in=ids))
    edges = list(LineageEdge.objects.filter(src_id__in=ids, dst_id__in=ids))
    return nodes, edges

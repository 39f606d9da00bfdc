"""Upsert graph nodes and edges, keeping the earliest first_seen and latest last_seen (order-independent)."""
from __future__ import annotations

import json

from django.db import connection

from governance.lineage.models import LineageEdge, LineageNode


def _sql_minmax() -> tuple[str, str]:
    return ("LEAST", "GREATEST") if connection.vendor == "postgresql" else ("MIN", "MAX")


def upsert_nodes(nodes: dict[str, dict]) -> dict[str, int]:
    """nodes: {key: {kind, namespace, name, attributes, first_seen, last_seen}} → {key: id}."""
    if not nodes:
        return {}
    least, greatest = _sql_minmax()
    table = LineageNode._meta.db_table
    rows, params = [], []
    for key, n in nodes.items():
        rows.append("(%s, %s, %s, %s, %s, %s, %s)")
        params += [key, n["kind"], n.get("namespace", "")[:300], n["name"][:500],
                   json.dumps(n.get("attributes") or {}), n["first_seen"], n["last_seen"]]
    merge_attrs = ("{t}.attributes || EXCLUDED.attributes" if connection.vendor == "postgresql"
                   else "json_patch({t}.attributes, EXCLUDED.attributes)").format(t=table)
    sql = (
        f"INSERT INTO {table} (key, kind, namespace, name, attributes, first_seen, last_seen) VALUES {', '.join(rows)} "
        f"ON CONFLICT (key) DO UPDATE SET first_seen = {least}({table}.first_seen, EXCLUDED.first_seen), "
        f"last_seen = {greatest}({table}.last_seen, EXCLUDED.last_seen), attributes = {merge_attrs}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    return dict(LineageNode.objects.filter(key__in=list(nodes)).values_list("key", "id"))


def upsert_edges(edges: dict[tuple[int, int, str], tuple]) -> None:
    """edges: {(src_id, dst_id, kind): (first_seen, last_seen)}."""
    if not edges:
        return
    least, greatest = _sql_minmax()
    table = LineageEdge._meta.db_table
    rows, params = [], []
    for (src, dst, kind), (first, last) in edges.items():
        rows.append("(%s, %s, %s, %s, %s)")
        params += [src, dst, kind, first, last]
    sql = (
        f"INSERT INTO {table} (src_id, dst_id, kind, first_seen, last_seen) VALUES {', '.join(rows)} "
        f"ON CONFLICT (src_id, dst_id, kind) DO UPDATE SET first_seen = {least}({table}.first_seen, EXCLUDED.first_seen), "
        f"last_seen = {greatest}({table}.last_seen, EXCLUDED.last_seen)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)

from __future__ import annotations

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from governance.inventory.models import AISystem
from governance.lineage import selectors
from governance.lineage.charts import graph_figure_json
from governance.lineage.models import LineageEvent, LineageNode, NodeKind


def overview(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:100]
    nodes = LineageNode.objects.filter(kind__in=(NodeKind.DATASET, NodeKind.MODEL_VERSION))
    if q:
        nodes = nodes.filter(name__icontains=q)
    return render(request, "lineage/overview.html", {
        "q": q, "nodes": nodes.order_by("kind", "name")[:50],
        "counts": dict(LineageNode.objects.values_list("kind").annotate(n=Count("id"))),
        "events": LineageEvent.objects.order_by("-id")[:15],
        "pending": LineageEvent.objects.filter(processed_at__isnull=True).count(),
        "systems": AISystem.objects.filter(archived_at__isnull=True).only("slug", "name"),
    })


def system_graph(request: HttpRequest, slug: str) -> HttpResponse:
    system = get_object_or_404(AISystem, slug=slug)
    nodes, edges = selectors.system_graph(slug)
    return render(request, "lineage/system.html", {
        "system": system, "nodes": sorted(nodes, key=lambda n: (n.kind, n.name)),
        "figure": graph_figure_json(nodes, edges) if nodes else None,
    })


def blast(request: HttpRequest, pk: int) -> HttpResponse:
    node = get_object_or_404(LineageNode, pk=pk)
    return render(request, "lineage/blast.html", selectors.blast_radius(node))

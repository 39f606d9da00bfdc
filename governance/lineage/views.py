from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from governance.inventory.models import AISystem
from governance.lineage import selectors
from governance.lineage.charts import graph_figure_json
from governance.lineage import connectors
from governance.lineage.forms import ConnectorForm
from governance.lineage.models import Connector, LineageEvent, LineageNode, NodeKind


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
        "systems": AISystem.objects.active().only("slug", "name"),
        "connectors": Connector.objects.all() if _can_manage(request.user) else None,
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


def _can_manage(user) -> bool:
    return user.has_perm("lineage.manage_connectors")


def _require_manage(request: HttpRequest) -> None:
    if not _can_manage(request.user):
        raise PermissionDenied("Only CISOs and admins configure lineage connectors.")


def _connector_form(request: HttpRequest, connector: Connector | None) -> HttpResponse:
    _require_manage(request)
    form = ConnectorForm(request.POST if request.method == "POST" else None, instance=connector)
    if request.method == "POST" and form.is_valid():
        data, credential = form.save_args()
        try:
            saved = connectors.connector_save(actor=request.user, connector=connector, data=data, credential=credential)
        except connectors.ConnectorError as exc:  # the URL resolved differently since the form checked it
            form.add_error("base_url", str(exc))
        else:
            messages.success(request, f"Connector {saved.name} saved.")
            return redirect("lineage:overview")
    status = 400 if request.method == "POST" else 200
    return render(request, "lineage/connector_form.html", {"form": form, "connector": connector}, status=status)


def connector_new(request: HttpRequest) -> HttpResponse:
    return _connector_form(request, None)


def connector_edit(request: HttpRequest, pk: int) -> HttpResponse:
    _require_manage(request)
    return _connector_form(request, get_object_or_404(Connector, pk=pk))


@require_POST
def connector_run_now(request: HttpRequest, pk: int) -> HttpResponse:
    _require_manage(request)
    connector = get_object_or_404(Connector, pk=pk)
    if connectors.connector_run_request(actor=request.user, connector=connector):
        messages.success(request, f"{connector.name} queued; refresh to see its result.")
    else:  # broker down: said, and the schedule pulls it later
        messages.error(request, f"Could not queue {connector.name}: the worker's broker is unreachable. The "
                                "schedule will pull it later.")
    return redirect("lineage:overview")


@require_POST
def connector_delete(request: HttpRequest, pk: int) -> HttpResponse:
    _require_manage(request)
    connector = get_object_or_404(Connector, pk=pk)
    connectors.connector_delete(actor=request.user, connector=connector)
    messages.success(request, f"Connector {connector.name} deleted; the events it pulled stay in the graph.")
    return redirect("lineage:overview")

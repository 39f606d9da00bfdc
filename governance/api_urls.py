"""Every /api/v1/ route. Each app keeps its API views in its own api.py."""
from django.urls import path

from governance.findings import api as findings_api
from governance.inventory import api as inventory_api
from governance.lineage import api as lineage_api
from governance.risks import api as risks_api
from governance.tabletop import api as tabletop_api

urlpatterns = [
    path("systems/", inventory_api.system_list, name="api-system-list"),
    path("systems/<slug:slug>/", inventory_api.system_detail, name="api-system-detail"),
    path("systems/<slug:slug>/gate", risks_api.system_gate, name="api-system-gate"),
    path("systems/<slug:slug>/signoffs/", risks_api.system_signoffs, name="api-system-signoffs"),
    path("systems/<slug:slug>/signoffs/latest", risks_api.system_signoff_latest, name="api-system-signoff-latest"),
    path("risks/", risks_api.risk_list, name="api-risk-list"),
    path("risks/<str:ref>/", risks_api.risk_detail, name="api-risk-detail"),
    path("risks/<str:ref>/decision", risks_api.risk_decision, name="api-risk-decision"),
    path("lineage", lineage_api.lineage_receive, name="api-lineage"),
    path("imports/", findings_api.import_list, name="api-import-list"),
    path("imports/<int:pk>/", findings_api.import_detail, name="api-import-detail"),
    path("findings/", findings_api.finding_list, name="api-finding-list"),
    path("exercises/<int:pk>/injects", tabletop_api.exercise_injects, name="api-exercise-injects"),
]

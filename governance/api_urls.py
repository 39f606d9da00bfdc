"""Every /api/v1/ route. Each app keeps its API views in its own api.py."""
from django.urls import path

from governance.findings import api as findings_api
from governance.inventory import api as inventory_api

urlpatterns = [
    path("systems/", inventory_api.system_list, name="api-system-list"),
    path("systems/<slug:slug>/", inventory_api.system_detail, name="api-system-detail"),
    path("imports/", findings_api.import_create, name="api-import-create"),
    path("imports/<int:pk>/", findings_api.import_detail, name="api-import-detail"),
    path("findings/", findings_api.finding_list, name="api-finding-list"),
]

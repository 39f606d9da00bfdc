from django.contrib.auth.decorators import login_not_required, login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from governance.dashboard import views as dashboard_views

urlpatterns = [
    path("", include("governance.dashboard.urls")),
    path("accounts/", include("governance.accounts.urls")),
    path("systems/", include("governance.inventory.urls")),
    path("rmf/", include("governance.rmf.urls")),
    path("findings/", include("governance.findings.urls")),
    path("risks/", include("governance.risks.urls")),
    path("lineage/", include("governance.lineage.urls")),
    path("audit/", include("governance.audit.urls")),
    path("exercises/", include("governance.tabletop.urls")),
    path("api/v1/", include("governance.api_urls")),
    path("api/schema/", login_not_required(SpectacularAPIView.as_view()), name="api-schema"),
    # Swagger UI (not Redoc: its standalone build loads a logo from redoc.ly) is a page for people: the sign-in page
    # first (DRF's views would answer 401). Not under /api/: that is for clients with tokens.
    path("api-docs/", login_required(SpectacularSwaggerSplitView.as_view(url_name="api-schema")), name="api-docs"),
    path("healthz", login_not_required(dashboard_views.healthz), name="healthz"),
]

handler400 = "governance.errors.bad_request"
handler403 = "governance.errors.permission_denied"
handler404 = "governance.errors.not_found"
handler500 = "governance.errors.server_error"

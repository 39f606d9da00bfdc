from django.urls import path

from governance.lineage import views

app_name = "lineage"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("systems/<slug:slug>/", views.system_graph, name="system"),
    path("nodes/<int:pk>/blast-radius/", views.blast, name="blast"),
    path("connectors/new/", views.connector_new, name="connector_new"),
    path("connectors/<int:pk>/edit/", views.connector_edit, name="connector_edit"),
    path("connectors/<int:pk>/run/", views.connector_run_now, name="connector_run"),
    path("connectors/<int:pk>/delete/", views.connector_delete, name="connector_delete"),
]

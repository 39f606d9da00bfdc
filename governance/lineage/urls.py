from django.urls import path

from governance.lineage import views

app_name = "lineage"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("systems/<slug:slug>/", views.system_graph, name="system"),
    path("nodes/<int:pk>/blast-radius/", views.blast, name="blast"),
]

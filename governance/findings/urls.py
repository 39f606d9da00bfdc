from django.urls import path

from governance.findings import views

app_name = "findings"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("bulk/", views.bulk, name="bulk"),
    path("<int:pk>/", views.detail, name="detail"),
    path("imports/", views.import_list, name="imports"),
    path("imports/new/", views.upload, name="upload"),
    path("imports/<int:pk>/", views.import_detail, name="import-detail"),
    path("rules/<slug:slug>/", views.mapping_rules, name="rules"),
    path("rules/<slug:slug>/<int:pk>/delete/", views.mapping_rule_delete, name="rule-delete"),
]

from django.urls import path

from governance.findings import views

app_name = "findings"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("bulk/", views.bulk, name="bulk"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/link-risk/", views.link_risk, name="link-risk"),
    path("<int:pk>/comments/", views.comment_add, name="comment-add"),
    path("views/", views.saved_view_create, name="view-create"),
    path("views/<int:pk>/delete/", views.saved_view_delete, name="view-delete"),
    path("imports/", views.import_list, name="imports"),
    path("imports/new/", views.upload, name="upload"),
    path("imports/<int:pk>/", views.import_detail, name="import-detail"),
    path("imports/<int:pk>/close-held/", views.import_close_held, name="import-close-held"),
    path("sources/", views.source_list, name="sources"),
    path("sources/new/", views.source_new, name="source-new"),
    path("sources/<int:pk>/edit/", views.source_edit, name="source-edit"),
    path("sources/<int:pk>/enabled/", views.source_enabled, name="source-enabled"),
    path("sources/<int:pk>/pull/", views.source_pull_request, name="source-pull"),
    path("sources/<int:pk>/delete/", views.source_delete, name="source-delete"),
    path("rules/<slug:slug>/", views.mapping_rules, name="rules"),
    path("rules/<slug:slug>/<int:pk>/delete/", views.mapping_rule_delete, name="rule-delete"),
]

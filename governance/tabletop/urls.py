from django.urls import path

from governance.tabletop import views

app_name = "tabletop"
urlpatterns = [
    path("", views.exercise_list, name="list"),
    path("new/", views.exercise_create, name="create"),
    path("scenarios/", views.scenario_list, name="scenarios"),
    path("scenarios/import/", views.scenario_import, name="scenario-import"),
    path("scenarios/from-atlas/", views.atlas_drafts, name="atlas"),
    path("scenarios/<slug:slug>/", views.scenario_detail, name="scenario"),
    path("scenarios/<slug:slug>/export.json", views.scenario_export, name="scenario-export"),
    path("<int:pk>/", views.exercise_detail, name="exercise"),
    path("<int:pk>/console/", views.console, name="console"),
    path("<int:pk>/edit/", views.exercise_edit, name="edit"),
    path("<int:pk>/participants/", views.participant_add, name="participant-add"),
    path("<int:pk>/participants/<int:participant_pk>/remove/", views.participant_remove, name="participant-remove"),
    path("<int:pk>/control/<str:action>/", views.exercise_control, name="control"),
    path("<int:pk>/injects/<int:inject_pk>/release/", views.inject_release, name="release"),
    path("<int:pk>/hotwash/", views.hotwash, name="hotwash"),
    path("<int:pk>/play/", views.play, name="play"),
    path("<int:pk>/releases/<int:release_pk>/respond/", views.respond, name="respond"),
    path("<int:pk>/observe/", views.observe, name="observe"),
    path("<int:pk>/actions/<int:action_pk>/score/", views.score, name="score"),
    path("<int:pk>/observations/", views.observation_add, name="observation-add"),
    path("<int:pk>/report/", views.report, name="report"),
    path("<int:pk>/report.md", views.report_markdown, name="report-md"),
    path("<int:pk>/improvements/", views.improvement_add, name="improvement-add"),
    path("<int:pk>/improvements/<int:item_pk>/promote/", views.improvement_promote, name="improvement-promote"),
    path("<int:pk>/improvements/<int:item_pk>/status/", views.improvement_status, name="improvement-status"),
]

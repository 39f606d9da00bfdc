from django.urls import path

from governance.risks import views

app_name = "risks"
urlpatterns = [
    path("", views.register, name="list"),
    path("new/", views.risk_create, name="create"),
    path("inbox/", views.inbox, name="inbox"),
    path("matrix/", views.matrix_settings, name="matrix"),
    path("export.csv", views.export_csv, name="export-csv"),
    path("export.xlsx", views.export_xlsx, name="export-xlsx"),
    path("inbox/decide/", views.decide_bulk, name="decide-bulk"),
    path("gate-policy/", views.gate_policies, name="gate-policies"),
    path("gate-policy/<str:tier>/", views.gate_policy_edit, name="gate-policy-edit"),
    path("signoffs/<int:pk>/", views.signoff_detail, name="signoff"),
    path("signoffs/new/<slug:slug>/", views.signoff_create, name="signoff-create"),
    path("<str:ref>/", views.risk_detail, name="detail"),
    path("<str:ref>/edit/", views.risk_edit, name="edit"),
    path("<str:ref>/request/", views.risk_request, name="request"),
    path("<str:ref>/decide/", views.risk_decide, name="decide"),
    path("<str:ref>/close/", views.risk_close, name="close"),
    path("<str:ref>/actions/", views.action_add, name="action-add"),
    path("<str:ref>/actions/<int:pk>/status/", views.action_status, name="action-status"),
]

from django.urls import path

from governance.rmf import views

app_name = "rmf"
urlpatterns = [
    path("portfolio/", views.portfolio, name="portfolio"),
    path("systems/<slug:slug>/", views.profile, name="profile"),
    path("assessments/<int:pk>/", views.assessment_row, name="assessment-row"),
    path("assessments/<int:pk>/edit/", views.assessment_edit, name="assessment-edit"),
]

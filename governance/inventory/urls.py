from django.urls import path

from governance.inventory import views

app_name = "inventory"
urlpatterns = [
    path("", views.system_list, name="list"),
    path("new/", views.system_create, name="create"),
    path("<slug:slug>/", views.system_detail, name="detail"),
    path("<slug:slug>/edit/", views.system_edit, name="edit"),
    path("<slug:slug>/archive/", views.system_archive, name="archive"),
    path("<slug:slug>/models/", views.model_add, name="model-add"),
    path("<slug:slug>/models/<int:pk>/remove/", views.model_remove, name="model-remove"),
    path("<slug:slug>/datasets/", views.dataset_add, name="dataset-add"),
    path("<slug:slug>/datasets/<int:pk>/remove/", views.dataset_remove, name="dataset-remove"),
]

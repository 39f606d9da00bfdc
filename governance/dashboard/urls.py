from django.urls import path

from governance.dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("", views.home, name="home"),
    path("report/board/", views.board_report, name="board"),
    path("report/board.pdf", views.board_pdf, name="board-pdf"),
]

from django.apps import AppConfig


class TabletopConfig(AppConfig):
    name = "governance.tabletop"
    label = "tabletop"

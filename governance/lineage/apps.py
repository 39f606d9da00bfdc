from django.apps import AppConfig


class LineageConfig(AppConfig):
    name = "governance.lineage"
    label = "lineage"

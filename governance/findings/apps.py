from django.apps import AppConfig


class FindingsConfig(AppConfig):
    name = "governance.findings"
    label = "findings"
